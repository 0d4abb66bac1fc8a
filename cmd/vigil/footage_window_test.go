package main_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/internal/testenv"
)

// TestFootageBackupNotNow: outside its window, or in an hour the bandwidth grid keeps
// free of backups, a run copies nothing, exits 0 and says when it can start.
func TestFootageBackupNotNow(t *testing.T) {
	rec := testenv.Record(t, t.TempDir(), testenv.RecorderOptions{Cameras: []string{"cam-a"}, Chunks: 2, Size: "320x180"})
	// A day three days away is never today, whatever the time.
	day := time.Now().UTC().Add(72 * time.Hour).Format("Mon")
	cases := []struct {
		name string
		flag []string
	}{
		{"outside the window", []string{"--window", day + " 03:00-04:00"}},
		{"grid off now", []string{"--bwlimit-grid", "daily 00-24 off; " + day + " 03-04 unlimited"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dest := t.TempDir()
			args := append([]string{"footage", "backup", "--source", rec.Root, "--layout", "nx", "--timezone", "UTC", "--to", dest, "--server-id", "site1"}, c.flag...)
			r := vigil(t, nil, args...)
			if r.code != 0 || !strings.Contains(r.stdout, "Nothing copied") || !strings.Contains(r.stdout, "the next backup can start at ") {
				t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
			}
			if n := countChunks(filepath.Join(dest, "vigil")); n != 0 {
				t.Fatalf("%d chunks copied outside the allowed time", n)
			}
		})
	}
	r := vigil(t, nil, "footage", "backup", "--source", rec.Root, "--to", t.TempDir(), "--bwlimit", "1MB", "--bwlimit-grid", "daily 00-24 unlimited")
	wantError(t, r, 2, "bwlimit")
}
