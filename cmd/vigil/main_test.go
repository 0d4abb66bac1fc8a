package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
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

// vigilBin is the binary under test, built once for all tests.
var vigilBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vigil-cmd-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	vigilBin = filepath.Join(dir, "vigil")
	out, err := exec.Command("go", "build", "-race", "-o", vigilBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build vigil: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

// vigil runs the binary with args and extra environment variables, as an operator would.
func vigil(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, vigilBin, args...)
	// No settings file of the machine's may leak into a test: an empty one means defaults.
	empty := filepath.Join(t.TempDir(), "empty.yaml")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd.Env = append(append(os.Environ(), "VIGIL_CONFIG="+empty), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("run vigil %s: %v", strings.Join(args, " "), err)
	}
	return result{stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()}
}

// wantError checks a failure an operator sees: the exit code, one line on stderr that says
// what is wrong, and no secret.
func wantError(t *testing.T, r result, code int, says string, secrets ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
	line := strings.TrimSuffix(r.stderr, "\n")
	if strings.Contains(line, "\n") || !strings.HasPrefix(line, "vigil: ") {
		t.Fatalf("want one line starting with 'vigil: ', got %q", r.stderr)
	}
	if !strings.Contains(line, says) {
		t.Fatalf("the error does not say %q: %q", says, line)
	}
	for _, s := range secrets {
		if s != "" && (strings.Contains(r.stderr, s) || strings.Contains(r.stdout, s)) {
			t.Fatalf("the output shows the secret %q: %q %q", s, r.stdout, r.stderr)
		}
	}
}

func TestVersion(t *testing.T) {
	r := vigil(t, nil, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "vigil dev (go") {
		t.Fatalf("version: %+v", r)
	}
	r = vigil(t, nil, "version", "--json")
	var v map[string]string
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v["version"] != "dev" {
		t.Fatalf("version --json: %q (%v)", r.stdout, err)
	}
}

func TestUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		says string
	}{
		{[]string{"storage", "test"}, "takes 1 argument, got 0"},
		{[]string{"storage", "test", "smb://backup:hunter2@nas/share"}, "password"},
		{[]string{"storage", "test", "ftp://nas/x"}, `unknown kind "ftp"`},
		{[]string{"storage", "test", "/tmp", "--size", "0"}, "--size 0"},
		{[]string{"storage", "test", "/tmp", "--bwlimit", "fast"}, "bandwidth limit"},
		{[]string{"storage", "ls", "/tmp", "../etc"}, "invalid name"},
		{[]string{"storage", "test", "/tmp", "--no-such-flag"}, "unknown flag"},
		{[]string{"--log-level", "loud", "version"}, "--log-level"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			wantError(t, vigil(t, nil, c.args...), 2, c.says, "hunter2")
		})
	}
}

func TestStorageTestLocal(t *testing.T) {
	dir := t.TempDir()
	r := vigil(t, nil, "storage", "test", dir, "--size", "4")
	if r.code != 0 {
		t.Fatalf("storage test: %+v", r)
	}
	for _, want := range []string{"Testing " + dir, "connect", "write", "ranged read", "Latency", "Write       4.0 MiB in", "Read        4.0 MiB in", "Free space  ", "OK"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	left, _ := filepath.Glob(filepath.Join(dir, "vigil", ".probe", "*"))
	if len(left) != 0 {
		t.Fatalf("the test object was left behind: %q", left)
	}
	r = vigil(t, nil, "storage", "test", dir, "--size", "1", "--json")
	var res struct {
		Storage    string  `json:"storage"`
		WriteBps   float64 `json:"write_bytes_per_second"`
		UsageKnown bool    `json:"usage_known"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != 0 || res.Storage != dir || res.WriteBps <= 0 || !res.UsageKnown {
		t.Fatalf("storage test --json: %+v %q (%v)", res, r.stdout, err)
	}
}

func TestStorageTestLocalFailures(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "not-mounted")
	wantError(t, vigil(t, nil, "storage", "test", missing), 5, "does not exist")
	full := testenv.Volume(t, 2<<20)
	wantError(t, vigil(t, nil, "storage", "test", full, "--size", "8"), 6, "no space")
}

func TestStorageLs(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"vigil/a/1.mkv", "vigil/a/2.mkv", "vigil/b/3.mkv", "other/x"} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := vigil(t, nil, "storage", "ls", dir, "vigil")
	if r.code != 0 || r.stdout != "vigil/a/1.mkv\nvigil/a/2.mkv\nvigil/b/3.mkv\n" {
		t.Fatalf("ls: %+v", r)
	}
	r = vigil(t, nil, "storage", "ls", dir, "--json")
	var entries []struct {
		Name string
		Size int64
	}
	if err := json.Unmarshal([]byte(r.stdout), &entries); err != nil || len(entries) != 4 || entries[0].Name != "other/x" || entries[0].Size != 7 {
		t.Fatalf("ls --json: %q (%v)", r.stdout, err)
	}
	r = vigil(t, nil, "storage", "ls", dir, "vigil/b", "-l")
	if r.code != 0 || !strings.Contains(r.stdout, "vigil/b/3.mkv") || !strings.Contains(r.stdout, "1 objects, 13 B") {
		t.Fatalf("ls -l: %+v", r)
	}
}

// TestStorageByName resolves a storage from the settings, with its password from a file.
func TestStorageByName(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "vigil.yaml")
	doc := fmt.Sprintf("storages:\n  - name: backup-disk\n    url: %s\n    bwlimit: 400MiB\n", dir)
	if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	r := vigil(t, nil, "--config", cfg, "storage", "test", "backup-disk", "--size", "2")
	if r.code != 0 || !strings.Contains(r.stdout, "Testing "+dir) {
		t.Fatalf("storage test by name: %+v", r)
	}
	if err := os.WriteFile(cfg, []byte("storages:\n  - name: x\n    url: /tmp\n    bwlimt: 1MB\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = vigil(t, nil, "--config", cfg, "storage", "test", "x")
	if r.code == 0 || !strings.Contains(r.stderr, `unknown field "bwlimt"`) {
		t.Fatalf("a misspelt setting: %+v", r)
	}
}

func TestServe(t *testing.T) {
	dataDir := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "vigil.yaml")
	port := testenv.FreePort(t)
	doc := fmt.Sprintf("server:\n  id: site-1\n  listen: 127.0.0.1:%d\n  data_dir: %s\nstorages:\n  - name: disk\n    url: /srv\n    password: hunter2-literal\n", port, dataDir)
	if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(vigilBin, "--config", cfg, "serve")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	var body string
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("vigil serve did not answer on %s: %v\n%s", base, err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(body, `"status":"ok"`) {
		t.Fatalf("/healthz: %q", body)
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `vigil_build_info{goversion=`) {
		t.Fatalf("/metrics lacks vigil_build_info")
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("vigil serve exited with %v after SIGTERM\n%s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("vigil serve did not stop within 15 s of SIGTERM")
	}
	if strings.Contains(stderr.String(), "hunter2") {
		t.Fatalf("the log shows a password:\n%s", stderr.String())
	}
	// The settings file was recorded in the catalog, with what it changed.
	cat, err := catalog.Open(context.Background(), filepath.Join(dataDir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	rev, err := cat.LatestSettings(context.Background())
	if err != nil || string(rev.Document) != doc || !strings.HasPrefix(rev.Author, "file ") || len(rev.Changes) == 0 {
		t.Fatalf("settings revision: %+v, %v", rev, err)
	}
}
