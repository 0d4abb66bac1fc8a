package footage_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/internal/footage"
	"github.com/vigil-backup/vigil/internal/footage/layout"
	"github.com/vigil-backup/vigil/internal/storage/local"
)

// BenchmarkRerun is a backup run that finds nothing new in an archive of 32 series of
// 10-second chunks (VIGIL_BENCH_CHUNKS of them, 20,000 by default), in the Nx layout, to a
// local storage: the cost of finding out that there is nothing to do.
func BenchmarkRerun(b *testing.B) {
	chunks := 20_000
	if s := os.Getenv("VIGIL_BENCH_CHUNKS"); s != "" {
		fmt.Sscan(s, &chunks)
	}
	root, dst := b.TempDir(), b.TempDir()
	nx := layout.NewNx(time.UTC)
	for i := range chunks {
		series, n := i%32, i/32
		c := footage.Chunk{Camera: fmt.Sprintf("cam%02d", series/2), Stream: []footage.Stream{footage.High, footage.Low}[series%2],
			Start: t0.Add(-30 * 24 * time.Hour).Add(time.Duration(n) * 10 * time.Second), Duration: 10 * time.Second}
		p := filepath.Join(root, filepath.FromSlash(nx.Path(c)))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("chunk"), 0o644); err != nil {
			b.Fatal(err)
		}
		if err := os.Chtimes(p, c.End(), c.End()); err != nil {
			b.Fatal(err)
		}
	}
	old := time.Now().Add(-time.Hour)
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			err = os.Chtimes(p, old, old)
		}
		return err
	})
	ctx := context.Background()
	s, err := local.Open(ctx, dst)
	if err != nil {
		b.Fatal(err)
	}
	opts := footage.BackupOptions{Source: root, Layout: nx, ServerID: "bench", Targets: []footage.Target{{Name: "dst", Storage: s}},
		ScanCache: filepath.Join(b.TempDir(), "scan.cache")}
	first, err := footage.Backup(ctx, opts)
	if err != nil || !first.Complete() || first.Targets[0].Copied != chunks {
		b.Fatalf("first run: %+v, %v", first, err)
	}
	for b.Loop() {
		res, err := footage.Backup(ctx, opts)
		if err != nil || !res.Complete() || res.Targets[0].Copied != 0 {
			b.Fatalf("re-run: %+v, %v", res, err)
		}
	}
}
