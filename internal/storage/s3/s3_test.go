package s3_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/vigil-backup/vigil/internal/storage"
	"github.com/vigil-backup/vigil/internal/storage/s3"
	"github.com/vigil-backup/vigil/internal/storage/storagetest"
	"github.com/vigil-backup/vigil/internal/testenv"
)

// place is where a storage under test keeps its objects, for looking behind its back.
type place struct {
	m      *testenv.MinIO
	bucket string
	prefix string
}

// places maps each *s3.Storage the tests opened to its place.
var places sync.Map

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func location(t testing.TB, url string) storage.Location {
	t.Helper()
	loc, err := storage.ParseLocation(url)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return loc
}

// open opens folder prefix of bucket on m as its root user, and closes it when the test ends.
func open(t *testing.T, m *testenv.MinIO, bucket, prefix string) *s3.Storage {
	t.Helper()
	s, err := s3.Open(ctxFor(t), location(t, m.URL(bucket, prefix)), storage.Credentials{User: m.AccessKey, Password: m.SecretKey})
	if err != nil {
		t.Fatalf("open %s: %v", m.URL(bucket, prefix), err)
	}
	t.Cleanup(func() { s.Close() })
	places.Store(s, place{m: m, bucket: bucket, prefix: prefix})
	return s
}

// incompleteUploads lists the multipart uploads below the storage's folder that were
// neither completed nor aborted, as object names. MinIO lists uploads by prefix only for an
// exact key, so the whole bucket is listed and filtered here.
func incompleteUploads(t *testing.T, s storage.Storage) []string {
	t.Helper()
	v, ok := places.Load(s)
	if !ok {
		t.Fatalf("debris of a storage the tests did not open: %T", s)
	}
	p := v.(place)
	strip := ""
	if p.prefix != "" {
		strip = p.prefix + "/"
	}
	var names []string
	for u := range p.m.Client(t).ListIncompleteUploads(ctxFor(t), p.bucket, "", true) {
		if u.Err != nil {
			t.Fatalf("list incomplete uploads in %s: %v", p.bucket, u.Err)
		}
		if name, below := strings.CutPrefix(u.Key, strip); below {
			names = append(names, name)
		}
	}
	return names
}

// interruptedUpload starts a multipart upload in the folder prefix of the storage, sends
// one part and neither completes nor aborts it, as a Put whose process is killed leaves it.
// The server dates the upload itself, so it is brand new.
func interruptedUpload(t *testing.T, s storage.Storage, prefix string) time.Duration {
	t.Helper()
	v, ok := places.Load(s)
	if !ok {
		t.Fatalf("debris in a storage the tests did not open: %T", s)
	}
	p := v.(place)
	key := storage.JoinPrefix(p.prefix, storage.JoinPrefix(prefix, "interrupted"))
	core := minio.Core{Client: p.m.Client(t)}
	ctx := ctxFor(t)
	id, err := core.NewMultipartUpload(ctx, p.bucket, key, minio.PutObjectOptions{})
	if err != nil {
		t.Fatalf("start an upload of %s: %v", key, err)
	}
	part := storagetest.RandomBytes(61, 64<<10)
	if _, err := core.PutObjectPart(ctx, p.bucket, key, id, 1, bytes.NewReader(part), int64(len(part)), minio.PutObjectPartOptions{}); err != nil {
		t.Fatalf("upload a part of %s: %v", key, err)
	}
	return 0
}

func TestConformance(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	m.MakeBucket(t, "conformance")
	var n atomic.Int64
	storagetest.Run(t, storagetest.Harness{
		New: func(t *testing.T) storage.Storage {
			return open(t, m, "conformance", fmt.Sprintf("suite/%03d", n.Add(1)))
		},
		Debris:     incompleteUploads,
		MakeDebris: interruptedUpload,
		Stop:       m.Stop,
		Start:      m.Start,
		Full: func(t *testing.T) storage.Storage {
			// MinIO takes a write only when twice its size is free (its erasure-coding
			// reserve), so on FullSize bytes even the suite's FullSize/2 object would be
			// refused. Half as much again lets that one in and still keeps out 2×FullSize.
			full := testenv.StartMinIO(t, testenv.MinIOOptions{Dir: testenv.Volume(t, storagetest.FullSize*3/2)})
			full.MakeBucket(t, "full")
			return open(t, full, "full", "")
		},
		Denied: func(t *testing.T) error {
			_, err := s3.Open(ctxFor(t), location(t, m.URL("conformance", "")), storage.Credentials{User: m.AccessKey, Password: "not-the-secret-key"})
			return err
		},
		Missing: func(t *testing.T) error {
			_, err := s3.Open(ctxFor(t), location(t, m.URL("no-such-bucket", "")), storage.Credentials{User: m.AccessKey, Password: m.SecretKey})
			return err
		},
		Unreachable: func(t *testing.T) error {
			_, err := s3.Open(ctxFor(t), location(t, "s3://"+testenv.ClosedAddr(t)+"/conformance?tls=false"), storage.Credentials{User: m.AccessKey, Password: m.SecretKey})
			return err
		},
		Secret:       m.SecretKey,
		ReportsUsage: false,
	})
}

// TestCredentialsFromEnvironment checks that a location without keys takes them from the
// standard AWS variables, and that the keys in the settings win over them.
func TestCredentialsFromEnvironment(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	m.MakeBucket(t, "env")
	loc := location(t, m.URL("env", "from/env"))
	for _, v := range []string{"AWS_ACCESS_KEY", "AWS_SECRET_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION"} {
		t.Setenv(v, "")
	}

	t.Setenv("AWS_ACCESS_KEY_ID", m.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", m.SecretKey)
	s, err := s3.Open(ctxFor(t), loc, storage.Credentials{})
	if err != nil {
		t.Fatalf("open with keys from the environment: %v", err)
	}
	defer s.Close()
	storagetest.MustPut(t, s, "obj", []byte("from the environment"))
	if got := storagetest.MustRead(t, s, "obj"); string(got) != "from the environment" {
		t.Fatalf("read back %q", got)
	}

	t.Setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-key")
	_, err = s3.Open(ctxFor(t), loc, storage.Credentials{})
	if !errors.Is(err, storage.ErrPermission) {
		t.Fatalf("open with a wrong secret key in the environment: got %v, want %v", err, storage.ErrPermission)
	}
	s, err = s3.Open(ctxFor(t), loc, storage.Credentials{User: m.AccessKey, Password: m.SecretKey})
	if err != nil {
		t.Fatalf("open with keys in the settings and wrong ones in the environment: %v", err)
	}
	s.Close()

	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	_, err = s3.Open(ctxFor(t), loc, storage.Credentials{})
	if !errors.Is(err, storage.ErrPermission) || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Fatalf("open without any keys: got %v, want %v that names the variables", err, storage.ErrPermission)
	}
}

// TestUserPrecedence checks where the access key comes from: the credentials' user, else
// the user in the URL.
func TestUserPrecedence(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	m.MakeBucket(t, "users")
	withUser := func(user string) storage.Location {
		return location(t, "s3://"+user+"@"+m.Addr()+"/users?tls=false")
	}
	cases := []struct {
		name string
		loc  storage.Location
		cred storage.Credentials
		want error
	}{
		{"user in the URL", withUser(m.AccessKey), storage.Credentials{Password: m.SecretKey}, nil},
		{"credentials replace the URL's user", withUser("someone-else"), storage.Credentials{User: m.AccessKey, Password: m.SecretKey}, nil},
		{"wrong user in the credentials", withUser(m.AccessKey), storage.Credentials{User: "someone-else", Password: m.SecretKey}, storage.ErrPermission},
		{"secret without a user", location(t, m.URL("users", "")), storage.Credentials{Password: m.SecretKey}, storage.ErrPermission},
	}
	for _, c := range cases {
		s, err := s3.Open(ctxFor(t), c.loc, c.cred)
		if err == nil {
			s.Close()
		}
		if (c.want == nil && err != nil) || !errors.Is(err, c.want) {
			t.Fatalf("%s: got %v, want %v", c.name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), m.SecretKey) {
			t.Fatalf("%s: the error shows the secret key: %v", c.name, err)
		}
	}
}

// TestKeys checks how names map to object keys: below the folder of the URL, whatever
// slashes the URL has around it.
func TestKeys(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	m.MakeBucket(t, "keys")
	cases := []struct {
		url  string
		name string
		key  string
	}{
		{m.URL("keys", ""), "obj", "obj"},
		{m.URL("keys", ""), "a/b/c.bin", "a/b/c.bin"},
		{m.URL("keys", "vigil"), "a/b.bin", "vigil/a/b.bin"},
		{m.URL("keys", "deep/er/folder"), "x", "deep/er/folder/x"},
		{"s3://" + m.Addr() + "/keys/trailing/?tls=false", "x", "trailing/x"},
		{"s3://" + m.Addr() + "/keys/with space/ünï?tls=false", "cam 1/日本.mkv", "with space/ünï/cam 1/日本.mkv"},
		{"s3://" + m.Addr() + "/keys/styled?tls=false&path_style=true&region=us-east-1", "x", "styled/x"},
	}
	client := m.Client(t)
	for _, c := range cases {
		s, err := s3.Open(ctxFor(t), location(t, c.url), storage.Credentials{User: m.AccessKey, Password: m.SecretKey})
		if err != nil {
			t.Fatalf("open %s: %v", c.url, err)
		}
		storagetest.MustPut(t, s, c.name, []byte(c.key))
		obj, err := client.GetObject(ctxFor(t), "keys", c.key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatalf("%s, %s: get key %s: %v", c.url, c.name, c.key, err)
		}
		got, err := io.ReadAll(obj)
		obj.Close()
		if err != nil || string(got) != c.key {
			t.Fatalf("%s, %s: key %s holds %q, %v", c.url, c.name, c.key, got, err)
		}
		if err := s.Remove(ctxFor(t), c.name); err != nil {
			t.Fatalf("%s: remove %s: %v", c.url, c.name, err)
		}
		s.Close()
	}
}

// TestListFolders checks that List treats prefixes as folders, both the storage's own and
// the one asked for, with objects written by other tools around them.
func TestListFolders(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	m.MakeBucket(t, "folders")
	client := m.Client(t)
	// MinIO cannot hold an object and a folder of the same name, so there is no "p/a" here.
	for _, key := range []string{"p/a/1", "p/a/b/2", "p/ab/3", "p/a/", "p/empty/", "pq/x", "other/y"} {
		if _, err := client.PutObject(ctxFor(t), "folders", key, strings.NewReader(key), int64(len(key)), minio.PutObjectOptions{}); err != nil {
			t.Fatalf("put key %s: %v", key, err)
		}
	}
	s := open(t, m, "folders", "p")
	cases := []struct {
		prefix string
		want   []string
	}{
		{"", []string{"a/1", "a/b/2", "ab/3"}},
		{"a", []string{"a/1", "a/b/2"}},
		{"a/", []string{"a/1", "a/b/2"}},
		{"a/b", []string{"a/b/2"}},
		{"ab", []string{"ab/3"}},
		{"empty", nil},
		{"q", nil},
	}
	for _, c := range cases {
		if got := storagetest.Names(t, s, c.prefix); !slices.Equal(got, c.want) {
			t.Fatalf("list %q below p: got %q, want %q", c.prefix, got, c.want)
		}
	}
	root := open(t, m, "folders", "")
	if got, want := storagetest.Names(t, root, "p"), []string{"p/a/1", "p/a/b/2", "p/ab/3"}; !slices.Equal(got, want) {
		t.Fatalf("list p at the bucket root: got %q, want %q", got, want)
	}
	if _, err := s.Stat(ctxFor(t), "empty"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("stat of a folder marker: got %v, want %v", err, storage.ErrNotFound)
	}
}

// failingSource fails after `after` bytes, as a disk read error would.
type failingSource struct {
	storage.Source
	after int64
	n     int64
}

var errDisk = errors.New("disk read error")

func (f *failingSource) Read(p []byte) (int, error) {
	if f.n >= f.after {
		return 0, errDisk
	}
	p = p[:min(int64(len(p)), f.after-f.n)]
	n, err := f.Source.Read(p)
	f.n += int64(n)
	return n, err
}

// TestFailedUploadLeavesNothing checks, on the server's disk rather than through its
// listing of uploads, that failed and cancelled multipart uploads are removed.
func TestFailedUploadLeavesNothing(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	m.MakeBucket(t, "failed")
	s := open(t, m, "failed", "x")
	data := storagetest.RandomBytes(5, 70<<20)

	err := s.Put(ctxFor(t), "source-fails", &failingSource{Source: storage.BytesSource(data), after: 40 << 20}, storage.PutOptions{})
	if !errors.Is(err, errDisk) {
		t.Fatalf("put from a failing source: got %v, want the source's error", err)
	}
	// Cancelled from inside the transfer, with parts of it on the server already.
	ctx, cancel := context.WithCancel(ctxFor(t))
	src := storagetest.TripSource(storage.BytesSource(data), 20<<20, cancel)
	if err := s.Put(ctx, "cancelled", src, storage.PutOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled put: got %v, want %v", err, context.Canceled)
	}
	if got := storagetest.Names(t, s, ""); len(got) != 0 {
		t.Fatalf("failed puts left objects: %q", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		uploads := uploadsOnDisk(t, m.Dir)
		if len(uploads) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("failed puts left multipart uploads on the server's disk: %q", uploads)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestPutReleasesBuffers checks that every way a Put ends gives its part buffer back (more
// Puts fail in each way than the storage holds parts in memory, and a Put still goes
// through afterwards), and that Puts one after the other reuse a buffer rather than
// allocating one each.
func TestPutReleasesBuffers(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	m.MakeBucket(t, "release")
	s := open(t, m, "release", "")
	ctx := ctxFor(t)
	small := storagetest.RandomBytes(1, 3<<20)
	large := storagetest.RandomBytes(2, 40<<20) // three parts
	storagetest.MustPut(t, s, "exists", small)
	cancelled := func(data []byte) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		src := storagetest.TripSource(storage.BytesSource(data), int64(len(data))/2, cancel)
		return s.Put(ctx, "cancelled", src, storage.PutOptions{})
	}
	failures := []struct {
		how string
		put func() error
	}{
		{"source fails", func() error {
			return s.Put(ctx, "a", &failingSource{Source: storage.BytesSource(small), after: 1 << 20}, storage.PutOptions{})
		}},
		{"source fails in a later part", func() error {
			return s.Put(ctx, "a", &failingSource{Source: storage.BytesSource(large), after: 20 << 20}, storage.PutOptions{})
		}},
		{"object exists", func() error {
			return s.Put(ctx, "exists", storage.BytesSource(small), storage.PutOptions{NoOverwrite: true})
		}},
		{"cancelled", func() error { return cancelled(small) }},
		{"cancelled in parts", func() error { return cancelled(large) }},
		{"server down", func() error {
			m.Stop()
			defer func() {
				if err := m.Start(); err != nil {
					t.Fatalf("start MinIO again: %v", err)
				}
			}()
			return s.Put(ctx, "a", storage.BytesSource(small), storage.PutOptions{})
		}},
	}
	for _, f := range failures {
		for range 6 {
			if err := f.put(); err == nil {
				t.Fatalf("%s: the put succeeded", f.how)
			}
		}
	}
	// A Put waiting for a buffer that was never given back would wait out the deadline.
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := s.Put(waitCtx, "after", storage.BytesSource(small), storage.PutOptions{}); err != nil {
		t.Fatalf("put after the failed ones: %v", err)
	}

	const puts = 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range puts {
		storagetest.MustPut(t, s, fmt.Sprintf("one-by-one/%d", i), small)
	}
	runtime.ReadMemStats(&after)
	if got, most := after.TotalAlloc-before.TotalAlloc, 4*uint64(len(small)); got > most {
		t.Fatalf("%d puts of %d bytes one after the other allocated %d bytes, want at most %d: buffers are not reused",
			puts, len(small), got, most)
	}
}

// uploadsOnDisk lists the folders MinIO keeps the parts of incomplete uploads in.
func uploadsOnDisk(t *testing.T, dir string) []string {
	t.Helper()
	objects, err := os.ReadDir(filepath.Join(dir, ".minio.sys", "multipart"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatalf("read MinIO's multipart folder: %v", err)
	}
	var uploads []string
	for _, o := range objects {
		ids, err := os.ReadDir(filepath.Join(dir, ".minio.sys", "multipart", o.Name()))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("read MinIO's multipart folder: %v", err)
		}
		for _, id := range ids {
			uploads = append(uploads, o.Name()+"/"+id.Name())
		}
	}
	return uploads
}

// TestChecksums checks that objects carry the CRC32C the server verified on the way in,
// and that large ones went up in parts.
func TestChecksums(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	m.MakeBucket(t, "sums")
	s := open(t, m, "sums", "")
	client := m.Client(t)
	cases := []struct {
		name      string
		size      int
		multipart bool
	}{
		{"small", 1000, false},
		{"one-part", 16 << 20, false},
		{"parts", 40<<20 + 1, true},
	}
	for _, c := range cases {
		storagetest.MustPut(t, s, c.name, storagetest.RandomBytes(uint64(c.size), c.size))
		oi, err := client.StatObject(ctxFor(t), "sums", c.name, minio.StatObjectOptions{Checksum: true})
		if err != nil {
			t.Fatalf("stat %s: %v", c.name, err)
		}
		if oi.ChecksumCRC32C == "" {
			t.Fatalf("%s: no CRC32C checksum stored", c.name)
		}
		if multipart := strings.Contains(oi.ETag, "-"); multipart != c.multipart {
			t.Fatalf("%s (%d bytes): ETag %q, want multipart %v", c.name, c.size, oi.ETag, c.multipart)
		}
	}
}

// TestTLSMismatch checks that TLS against a plain HTTP server is a setting to fix, not an
// outage to wait out.
func TestTLSMismatch(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	m.MakeBucket(t, "tls")
	_, err := s3.Open(ctxFor(t), location(t, "s3://"+m.Addr()+"/tls"), storage.Credentials{User: m.AccessKey, Password: m.SecretKey})
	if err == nil || storage.IsTransient(err) || !strings.Contains(err.Error(), "tls=false") {
		t.Fatalf("open a plain HTTP server with TLS: got %v, want a lasting error that suggests tls=false", err)
	}
}

// TestRangeIgnored checks reads from a server that ignores Range headers and always sends
// the whole object, as some S3 look-alikes do.
func TestRangeIgnored(t *testing.T) {
	data := storagetest.RandomBytes(3, 100000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/bkt/" && r.URL.Query().Get("list-type") == "2":
			w.Header().Set("Content-Type", "application/xml")
			io.WriteString(w, `<ListBucketResult><Name>bkt</Name><IsTruncated>false</IsTruncated></ListBucketResult>`)
		case r.URL.Path == "/bkt/obj":
			w.Header().Set("Last-Modified", time.Now().UTC().Format(http.TimeFormat))
			w.Header().Set("ETag", `"0"`)
			w.Write(data)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	s, err := s3.Open(ctxFor(t), location(t, "s3://"+srv.Listener.Addr().String()+"/bkt?tls=false"), storage.Credentials{User: "u", Password: "secret-key"})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer s.Close()
	size := int64(len(data))
	cases := []struct{ off, n int64 }{{0, 0}, {0, 10}, {500, 1000}, {size - 10, 100}, {size + 5, 10}}
	for _, c := range cases {
		got, err := storagetest.Read(ctxFor(t), s, "obj", c.off, c.n)
		want := data[min(c.off, size):]
		if c.n > 0 {
			want = want[:min(c.n, int64(len(want)))]
		}
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("read %d+%d: got %d bytes, %v; want %d", c.off, c.n, len(got), err, len(want))
		}
	}
}

// benchSize is the object size of the benchmarks, the size of a long footage chunk.
const benchSize = 100 << 20

func BenchmarkPut(b *testing.B) {
	m := testenv.StartMinIO(b, testenv.MinIOOptions{})
	m.MakeBucket(b, "bench")
	s, err := s3.Open(context.Background(), location(b, m.URL("bench", "put")), storage.Credentials{User: m.AccessKey, Password: m.SecretKey})
	if err != nil {
		b.Fatalf("open: %v", err)
	}
	defer s.Close()
	src := storage.BytesSource(storagetest.RandomBytes(1, benchSize))
	b.SetBytes(benchSize)
	for b.Loop() {
		if err := src.Rewind(); err != nil {
			b.Fatal(err)
		}
		if err := s.Put(context.Background(), "obj", src, storage.PutOptions{}); err != nil {
			b.Fatalf("put: %v", err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	m := testenv.StartMinIO(b, testenv.MinIOOptions{})
	m.MakeBucket(b, "bench")
	s, err := s3.Open(context.Background(), location(b, m.URL("bench", "open")), storage.Credentials{User: m.AccessKey, Password: m.SecretKey})
	if err != nil {
		b.Fatalf("open: %v", err)
	}
	defer s.Close()
	if err := s.Put(context.Background(), "obj", storage.BytesSource(storagetest.RandomBytes(1, benchSize)), storage.PutOptions{}); err != nil {
		b.Fatalf("put: %v", err)
	}
	b.SetBytes(benchSize)
	for b.Loop() {
		rc, err := s.Open(context.Background(), "obj", 0, 0)
		if err != nil {
			b.Fatalf("open: %v", err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil || n != benchSize {
			b.Fatalf("read %d bytes: %v", n, err)
		}
	}
}
