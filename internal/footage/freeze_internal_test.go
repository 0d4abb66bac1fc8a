package footage

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/internal/storage/mem"
)

// TestFreezeKeepsSummaries: after a run that backed up a folder's every chunk, the scan
// cache keeps a summary of the folder instead of its listing, and the storage's status
// it rests on.
func TestFreezeKeepsSummaries(t *testing.T) {
	root, cache := t.TempDir(), filepath.Join(t.TempDir(), "scan.cache")
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for i := range 3 {
		p := filepath.Join(root, "cam1", "2026-11-01", time.Duration(i).String()+".bin")
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("chunk"), 0o644)
		end := start.Add(time.Duration(i+1) * 10 * time.Second)
		os.Chtimes(p, end, end)
	}
	old := time.Now().Add(-time.Minute)
	for _, d := range []string{"", "cam1", "cam1/2026-11-01"} {
		os.Chtimes(filepath.Join(root, d), old, old)
	}
	s := mem.New()
	res, err := Backup(context.Background(), BackupOptions{Source: root, Layout: seqLayout{start}, ServerID: "srv1",
		Targets: []Target{{Name: "s", Storage: s}}, ScanCache: cache})
	if err != nil || !res.Complete() || res.Targets[0].Copied != 3 {
		t.Fatalf("backup: %+v, %v", res, err)
	}
	c := loadScanCache(cache)
	d := c.Dirs["cam1/2026-11-01"]
	k := Key{"cam1", High}
	if d.Files != nil || len(d.Frozen) != 1 || d.Frozen[0].Key != k || d.Frozen[0].Chunks != 3 || d.Frozen[0].Bytes != 15 ||
		d.Frozen[0].Newest.Name != "2ns.bin" || !time.Unix(0, d.Frozen[0].Last).Equal(start.Add(30*time.Second)) {
		t.Fatalf("the folder in the cache: %+v %#v", d, d.Frozen)
	}
	if c.Sums["s"][k] == "" {
		t.Fatalf("no status sum kept: %+v", c.Sums)
	}
}

// seqLayout names chunks <camera>/<day>/<n>ns.bin, the nth 10-second chunk from start.
type seqLayout struct{ start time.Time }

func (seqLayout) Name() string { return "seq" }

func (l seqLayout) Parse(rel string) (Chunk, bool) {
	parts := strings.Split(rel, "/")
	if len(parts) != 3 {
		return Chunk{}, false
	}
	n, err := time.ParseDuration(strings.TrimSuffix(parts[2], ".bin"))
	if err != nil {
		return Chunk{}, false
	}
	return Chunk{Path: rel, Camera: parts[0], Stream: High, Start: l.start.Add(n * 10 * time.Second), Duration: 10 * time.Second}, true
}

func (l seqLayout) Path(c Chunk) string { return "" }
