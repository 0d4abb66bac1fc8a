// Package fileconf backs up a configuration file on this machine, such as an access
// control server's: it is read, written back in one atomic step, and a command the
// operator gives (e.g. systemctl restart acs) stands for the device's reboot.
package fileconf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigil-backup/vigil/internal/atomicfile"

	"github.com/vigil-backup/vigil/internal/devconf"
)

// outputTail is how much of a failed command's output its error shows: the end, where the
// reason usually is.
const outputTail = 2 << 10

// commandWaitDelay bounds how long a command's children may hold its output open after it
// has ended or been cancelled, so that a daemon it starts cannot hold up a restore.
const commandWaitDelay = 10 * time.Second

// Driver reads and writes one file.
type Driver struct {
	path    string
	command []string
}

var _ devconf.Driver = (*Driver)(nil)

// New returns a driver for the file at path, an absolute path, and the command that makes
// the file's program take a written-back configuration (none: Reboot returns
// devconf.ErrNoReboot).
func New(path string, restoreCommand []string) (*Driver, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("file: %q is not an absolute path", path)
	}
	if len(restoreCommand) > 0 && restoreCommand[0] == "" {
		return nil, errors.New("file: the restore command has no program")
	}
	return &Driver{path: filepath.Clean(path), command: restoreCommand}, nil
}

// Fetch reads the file, which must be a regular file of at most devconf.MaxConfigSize
// bytes.
func (d *Driver) Fetch(ctx context.Context) (devconf.Config, error) {
	if err := ctx.Err(); err != nil {
		return devconf.Config{}, fmt.Errorf("read %s: %w", d.path, err)
	}
	f, size, err := d.open()
	if err != nil {
		return devconf.Config{}, fmt.Errorf("read %s: %w", d.path, err)
	}
	defer f.Close()
	if size > devconf.MaxConfigSize {
		return devconf.Config{}, fmt.Errorf("read %s: the file is larger than %d bytes", d.path, devconf.MaxConfigSize)
	}
	// The file may grow while it is read: the limit still holds.
	buf := bytes.NewBuffer(make([]byte, 0, size+1))
	_, err = buf.ReadFrom(io.LimitReader(f, devconf.MaxConfigSize+1))
	data := buf.Bytes()
	if err != nil {
		return devconf.Config{}, fmt.Errorf("read %s: %w", d.path, err)
	}
	if len(data) > devconf.MaxConfigSize {
		return devconf.Config{}, fmt.Errorf("read %s: the file is larger than %d bytes", d.path, devconf.MaxConfigSize)
	}
	return devconf.Config{Files: []devconf.File{{Name: filepath.Base(d.path), Data: data}}}, nil
}

// open opens the file for reading, checks that it is a regular file, and returns its size.
func (d *Driver) open() (*os.File, int64, error) {
	f, err := os.Open(d.path)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = errors.New("not a regular file")
	}
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

// Push replaces the file in one step: the configuration is written to a temporary file
// in the same folder, with the original's mode and owner, synced, and renamed over the
// original, and the folder is synced. A reader sees the old file or the new one, never
// a part; a crash leaves one of the two. When the path is a symbolic link, the file it
// leads to is replaced and the link kept.
func (d *Driver) Push(ctx context.Context, cfg devconf.Config) error {
	if len(cfg.Files) != 1 {
		return fmt.Errorf("write %s: the configuration must be one file, not %d", d.path, len(cfg.Files))
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("write %s: %w", d.path, err)
	}
	return writeAtomic(d.path, cfg.Files[0].Data)
}

// writeAtomic replaces the file path leads to; its errors name path.
func writeAtomic(path string, data []byte) error {
	fail := func(err error) error { return fmt.Errorf("write %s: %w", path, err) }
	target, err := filepath.EvalSymlinks(path)
	if errors.Is(err, fs.ErrNotExist) {
		// A file that is gone is written anew; a link to a file that is gone is left
		// for the operator, who knows where it should lead.
		if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return fail(fmt.Errorf("it is a symbolic link to a missing file: %w", err))
		}
		target, err = path, nil
	}
	if err != nil {
		return fail(err)
	}
	orig, err := os.Stat(target)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		orig = nil
	case err != nil:
		return fail(err)
	case !orig.Mode().IsRegular():
		return fail(errors.New("not a regular file"))
	}

	return atomicfile.Write(target, data, func(tmp *os.File) error {
		if orig == nil {
			return nil
		}
		// Owner first: chown clears the set-user-ID and set-group-ID bits that chmod
		// then restores.
		if err := keepOwner(tmp, orig); err != nil {
			return err
		}
		return tmp.Chmod(orig.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky))
	})
}

// Reboot runs the restore command, without a shell, and waits for it to end; ctx ends it
// early. A command that fails is an error that shows the end of its output.
func (d *Driver) Reboot(ctx context.Context) error {
	if len(d.command) == 0 {
		return fmt.Errorf("restart: %w: no restore_command is set", devconf.ErrNoReboot)
	}
	shown := strings.Join(d.command, " ")
	cmd := exec.CommandContext(ctx, d.command[0], d.command[1:]...)
	out := &tail{max: outputTail}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = commandWaitDelay
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("run %s: %w", shown, context.Cause(ctx))
		}
		if s := strings.TrimSpace(string(out.b)); s != "" {
			return fmt.Errorf("run %s: %w; its output ends: %s", shown, err, s)
		}
		return fmt.Errorf("run %s: %w", shown, err)
	}
	return nil
}

// tail keeps the last max bytes written to it. exec.Cmd calls Write from one goroutine at
// a time when Stdout and Stderr are the same tail.
type tail struct {
	b   []byte
	max int
}

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 2*t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

// Ping checks that the file exists, is a regular file, and can be read.
func (d *Driver) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("open %s: %w", d.path, err)
	}
	f, _, err := d.open()
	if err != nil {
		return fmt.Errorf("open %s: %w", d.path, err)
	}
	return f.Close()
}
