package footage_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/internal/footage"
)

func scan(t *testing.T, root, cache string, now time.Time) footage.Scan {
	t.Helper()
	s, err := footage.ScanArchive(context.Background(), root, footage.ScanOptions{Layout: testLayout{}, Cache: cache, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	return s
}

func sizes(s footage.Scan) map[string]int64 {
	out := map[string]int64{}
	for _, f := range append(s.Closed, s.Recording...) {
		out[f.Path] = f.Size
	}
	return out
}

// TestScanCache: a re-run with the cache sees what a scan without it sees, reads changed
// folders again, and re-reads the newest chunk of each series, which grows in place.
func TestScanCache(t *testing.T) {
	root := t.TempDir()
	cache := filepath.Join(t.TempDir(), "scan.gob")
	// Folders written now get the real time, which the cache compares with the scan's
	// clock: that clock must not be behind it.
	now := time.Now()
	if t0.Add(time.Hour).After(now) {
		now = t0.Add(time.Hour)
	}
	archive(t, root, []string{"cam1", "cam2"}, 4, false, now.Add(-time.Hour))
	// Folder times must be older than the quiet time for their listings to be kept.
	old := now.Add(-time.Minute)
	for _, d := range []string{"", "cam1", "cam2", "cam1/hi", "cam1/lo", "cam2/hi", "cam2/lo"} {
		os.Chtimes(filepath.Join(root, d), old, old)
	}
	first := scan(t, root, cache, now)
	if len(first.Closed) != 16 {
		t.Fatalf("first scan: %d closed chunks", len(first.Closed))
	}
	if _, err := os.Stat(cache); err != nil {
		t.Fatalf("no cache written: %v", err)
	}
	second := scan(t, root, cache, now)
	if got, want := sizes(second), sizes(first); len(got) != len(want) {
		t.Fatalf("with the cache: %v, without: %v", got, want)
	}

	// A new chunk in an old folder: the folder's time changes, and it is seen.
	late := footage.Chunk{Camera: "cam1", Stream: footage.High, Start: t0.Add(-time.Hour), Duration: 10 * time.Second}
	writeChunk(t, root, testLayout{}.Path(late), []byte("late"), now.Add(-time.Hour))
	if _, ok := sizes(scan(t, root, cache, now))[testLayout{}.Path(late)]; !ok {
		t.Fatalf("a chunk added to a cached folder was not seen")
	}

	// The newest chunk grows without its folder changing: its new size is read.
	newest := testLayout{}.Path(footage.Chunk{Camera: "cam2", Stream: footage.Low, Start: t0.Add(30 * time.Second), Duration: 10 * time.Second})
	appendTo(t, filepath.Join(root, newest), "more frames")
	os.Chtimes(filepath.Join(root, "cam2/lo"), old, old)
	if got := sizes(scan(t, root, cache, now))[newest]; got != sizes(first)[newest]+int64(len("more frames")) {
		t.Fatalf("the newest chunk's size from the cache: %d", got)
	}

	// A closed chunk written in place (recorders do not) keeps its cached size: the proof
	// that unchanged folders were not read again.
	older := testLayout{}.Path(footage.Chunk{Camera: "cam2", Stream: footage.Low, Start: t0, Duration: 10 * time.Second})
	appendTo(t, filepath.Join(root, older), "x")
	os.Chtimes(filepath.Join(root, "cam2/lo"), old, old)
	if got := sizes(scan(t, root, cache, now))[older]; got != sizes(first)[older] {
		t.Fatalf("an unchanged folder was read again (size %d, cached %d)", got, sizes(first)[older])
	}
	if got := sizes(scan(t, root, "", now))[older]; got == sizes(first)[older] {
		t.Fatalf("without the cache the scan reads stale sizes")
	}
}

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(s)
	f.Close()
}
