package dataset_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/vigil-backup/vigil/internal/dataset"
	"github.com/vigil-backup/vigil/internal/storage"
	"github.com/vigil-backup/vigil/internal/testenv"
)

type entry struct {
	name     string
	typ      byte
	body     string
	linkname string
	size     int64 // if not len(body)
}

// putCompressed stores a hand-made archive of entries, and a label that fits it, as backup
// id: what a damaged or hostile storage could hold.
func putCompressed(t *testing.T, st storage.Storage, id string, entries []entry, files int, bytesOfFiles int64) {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := zstd.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		size := int64(len(e.body))
		if e.size > 0 {
			size = e.size
		}
		if typ != tar.TypeReg {
			size = 0
		}
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: typ, Size: size, Mode: 0o644, Linkname: e.linkname, ModTime: time.Now()}); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			if e.size > 0 {
				// A bomb: zeros compress to almost nothing.
				zero := make([]byte, 1<<20)
				for n := e.size; n > 0; n -= int64(len(zero)) {
					if _, err := tw.Write(zero[:min(n, int64(len(zero)))]); err != nil {
						t.Fatal(err)
					}
				}
			} else if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	tw.Close()
	zw.Close()
	sum := sha256.Sum256(buf.Bytes())
	archiveName := id + ".tar.zst"
	label, _ := json.Marshal(dataset.Label{Version: 1, ID: dataset.ID(id), Dataset: "Data", Kind: dataset.Full,
		Format: dataset.Compressed, Archive: archiveName, Size: int64(buf.Len()), SHA256: hex.EncodeToString(sum[:]),
		Files: files, Bytes: bytesOfFiles, Manifest: 4096})
	ctx := context.Background()
	if err := st.Put(ctx, "vigil/datasets/Data/"+archiveName, storage.BytesSource(buf.Bytes()), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := st.Put(ctx, "vigil/datasets/Data/"+id+".json", storage.BytesSource(label), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

func manifestOf(files map[string]string) string {
	m := dataset.Manifest{Version: 1, ID: "D_2026_11_22_04_00_00", Dataset: "Data", Kind: dataset.Full, Format: dataset.Compressed}
	for p, body := range files {
		sum := sha256.Sum256([]byte(body))
		m.Files = append(m.Files, dataset.FileRecord{Path: p, Size: int64(len(body)), Mode: 0o644, SHA256: hex.EncodeToString(sum[:])})
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// TestHostileArchives: archives that would write outside the target, or fill the disk,
// are refused and leave nothing behind, inside the target or out of it.
func TestHostileArchives(t *testing.T) {
	const id = "D_2026_11_22_04_00_00"
	for _, tc := range []struct {
		name    string
		entries []entry
		files   int
		bytes   int64
	}{
		{"dot-dot", []entry{{name: "../evil", body: "x"}, {name: "MANIFEST.json", body: manifestOf(map[string]string{"../evil": "x"})}}, 1, 1},
		{"nested dot-dot", []entry{{name: "a/../../evil", body: "x"}}, 1, 1},
		{"absolute", []entry{{name: "/tmp/evil", body: "x"}}, 1, 1},
		{"symlink out", []entry{{name: "a/link", typ: tar.TypeSymlink, linkname: "/etc"}, {name: "a/link/passwd", body: "x"}}, 1, 1},
		{"hard link", []entry{{name: "a/hard", typ: tar.TypeLink, linkname: "/etc/passwd"}}, 1, 1},
		{"bomb", []entry{{name: "a/zeros", size: 64 << 20}}, 1, 1 << 20},
		{"not in manifest", []entry{{name: "a/x", body: "x"}, {name: "a/y", body: "y"}, {name: "MANIFEST.json", body: manifestOf(map[string]string{"a/x": "x"})}}, 2, 2},
		{"no manifest", []entry{{name: "a/x", body: "x"}}, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st, _ := openLocal(t)
			putCompressed(t, st, id, tc.entries, tc.files, tc.bytes)
			l, err := dataset.List(ctx, st, "vigil/datasets")
			if err != nil || len(l.Backups) != 1 {
				t.Fatalf("List: %+v, %v", l, err)
			}
			parent := t.TempDir()
			target := filepath.Join(parent, "in", "target")
			_, err = dataset.Restore(ctx, st, l, l.Backups[0], dataset.RestoreOptions{Target: target})
			if err == nil {
				t.Fatal("restored")
			}
			t.Logf("refused: %v", err)
			var left []string
			filepath.WalkDir(parent, func(p string, d fs.DirEntry, err error) error {
				if p != parent && !d.IsDir() {
					left = append(left, p)
				}
				return nil
			})
			if len(left) > 0 {
				t.Errorf("left %v", left)
			}
			if _, err := os.Stat(filepath.Join(parent, "in", "evil")); err == nil {
				t.Error("wrote outside the target")
			}
			res := dataset.Verify(ctx, st, l, l.Backups, nil, nil)
			if len(res) != 1 || len(res[0].Problems) == 0 {
				t.Errorf("verify found nothing wrong: %+v", res)
			}
		})
	}
}

// TestHostileManifest: a separate-files backup whose manifest names a path out of the
// target is unreadable, so it is neither listed as a backup nor restored.
func TestHostileManifest(t *testing.T) {
	ctx := context.Background()
	st, _ := openLocal(t)
	m := strings.Replace(manifestOf(map[string]string{"../../evil": "x"}), `"compressed"`, `"separate"`, 1)
	if err := st.Put(ctx, "vigil/datasets/Data/D_2026_11_22_04_00_00/MANIFEST.json", storage.BytesSource([]byte(m)), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	l, err := dataset.List(ctx, st, "vigil/datasets")
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Backups) != 0 || len(l.Unreadable) != 1 || !strings.Contains(l.Unreadable[0].Error(), "not allowed") {
		t.Errorf("listed %+v", l)
	}
}

// TestCorruption: a flipped byte, a truncated file and a missing chain link are each
// reported by backup and file name.
func TestCorruption(t *testing.T) {
	for _, format := range []dataset.Format{dataset.Separate, dataset.Compressed} {
		t.Run(string(format), func(t *testing.T) {
			ctx := context.Background()
			st, root := openLocal(t)
			src := t.TempDir()
			clk := newClock()
			stateDir := t.TempDir()
			var ids []dataset.ID
			for i, body := range []string{"first", "second", "third"} {
				testenv.WriteTree(t, src, map[string]string{"f.dat": strings.Repeat(body, 1000), "g.dat": strings.Repeat("g", 5000+i)})
				kind := dataset.Incremental
				if i == 0 {
					kind = dataset.Full
				}
				res, err := dataset.Backup(ctx, dataset.Options{Name: "Data", Letter: 'D', Sources: dirSource(t, src),
					Format: format, Kind: kind, Targets: []dataset.Target{{Name: "l", Storage: st}},
					StateDir: stateDir, Now: clk.now, Location: time.UTC})
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, res.ID)
			}
			dir := filepath.Join(root, "vigil", "datasets", "Data")
			base := "dir-" + filepath.Base(src)
			switch format {
			case dataset.Separate:
				flip(t, filepath.Join(dir, string(ids[2]), base, "f.dat"))
				truncate(t, filepath.Join(dir, string(ids[2]), base, "g.dat"))
			case dataset.Compressed:
				flip(t, filepath.Join(dir, string(ids[2])+".tar.zst"))
			}
			// The parent of ids[2] is ids[1]; without it ids[2] has no chain.
			if format == dataset.Separate {
				os.RemoveAll(filepath.Join(dir, string(ids[1])))
			} else {
				os.Remove(filepath.Join(dir, string(ids[1])+".tar.zst"))
				os.Remove(filepath.Join(dir, string(ids[1])+".json"))
			}
			l, err := dataset.List(ctx, st, "vigil/datasets/Data")
			if err != nil {
				t.Fatal(err)
			}
			var report []string
			for _, r := range dataset.Verify(ctx, st, l, l.Backups, nil, nil) {
				for _, p := range r.Problems {
					report = append(report, p.Error())
				}
			}
			all := strings.Join(report, "\n")
			t.Logf("verify:\n%s", all)
			wants := []string{string(ids[2]) + ": backup " + string(ids[2]) + " needs " + string(ids[1])}
			if format == dataset.Separate {
				wants = append(wants, string(ids[2])+": "+base+"/f.dat: SHA-256", string(ids[2])+": "+base+"/g.dat: 10 bytes")
			} else {
				wants = append(wants, "SHA-256 its label gives")
			}
			for _, w := range wants {
				if !strings.Contains(all, w) {
					t.Errorf("verify does not report %q", w)
				}
			}
			if strings.Contains(all, string(ids[0])) {
				t.Errorf("verify reports the good backup %s", ids[0])
			}
			b, _ := l.Find(ids[2])
			if _, err := dataset.Restore(ctx, st, l, b, dataset.RestoreOptions{Target: filepath.Join(t.TempDir(), "r")}); !errors.Is(err, dataset.ErrBrokenChain) {
				t.Errorf("restore without the chain: %v", err)
			}
		})
	}
}

func flip(t *testing.T, p string) {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x40
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func truncate(t *testing.T, p string) {
	t.Helper()
	if err := os.Truncate(p, 10); err != nil {
		t.Fatal(err)
	}
}
