package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/internal/footage"
	"github.com/vigil-backup/vigil/internal/testenv"
)

// TestFootageSkip starts one camera's backup to a local disk from a moment in its real
// footage: the backup copies that camera's chunks from then on only, the other camera's
// all, and the status shows the skip time.
func TestFootageSkip(t *testing.T) {
	const chunk = 4 * time.Second
	start := time.Date(2026, 6, 1, 3, 0, 0, 0, time.UTC)
	rec := testenv.Record(t, t.TempDir(), testenv.RecorderOptions{
		Cameras: []string{"cam-a", "cam-b"}, Streams: []string{"hi"}, Chunks: 4, Chunk: chunk, Size: "320x180", Start: start,
	})
	disk := t.TempDir()
	from := start.Add(2 * chunk)

	// Footage left out cannot be had back from the backup: no terminal, no --yes, no skip.
	wantError(t, vigil(t, nil, "footage", "skip", "--to", disk, "--server-id", "site1", "--camera", "cam-a",
		"--from", from.Format(time.RFC3339)), 2, "give --yes to confirm")
	if _, err := os.Stat(filepath.Join(disk, "vigil")); err == nil {
		t.Fatalf("footage skip wrote to the storage without confirmation")
	}

	r := vigil(t, nil, "footage", "skip", "--to", disk, "--server-id", "site1", "--camera", "cam-a", "--quality", "hi",
		"--from", from.Format(time.RFC3339), "--yes")
	if r.code != 0 || !strings.Contains(r.stdout, "cam-a") {
		t.Fatalf("footage skip: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = vigil(t, nil, "footage", "backup", "--source", rec.Root, "--layout", "nx", "--timezone", "UTC",
		"--to", disk, "--server-id", "site1", "--cache-dir", "")
	if r.code != 0 {
		t.Fatalf("footage backup: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var want []string
	for _, c := range rec.Chunks {
		if c.Camera == "cam-b" || !c.Start.Before(from) {
			want = append(want, c.Path)
		}
	}
	slices.Sort(want)
	got := testenv.Files(t, filepath.Join(disk, footage.ServerRoot("site1")))
	got = slices.DeleteFunc(got, func(p string) bool { return strings.HasPrefix(p, ".vigil/") })
	if !slices.Equal(got, want) {
		t.Fatalf("backed up %q, want %q", got, want)
	}

	r = vigil(t, nil, "footage", "status", "--to", disk, "--server-id", "site1", "--json")
	var statuses []footage.Status
	if err := json.Unmarshal([]byte(r.stdout), &statuses); err != nil || r.code != 0 || len(statuses) != 2 {
		t.Fatalf("footage status: %q (%v)", r.stdout, err)
	}
	end := start.Add(4 * chunk)
	for _, st := range statuses {
		wantSkip := time.Time{}
		if st.Camera == "cam-a" {
			wantSkip = from
		}
		if !st.SkipBefore.Equal(wantSkip) || !st.CompleteUntil.Equal(end) {
			t.Fatalf("%s/%s: skip before %v, complete until %v; want %v and %v", st.Camera, st.Stream, st.SkipBefore, st.CompleteUntil, wantSkip, end)
		}
	}
	if !strings.Contains(r.stdout, `"skip_before"`) {
		t.Fatalf("footage status --json lacks skip_before: %s", r.stdout)
	}
	r = vigil(t, nil, "footage", "status", "--to", disk, "--server-id", "site1")
	if r.code != 0 || !strings.Contains(r.stdout, "SKIPPED BEFORE") {
		t.Fatalf("footage status: %+v", r)
	}
}
