package main_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/internal/catalog"
	"github.com/vigil-backup/vigil/internal/testenv"
)

// TestServeRunsMissedDataset: a dataset backup that was due while the daemon was not
// running runs once when it starts; a dataset never seen before owes none.
func TestServeRunsMissedDataset(t *testing.T) {
	dataDir, backups, src := t.TempDir(), t.TempDir(), t.TempDir()
	testenv.WriteTree(t, src, map[string]string{"doors.xml": "<doors/>"})
	ctx := context.Background()
	cat, err := catalog.Open(ctx, filepath.Join(dataDir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	// The daemon last dealt with the Data backup three weeks ago.
	if err := cat.SetLastDue(ctx, "dataset Data", time.Now().Add(-21*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	cat.Close()
	cfg := filepath.Join(t.TempDir(), "vigil.yaml")
	doc := fmt.Sprintf(`server:
  listen: 127.0.0.1:%d
  data_dir: %s
storages:
  - name: disk
    url: %s
datasets:
  - name: Data
    letter: D
    sources: ["dir://%s"]
    storages: [disk]
    schedule: weekly sun 04:00
  - name: Archive
    letter: A
    sources: ["dir://%s"]
    storages: [disk]
    schedule: weekly sun 04:00
`, testenv.FreePort(t), dataDir, backups, src, src)
	if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	// The linger leaves time for a second run, which must not come.
	log := serveUntil(t, cfg, filepath.Join(backups, "vigil", "datasets", "*", "*.json"), time.Second)
	got, _ := filepath.Glob(filepath.Join(backups, "vigil", "datasets", "*", "*.json"))
	if len(got) != 1 || !strings.Contains(got[0], filepath.Join("Data", "D_")) {
		t.Fatalf("backups made: %v\n%s", got, log)
	}
	if !strings.Contains(log, "due while vigil was not running") {
		t.Errorf("the log does not say why the backup ran:\n%s", log)
	}
	// The run is recorded: the next start owes nothing until next Sunday.
	cat, err = catalog.Open(ctx, filepath.Join(dataDir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	last, ok, err := cat.LastDue(ctx, "dataset Data")
	if !ok || err != nil || time.Since(last) > 7*24*time.Hour {
		t.Errorf("last due of Data: %v %v %v", last, ok, err)
	}
	if _, ok, _ := cat.LastDue(ctx, "dataset Archive"); !ok {
		t.Error("the new dataset's schedule start was not recorded")
	}
}

// serveUntil runs vigil serve with the settings file until a file matches pattern (failing
// after a minute), lingers, stops it with SIGTERM and returns its log.
func serveUntil(t *testing.T, cfg, pattern string, linger time.Duration) string {
	t.Helper()
	cmd := exec.Command(vigilBin, "--config", cfg, "serve")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if got, _ := filepath.Glob(pattern); len(got) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing matches %s within a minute\n%s", pattern, stderr.String())
		}
	}
	time.Sleep(linger)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve: %v\n%s", err, stderr.String())
	}
	return stderr.String()
}
