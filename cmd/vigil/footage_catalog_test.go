package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/internal/catalog"
	"github.com/vigil-backup/vigil/internal/footage"
	"github.com/vigil-backup/vigil/internal/testenv"
)

// catalogRow is a row of footage status --json without --to.
type catalogRow struct {
	Storage       string    `json:"storage"`
	Camera        string    `json:"camera"`
	Stream        string    `json:"stream"`
	CompleteUntil time.Time `json:"complete_until"`
	Updated       time.Time `json:"updated"`
}

// TestFootageBackupCatalog backs up real footage to a storage of the settings and to one
// given by URL, and checks that the daemon's catalog then holds, per storage, camera and
// stream, the complete-until that each storage's own index gives, and that footage status
// without --to shows it.
func TestFootageBackupCatalog(t *testing.T) {
	rec := testenv.Record(t, t.TempDir(), testenv.RecorderOptions{
		Cameras: []string{"cam-a", "cam-b"}, Chunks: 2, Chunk: 2 * time.Second, Size: "320x180",
	})
	open := rec.StartWriting(t, "cam-a", "hi_quality")
	named, byURL := t.TempDir(), t.TempDir()
	dataDir := t.TempDir()
	// vigil serve makes the catalog; a backup run records into it.
	cat, err := catalog.Open(context.Background(), filepath.Join(dataDir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	cat.Close()
	cfg := writeFile(t, "vigil.yaml", fmt.Sprintf("server:\n  id: site1\n  data_dir: %s\nstorages:\n  - name: disk\n    url: %s\n", dataDir, named))

	backup := func() {
		t.Helper()
		r := vigil(t, nil, "--config", cfg, "footage", "backup", "--source", rec.Root, "--timezone", "UTC",
			"--to", "disk", "--to", byURL, "--cache-dir", "")
		if r.code != 0 || strings.Contains(r.stderr, "catalog") {
			t.Fatalf("footage backup: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
	}
	// check compares the catalog with each storage's own status, and with footage status
	// without --to.
	check := func() {
		t.Helper()
		cat, err := catalog.Open(context.Background(), filepath.Join(dataDir, "catalog.db"))
		if err != nil {
			t.Fatal(err)
		}
		fcs, err := cat.FootageComplete(context.Background(), "site1")
		cat.Close()
		if err != nil {
			t.Fatal(err)
		}
		inCatalog := map[string]time.Time{}
		for _, fc := range fcs {
			inCatalog[fc.Storage+" "+fc.Camera+"/"+fc.Stream] = fc.CompleteUntil
		}
		want := map[string]time.Time{}
		for _, to := range []string{"disk", byURL} {
			r := vigil(t, nil, "--config", cfg, "footage", "status", "--to", to, "--json")
			var sts []footage.Status
			if err := json.Unmarshal([]byte(r.stdout), &sts); err != nil || r.code != 0 || len(sts) != 4 {
				t.Fatalf("footage status --to %s: %q (%v)", to, r.stdout, err)
			}
			for _, st := range sts {
				want[to+" "+st.Camera+"/"+string(st.Stream)] = st.CompleteUntil
			}
		}
		if len(inCatalog) != len(want) {
			t.Fatalf("the catalog holds %v, the storages %v", inCatalog, want)
		}
		for k, u := range want {
			if got, ok := inCatalog[k]; !ok || !got.Equal(u) {
				t.Fatalf("%s: the catalog says complete until %v, the storage %v", k, got, u)
			}
		}
		r := vigil(t, nil, "--config", cfg, "footage", "status", "--json")
		var rows []catalogRow
		if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil || r.code != 0 || len(rows) != len(want) {
			t.Fatalf("footage status without --to: %q (%v)\n%s", r.stdout, err, r.stderr)
		}
		for _, row := range rows {
			if u := want[row.Storage+" "+row.Camera+"/"+row.Stream]; !row.CompleteUntil.Equal(u) || row.Updated.IsZero() {
				t.Fatalf("footage status without --to: %+v, the storage says %v", row, u)
			}
		}
	}
	backup()
	check()
	// The chunk being recorded held cam-a/hi back; once closed and copied, the catalog
	// moves on with the storages.
	open.Close(t)
	backup()
	check()

	r := vigil(t, nil, "--config", cfg, "footage", "status")
	if r.code != 0 || !strings.Contains(r.stdout, "STORAGE") || !strings.Contains(r.stdout, "disk") ||
		!strings.Contains(r.stdout, "System-wide: complete until") || !strings.Contains(r.stdout, "--to") {
		t.Fatalf("footage status without --to: %+v", r)
	}
}

// TestFootageBackupCatalogUnavailable checks that a catalog that cannot be written costs a
// warning, never the backup, and that a data folder that does not exist is not made.
func TestFootageBackupCatalogUnavailable(t *testing.T) {
	rec := smallRecording(t)
	settingsDir := filepath.Join(t.TempDir(), "no-daemon-here")
	cfg := writeFile(t, "vigil.yaml", fmt.Sprintf("server:\n  id: site1\n  data_dir: %s\n", settingsDir))
	backup := func(args ...string) result {
		return vigil(t, nil, append([]string{"--config", cfg, "footage", "backup", "--source", rec.Root, "--timezone", "UTC",
			"--to", t.TempDir(), "--cache-dir", ""}, args...)...)
	}

	// No daemon on this machine: the data folder of the settings does not exist, or has
	// no catalog, and the CLI does not make one.
	r := backup()
	if r.code != 0 || strings.Contains(r.stderr, "catalog") {
		t.Fatalf("footage backup: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(settingsDir); !os.IsNotExist(err) {
		t.Fatalf("the backup made the data folder of the settings: %v", err)
	}
	if err := os.Mkdir(settingsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if r = backup(); r.code != 0 || strings.Contains(r.stderr, "catalog") {
		t.Fatalf("footage backup: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(settingsDir, "catalog.db")); !os.IsNotExist(err) {
		t.Fatalf("the backup made a catalog in the data folder of the settings: %v", err)
	}
	wantError(t, vigil(t, nil, "--config", cfg, "footage", "status"), 2, "footage status needs --to: there is no catalog at "+filepath.Join(settingsDir, "catalog.db"))

	// A data folder that cannot be made (a file is in the way; a CLI user without rights
	// to the daemon's folder is the same to the catalog): a warning, and the backup is
	// done.
	blocker := writeFile(t, "a-file", "")
	r = backup("--data-dir", filepath.Join(blocker, "data"))
	if r.code != 0 || !strings.Contains(r.stderr, "complete-until not recorded in the catalog") || !strings.Contains(r.stderr, "level=WARN") {
		t.Fatalf("footage backup with a data folder that cannot be made: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	// A folder given with --data-dir is made.
	given := filepath.Join(t.TempDir(), "data")
	if r = backup("--data-dir", given); r.code != 0 {
		t.Fatalf("footage backup --data-dir: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = vigil(t, nil, "--config", cfg, "footage", "status", "--data-dir", given, "--json")
	var rows []catalogRow
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil || r.code != 0 || len(rows) != 1 || rows[0].Camera != "cam-a" || rows[0].Stream != "hi" {
		t.Fatalf("footage status --data-dir: %q (%v)\n%s", r.stdout, err, r.stderr)
	}
	if want := rec.Chunks[len(rec.Chunks)-1].End(); !rows[0].CompleteUntil.Equal(want) {
		t.Fatalf("complete until %v, want the end of the last chunk, %v", rows[0].CompleteUntil, want)
	}
}
