// Package storagetest is the conformance suite every storage kind must pass, run against a
// real server that the kind's test starts, plus helpers for tests of code built on storages.
// A backend's own test file only wires a Harness and calls Run.
package storagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/internal/storage"
	"github.com/vigil-backup/vigil/internal/storage/retry"
)

// Harness is what the suite needs of one kind of storage.
type Harness struct {
	// New returns a storage on a fresh, empty folder (or bucket prefix) of the server. Required.
	New func(t *testing.T) storage.Storage

	// Debris lists what a failed or cancelled Put may have left behind that List does not
	// show: temporary files, incomplete multipart uploads. Required: a cancelled Put must
	// leave nothing at all.
	Debris func(t *testing.T, s storage.Storage) []string

	// MakeDebris leaves one temporary object in the folder prefix, which holds an object
	// already, as a Put leaves it when its process is killed: a temporary file, or an
	// incomplete multipart upload, made on the server behind the storage's back and dated
	// back as far as the server allows. It returns that age (0 where the server keeps its
	// own dates). Nil for storages whose Puts leave nothing behind; the Sweep case is
	// then skipped.
	MakeDebris func(t *testing.T, s storage.Storage, prefix string) (age time.Duration)

	// Stop and Start stop the server and start it again on the same address, keeping its
	// data. Nil for storages without a server (local folders). They may be called from any
	// goroutine.
	Stop  func()
	Start func() error

	// Full returns a storage on a fresh volume of FullSize bytes, to fill it. Required.
	Full func(t *testing.T) storage.Storage

	// Denied returns the error of opening the storage with a wrong password, or of writing
	// where the user may not; it must be ErrPermission. Required.
	Denied func(t *testing.T) error

	// Missing returns the error of opening a share, bucket or root folder that does not
	// exist; it must be ErrNotFound. Required.
	Missing func(t *testing.T) error

	// Unreachable returns the error of opening the storage on an address nothing listens
	// on; it must be ErrUnreachable. Nil for local folders.
	Unreachable func(t *testing.T) error

	// Secret is the password the harness uses, which must never appear in an error.
	Secret string

	// ReportsUsage says whether the kind reports free space (storage.UsageReporter).
	ReportsUsage bool
}

// DebrisAge is how old WriteDebris makes a temporary file.
const DebrisAge = 2 * time.Hour

// WriteDebris writes a temporary file into folder dir of a file system, last written
// DebrisAge ago, as a Put whose process was killed leaves it. It is Harness.MakeDebris for
// storages whose folders the test can reach on disk, and returns DebrisAge.
func WriteDebris(t *testing.T, dir string) time.Duration {
	t.Helper()
	f, err := os.CreateTemp(dir, storage.TempPrefix+"*")
	if err != nil {
		t.Fatalf("make debris: %v", err)
	}
	_, err = f.Write(RandomBytes(59, 64<<10))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("make debris: %v", err)
	}
	old := time.Now().Add(-DebrisAge)
	if err := os.Chtimes(f.Name(), old, old); err != nil {
		t.Fatalf("make debris: %v", err)
	}
	return DebrisAge
}

// FullSize is the size of the volume Harness.Full makes.
const FullSize = 16 << 20

// LargeSize is the size of the large-object test: over 100 MiB, and not a multiple of any
// block or part size.
const LargeSize = 100<<20 + 12345

// Run runs the conformance suite.
func Run(t *testing.T, h Harness) {
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, h) })
	t.Run("RangedOpen", func(t *testing.T) { testRangedOpen(t, h) })
	t.Run("NotFound", func(t *testing.T) { testNotFound(t, h) })
	t.Run("List", func(t *testing.T) { testList(t, h) })
	t.Run("Overwrite", func(t *testing.T) { testOverwrite(t, h) })
	t.Run("InvalidNames", func(t *testing.T) { testInvalidNames(t, h) })
	t.Run("WrongLength", func(t *testing.T) { testWrongLength(t, h) })
	t.Run("AtomicVisibility", func(t *testing.T) { testAtomicVisibility(t, h) })
	t.Run("CancelledPut", func(t *testing.T) { testCancelledPut(t, h) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, h) })
	t.Run("Large", func(t *testing.T) { testLarge(t, h) })
	t.Run("Usage", func(t *testing.T) { testUsage(t, h) })
	t.Run("NoSpace", func(t *testing.T) { testNoSpace(t, h) })
	t.Run("Errors", func(t *testing.T) { testErrors(t, h) })
	t.Run("Close", func(t *testing.T) { testClose(t, h) })
	t.Run("Sweep", func(t *testing.T) { testSweep(t, h) })
	if h.Stop != nil {
		t.Run("RestartBetweenCalls", func(t *testing.T) { testRestartBetweenCalls(t, h) })
		t.Run("RestartMidTransfer", func(t *testing.T) { testRestartMidTransfer(t, h) })
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// RandomBytes returns n reproducible pseudo-random bytes.
func RandomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24)})
	_, _ = r.Read(b)
	return b
}

// MustPut stores data under name or fails the test.
func MustPut(t *testing.T, s storage.Storage, name string, data []byte) {
	t.Helper()
	if err := s.Put(testContext(t), name, storage.BytesSource(data), storage.PutOptions{}); err != nil {
		t.Fatalf("put %s: %v", name, err)
	}
}

// MustRead reads a whole object or fails the test.
func MustRead(t *testing.T, s storage.Storage, name string) []byte {
	t.Helper()
	b, err := Read(testContext(t), s, name, 0, 0)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return b
}

// Read reads length bytes of an object from offset (0: to the end).
func Read(ctx context.Context, s storage.Storage, name string, offset, length int64) ([]byte, error) {
	rc, err := s.Open(ctx, name, offset, length)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// Names lists the names below prefix, sorted.
func Names(t *testing.T, s storage.Storage, prefix string) []string {
	t.Helper()
	var names []string
	err := s.List(testContext(t), prefix, func(fi storage.FileInfo) error {
		names = append(names, fi.Name)
		return nil
	})
	if err != nil {
		t.Fatalf("list %q: %v", prefix, err)
	}
	slices.Sort(names)
	return names
}

func wantKind(t *testing.T, what string, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("%s: got error %v, want %v", what, err, kind)
	}
}

func testRoundTrip(t *testing.T, h Harness) {
	s := h.New(t)
	ctx := testContext(t)
	cases := []struct {
		name string
		size int
	}{
		{"empty", 0},
		{"one", 1},
		{"dir/sub/deeper/file.bin", 4096},
		{"with space/file name.mkv", 1000},
		{"ünïcødé/日本語 ファイル.txt", 777},
		{"hi_quality/cam-1/2026/11/22/04/1763784000000_10000.mkv", 1<<20 + 7},
	}
	before := time.Now().Add(-5 * time.Minute)
	for i, c := range cases {
		data := RandomBytes(uint64(i), c.size)
		MustPut(t, s, c.name, data)
		fi, err := s.Stat(ctx, c.name)
		if err != nil {
			t.Fatalf("stat %s: %v", c.name, err)
		}
		if fi.Name != c.name || fi.Size != int64(c.size) {
			t.Fatalf("stat %s: got name %q size %d, want size %d", c.name, fi.Name, fi.Size, c.size)
		}
		if fi.ModTime.Before(before) || fi.ModTime.After(time.Now().Add(5*time.Minute)) {
			t.Fatalf("stat %s: modification time %v is not about now", c.name, fi.ModTime)
		}
		if got := MustRead(t, s, c.name); !bytes.Equal(got, data) {
			t.Fatalf("read %s: got %d bytes that differ from the %d put", c.name, len(got), len(data))
		}
	}
	var want []string
	for _, c := range cases {
		want = append(want, c.name)
	}
	slices.Sort(want)
	if got := Names(t, s, ""); !slices.Equal(got, want) {
		t.Fatalf("list: got %q, want %q", got, want)
	}
	sizes := map[string]int64{}
	_ = s.List(ctx, "", func(fi storage.FileInfo) error { sizes[fi.Name] = fi.Size; return nil })
	for _, c := range cases {
		if sizes[c.name] != int64(c.size) {
			t.Fatalf("list: %s has size %d, want %d", c.name, sizes[c.name], c.size)
		}
	}
	for _, c := range cases {
		if err := s.Remove(ctx, c.name); err != nil {
			t.Fatalf("remove %s: %v", c.name, err)
		}
		_, err := s.Stat(ctx, c.name)
		wantKind(t, "stat after remove", err, storage.ErrNotFound)
	}
	if got := Names(t, s, ""); len(got) != 0 {
		t.Fatalf("list after removing all: %q", got)
	}
}

func testRangedOpen(t *testing.T, h Harness) {
	s := h.New(t)
	ctx := testContext(t)
	data := RandomBytes(7, 3<<20+11)
	size := int64(len(data))
	MustPut(t, s, "ranged", data)
	cases := []struct {
		off, n int64
		want   []byte
	}{
		{0, 0, data},
		{0, 10, data[:10]},
		{100, 1000, data[100:1100]},
		{1 << 20, 1 << 20, data[1<<20 : 2<<20]},
		{size - 10, 0, data[size-10:]},
		{size - 10, 100, data[size-10:]},
		{size, 0, nil},
		{size + 5, 10, nil},
	}
	for _, c := range cases {
		got, err := Read(ctx, s, "ranged", c.off, c.n)
		if err != nil {
			t.Fatalf("read %d+%d: %v", c.off, c.n, err)
		}
		if !bytes.Equal(got, c.want) {
			t.Fatalf("read %d+%d: got %d bytes, want %d (or they differ)", c.off, c.n, len(got), len(c.want))
		}
	}
}

func testNotFound(t *testing.T, h Harness) {
	s := h.New(t)
	ctx := testContext(t)
	MustPut(t, s, "folder/file", []byte("x"))
	for _, name := range []string{"missing", "folder/missing", "missing/deep/file", "folder"} {
		_, err := s.Stat(ctx, name)
		wantKind(t, "stat "+name, err, storage.ErrNotFound)
		rc, err := s.Open(ctx, name, 0, 0)
		if err == nil {
			rc.Close()
		}
		wantKind(t, "open "+name, err, storage.ErrNotFound)
		wantKind(t, "remove "+name, s.Remove(ctx, name), storage.ErrNotFound)
	}
}

func testList(t *testing.T, h Harness) {
	s := h.New(t)
	ctx := testContext(t)
	for _, name := range []string{"a/1", "a/2", "a/b/3", "a/b/c/4", "ab/5", "c"} {
		MustPut(t, s, name, []byte(name))
	}
	cases := []struct {
		prefix string
		want   []string
	}{
		{"", []string{"a/1", "a/2", "a/b/3", "a/b/c/4", "ab/5", "c"}},
		{"a", []string{"a/1", "a/2", "a/b/3", "a/b/c/4"}},
		{"a/", []string{"a/1", "a/2", "a/b/3", "a/b/c/4"}},
		{"a/b", []string{"a/b/3", "a/b/c/4"}},
		{"ab", []string{"ab/5"}},
		{"nope", nil},
		{"a/nope/deeper", nil},
	}
	for _, c := range cases {
		if got := Names(t, s, c.prefix); !slices.Equal(got, c.want) {
			t.Fatalf("list %q: got %q, want %q", c.prefix, got, c.want)
		}
	}
	stop := errors.New("enough")
	calls := 0
	err := s.List(ctx, "", func(storage.FileInfo) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("list stopped by its callback: got %v after %d calls, want the callback's error after 1", err, calls)
	}
	wantKind(t, "list ../x", s.List(ctx, "../x", func(storage.FileInfo) error { return nil }), storage.ErrInvalidName)
}

func testOverwrite(t *testing.T, h Harness) {
	s := h.New(t)
	ctx := testContext(t)
	MustPut(t, s, "x/obj", []byte("first version, longer"))
	MustPut(t, s, "x/obj", []byte("second"))
	if got := MustRead(t, s, "x/obj"); string(got) != "second" {
		t.Fatalf("after overwrite: got %q", got)
	}
	err := s.Put(ctx, "x/obj", storage.BytesSource([]byte("third")), storage.PutOptions{NoOverwrite: true})
	wantKind(t, "put without overwrite", err, storage.ErrExists)
	if got := MustRead(t, s, "x/obj"); string(got) != "second" {
		t.Fatalf("a refused put changed the object: got %q", got)
	}
	if err := s.Put(ctx, "x/new", storage.BytesSource([]byte("new")), storage.PutOptions{NoOverwrite: true}); err != nil {
		t.Fatalf("put a new object without overwrite: %v", err)
	}
	if got := Names(t, s, ""); !slices.Equal(got, []string{"x/new", "x/obj"}) {
		t.Fatalf("list: got %q", got)
	}
	if d := h.Debris(t, s); len(d) != 0 {
		t.Fatalf("debris after overwrites: %q", d)
	}
}

func testInvalidNames(t *testing.T, h Harness) {
	s := h.New(t)
	ctx := testContext(t)
	for _, name := range []string{"", "/abs", "../up", "a/../../up", "a//b", "a/./b", "a/", `a\b`, "a/" + storage.TempPrefix + "x", "nul\x00byte", strings.Repeat("n", 300)} {
		wantKind(t, fmt.Sprintf("put %q", name), s.Put(ctx, name, storage.BytesSource([]byte("x")), storage.PutOptions{}), storage.ErrInvalidName)
		_, err := s.Stat(ctx, name)
		wantKind(t, fmt.Sprintf("stat %q", name), err, storage.ErrInvalidName)
		_, err = s.Open(ctx, name, 0, 0)
		wantKind(t, fmt.Sprintf("open %q", name), err, storage.ErrInvalidName)
		wantKind(t, fmt.Sprintf("remove %q", name), s.Remove(ctx, name), storage.ErrInvalidName)
	}
	if got := Names(t, s, ""); len(got) != 0 {
		t.Fatalf("invalid names wrote %q", got)
	}
}

// lyingSource announces a size it does not have.
type lyingSource struct {
	storage.Source
	size int64
}

func (l lyingSource) Size() int64 { return l.size }

func testWrongLength(t *testing.T, h Harness) {
	s := h.New(t)
	ctx := testContext(t)
	data := RandomBytes(3, 1<<20)
	for _, announced := range []int64{int64(len(data)) + 1000, int64(len(data)) - 1000} {
		src := lyingSource{Source: storage.BytesSource(data), size: announced}
		if err := s.Put(ctx, "short", src, storage.PutOptions{}); err == nil {
			t.Fatalf("put of %d bytes announced as %d: no error", len(data), announced)
		}
		if _, err := s.Stat(ctx, "short"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("a put with the wrong length left an object: stat says %v", err)
		}
	}
	if d := h.Debris(t, s); len(d) != 0 {
		t.Fatalf("debris after failed puts: %q", d)
	}
}

// gate is a reader that passes the first `after` bytes of r, then waits for open to close
// (or ctx to end) before passing the rest; reached closes when it starts waiting.
type gate struct {
	r       io.Reader
	after   int64
	n       int64
	ctx     context.Context
	reached chan struct{}
	open    chan struct{}
	once    sync.Once
}

func (g *gate) Read(p []byte) (int, error) {
	if g.n >= g.after {
		g.once.Do(func() { close(g.reached) })
		select {
		case <-g.open:
		case <-g.ctx.Done():
			return 0, g.ctx.Err()
		}
	} else if rest := g.after - g.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := g.r.Read(p)
	g.n += int64(n)
	return n, err
}

type gatedSource struct {
	*gate
	src storage.Source
}

func newGatedSource(ctx context.Context, data []byte, after int64) gatedSource {
	src := storage.BytesSource(data)
	return gatedSource{gate: &gate{r: src, after: after, ctx: ctx, reached: make(chan struct{}), open: make(chan struct{})}, src: src}
}

func (g gatedSource) Size() int64 { return g.src.Size() }
func (g gatedSource) Rewind() error {
	g.n = 0
	return g.src.Rewind()
}

func testAtomicVisibility(t *testing.T, h Harness) {
	s := h.New(t)
	ctx := testContext(t)
	old := []byte("the old version")
	MustPut(t, s, "replaced", old)
	data := RandomBytes(11, 8<<20)
	for _, name := range []string{"fresh", "replaced"} {
		src := newGatedSource(ctx, data, 3<<20)
		errc := make(chan error, 1)
		go func() { errc <- s.Put(ctx, name, src, storage.PutOptions{}) }()
		select {
		case <-src.reached:
		case err := <-errc:
			t.Fatalf("put %s ended before its source was read: %v", name, err)
		}
		// Give the backend time to push what it has read to the server.
		time.Sleep(200 * time.Millisecond)
		fi, err := s.Stat(ctx, name)
		switch name {
		case "fresh":
			if !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("a put in progress is visible: stat gives %+v, %v", fi, err)
			}
			if got := Names(t, s, ""); slices.Contains(got, name) {
				t.Fatalf("a put in progress is listed: %q", got)
			}
		case "replaced":
			if got := MustRead(t, s, name); !bytes.Equal(got, old) {
				t.Fatalf("while being replaced, %s reads %d bytes, want the old %d", name, len(got), len(old))
			}
		}
		close(src.open)
		if err := <-errc; err != nil {
			t.Fatalf("put %s: %v", name, err)
		}
		if got := MustRead(t, s, name); !bytes.Equal(got, data) {
			t.Fatalf("after put, %s reads %d bytes, want %d", name, len(got), len(data))
		}
	}
	if got := Names(t, s, ""); !slices.Equal(got, []string{"fresh", "replaced"}) {
		t.Fatalf("list: got %q", got)
	}
}

func testCancelledPut(t *testing.T, h Harness) {
	s := h.New(t)
	data := RandomBytes(13, 24<<20)
	MustPut(t, s, "kept", []byte("old"))
	for _, name := range []string{"cancelled/new", "kept"} {
		ctx, cancel := context.WithCancel(testContext(t))
		src := newGatedSource(ctx, data, 10<<20)
		errc := make(chan error, 1)
		go func() { errc <- s.Put(ctx, name, src, storage.PutOptions{}) }()
		select {
		case <-src.reached:
		case err := <-errc:
			t.Fatalf("put ended before it was cancelled: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
		cancel()
		select {
		case err := <-errc:
			if err == nil {
				t.Fatalf("a cancelled put of %s returned no error", name)
			}
		case <-time.After(time.Minute):
			t.Fatalf("a cancelled put of %s did not return within a minute", name)
		}
	}
	if _, err := s.Stat(testContext(t), "cancelled/new"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a cancelled put left an object: stat says %v", err)
	}
	if got := MustRead(t, s, "kept"); string(got) != "old" {
		t.Fatalf("a cancelled overwrite changed the object: %q", got)
	}
	if got := Names(t, s, ""); !slices.Equal(got, []string{"kept"}) {
		t.Fatalf("list after cancelled puts: %q", got)
	}
	// Some servers finish cleaning up just after the call returns.
	deadline := time.Now().Add(10 * time.Second)
	for {
		d := h.Debris(t, s)
		if len(d) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a cancelled put left debris: %q", d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func testConcurrent(t *testing.T, h Harness) {
	s := h.New(t)
	ctx := testContext(t)
	const workers, each = 8, 6
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				name := fmt.Sprintf("w%d/%d", w, i)
				data := RandomBytes(uint64(w*100+i), 64<<10+w*1000+i)
				if err := s.Put(ctx, name, storage.BytesSource(data), storage.PutOptions{}); err != nil {
					errs <- fmt.Errorf("put %s: %w", name, err)
					return
				}
				got, err := Read(ctx, s, name, 0, 0)
				if err != nil || !bytes.Equal(got, data) {
					errs <- fmt.Errorf("read back %s: %d bytes, %v", name, len(got), err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := Names(t, s, ""); len(got) != workers*each {
		t.Fatalf("list: %d objects, want %d", len(got), workers*each)
	}
}

func testLarge(t *testing.T, h Harness) {
	s := h.New(t)
	ctx := testContext(t)
	data := RandomBytes(17, LargeSize)
	want := sha256.Sum256(data)
	MustPut(t, s, "large/object.bin", data)
	fi, err := s.Stat(ctx, "large/object.bin")
	if err != nil || fi.Size != LargeSize {
		t.Fatalf("stat large object: %+v, %v", fi, err)
	}
	rc, err := s.Open(ctx, "large/object.bin", 0, 0)
	if err != nil {
		t.Fatalf("open large object: %v", err)
	}
	defer rc.Close()
	hash := sha256.New()
	n, err := io.Copy(hash, rc)
	if err != nil || n != LargeSize {
		t.Fatalf("read large object: %d bytes, %v", n, err)
	}
	if !bytes.Equal(hash.Sum(nil), want[:]) {
		t.Fatalf("large object: the SHA-256 read back differs from the one put")
	}
	tail, err := Read(ctx, s, "large/object.bin", LargeSize-5000, 0)
	if err != nil || !bytes.Equal(tail, data[LargeSize-5000:]) {
		t.Fatalf("read the large object's tail: %d bytes, %v", len(tail), err)
	}
}

func testUsage(t *testing.T, h Harness) {
	s := h.New(t)
	u, ok, err := storage.UsageOf(testContext(t), s)
	if err != nil {
		t.Fatalf("usage: %v", err)
	}
	if ok != h.ReportsUsage {
		t.Fatalf("usage reported: %v, want %v", ok, h.ReportsUsage)
	}
	if ok && (u.Total <= 0 || u.Free < 0 || u.Free > u.Total) {
		t.Fatalf("usage: nonsense %+v", u)
	}
}

func testNoSpace(t *testing.T, h Harness) {
	s := h.Full(t)
	ctx := testContext(t)
	if h.ReportsUsage {
		u, _, err := storage.UsageOf(ctx, s)
		if err != nil || u.Total > 2*FullSize || u.Free > u.Total {
			t.Fatalf("usage of a %d-byte volume: %+v, %v", FullSize, u, err)
		}
	}
	MustPut(t, s, "small", []byte("fits"))
	big := RandomBytes(19, 2*FullSize)
	err := s.Put(ctx, "too/big", storage.BytesSource(big), storage.PutOptions{})
	wantKind(t, "put more than fits", err, storage.ErrNoSpace)
	if storage.IsTransient(err) {
		t.Fatalf("no space is reported as transient: %v", err)
	}
	if got := Names(t, s, ""); !slices.Equal(got, []string{"small"}) {
		t.Fatalf("list after running out of space: %q", got)
	}
	if d := h.Debris(t, s); len(d) != 0 {
		t.Fatalf("debris after running out of space: %q", d)
	}
	// The failed put's space came back.
	MustPut(t, s, "after", RandomBytes(23, FullSize/2))
}

func testErrors(t *testing.T, h Harness) {
	check := func(what string, err, kind error) {
		t.Helper()
		wantKind(t, what, err, kind)
		if h.Secret != "" && strings.Contains(err.Error(), h.Secret) {
			t.Fatalf("%s: the error shows the password: %v", what, err)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Fatalf("%s: the error is not one line: %q", what, err)
		}
		if storage.Hint(err) == "" {
			t.Fatalf("%s: no hint for %v", what, err)
		}
	}
	check("denied", h.Denied(t), storage.ErrPermission)
	check("missing", h.Missing(t), storage.ErrNotFound)
	if h.Unreachable != nil {
		err := h.Unreachable(t)
		check("unreachable", err, storage.ErrUnreachable)
		if !storage.IsTransient(err) {
			t.Fatalf("unreachable is not transient: %v", err)
		}
	}
}

func testClose(t *testing.T, h Harness) {
	s := h.New(t)
	MustPut(t, s, "x", []byte("x"))
	if err := s.Close(); err != nil {
		t.Fatalf("close after use: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("a second close: %v", err)
	}
}

func testSweep(t *testing.T, h Harness) {
	if h.MakeDebris == nil {
		t.Skip("the storage's Puts leave no debris")
	}
	s := h.New(t)
	sw, ok := s.(storage.Sweeper)
	if !ok {
		t.Fatalf("%T leaves debris but cannot sweep it", s)
	}
	ctx := testContext(t)
	objects := map[string][]byte{
		"swept/kept":         RandomBytes(41, 1000),
		"swept/deep/kept":    RandomBytes(43, 70000),
		"swept/deep/er/kept": RandomBytes(47, 10),
		"other/kept":         RandomBytes(53, 100),
	}
	for name, data := range objects {
		MustPut(t, s, name, data)
	}
	age := h.MakeDebris(t, s, "swept/deep")
	inside := h.Debris(t, s)
	h.MakeDebris(t, s, "other")
	outside := without(h.Debris(t, s), inside)
	if len(inside) != 1 || len(outside) != 1 {
		t.Fatalf("made debris in two folders, found %q and then %q more", inside, outside)
	}
	stale := age / 2

	// Only below the prefix, and also through a decorator.
	n, ok, err := storage.SweepOf(ctx, retry.New(s, retry.Policy{Attempts: 1}), "swept", stale)
	if err != nil || !ok || n != 1 {
		t.Fatalf("sweep through the retry decorator: %d removed, sweeper found %v, error %v; want 1 removed", n, ok, err)
	}
	if d := h.Debris(t, s); !slices.Equal(d, outside) {
		t.Fatalf("after sweeping swept/: debris %q, want only %q outside it", d, outside)
	}

	// The temporary object of a Put in progress is not debris when it is younger than
	// olderThan, and the Put goes on.
	data := RandomBytes(59, 24<<20)
	src := newGatedSource(ctx, data, 10<<20)
	errc := make(chan error, 1)
	go func() { errc <- s.Put(ctx, "swept/deep/in-progress", src, storage.PutOptions{}) }()
	select {
	case <-src.reached:
	case err := <-errc:
		t.Fatalf("put ended before its source was read: %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	writing := without(h.Debris(t, s), outside)
	if len(writing) == 0 {
		t.Fatalf("a put in progress has no temporary object on the server")
	}
	n, err = sw.Sweep(ctx, "swept", time.Hour)
	if err != nil || n != 0 {
		t.Fatalf("sweep of what is older than an hour during a put: %d removed, %v; want none", n, err)
	}
	if gone := without(writing, h.Debris(t, s)); len(gone) != 0 {
		t.Fatalf("the sweep removed the temporary object of a put in progress: %q", gone)
	}
	close(src.open)
	if err := <-errc; err != nil {
		t.Fatalf("put during a sweep: %v", err)
	}
	objects["swept/deep/in-progress"] = data

	n, err = sw.Sweep(ctx, "", stale)
	if err != nil || n != 1 {
		t.Fatalf("sweep of the whole storage: %d removed, %v; want 1", n, err)
	}
	if d := h.Debris(t, s); len(d) != 0 {
		t.Fatalf("debris after sweeping the whole storage: %q", d)
	}
	n, err = sw.Sweep(ctx, "nope/deeper", 0)
	if err != nil || n != 0 {
		t.Fatalf("sweep of a missing folder: %d removed, %v", n, err)
	}
	n, err = sw.Sweep(ctx, "swept/kept", 0)
	if err != nil || n != 0 {
		t.Fatalf("sweep of an object's name: %d removed, %v", n, err)
	}
	_, err = sw.Sweep(ctx, "../x", 0)
	wantKind(t, "sweep ../x", err, storage.ErrInvalidName)

	want := slices.Sorted(maps.Keys(objects))
	if got := Names(t, s, ""); !slices.Equal(got, want) {
		t.Fatalf("objects after sweeps: got %q, want %q", got, want)
	}
	for name, data := range objects {
		if got := MustRead(t, s, name); !bytes.Equal(got, data) {
			t.Fatalf("after sweeps, %s reads %d bytes that differ from the %d put", name, len(got), len(data))
		}
	}
}

// without returns the strings of a that are not in b.
func without(a, b []string) []string {
	var out []string
	for _, s := range a {
		if !slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}

func testRestartBetweenCalls(t *testing.T, h Harness) {
	s := h.New(t)
	ctx := testContext(t)
	MustPut(t, s, "before", []byte("before the restart"))
	h.Stop()
	if err := h.Start(); err != nil {
		t.Fatalf("start the server again: %v", err)
	}
	// The first call may find the old connection dead; it must say so as a transient error,
	// and the storage must reconnect by itself for the next call.
	var failures int
	for attempt := 0; ; attempt++ {
		_, err := s.Stat(ctx, "before")
		if err == nil {
			break
		}
		if !storage.IsTransient(err) || attempt >= 1 {
			t.Fatalf("stat after a server restart (attempt %d): %v", attempt+1, err)
		}
		failures++
	}
	MustPut(t, s, "after", []byte("after the restart"))
	if got := MustRead(t, s, "before"); string(got) != "before the restart" {
		t.Fatalf("after restart: %q", got)
	}
	t.Logf("calls that failed after the restart before the storage reconnected: %d", failures)
}

func testRestartMidTransfer(t *testing.T, h Harness) {
	s := retry.New(h.New(t), retry.Policy{Initial: 200 * time.Millisecond, Max: 2 * time.Second, Attempts: 20})
	ctx := testContext(t)
	data := RandomBytes(29, 48<<20)
	want := sha256.Sum256(data)
	started := make(chan struct{})
	src := TripSource(storage.BytesSource(data), 16<<20, func() {
		h.Stop()
		go func() {
			defer close(started)
			time.Sleep(time.Second)
			if err := h.Start(); err != nil {
				t.Errorf("start the server again: %v", err)
			}
		}()
	})
	if err := s.Put(ctx, "through/restart.bin", src, storage.PutOptions{}); err != nil {
		t.Fatalf("put across a server restart: %v", err)
	}
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatalf("the server was never stopped: the put did not read past 16 MiB")
	}
	got := MustRead(t, s, "through/restart.bin")
	if sha256.Sum256(got) != want {
		t.Fatalf("after a restart mid-transfer the object has %d bytes that differ from the %d put", len(got), len(data))
	}
	// A read broken by a restart resumes where it stopped.
	rc, err := s.Open(ctx, "through/restart.bin", 0, 0)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer rc.Close()
	hash := sha256.New()
	if _, err := io.CopyN(hash, rc, 8<<20); err != nil {
		t.Fatalf("read the first part: %v", err)
	}
	h.Stop()
	restarted := make(chan struct{})
	go func() {
		defer close(restarted)
		time.Sleep(time.Second)
		if err := h.Start(); err != nil {
			t.Errorf("start the server again: %v", err)
		}
	}()
	defer func() { <-restarted }()
	if _, err := io.Copy(hash, rc); err != nil {
		t.Fatalf("read across a server restart: %v", err)
	}
	if !bytes.Equal(hash.Sum(nil), want[:]) {
		t.Fatalf("a read across a server restart gave other bytes")
	}
}
