package fileconf_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vigil-backup/vigil/internal/devconf"
	"github.com/vigil-backup/vigil/internal/devconf/fileconf"
	"github.com/vigil-backup/vigil/internal/testenv"
)

func open(t *testing.T, path string, command ...string) *fileconf.Driver {
	t.Helper()
	d, err := fileconf.New(path, command)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func write(t *testing.T, path, content string, mode fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}

func config(content string) devconf.Config {
	return devconf.Config{Files: []devconf.File{{Name: "acs.conf", Data: []byte(content)}}}
}

func TestFileFetch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "acs.conf")
	write(t, path, "doors = 12\n", 0o640)
	cfg, err := open(t, path).Fetch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Files) != 1 || cfg.Files[0].Name != "acs.conf" || string(cfg.Files[0].Data) != "doors = 12\n" {
		t.Fatalf("fetch gave %+v", cfg.Files)
	}
}

// TestFilePush: the file is replaced with its mode and owner kept, through a link when
// the path is one, and nothing else is left in the folder.
func TestFilePush(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode fs.FileMode
		link bool
	}{
		{"private", 0o600, false},
		{"group readable", 0o640, false},
		{"setgid", 0o2750, false},
		{"through a link", 0o644, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			real := filepath.Join(dir, "acs.conf")
			write(t, real, "doors = 12\n", tc.mode)
			if os.Geteuid() == 0 {
				// Only root can give a file away, and only then is keeping the
				// owner more than keeping one's own.
				if err := os.Chown(real, 1234, 5678); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(real, tc.mode); err != nil { // chown clears setgid
					t.Fatal(err)
				}
			}
			before := stat(t, real)
			path := real
			if tc.link {
				path = filepath.Join(dir, "current.conf")
				if err := os.Symlink("acs.conf", path); err != nil {
					t.Fatal(err)
				}
			}
			drv := open(t, path)
			if err := drv.Push(t.Context(), config("doors = 14\n")); err != nil {
				t.Fatalf("push: %v", err)
			}
			if b, _ := os.ReadFile(real); string(b) != "doors = 14\n" {
				t.Errorf("the file holds %q", b)
			}
			after := stat(t, real)
			if after.Mode() != before.Mode() {
				t.Errorf("mode %v, want %v", after.Mode(), before.Mode())
			}
			if a, b := after.Sys().(*syscall.Stat_t), before.Sys().(*syscall.Stat_t); a.Uid != b.Uid || a.Gid != b.Gid {
				t.Errorf("owner %d:%d, want %d:%d", a.Uid, a.Gid, b.Uid, b.Gid)
			}
			if a, b := after.Sys().(*syscall.Stat_t), before.Sys().(*syscall.Stat_t); a.Ino == b.Ino {
				t.Error("the file was written in place, not replaced")
			}
			if tc.link {
				if fi, err := os.Lstat(path); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
					t.Errorf("the link was replaced: %v", err)
				}
			}
			want := []string{"acs.conf"}
			if tc.link {
				want = append(want, "current.conf")
			}
			if got := testenv.Files(t, dir); strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("the folder holds %v, want %v", got, want)
			}
		})
	}
}

func stat(t *testing.T, path string) fs.FileInfo {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

// TestFilePushNew: a file that is gone is written anew, readable by its owner alone.
func TestFilePushNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "acs.conf")
	if err := open(t, path).Push(t.Context(), config("doors = 1\n")); err != nil {
		t.Fatal(err)
	}
	if fi := stat(t, path); fi.Mode() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode())
	}
}

// TestFilePushFails: a failed write leaves the original and no temporary file.
func TestFilePushFails(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "acs.conf")
	write(t, path, "doors = 12\n", 0o644)
	if err := os.Symlink(filepath.Join(dir, "gone.conf"), filepath.Join(dir, "dangling.conf")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		path string
		cfg  devconf.Config
	}{
		{"two files", path, devconf.Config{Files: []devconf.File{{Name: "a"}, {Name: "b"}}}},
		{"a folder", dir, config("x")},
		{"a link to a missing file", filepath.Join(dir, "dangling.conf"), config("x")},
	} {
		if err := open(t, tc.path).Push(t.Context(), tc.cfg); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	if b, _ := os.ReadFile(path); string(b) != "doors = 12\n" {
		t.Errorf("the file holds %q", b)
	}
	if got := testenv.Files(t, dir); strings.Join(got, " ") != "acs.conf dangling.conf" {
		t.Errorf("the folder holds %v", got)
	}
}

func TestFileOversize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.conf")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	// Sparse: no 64 MiB written.
	if err := f.Truncate(devconf.MaxConfigSize + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if cfg, err := open(t, path).Fetch(t.Context()); err == nil {
		t.Fatalf("fetch of %d bytes gave %d files and no error", devconf.MaxConfigSize+1, len(cfg.Files))
	}
}

func TestFileReboot(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "restarted")
	for _, tc := range []struct {
		name    string
		command []string
		want    error  // devconf's kind, or nil
		output  string // what the error must show
	}{
		{"runs", []string{"touch", marker}, nil, ""},
		{"fails", []string{"sh", "-c", "echo starting; echo 'acs: bad config line 3' >&2; exit 3"}, errAny, "acs: bad config line 3"},
		{"no shell", []string{"echo", "$HOME;", "exit", "1"}, nil, ""},
		{"missing program", []string{filepath.Join(dir, "nothere")}, errAny, ""},
		{"none", nil, devconf.ErrNoReboot, ""},
	} {
		err := open(t, filepath.Join(dir, "acs.conf"), tc.command...).Reboot(t.Context())
		switch {
		case tc.want == nil && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want == errAny && err == nil, tc.want != nil && tc.want != errAny && !errors.Is(err, tc.want):
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		case err != nil && !strings.Contains(err.Error(), tc.output):
			t.Errorf("%s: %v, want the output %q in it", tc.name, err, tc.output)
		}
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("the command did not run: %v", err)
	}
}

var errAny = errors.New("any error")

// TestFileRebootCancelled: a command that does not end is ended with the context.
func TestFileRebootCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	drv := open(t, filepath.Join(t.TempDir(), "acs.conf"), "sleep", "600")
	done := make(chan error)
	go func() { done <- drv.Reboot(ctx) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("reboot cancelled: %v, want context.Canceled", err)
	}
}

func TestFilePing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "acs.conf")
	drv := open(t, path)
	if err := drv.Ping(t.Context()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ping of a missing file: %v", err)
	}
	write(t, path, "x", 0o600)
	if err := drv.Ping(t.Context()); err != nil {
		t.Errorf("ping: %v", err)
	}
	if err := open(t, dir).Ping(t.Context()); err == nil {
		t.Error("ping of a folder: no error")
	}
}
