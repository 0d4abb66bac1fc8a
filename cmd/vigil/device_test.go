package main_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-backup/vigil/internal/testenv"
)

// deviceEnv is a data folder, a settings file with a local storage ("usb") and, when
// remote, an S3 bucket ("bucket"), and PIN files.
type deviceEnv struct {
	t       *testing.T
	env     []string
	usb     string
	secrets []string // what no output may ever show
	pins    map[string]string
}

func newDeviceEnv(t *testing.T, remote bool) *deviceEnv {
	t.Helper()
	e := &deviceEnv{t: t, usb: t.TempDir(), pins: map[string]string{}}
	settings := fmt.Sprintf("storages:\n  - name: usb\n    url: %s\n", e.usb)
	if remote {
		minio := testenv.StartMinIO(t, testenv.MinIOOptions{})
		minio.MakeBucket(t, "devices")
		settings += fmt.Sprintf("  - name: bucket\n    url: %s\n    user: %s\n    password: {file: %s}\n",
			minio.URL("devices", "site"), minio.AccessKey, passwordFile(t, minio.SecretKey))
		e.secrets = append(e.secrets, minio.SecretKey)
	}
	cfg := filepath.Join(t.TempDir(), "vigil.yaml")
	if err := os.WriteFile(cfg, []byte(settings), 0o600); err != nil {
		t.Fatal(err)
	}
	e.env = []string{"VIGIL_CONFIG=" + cfg, "VIGIL_DATA=" + t.TempDir()}
	return e
}

// pin returns a file holding the PIN, remembering the PIN as a secret.
func (e *deviceEnv) pin(p string) string {
	if f, ok := e.pins[p]; ok {
		return f
	}
	e.pins[p] = passwordFile(e.t, p)
	e.secrets = append(e.secrets, p)
	return e.pins[p]
}

// run runs vigil and checks that its output shows no secret and no private key.
func (e *deviceEnv) run(args ...string) result {
	e.t.Helper()
	r := vigil(e.t, e.env, args...)
	for _, s := range append(e.secrets, "AGE-SECRET-KEY") {
		if strings.Contains(r.stdout+r.stderr, s) {
			e.t.Fatalf("vigil %s shows a secret (%.3s…):\n%s%s", strings.Join(args, " "), s, r.stdout, r.stderr)
		}
	}
	return r
}

// fails checks a failure: the exit code, and a last line on stderr that says what is
// wrong; the lines before it are the log's.
func (e *deviceEnv) fails(r result, code int, says string) {
	e.t.Helper()
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	last := lines[len(lines)-1]
	if r.code != code || !strings.HasPrefix(last, "vigil: ") || !strings.Contains(last, says) {
		e.t.Fatalf("exit code %d, want %d, saying %q\nstdout: %s\nstderr: %s", r.code, code, says, r.stdout, r.stderr)
	}
	for _, l := range lines[:len(lines)-1] {
		if !strings.HasPrefix(l, "time=") {
			e.t.Fatalf("stderr has a line that is neither the log's nor the error: %q", l)
		}
	}
}

func (e *deviceEnv) ok(args ...string) string {
	e.t.Helper()
	r := e.run(args...)
	if r.code != 0 {
		e.t.Fatalf("vigil %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

type deviceListing struct {
	Devices []struct {
		ID      string `json:"id"`
		Backups []struct {
			Backup    string `json:"backup"`
			Storage   string `json:"storage"`
			Model     string `json:"model"`
			Firmware  string `json:"firmware"`
			Unchanged bool   `json:"unchanged"`
		} `json:"backups"`
		Errors []string `json:"errors"`
	} `json:"devices"`
	PIN string `json:"pin"`
}

func (e *deviceEnv) list(id string) deviceListing {
	e.t.Helper()
	var l deviceListing
	if err := json.Unmarshal([]byte(e.ok("device", "list", id, "--json")), &l); err != nil {
		e.t.Fatal(err)
	}
	if len(l.Devices) != 1 || len(l.Devices[0].Errors) > 0 {
		e.t.Fatalf("device list %s: %+v", id, l)
	}
	return l
}

// backups are the device's backups on the storage, oldest first.
func (l deviceListing) backups(storage string) []string {
	var out []string
	for _, b := range l.Devices[0].Backups {
		if b.Storage == storage {
			out = append(out, b.Backup)
		}
	}
	return out
}

func (e *deviceEnv) backup(id string) (name string, unchanged bool) {
	e.t.Helper()
	var res struct {
		Backup    string `json:"backup"`
		Unchanged bool   `json:"unchanged"`
	}
	if err := json.Unmarshal([]byte(e.ok("device", "backup", id, "--json")), &res); err != nil || res.Backup == "" {
		e.t.Fatalf("device backup %s: %v %+v", id, err, res)
	}
	return res.Backup, res.Unchanged
}

// TestDeviceCLI backs up an ONVIF camera to a local folder and an S3 bucket six times,
// keeping five, restores the oldest kept one to the camera, which reboots, and exports
// one; then checks a failed backup removes nothing and a wrong PIN is refused.
func TestDeviceCLI(t *testing.T) {
	e := newDeviceEnv(t, true)
	cam := testenv.StartONVIFDevice(t, testenv.DeviceOptions{Config: []byte("<config v=0/>"), Model: "EMU-ONVIF", Firmware: "5.7.3"})
	e.secrets = append(e.secrets, cam.Password)

	e.ok("device", "add", "cam-01", "--name", "Entrance", "--driver", "onvif", "--address", cam.URL(), "--user", cam.User,
		"--password-file", passwordFile(t, cam.Password), "--to", "usb", "--to", "bucket")
	e.fails(e.run("device", "backup", "cam-01"), 1, "set one first")
	e.fails(vigil(t, e.env, "pin", "set", "--pin-file", passwordFile(t, "123456")), 2, "straight run")
	e.ok("pin", "set", "--pin-file", e.pin("482916"))

	var made []string
	for i, cfg := range []string{"v=1", "v=1", "v=2", "v=3", "v=4", "v=5"} {
		cam.SetConfig([]byte("<config " + cfg + "/>"))
		name, unchanged := e.backup("cam-01")
		if unchanged != (i == 1) {
			t.Fatalf("backup %d unchanged = %v", i, unchanged)
		}
		made = append(made, name)
	}
	l := e.list("cam-01")
	for _, st := range []string{"usb", "bucket"} {
		if got := l.backups(st); !slices.Equal(got, made[1:]) {
			t.Fatalf("on %s: %v, want the newest five of %v", st, got, made)
		}
	}
	if b := l.Devices[0].Backups[0]; b.Model != "EMU-ONVIF" || b.Firmware != "5.7.3" {
		t.Fatalf("listing: %+v", b)
	}
	text := e.ok("device", "list")
	if !strings.Contains(text, "Entrance (cam-01)") || !strings.Contains(text, made[2]) || !strings.Contains(text, "unchanged") {
		t.Fatalf("device list:\n%s", text)
	}

	cam.FailFetch(true)
	r := e.run("device", "backup", "cam-01")
	if r.code == 0 {
		t.Fatalf("a backup of a failing camera succeeded:\n%s", r.stdout)
	}
	cam.FailFetch(false)
	if got := e.list("cam-01").backups("usb"); !slices.Equal(got, made[1:]) {
		t.Fatalf("after a failed backup: %v, want %v", got, made[1:])
	}

	// The oldest kept backup holds "v=1"; the camera now runs "v=5".
	out := e.ok("device", "restore", "cam-01", "--backup", made[1], "--pin-file", e.pin("482916"))
	if got := string(cam.Active()); got != "<config v=1/>" || cam.Reboots() != 1 {
		t.Fatalf("after the restore the camera runs %q after %d reboots", got, cam.Reboots())
	}
	if !strings.Contains(out, "answered again") || !strings.Contains(out, "is the one restored") {
		t.Fatalf("restore said:\n%s", out)
	}

	exported := filepath.Join(t.TempDir(), "cam-01.xml")
	e.ok("device", "export", "cam-01", "--backup", made[3], "--pin-file", e.pin("482916"), "--out", exported)
	if got, _ := os.ReadFile(exported); string(got) != "<config v=3/>" {
		t.Fatalf("exported %q", got)
	}
	if fi, _ := os.Stat(exported); fi.Mode().Perm() != 0o600 {
		t.Fatalf("exported with mode %v", fi.Mode())
	}

	e.fails(e.run("device", "restore", "cam-01", "--backup", made[1], "--pin-file", e.pin("999888")), 7, "wrong Super PIN")
	e.fails(e.run("device", "restore", "cam-01", "--backup", "2020-01-01T00-00-00Z", "--pin-file", e.pin("482916")), 5, "no such backup")
	if cam.Reboots() != 1 {
		t.Fatalf("failed restores rebooted the camera")
	}

	// A new machine with the storages only: the key on them is adopted with the old PIN,
	// and the backups restore there.
	e.env[1] = "VIGIL_DATA=" + t.TempDir()
	e.ok("device", "add", "cam-01", "--driver", "onvif", "--address", cam.URL(), "--user", cam.User,
		"--password-file", passwordFile(t, cam.Password), "--to", "bucket")
	e.fails(e.run("pin", "set", "--pin-file", e.pin("730519")), 2, "key of an earlier installation")
	if out := e.ok("pin", "set", "--pin-file", e.pin("482916")); !strings.Contains(out, "adopted") {
		t.Fatalf("pin set on a new machine: %s", out)
	}
	e.ok("device", "restore", "cam-01", "--backup", made[4], "--pin-file", e.pin("482916"))
	if got := string(cam.Active()); got != "<config v=4/>" {
		t.Fatalf("restored on a new machine: the camera runs %q", got)
	}
}

// TestDevicePINStates goes through every state of the Super PIN with an ISAPI device:
// change, reset, the old PIN given again, reset then delete-all.
func TestDevicePINStates(t *testing.T) {
	e := newDeviceEnv(t, false)
	dev := testenv.StartISAPIDevice(t, testenv.DeviceOptions{Config: []byte("isapi config A")})
	e.secrets = append(e.secrets, dev.Password)
	e.ok("device", "add", "door-3", "--driver", "isapi", "--address", dev.URL(), "--user", dev.User,
		"--password-file", passwordFile(t, dev.Password), "--to", "usb", "--reboot-timeout", "30s")
	pin1, pin2, pin3 := e.pin("739154"), e.pin("Gate-2026-north"), e.pin("605871")
	status := func() string {
		var st struct{ State string }
		json.Unmarshal([]byte(e.ok("pin", "status", "--json")), &st)
		return st.State
	}
	if s := status(); s != "none" {
		t.Fatalf("a new installation's PIN state: %s", s)
	}
	e.ok("pin", "set", "--pin-file", pin1)
	b1, _ := e.backup("door-3")

	// Change: the backup made before restores with the new PIN, not the old.
	e.ok("pin", "change", "--old-pin-file", pin1, "--pin-file", pin2)
	export := func(pin string) result {
		out := filepath.Join(t.TempDir(), "cfg")
		r := e.run("device", "export", "door-3", "--backup", b1, "--pin-file", pin, "--out", out)
		if r.code == 0 {
			if got, _ := os.ReadFile(out); string(got) != "isapi config A" {
				t.Fatalf("exported %q", got)
			}
		}
		return r
	}
	e.fails(export(pin1), 7, "wrong Super PIN")
	dev.SetConfig([]byte("isapi config A, edited"))
	e.ok("device", "restore", "door-3", "--backup", b1, "--pin-file", pin2)
	if got := string(dev.Active()); got != "isapi config A" || dev.Reboots() != 1 {
		t.Fatalf("after restoring the old backup with the new PIN the device runs %q after %d reboots", got, dev.Reboots())
	}

	// Reset without the old PIN: backups unreadable, new backups refused...
	out := e.ok("pin", "reset", "--pin-file", pin3)
	if !strings.Contains(out, "refused") || status() != "reset" {
		t.Fatalf("pin reset: %s", out)
	}
	e.fails(export(pin3), 7, "wrong Super PIN")
	e.fails(e.run("device", "backup", "door-3"), 1, "the Super PIN was reset")
	// ...until the old PIN is given again.
	out = e.ok("pin", "reset", "--pin-file", pin2)
	if !strings.Contains(out, "access is restored") || status() != "ready" {
		t.Fatalf("pin reset with the old PIN: %s", out)
	}
	if r := export(pin2); r.code != 0 {
		t.Fatalf("after the old PIN came back: %s", r.stderr)
	}
	b2, _ := e.backup("door-3")

	// Reset, then delete all: the new PIN's key is used from then on.
	e.ok("pin", "reset", "--pin-file", pin3)
	e.fails(e.run("device", "delete-all"), 2, "--yes")
	out = e.ok("device", "delete-all", "--yes")
	if !strings.Contains(out, "new Super PIN's key is in use") || status() != "ready" {
		t.Fatalf("delete-all: %s", out)
	}
	if got := testenv.Files(t, filepath.Join(e.usb, "vigil", "devices")); len(got) != 0 {
		t.Fatalf("left after delete-all: %v", got)
	}
	dev.SetConfig([]byte("isapi config B"))
	b3, _ := e.backup("door-3")
	if b3 == b1 || b3 == b2 {
		t.Fatalf("backup names repeat: %s %s %s", b1, b2, b3)
	}
	e.ok("device", "restore", "door-3", "--backup", b3, "--pin-file", pin3)
	if got := string(dev.Active()); got != "isapi config B" || dev.Reboots() != 2 {
		t.Fatalf("after the restore the device runs %q after %d reboots", got, dev.Reboots())
	}
	e.fails(e.run("device", "restore", "door-3", "--backup", b3, "--pin-file", pin2), 7, "wrong Super PIN")
	// The storage holds the new key only, for a new machine to find.
	if keys := testenv.Files(t, filepath.Join(e.usb, "vigil", "keys")); len(keys) != 1 {
		t.Fatalf("wrapped keys on the storage: %v", keys)
	}
}

// TestDeviceWrongPINsLockOut: after five wrong PINs even the right one waits.
func TestDeviceWrongPINsLockOut(t *testing.T) {
	e := newDeviceEnv(t, false)
	dev := testenv.StartHTTPDevice(t, testenv.DeviceOptions{Config: []byte("a=1\n")})
	e.secrets = append(e.secrets, dev.Password)
	e.ok("device", "add", "panel", "--driver", "http", "--address", dev.URL(), "--user", dev.User,
		"--password-file", passwordFile(t, dev.Password), "--to", e.usb)
	e.ok("pin", "set", "--pin-file", e.pin("Tr0ub4dor"))
	b, _ := e.backup("panel")
	for range 5 {
		r := e.run("device", "restore", "panel", "--backup", b, "--pin-file", e.pin("000111"), "--no-reboot")
		e.fails(r, 7, "wrong Super PIN")
		if !strings.Contains(r.stderr, "event=pin.wrong") {
			t.Fatalf("a wrong PIN is not logged as an event: %s", r.stderr)
		}
	}
	r := e.run("device", "restore", "panel", "--backup", b, "--pin-file", e.pin("Tr0ub4dor"), "--no-reboot")
	e.fails(r, 7, "try again in")
	if !strings.Contains(e.ok("pin", "status"), "5 wrong PINs") {
		t.Fatal("pin status does not count the wrong PINs")
	}
}

// TestDeviceTamperedAndTimeout: a backup altered on the storage is refused before the
// device is touched, and a device that never comes back after its reboot is a timeout.
func TestDeviceTamperedAndTimeout(t *testing.T) {
	e := newDeviceEnv(t, false)
	dev := testenv.StartHTTPDevice(t, testenv.DeviceOptions{Config: []byte("a=1\n"), Reboot: true, NeverComesBack: true, Auth: "digest"})
	e.secrets = append(e.secrets, dev.Password)
	e.ok("device", "add", "panel", "--driver", "http", "--address", dev.URL(), "--reboot-url", dev.RebootURL(), "--auth", "digest",
		"--user", dev.User, "--password-file", passwordFile(t, dev.Password), "--to", "usb", "--reboot-timeout", "3s")
	e.ok("pin", "set", "--pin-file", e.pin("5081937"))
	b, _ := e.backup("panel")

	archive := filepath.Join(e.usb, "vigil", "devices", "panel", b+".tar.zst.age")
	orig, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(orig)
	bad[len(bad)-20] ^= 0x40
	os.WriteFile(archive, bad, 0o600)
	e.fails(e.run("device", "restore", "panel", "--backup", b, "--pin-file", e.pin("5081937")), 1, "altered or damaged")
	if dev.Reboots() != 0 {
		t.Fatal("the device was touched for an altered backup")
	}
	os.WriteFile(archive, orig, 0o600)

	e.fails(e.run("device", "restore", "panel", "--backup", b, "--pin-file", e.pin("5081937")), 1, "did not come back within 3s")
	if dev.Reboots() != 1 {
		t.Fatalf("reboots: %d", dev.Reboots())
	}
}

// TestPINFromTerminal types the PIN at a terminal (script(1) gives vigil one): asked
// twice for a new PIN, and the PIN typed is the one set.
func TestPINFromTerminal(t *testing.T) {
	e := newDeviceEnv(t, false)
	typed := func(input, command string) result {
		t.Helper()
		cmd := exec.Command("script", "-qec", vigilBin+" "+command, "/dev/null")
		cmd.Env = append(os.Environ(), e.env...)
		cmd.Stdin = strings.NewReader(input)
		out, err := cmd.CombinedOutput()
		code := 0
		if err != nil {
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("script: %v", err)
			}
			code = ee.ExitCode()
		}
		return result{stdout: string(out), code: code}
	}
	if r := typed("Typed-PIN-42\nTyped-PIN-43\n", "pin set"); r.code != 2 || !strings.Contains(r.stdout, "the two PINs typed differ") {
		t.Fatalf("two different PINs typed: exit %d\n%s", r.code, r.stdout)
	}
	if r := typed("Typed-PIN-42\nTyped-PIN-42\n", "pin set"); r.code != 0 || !strings.Contains(r.stdout, "New Super PIN: ") || !strings.Contains(r.stdout, "Again: ") {
		t.Fatalf("pin set at a terminal: exit %d\n%s", r.code, r.stdout)
	}
	e.ok("pin", "change", "--old-pin-file", e.pin("Typed-PIN-42"), "--pin-file", e.pin("Filed-PIN-77"))
	// Without a terminal and without a file, vigil says what to give.
	e.fails(e.run("pin", "reset"), 2, "give --pin-file, or run on a terminal")
}
