// Package testenv starts the real servers that tests and benchmarks talk to (Samba, OpenSSH,
// MinIO, ...), each on a free loopback port with its own configuration and data folders, and
// stops them when the test ends.
//
// When VIGIL_INTEGRATION=1 (as in CI), a server that cannot start fails the test; otherwise
// the test is skipped, so that `go test ./...` works on a machine without the servers.
// scripts/install-deps installs them all.
package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// T is what the helpers need of a test. *testing.T and *testing.B satisfy it, and so can a
// benchmark program.
type T interface {
	Helper()
	Cleanup(func())
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Skipf(format string, args ...any)
	TempDir() string
	Name() string
}

// Integration reports whether missing servers are failures (VIGIL_INTEGRATION=1).
func Integration() bool { return os.Getenv("VIGIL_INTEGRATION") == "1" }

// Unavailable ends the test because something it needs cannot run: a failure under
// VIGIL_INTEGRATION=1, a skip otherwise.
func Unavailable(t T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Integration() {
		t.Fatalf("%s (VIGIL_INTEGRATION=1: run scripts/install-deps)", msg)
	}
	t.Skipf("%s (run scripts/install-deps, or set VIGIL_INTEGRATION=1 to make this a failure)", msg)
}

// RepoRoot is the folder holding go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working folder")
		}
		dir = parent
	}
}

// CacheDir is the git-ignored folder where scripts/install-deps keeps the servers it
// builds: <repo>/.cache, or $VIGIL_CACHE.
func CacheDir() string {
	if d := os.Getenv("VIGIL_CACHE"); d != "" {
		return d
	}
	root, err := RepoRoot()
	if err != nil {
		return ".cache"
	}
	return filepath.Join(root, ".cache")
}

// Binary finds a program on PATH, in /usr/sbin (daemons live there and root's PATH may
// lack it), or in CacheDir()/bin. When it is nowhere, the test is Unavailable.
func Binary(t T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", filepath.Join(CacheDir(), "bin")} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	Unavailable(t, "%s is not installed", name)
	return ""
}

// FreePort returns a TCP port on 127.0.0.1 that nothing listened on a moment ago.
func FreePort(t T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ClosedAddr returns a loopback address on which nothing listens, for unreachable-server tests.
func ClosedAddr(t T) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
}

// Daemon is a server process started by a test, in a process group of its own so that
// stopping it also ends the children it forked for each connection (smbd and sshd do).
type Daemon struct {
	name    string
	addr    string
	newCmd  func() *exec.Cmd
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// StartDaemon starts the server newCmd makes and waits until it accepts TCP connections on
// addr. The daemon stops when the test ends. newCmd is called again by Start after Stop.
func StartDaemon(t T, name, addr string, newCmd func() *exec.Cmd) *Daemon {
	t.Helper()
	d := &Daemon{name: name, addr: addr, newCmd: newCmd, logPath: filepath.Join(t.TempDir(), name+".log")}
	t.Cleanup(d.Stop)
	if err := d.Start(); err != nil {
		Unavailable(t, "%v", err)
	}
	return d
}

// Addr is the host:port the daemon listens on.
func (d *Daemon) Addr() string { return d.addr }

// Port is the port the daemon listens on.
func (d *Daemon) Port() int {
	_, p, _ := net.SplitHostPort(d.addr)
	n, _ := strconv.Atoi(p)
	return n
}

// LogPath is the file that holds the daemon's output.
func (d *Daemon) LogPath() string { return d.logPath }

// Start starts the daemon (again) and waits until it is ready.
func (d *Daemon) Start() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd != nil {
		return nil
	}
	logf, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("start %s: %w", d.name, err)
	}
	defer logf.Close()
	cmd := d.newCmd()
	cmd.Stdout, cmd.Stderr = logf, logf
	// newCmd may have set attributes of its own, such as the user to run as.
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid, cmd.SysProcAttr.Pdeathsig = true, syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", d.name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	if err := waitListening(d.addr, done, 30*time.Second); err != nil {
		killGroup(cmd)
		<-done
		return fmt.Errorf("start %s (%s): %w\n%s", d.name, strings.Join(cmd.Args, " "), err, tail(d.logPath, 2000))
	}
	d.cmd, d.done = cmd, done
	return nil
}

// Stop kills the daemon and the children it forked, and waits until it has exited and its
// port is free again.
func (d *Daemon) Stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil {
		return
	}
	killGroup(d.cmd)
	<-d.done
	d.cmd, d.done = nil, nil
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", d.addr, 100*time.Millisecond)
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(20 * time.Millisecond)
	}
}

// Freeze stops the daemon and the children in its process group without ending them:
// connections stay open and nothing answers, the way a hung host looks to a client. thaw
// resumes them.
func (d *Daemon) Freeze() (thaw func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil || d.cmd.Process == nil {
		return func() {}
	}
	pgid := d.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGSTOP)
	return func() { _ = syscall.Kill(-pgid, syscall.SIGCONT) }
}

func killGroup(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	// The negative pid names the whole process group, which Setpgid made the daemon's own.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Process.Kill()
}

func waitListening(addr string, exited <-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-exited:
			return errors.New("exited before listening")
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not listening on %s after %v", addr, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func tail(path string, n int64) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if int64(len(b)) > n {
		b = b[int64(len(b))-n:]
	}
	return string(b)
}

// Run runs a command to set up a test fixture and fails the test, with the command's
// output, when it fails.
func Run(t T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Volume mounts a tmpfs of size bytes on a new temporary folder and unmounts it when the
// test ends, for tests that must fill a disk. Mounting needs root (as in CI).
func Volume(t T, size int64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "volume")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("make volume folder: %v", err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0777", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		Unavailable(t, "mount a %d-byte tmpfs (needs root): %v: %s", size, err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Logf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// User makes sure a local system account exists for servers that log users in (Samba,
// OpenSSH), with no login shell and no password of its own. Making one needs root.
func User(t T, name string) {
	t.Helper()
	if _, err := exec.Command("id", "-u", name).Output(); err == nil {
		return
	}
	if out, err := exec.Command("useradd", "-M", "-s", "/usr/sbin/nologin", name).CombinedOutput(); err != nil {
		// A parallel test may have made it in the meantime.
		if _, err2 := exec.Command("id", "-u", name).Output(); err2 == nil {
			return
		}
		Unavailable(t, "add user %s (needs root): %v: %s", name, err, strings.TrimSpace(string(out)))
	}
}
