package local_test

import (
	"context"
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
