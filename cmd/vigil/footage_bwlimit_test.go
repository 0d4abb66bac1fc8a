package main_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/internal/storage"
)

// TestFootageBackupBandwidthChanged starts a backup to a storage of the settings at
// 32 KiB/s, then lifts the limit in the settings and sends SIGHUP: the same run takes the
// new limit and finishes long before the old one would have let it.
func TestFootageBackupBandwidthChanged(t *testing.T) {
	rec := smallArchive(t)
	var total int64
	for _, c := range rec.Chunks {
		total += c.Size
	}
	const slow = 32 << 10
	dest := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "vigil.yaml")
	writeSettings := func(bwlimit string) {
		doc := fmt.Sprintf("server:\n  id: site1\nstorages:\n  - name: disk\n    url: %s\n", dest)
		if bwlimit != "" {
			doc += "    bwlimit: " + bwlimit + "\n"
		}
		if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeSettings(fmt.Sprintf("%dKiB", slow>>10))
	cmd := exec.Command(vigilBin, "--config", cfg, "footage", "backup", "--source", rec.Root, "--layout", "nx", "--timezone", "UTC",
		"--to", "disk", "--json", "--parallel", "1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(stdout)
	// Once the first chunk is through at the slow rate, the limit goes.
	for lines.Scan() {
		var m map[string]any
		if json.Unmarshal(lines.Bytes(), &m) == nil && m["type"] == "progress" && m["copies_done"].(float64) >= 1 {
			break
		}
	}
	writeSettings("")
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for lines.Scan() {
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("backup: %v\n%s", err, stderr.String())
	}
	took := time.Since(start)
	if !strings.Contains(stderr.String(), "bandwidth limit changed") {
		t.Errorf("the log does not tell of the new limit:\n%s", stderr.String())
	}
	atOld := time.Duration(float64(total) / slow * float64(time.Second))
	t.Logf("%d bytes in %v; at the old limit: %v", total, took, atOld)
	if took > atOld/2 {
		t.Errorf("the run took %v: the new limit was not taken (at the old one: %v)", took, atOld)
	}
	checkBackedUp(t, openURL(t, dest, storage.Credentials{}), rec)
}
