package archive_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"

	"github.com/vigil-backup/vigil/internal/archive"
	"github.com/vigil-backup/vigil/internal/storage"
	"github.com/vigil-backup/vigil/internal/testenv"
)

func TestRoundTrip(t *testing.T) {
	x1, x2 := newX25519(t), newX25519(t)
	pq, err := age.GenerateHybridIdentity()
	must(t, err)
	tests := []struct {
		name       string
		recipients []age.Recipient
		identities []age.Identity
		opts       archive.WriterOptions
	}{
		{name: "plain"},
		{name: "plain, fastest, one goroutine", opts: archive.WriterOptions{Level: zstd.SpeedFastest, Concurrency: 1}},
		{name: "plain, best", opts: archive.WriterOptions{Level: zstd.SpeedBestCompression}},
		{
			name:       "passphrase",
			recipients: []age.Recipient{cheapPassphrase(t, "correct horse")},
			identities: []age.Identity{passphraseIdentity(t, "correct horse")},
		},
		{
			name:       "X25519",
			recipients: []age.Recipient{x1.Recipient()},
			identities: []age.Identity{x1},
		},
		{
			name:       "two recipients, the second key",
			recipients: []age.Recipient{x1.Recipient(), x2.Recipient()},
			identities: []age.Identity{newX25519(t), x2},
		},
		{
			name:       "post-quantum",
			recipients: []age.Recipient{pq.Recipient()},
			identities: []age.Identity{pq},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			opts.Recipients = tc.recipients
			files := sampleFiles()
			data := writeArchive(t, opts, files)
			encrypted := bytes.HasPrefix(data, []byte("age-encryption.org/v1\n"))
			if encrypted != (len(tc.recipients) > 0) {
				t.Fatalf("archive encrypted: %v, want %v", encrypted, len(tc.recipients) > 0)
			}
			got, err := readArchive(data, archive.ReaderOptions{Identities: tc.identities})
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			sameFiles(t, got, files)

			dir := filepath.Join(t.TempDir(), "new", "target")
			r, err := archive.NewReader(bytes.NewReader(data), archive.ReaderOptions{Identities: tc.identities})
			must(t, err)
			defer r.Close()
			var seen []string
			err = archive.Extract(context.Background(), r, dir, func(e archive.Entry) error {
				seen = append(seen, e.Name)
				return nil
			})
			if err != nil {
				t.Fatalf("extract: %v", err)
			}
			if strings.Join(seen, "|") != strings.Join(names(files), "|") {
				t.Errorf("fn saw %q, want %q", seen, names(files))
			}
			sameTree(t, dir, files, time.Nanosecond)
			fi, err := os.Stat(filepath.Join(dir, "sub"))
			must(t, err)
			if fi.Mode().Perm() != 0o700 {
				t.Errorf("new folder has mode %v, want 0700", fi.Mode().Perm())
			}
		})
	}
}

func TestNoEntries(t *testing.T) {
	id := newX25519(t)
	for _, recipients := range [][]age.Recipient{nil, {id.Recipient()}} {
		data := writeArchive(t, archive.WriterOptions{Recipients: recipients}, nil)
		got, err := readArchive(data, archive.ReaderOptions{Identities: []age.Identity{id}})
		if err != nil || len(got) != 0 {
			t.Fatalf("read an archive of no entries: %v, %d entries", err, len(got))
		}
	}
}

func TestLargeEntry(t *testing.T) {
	size := 50 << 20
	if testing.Short() || raceDetector {
		size = 20 << 20 // still several compression jobs running at once
	}
	// Half random, half repetitive: both the raw and the compressed paths of zstd.
	content := append(randomBytes(3, size/2), bytes.Repeat([]byte("vigil backup "), size/2/13+1)[:size-size/2]...)
	id := newX25519(t)
	for _, recipients := range [][]age.Recipient{nil, {id.Recipient()}} {
		var buf bytes.Buffer
		w, err := archive.NewWriter(&buf, archive.WriterOptions{Recipients: recipients})
		must(t, err)
		// A reader that yields one byte at a time at first, then in odd pieces, shakes
		// out assumptions about read sizes.
		src := io.MultiReader(iotest.OneByteReader(bytes.NewReader(content[:1000])), iotest.HalfReader(bytes.NewReader(content[1000:])))
		must(t, w.Add(archive.Entry{Name: "big.bin", Size: int64(size), Mode: 0o644, ModTime: time.Unix(1e9, 0)}, src))
		must(t, w.Close())
		if buf.Len() > size*3/4 {
			t.Errorf("archive of %d bytes for %d bytes of half repetitive content", buf.Len(), size)
		}

		r, err := archive.NewReader(&buf, archive.ReaderOptions{Identities: []age.Identity{id}, MaxEntrySize: int64(size)})
		must(t, err)
		e, err := r.Next()
		must(t, err)
		h := sha256.New()
		n, err := io.Copy(h, r)
		if err != nil || n != int64(size) || e.Size != int64(size) {
			t.Fatalf("read %d bytes (entry says %d), error %v; want %d", n, e.Size, err, size)
		}
		if !bytes.Equal(h.Sum(nil), sha256Sum(content)) {
			t.Fatal("content differs")
		}
		if _, err := r.Next(); err != io.EOF {
			t.Fatalf("after the only entry: %v, want io.EOF", err)
		}
		must(t, r.Close())
	}
}

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

func TestAddRefusesUnsafeNames(t *testing.T) {
	for _, name := range []string{"", "/etc/passwd", "../x", "a/../../x", "a/./b", "a//b", "a/", ".", "a\\b", "a\x00b", "a\nb", "\x7f"} {
		var buf bytes.Buffer
		w, err := archive.NewWriter(&buf, archive.WriterOptions{})
		must(t, err)
		err = w.Add(archive.Entry{Name: name, Size: 1}, strings.NewReader("x"))
		wantError(t, err, archive.ErrUnsafe)
		if !strings.Contains(err.Error(), fmt.Sprintf("%q", name)) {
			t.Errorf("error %q does not name the entry %q", err, name)
		}
		// The refusal wrote nothing: the Writer goes on.
		ok := newFile("ok", []byte("fine"), 0o644, time.Unix(1, 0))
		must(t, w.Add(ok.Entry, bytes.NewReader(ok.data)))
		must(t, w.Close())
		got, err := readArchive(buf.Bytes(), archive.ReaderOptions{})
		must(t, err)
		sameFiles(t, got, []file{ok})
	}
}

func TestAddWrongLength(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    string
	}{
		{"shorter", "abc", "3 bytes, 5 were announced"},
		{"longer", "abcdefg", "more than the 5 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, err := archive.NewWriter(io.Discard, archive.WriterOptions{})
			must(t, err)
			err = w.Add(archive.Entry{Name: "dir/log.txt", Size: 5, Mode: 0o644}, strings.NewReader(tc.content))
			if err == nil || !strings.Contains(err.Error(), "dir/log.txt") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error naming dir/log.txt and saying %q", err, tc.want)
			}
			// The archive is incomplete: the Writer refuses to go on or to finish it.
			if err2 := w.Add(archive.Entry{Name: "next", Size: 0}, strings.NewReader("")); err2 == nil {
				t.Error("Add after a failed Add succeeded")
			}
			if err2 := w.Close(); err2 == nil {
				t.Error("Close after a failed Add succeeded")
			}
		})
	}
}

func TestAddReaderError(t *testing.T) {
	w, err := archive.NewWriter(io.Discard, archive.WriterOptions{})
	must(t, err)
	boom := errors.New("disk read error")
	err = w.Add(archive.Entry{Name: "f", Size: 10}, iotest.ErrReader(boom))
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "add f") {
		t.Fatalf("got %v, want the reader's error naming f", err)
	}
}

func TestNewWriterOptions(t *testing.T) {
	var buf bytes.Buffer
	if _, err := archive.NewWriter(&buf, archive.WriterOptions{Level: 99}); err == nil {
		t.Error("level 99 accepted")
	}
	x := newX25519(t)
	mixed := []age.Recipient{cheapPassphrase(t, "p"), x.Recipient()}
	if _, err := archive.NewWriter(&buf, archive.WriterOptions{Recipients: mixed}); err == nil {
		t.Error("a passphrase mixed with a key accepted")
	}
	if buf.Len() != 0 {
		t.Errorf("refused options wrote %d bytes", buf.Len())
	}
}

// TestCommonTools restores archives with the tools an operator has when Vigil is gone,
// and reads archives those tools made.
func TestCommonTools(t *testing.T) {
	tarBin := testenv.Binary(t, "tar")
	zstdBin := testenv.Binary(t, "zstd")
	files := sampleFiles()

	run := func(t *testing.T, stdin, stdout string, name string, args ...string) {
		t.Helper()
		cmd := exec.Command(name, args...)
		if stdin != "" {
			f, err := os.Open(stdin)
			must(t, err)
			defer f.Close()
			cmd.Stdin = f
		}
		var out bytes.Buffer
		cmd.Stderr = &out
		if stdout != "" {
			f, err := os.Create(stdout)
			must(t, err)
			defer f.Close()
			cmd.Stdout = f
		} else {
			cmd.Stdout = &out
		}
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
		}
	}
	// -p keeps the modes as they are in the archive whatever the umask.
	untar := func(t *testing.T, archivePath string, zstdFlag bool) string {
		dir := t.TempDir()
		args := []string{"-x", "-p", "-f", archivePath, "-C", dir}
		if zstdFlag {
			args = append([]string{"--zstd"}, args...)
		}
		run(t, "", "", tarBin, args...)
		return dir
	}

	t.Run("tar --zstd -x", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "backup.tar.zst")
		must(t, os.WriteFile(f, writeArchive(t, archive.WriterOptions{}, files), 0o600))
		sameTree(t, untar(t, f, true), files, time.Second)
	})
	t.Run("zstd -d | tar -x", func(t *testing.T) {
		tmp := t.TempDir()
		f := filepath.Join(tmp, "backup.tar.zst")
		must(t, os.WriteFile(f, writeArchive(t, archive.WriterOptions{}, files), 0o600))
		plainTar := filepath.Join(tmp, "backup.tar")
		run(t, f, plainTar, zstdBin, "-q", "-d")
		sameTree(t, untar(t, plainTar, false), files, time.Second)
	})
	t.Run("age -d | tar --zstd -x", func(t *testing.T) {
		ageBin := testenv.Binary(t, "age")
		tmp := t.TempDir()
		id := newX25519(t)
		key := filepath.Join(tmp, "key.txt")
		must(t, os.WriteFile(key, []byte(id.String()+"\n"), 0o600))
		f := filepath.Join(tmp, "backup.tar.zst.age")
		must(t, os.WriteFile(f, writeArchive(t, archive.WriterOptions{Recipients: []age.Recipient{id.Recipient()}}, files), 0o600))
		decrypted := filepath.Join(tmp, "backup.tar.zst")
		run(t, f, decrypted, ageBin, "-d", "-i", key)
		sameTree(t, untar(t, decrypted, true), files, time.Second)
	})
	t.Run("read what tar --zstd and age made", func(t *testing.T) {
		ageBin := testenv.Binary(t, "age")
		tmp := t.TempDir()
		src := filepath.Join(tmp, "src")
		for _, f := range files {
			p := filepath.Join(src, filepath.FromSlash(f.Name))
			must(t, os.MkdirAll(filepath.Dir(p), 0o755))
			must(t, os.WriteFile(p, f.data, f.Mode))
			must(t, os.Chmod(p, f.Mode))
			must(t, os.Chtimes(p, f.ModTime, f.ModTime))
		}
		made := filepath.Join(tmp, "made.tar.zst")
		// "." makes names like "./sub/dir/deep.bin" and folder entries, as operators' tars do.
		run(t, "", "", tarBin, "--zstd", "--format=posix", "-c", "-f", made, "-C", src, ".")
		id := newX25519(t)
		encrypted := filepath.Join(tmp, "made.tar.zst.age")
		run(t, made, encrypted, ageBin, "-r", id.Recipient().String())
		for _, f := range []string{made, encrypted} {
			data, err := os.ReadFile(f)
			must(t, err)
			r, err := archive.NewReader(bytes.NewReader(data), archive.ReaderOptions{Identities: []age.Identity{id}})
			must(t, err)
			dir := t.TempDir()
			if err := archive.Extract(context.Background(), r, dir, nil); err != nil {
				t.Fatalf("extract %s: %v", filepath.Base(f), err)
			}
			r.Close()
			sameTree(t, dir, files, time.Microsecond)
		}
	})
}

func TestExtractReplacesFiles(t *testing.T) {
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "a.txt"), []byte("old content, longer than the new"), 0o644))
	files := sampleFiles()
	r, err := archive.NewReader(bytes.NewReader(writeArchive(t, archive.WriterOptions{}, files)), archive.ReaderOptions{})
	must(t, err)
	defer r.Close()
	must(t, archive.Extract(context.Background(), r, dir, nil))
	sameTree(t, dir, files, time.Nanosecond)
}

func TestExtractStops(t *testing.T) {
	files := sampleFiles()
	data := writeArchive(t, archive.WriterOptions{}, files)

	t.Run("fn error", func(t *testing.T) {
		dir := t.TempDir()
		r, err := archive.NewReader(bytes.NewReader(data), archive.ReaderOptions{})
		must(t, err)
		defer r.Close()
		stop := errors.New("catalog full")
		err = archive.Extract(context.Background(), r, dir, func(e archive.Entry) error {
			if e.Name == "a.txt" {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || !strings.Contains(err.Error(), "a.txt") {
			t.Fatalf("got %v, want the callback's error naming a.txt", err)
		}
		// The files before stay, and the one whose callback failed too: it is in place.
		sameTree(t, dir, files[:2], time.Nanosecond)
	})
	t.Run("cancelled", func(t *testing.T) {
		dir := t.TempDir()
		r, err := archive.NewReader(bytes.NewReader(data), archive.ReaderOptions{})
		must(t, err)
		defer r.Close()
		ctx, cancel := context.WithCancel(context.Background())
		err = archive.Extract(ctx, r, dir, func(e archive.Entry) error {
			cancel()
			return nil
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
		sameTree(t, dir, files[:1], time.Nanosecond)
	})
	t.Run("not a folder on the way", func(t *testing.T) {
		dir := t.TempDir()
		must(t, os.WriteFile(filepath.Join(dir, "sub"), nil, 0o644))
		r, err := archive.NewReader(bytes.NewReader(data), archive.ReaderOptions{})
		must(t, err)
		defer r.Close()
		err = archive.Extract(context.Background(), r, dir, nil)
		if err == nil || !strings.Contains(err.Error(), "sub/dir/deep.bin") {
			t.Fatalf("got %v, want an error naming sub/dir/deep.bin", err)
		}
		noTemporaries(t, dir)
	})
}

// noTemporaries fails the test if a temporary file of Extract is left under dir.
func noTemporaries(t testing.TB, dir string) {
	t.Helper()
	for _, f := range testenv.Files(t, dir) {
		if storage.IsTemp(path.Base(f)) {
			t.Errorf("temporary file left: %s", f)
		}
	}
}
