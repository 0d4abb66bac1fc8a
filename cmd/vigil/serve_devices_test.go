package main_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/internal/catalog"
	"github.com/vigil-backup/vigil/internal/testenv"
)

// TestServeBacksUpScheduledDevice: vigil serve backs up a device of the settings on its
// schedule, with no PIN given, once a PIN is set; the password never reaches the log.
func TestServeBacksUpScheduledDevice(t *testing.T) {
	dataDir, backups := t.TempDir(), t.TempDir()
	dev := testenv.StartHTTPDevice(t, testenv.DeviceOptions{Config: []byte("relay=1\n")})
	ctx := context.Background()
	cat, err := catalog.Open(ctx, filepath.Join(dataDir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	// Its daily backup was last made three days ago.
	if err := cat.SetLastDue(ctx, "device panel-1", time.Now().Add(-72*time.Hour)); err != nil {
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
datasets: []
devices:
  - id: panel-1
    driver: http
    address: %s
    user: %s
    password: {file: %s}
    schedule: daily 02:30
    storages: [disk]
`, testenv.FreePort(t), dataDir, backups, dev.URL(), dev.User, passwordFile(t, dev.Password))
	if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := vigil(t, nil, "--config", cfg, "pin", "set", "--pin-file", passwordFile(t, "Night-Shift-7")); r.code != 0 {
		t.Fatalf("pin set: %s", r.stderr)
	}
	log := serveUntil(t, cfg, filepath.Join(backups, "vigil", "devices", "panel-1", "*.json"), 0)
	if archives, _ := filepath.Glob(filepath.Join(backups, "vigil", "devices", "panel-1", "*.tar.zst.age")); len(archives) != 1 {
		t.Fatalf("archives: %v", archives)
	}
	if !strings.Contains(log, "device backed up") || strings.Contains(log, dev.Password) {
		t.Fatalf("the log:\n%s", log)
	}
}
