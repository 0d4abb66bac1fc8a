package footage_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/internal/footage"
	"github.com/vigil-backup/vigil/internal/storage"
	"github.com/vigil-backup/vigil/internal/storage/mem"
)

// frozenArchive writes four closed chunks per stream of cam1 and cam2 whose folders were
// last changed a minute ago, and returns the archive, a scan cache path, and a clock
// late enough for the cache to keep every folder.
func frozenArchive(t *testing.T) (root, cache string, now time.Time) {
	t.Helper()
	root, cache = t.TempDir(), filepath.Join(t.TempDir(), "scan.cache")
	// Folders carry the real time, which the cache compares with the run's clock.
	now = time.Now()
	if t0.Add(time.Hour).After(now) {
		now = t0.Add(time.Hour)
	}
	archive(t, root, []string{"cam1", "cam2"}, 4, false, now)
	touchFolders(t, root, now.Add(-time.Minute))
	return root, cache, now
}

func touchFolders(t *testing.T, root string, at time.Time) {
	t.Helper()
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			err = os.Chtimes(p, at, at)
		}
		if err != nil {
			t.Fatal(err)
		}
		return nil
	})
}

func cachedBackup(t *testing.T, root, cache string, now time.Time, targets ...footage.Target) footage.Result {
	t.Helper()
	res, err := footage.Backup(context.Background(), footage.BackupOptions{
		Source: root, Layout: testLayout{}, ServerID: "srv1", Targets: targets, ScanCache: cache, Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	return res
}

// TestBackupFrozenFolders: once a run has backed up every chunk of a folder, re-runs take
// the folder as backed up without listing it, and still see everything that changes what
// must be copied: a late chunk, a new storage, a skip time moved back, an index lost, a
// chunk written again after the camera paused.
func TestBackupFrozenFolders(t *testing.T) {
	hi := footage.Key{Camera: "cam1", Stream: footage.High}
	allUntil := t0.Add(40 * time.Second)
	cases := []struct {
		name string
		// change happens between the first run and the checked one, on the storage s.
		change func(t *testing.T, root string, s *mem.Storage, now time.Time) []footage.Target
		copied int // to s by the checked run
		until  time.Time
	}{
		{"nothing new", func(t *testing.T, root string, s *mem.Storage, now time.Time) []footage.Target { return nil }, 0, allUntil},
		{"a late chunk in a frozen folder", func(t *testing.T, root string, s *mem.Storage, now time.Time) []footage.Target {
			late := footage.Chunk{Camera: "cam1", Stream: footage.High, Start: t0.Add(-time.Hour), Duration: 10 * time.Second}
			// Copied into the archive after the first run, from the camera's own card.
			writeChunk(t, root, testLayout{}.Path(late), []byte("late"), now.Add(500*time.Millisecond))
			os.Chtimes(filepath.Join(root, "cam1/hi"), now.Add(-30*time.Second), now.Add(-30*time.Second))
			return nil
		}, 1, allUntil},
		{"the skip time moved back", func(t *testing.T, root string, s *mem.Storage, now time.Time) []footage.Target {
			skipBefore(t, s, hi, time.Time{})
			return nil
		}, 2, allUntil},
		{"the index lost", func(t *testing.T, root string, s *mem.Storage, now time.Time) []footage.Target {
			for _, n := range storageNames(t, s, footage.ServerRoot("srv1")+"/.vigil/index") {
				s.Remove(context.Background(), n)
			}
			return nil
		}, 0, allUntil},
		{"a new storage", func(t *testing.T, root string, s *mem.Storage, now time.Time) []footage.Target {
			return []footage.Target{{Name: "other", Storage: mem.New()}}
		}, 0, allUntil},
		{"the newest chunk written again", func(t *testing.T, root string, s *mem.Storage, now time.Time) []footage.Target {
			newest := testLayout{}.Path(footage.Chunk{Camera: "cam1", Stream: footage.High, Start: t0.Add(30 * time.Second), Duration: 10 * time.Second})
			appendTo(t, filepath.Join(root, newest), "more frames")
			return nil
		}, 0, t0.Add(30 * time.Second)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root, cache, now := frozenArchive(t)
			s := mem.New()
			if c.name == "the skip time moved back" {
				skipBefore(t, s, hi, t0.Add(20*time.Second))
			}
			first := cachedBackup(t, root, cache, now, footage.Target{Name: "s", Storage: s})
			if !first.Complete() {
				t.Fatalf("first run: %+v", first)
			}
			// The same run again freezes nothing more and copies nothing.
			if again := cachedBackup(t, root, cache, now, footage.Target{Name: "s", Storage: s}); again.Targets[0].Copied != 0 || again.Chunks != first.Chunks {
				t.Fatalf("a re-run: %+v", again)
			}
			if c.name == "nothing new" {
				// The proof that frozen folders are not listed: a chunk removed behind the
				// folder's back (its time put back as it was) goes unseen.
				oldest := filepath.Join(root, testLayout{}.Path(footage.Chunk{Camera: "cam2", Stream: footage.Low, Start: t0, Duration: 10 * time.Second}))
				fi, _ := os.Stat(filepath.Dir(oldest))
				os.Remove(oldest)
				os.Chtimes(filepath.Dir(oldest), fi.ModTime(), fi.ModTime())
				if res := cachedBackup(t, root, cache, now, footage.Target{Name: "s", Storage: s}); res.Chunks != first.Chunks {
					t.Fatalf("a frozen folder was listed again: %d chunks, first %d", res.Chunks, first.Chunks)
				}
				return
			}
			targets := append([]footage.Target{{Name: "s", Storage: s}}, c.change(t, root, s, now)...)
			res := cachedBackup(t, root, cache, now.Add(time.Second), targets...)
			if got := res.Targets[0].Copied; got != c.copied {
				t.Fatalf("copied %d chunks to s, want %d: %+v", got, c.copied, res)
			}
			for _, tr := range res.Targets[1:] {
				if tr.Copied != res.Chunks {
					t.Fatalf("a new storage got %d of %d chunks", tr.Copied, res.Chunks)
				}
			}
			for _, tr := range res.Targets {
				if got := tr.CompleteUntil[hi]; !got.Equal(c.until) {
					t.Fatalf("%s: complete until %v, want %v", tr.Name, got, c.until)
				}
				if got := tr.CompleteUntil[footage.Key{Camera: "cam2", Stream: footage.Low}]; !got.Equal(allUntil) {
					t.Fatalf("%s: cam2/lo complete until %v, want %v", tr.Name, got, allUntil)
				}
			}
			if st := statusOf(t, s)["cam1/hi"]; !st.CompleteUntil.Equal(c.until) {
				t.Fatalf("status: %+v, want complete until %v", st, c.until)
			}
			// What the scan would find without any cache is what the storage has.
			want := sizes(scan(t, root, "", now))
			var have []string
			for p := range want {
				have = append(have, p)
			}
			slices.Sort(have)
			if c.until.Equal(allUntil) && !slices.Equal(stored(t, s), have) {
				t.Fatalf("stored %q, the archive has %q", stored(t, s), have)
			}
		})
	}
}

func storageNames(t *testing.T, s storage.Storage, prefix string) []string {
	t.Helper()
	var out []string
	if err := s.List(context.Background(), prefix, func(fi storage.FileInfo) error {
		out = append(out, fi.Name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}
