package archive_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"

	"github.com/vigil-backup/vigil/internal/archive"
	"github.com/vigil-backup/vigil/internal/testenv"
)

// file is an entry with its content, as tests write and expect it.
type file struct {
	archive.Entry
	data []byte
}

func newFile(name string, data []byte, mode fs.FileMode, mtime time.Time) file {
	return file{Entry: archive.Entry{Name: name, Size: int64(len(data)), Mode: mode, ModTime: mtime}, data: data}
}

// sampleFiles covers the shapes of names and contents an archive must keep: empty
// files, nested folders, long and non-ASCII names, modes, sub-second and old times.
func sampleFiles() []file {
	t0 := time.Date(2026, 11, 22, 4, 0, 0, 123456789, time.UTC)
	return []file{
		newFile("empty", nil, 0o644, t0),
		newFile("a.txt", []byte("hello, recorder\n"), 0o600, t0.Add(time.Hour)),
		newFile("sub/dir/deep.bin", randomBytes(2, 100<<10), 0o755, t0.Add(-time.Hour)),
		newFile("sub/empty too", nil, 0o640, t0),
		newFile("names/ünïcödé and spaces.txt", []byte("x"), 0o644, time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC)),
		newFile("names/"+strings.Repeat("long-", 40)+"name", bytes.Repeat([]byte("ab"), 5000), 0o644, t0),
	}
}

func randomBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func newX25519(t testing.TB) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	return id
}

// cheapPassphrase returns a passphrase recipient with a low scrypt cost, so that tests
// that are not about the cost run quickly (2^18 takes seconds under the race detector).
func cheapPassphrase(t testing.TB, pass string) age.Recipient {
	t.Helper()
	r, err := archive.PassphraseRecipient(pass)
	if err != nil {
		t.Fatalf("passphrase recipient: %v", err)
	}
	r.(*age.ScryptRecipient).SetWorkFactor(10)
	return r
}

func passphraseIdentity(t testing.TB, pass string) age.Identity {
	t.Helper()
	id, err := archive.PassphraseIdentity(pass)
	if err != nil {
		t.Fatalf("passphrase identity: %v", err)
	}
	return id
}

// writeArchive returns the archive of files.
func writeArchive(t testing.TB, opts archive.WriterOptions, files []file) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := archive.NewWriter(&buf, opts)
	if err != nil {
		t.Fatalf("new writer: %v", err)
	}
	for _, f := range files {
		if err := w.Add(f.Entry, bytes.NewReader(f.data)); err != nil {
			t.Fatalf("add %s: %v", f.Name, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close writer: %v", err)
	}
	return buf.Bytes()
}

// readArchive reads every entry of an archive; it returns the entries read before the
// first error, and that error (nil at a clean end).
func readArchive(data []byte, opts archive.ReaderOptions) ([]file, error) {
	r, err := archive.NewReader(bytes.NewReader(data), opts)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var files []file
	for {
		e, err := r.Next()
		if err == io.EOF {
			return files, nil
		}
		if err != nil {
			return files, err
		}
		content, err := io.ReadAll(r)
		if err != nil {
			return files, err
		}
		files = append(files, file{Entry: e, data: content})
	}
}

// sameFiles fails the test unless got holds want, in order, with the same content and
// metadata.
func sameFiles(t testing.TB, got, want []file) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d: %v", len(got), len(want), names(got))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Name != w.Name || g.Size != w.Size || g.Mode != w.Mode || !g.ModTime.Equal(w.ModTime) {
			t.Errorf("entry %d: got %+v, want %+v", i, g.Entry, w.Entry)
		}
		if !bytes.Equal(g.data, w.data) {
			t.Errorf("entry %s: content differs (%d bytes, want %d)", w.Name, len(g.data), len(w.data))
		}
	}
}

func names(files []file) []string {
	var ns []string
	for _, f := range files {
		ns = append(ns, f.Name)
	}
	return ns
}

// sameTree fails the test unless dir holds exactly files, with their content, mode and
// time (to mtimePrecision), and nothing else but folders.
func sameTree(t testing.TB, dir string, files []file, mtimePrecision time.Duration) {
	t.Helper()
	got := testenv.Files(t, dir)
	want := names(files)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("files in %s:\n got %q\nwant %q", dir, got, want)
	}
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f.Name))
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("read %s: %v", p, err)
		}
		if !bytes.Equal(data, f.data) {
			t.Errorf("%s: content differs (%d bytes, want %d)", f.Name, len(data), len(f.data))
		}
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != f.Mode {
			t.Errorf("%s: mode %v, want %v", f.Name, fi.Mode(), f.Mode)
		}
		if !fi.ModTime().Truncate(mtimePrecision).Equal(f.ModTime.Truncate(mtimePrecision)) {
			t.Errorf("%s: time %v, want %v", f.Name, fi.ModTime(), f.ModTime)
		}
	}
}

// handMade returns a zstd-compressed tar stream written by build, for archives the
// Writer refuses to make. build may leave the tar stream unfinished.
func handMade(t testing.TB, build func(tw *tar.Writer)) []byte {
	t.Helper()
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	build(tw)
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderCRC(true))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(raw.Bytes(), nil)
}

// must fails the test on an error of a fixture step.
func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantError fails the test unless err is target.
func wantError(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want %v", err, target)
	}
}
