package local_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/internal/storage"
	"github.com/vigil-backup/vigil/internal/storage/local"
	"github.com/vigil-backup/vigil/internal/storage/storagetest"
	"github.com/vigil-backup/vigil/internal/testenv"
)

func open(t *testing.T, root string) *local.Storage {
	t.Helper()
	s, err := local.Open(context.Background(), root)
	if err != nil {
		t.Fatalf("open %s: %v", root, err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, storagetest.Harness{
		New: func(t *testing.T) storage.Storage { return open(t, t.TempDir()) },
		Debris: func(t *testing.T, s storage.Storage) []string {
			var debris []string
			root := s.(*local.Storage).Root()
			_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
				if err == nil && storage.IsTemp(d.Name()) {
					debris = append(debris, p)
				}
				return nil
			})
			return debris
		},
		MakeDebris: func(t *testing.T, s storage.Storage, prefix string) time.Duration {
			return storagetest.WriteDebris(t, filepath.Join(s.(*local.Storage).Root(), filepath.FromSlash(prefix)))
		},
		Full: func(t *testing.T) storage.Storage {
			return open(t, testenv.Volume(t, storagetest.FullSize))
		},
		Denied: func(t *testing.T) error {
			dir := testenv.Volume(t, 1<<20)
			// Root ignores file modes, so the folder is made unwritable by mounting it read-only.
			testenv.Run(t, "mount", "-o", "remount,ro", dir)
			s := open(t, dir)
			return s.Put(context.Background(), "x", storage.BytesSource([]byte("x")), storage.PutOptions{})
		},
		Missing: func(t *testing.T) error {
			_, err := local.Open(context.Background(), filepath.Join(t.TempDir(), "not-mounted"))
			return err
		},
		ReportsUsage: true,
	})
}

// TestFileSource checks the kernel-copy path that file sources take, including a file that
// shrank after it was opened.
func TestFileSource(t *testing.T) {
	dir := t.TempDir()
	data := storagetest.RandomBytes(1, 20<<20+3)
	path := filepath.Join(dir, "in.bin")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	src, err := storage.FileSource(f)
	if err != nil {
		t.Fatal(err)
	}
	s := open(t, t.TempDir())
	ctx := context.Background()
	if err := s.Put(ctx, "out.bin", src, storage.PutOptions{}); err != nil {
		t.Fatalf("put: %v", err)
	}
	if got := storagetest.MustRead(t, s, "out.bin"); string(got) != string(data) {
		t.Fatalf("copied %d bytes that differ from the %d in the file", len(got), len(data))
	}
	// A retry rewinds and sends it all again.
	if err := src.Rewind(); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "again.bin", src, storage.PutOptions{}); err != nil {
		t.Fatalf("put after rewind: %v", err)
	}
	if fi, err := s.Stat(ctx, "again.bin"); err != nil || fi.Size != int64(len(data)) {
		t.Fatalf("after rewind: %+v, %v", fi, err)
	}
	if err := os.Truncate(path, 1000); err != nil {
		t.Fatal(err)
	}
	if err := src.Rewind(); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "shrunk.bin", src, storage.PutOptions{}); err == nil {
		t.Fatalf("a file that shrank while being stored was taken as complete")
	}
	if _, err := s.Stat(ctx, "shrunk.bin"); err == nil {
		t.Fatalf("a short copy became visible")
	}
}

// TestSpool: a spooled file is hidden until committed, a commit is atomic and keeps an
// existing object with NoOverwrite, and a failed commit leaves nothing behind.
func TestSpool(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, err := local.Open(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	f, err := s.Spool(ctx, "d/archive")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("spooled"); err != nil {
		t.Fatal(err)
	}
	if names := listAll(t, s); len(names) != 0 {
		t.Fatalf("a spooled file is listed: %v", names)
	}
	if err := s.Commit(ctx, f, "d/archive", storage.PutOptions{NoOverwrite: true}); err != nil {
		t.Fatal(err)
	}
	if got := string(storagetest.MustRead(t, s, "d/archive")); got != "spooled" {
		t.Fatalf("committed %q", got)
	}
	g, err := s.Spool(ctx, "d/archive")
	if err != nil {
		t.Fatal(err)
	}
	g.WriteString("second")
	if err := s.Commit(ctx, g, "d/archive", storage.PutOptions{NoOverwrite: true}); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("commit over an existing object: %v", err)
	}
	if got := string(storagetest.MustRead(t, s, "d/archive")); got != "spooled" {
		t.Fatalf("the existing object became %q", got)
	}
	// A file spooled for one name is not committed under another folder's.
	h, _ := s.Spool(ctx, "d/other")
	if err := s.Commit(ctx, h, "e/other", storage.PutOptions{}); err == nil {
		t.Fatal("committed a spooled file into another folder")
	}
	ents, _ := os.ReadDir(filepath.Join(root, "d"))
	if len(ents) != 1 {
		t.Fatalf("left behind: %v", ents)
	}
}

func listAll(t *testing.T, s storage.Storage) []string {
	t.Helper()
	var names []string
	if err := s.List(context.Background(), "", func(fi storage.FileInfo) error {
		names = append(names, fi.Name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return names
}
