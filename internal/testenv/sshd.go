package testenv

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// SSHDOptions changes how StartSSHD sets up the server.
type SSHDOptions struct {
	// User is the account tests log in as; default "vigilsftp". Test binaries running at
	// the same time share an account's password (see StartSSHD), so any name works.
	User string
	// Config holds extra sshd_config lines.
	Config []string
}

// SSHD is a private OpenSSH server on 127.0.0.1 that offers SFTP (internal-sftp), with a
// test account that may log in with a password or with a key.
type SSHD struct {
	User           string // the account to log in as
	Password       string // its password
	KeyFile        string // an unencrypted ed25519 private key the server accepts for User
	KnownHostsFile string // a known_hosts file with the one line "[127.0.0.1]:PORT ssh-ed25519 ..."
	Fingerprint    string // the host key's fingerprint, "SHA256:...", as ssh-keygen -l prints it
	HostKey        string // the host public key, "ssh-ed25519 AAAA..."

	d              *Daemon
	authorizedKeys string // the file of keys the server accepts for User
	mu             sync.Mutex
	cmd            *exec.Cmd // the listener started last
}

// StartSSHD starts an sshd for the test on a free port, with its own host key, and sets up
// the test account. The server stops when the test ends.
func StartSSHD(t T, opts SSHDOptions) *SSHD {
	t.Helper()
	bin := Binary(t, "sshd")
	keygen := Binary(t, "ssh-keygen")
	if opts.User == "" {
		opts.User = "vigilsftp"
	}
	User(t, opts.User)
	dir := t.TempDir()
	// sshd reads the authorized keys as the user, who must be able to walk to them.
	MakeReachable(t, dir)
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil { // the privilege-separation folder
		Unavailable(t, "make /run/sshd: %v", err)
	}

	s := &SSHD{User: opts.User}
	hostKey := filepath.Join(dir, "host_ed25519")
	Run(t, keygen, "-q", "-t", "ed25519", "-N", "", "-C", "vigil-test-host", "-f", hostKey)
	s.KeyFile = filepath.Join(dir, "client_ed25519")
	Run(t, keygen, "-q", "-t", "ed25519", "-N", "", "-C", "vigil-test-client", "-f", s.KeyFile)
	if err := os.Chmod(s.KeyFile, 0o600); err != nil {
		t.Fatalf("protect client key: %v", err)
	}
	authDir := filepath.Join(dir, "authorized")
	clientPub := readFile(t, s.KeyFile+".pub")
	if err := os.Mkdir(authDir, 0o755); err != nil {
		t.Fatalf("make authorized keys folder: %v", err)
	}
	s.authorizedKeys = filepath.Join(authDir, opts.User)
	if err := os.WriteFile(s.authorizedKeys, []byte(clientPub), 0o644); err != nil {
		t.Fatalf("write authorized keys: %v", err)
	}

	hostPub := strings.Fields(readFile(t, hostKey+".pub"))
	if len(hostPub) < 2 {
		t.Fatalf("unexpected host public key %q", hostPub)
	}
	s.HostKey = hostPub[0] + " " + hostPub[1]
	blob, err := base64.StdEncoding.DecodeString(hostPub[1])
	if err != nil {
		t.Fatalf("decode host public key: %v", err)
	}
	sum := sha256.Sum256(blob)
	s.Fingerprint = "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])

	s.Password = sharedPassword(t, opts.User)
	setPassword(t, opts.User, s.Password)

	port := FreePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s.KnownHostsFile = filepath.Join(dir, "known_hosts")
	line := fmt.Sprintf("[127.0.0.1]:%d %s\n", port, s.HostKey)
	if err := os.WriteFile(s.KnownHostsFile, []byte(line), 0o644); err != nil {
		t.Fatalf("write known_hosts: %v", err)
	}

	conf := filepath.Join(dir, "sshd_config")
	lines := []string{
		"Port " + strconv.Itoa(port),
		"ListenAddress 127.0.0.1",
		"HostKey " + hostKey,
		"PidFile " + filepath.Join(dir, "sshd.pid"),
		"AuthorizedKeysFile " + authDir + "/%u",
		"UsePAM no",
		"StrictModes no",
		"PasswordAuthentication yes",
		"PubkeyAuthentication yes",
		"PermitRootLogin no",
		"UseDNS no",
		"PrintMotd no",
		"LogLevel VERBOSE",
		"Subsystem sftp internal-sftp",
	}
	lines = append(lines, opts.Config...)
	// Newer OpenSSH slows down or refuses a source after failed logins, which the tests
	// provoke on purpose; older versions do not know the keyword and refuse the file.
	if configOK(bin, conf, append(lines, "PerSourcePenalties no")) {
		lines = append(lines, "PerSourcePenalties no")
	}
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatalf("write sshd_config: %v", err)
	}
	if out, err := exec.Command(bin, "-t", "-f", conf).CombinedOutput(); err != nil {
		t.Fatalf("sshd refuses its configuration: %v: %s", err, strings.TrimSpace(string(out)))
	}

	s.d = StartDaemon(t, "sshd", addr, func() *exec.Cmd {
		// sshd insists on an absolute path, to run itself again for each connection.
		cmd := exec.Command(bin, "-D", "-e", "-f", conf)
		s.mu.Lock()
		s.cmd = cmd
		s.mu.Unlock()
		return cmd
	})
	// Runs before the Daemon's own cleanup, so the sessions go down with the listener.
	t.Cleanup(s.Stop)
	return s
}

// configOK reports whether sshd accepts the configuration lines.
func configOK(bin, conf string, lines []string) bool {
	probe := conf + ".probe"
	defer os.Remove(probe)
	if err := os.WriteFile(probe, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		return false
	}
	return exec.Command(bin, "-t", "-f", probe).Run() == nil
}

// Addr is the host:port the server listens on.
func (s *SSHD) Addr() string { return s.d.Addr() }

// Port is the port the server listens on.
func (s *SSHD) Port() int { return s.d.Port() }

// LogPath is the file that holds the server's log.
func (s *SSHD) LogPath() string { return s.d.LogPath() }

// Start starts the server again after Stop, on the same port with the same keys.
func (s *SSHD) Start() error { return s.d.Start() }

// Stop kills the server and every session it serves, as a crash or a power cut would.
// sshd puts each connection in a session of its own (setsid), out of reach of the
// Daemon's process-group kill, so the sessions are found through /proc and killed first.
func (s *SSHD) Stop() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		pid := cmd.Process.Pid
		// A stopped listener forks no new session while its children are collected.
		_ = syscall.Kill(pid, syscall.SIGSTOP)
		for _, child := range descendants(pid) {
			_ = syscall.Kill(child, syscall.SIGKILL)
		}
	}
	s.d.Stop()
}

// RefuseKey makes the server refuse logins with KeyFile from now on, as a server that
// limits the connections of a user refuses one more. Connections logged in already carry on.
func (s *SSHD) RefuseKey(t T) {
	t.Helper()
	if err := os.WriteFile(s.authorizedKeys, nil, 0o644); err != nil {
		t.Fatalf("empty authorized keys: %v", err)
	}
}

// acceptedLogin is the line sshd logs for a login (at level VERBOSE it also logs
// "Accepted key ..." lines, which are not logins).
var acceptedLogin = regexp.MustCompile(`Accepted \S+ for \S+ from `)

// Logins counts the logins the server has accepted since it first started.
func (s *SSHD) Logins(t T) int {
	t.Helper()
	b, err := os.ReadFile(s.LogPath())
	if err != nil {
		t.Fatalf("read the server's log: %v", err)
	}
	return len(acceptedLogin.FindAll(b, -1))
}

// Freeze stops the server and every session without ending them, the way a hung host
// looks to a client: connections stay open and nothing answers. thaw resumes them all.
func (s *SSHD) Freeze() (thaw func()) {
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return func() {}
	}
	pids := []int{cmd.Process.Pid}
	_ = syscall.Kill(cmd.Process.Pid, syscall.SIGSTOP)
	for _, child := range descendants(cmd.Process.Pid) {
		_ = syscall.Kill(child, syscall.SIGSTOP)
		pids = append(pids, child)
	}
	return func() {
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGCONT)
		}
	}
}

// descendants lists the processes below pid, read from /proc.
func descendants(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The command name, in parentheses, may hold spaces: the fields start after it.
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(f[1]); err == nil {
			children[ppid] = append(children[ppid], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// Folder makes a fresh, empty folder owned by the test account, for a storage root.
func (s *SSHD) Folder(t T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "sftp-root")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("make folder: %v", err)
	}
	s.Give(t, dir)
	return dir
}

// Give makes dir owned by the test account and reachable by it.
func (s *SSHD) Give(t T, dir string) {
	t.Helper()
	u, err := user.Lookup(s.User)
	if err != nil {
		t.Fatalf("look up %s: %v", s.User, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatalf("give %s to %s: %v", dir, s.User, err)
	}
	MakeReachable(t, dir)
}

// MakeReachable lets every user walk down to dir, by adding search permission to dir and
// to the folders above it inside the system's temporary folder: the per-test folders of
// package testing are private to root (0700).
func MakeReachable(t T, dir string) {
	t.Helper()
	tmp := filepath.Clean(os.TempDir())
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if d != tmp && !strings.HasPrefix(d, tmp+string(filepath.Separator)) {
			return
		}
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatalf("make %s reachable: %v", dir, err)
		}
		if mode := fi.Mode().Perm(); mode&0o011 != 0o011 {
			if err := os.Chmod(d, mode|0o011); err != nil {
				t.Fatalf("make %s reachable: %v", dir, err)
			}
		}
		if d == tmp {
			return
		}
	}
}

func readFile(t T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return string(b)
}

// sharedPassword returns the test account's password, the same for every test binary
// that runs at this time: an account has one password, and test binaries of several
// packages run in parallel. It is kept in a file only root can read.
func sharedPassword(t T, name string) string {
	t.Helper()
	file := filepath.Join(os.TempDir(), "vigil-testenv-"+name+".password")
	for range 3 {
		if b, err := os.ReadFile(file); err == nil && len(b) > 0 {
			return string(b)
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("read the test password: %v", err)
		}
		var raw [18]byte
		if _, err := rand.Read(raw[:]); err != nil {
			t.Fatalf("make a password: %v", err)
		}
		pw := "Pw-" + hex.EncodeToString(raw[:])
		// Written whole under another name, then linked: a reader never sees half of it,
		// and of two binaries racing only one password wins.
		tmp := fmt.Sprintf("%s.%d", file, os.Getpid())
		if err := os.WriteFile(tmp, []byte(pw), 0o600); err != nil {
			t.Fatalf("write the test password: %v", err)
		}
		err := os.Link(tmp, file)
		os.Remove(tmp)
		if err == nil {
			return pw
		}
		if !errors.Is(err, fs.ErrExist) {
			t.Fatalf("store the test password: %v", err)
		}
	}
	t.Fatalf("could not agree on a test password in %s", file)
	return ""
}

// passwordsSet holds the accounts whose password this process has set already.
var passwordsSet sync.Map

// setPassword sets the account's password once per process. chpasswd fails while another
// program (useradd in a parallel test) holds the lock on /etc/shadow: it is tried again.
func setPassword(t T, name, password string) {
	t.Helper()
	if _, done := passwordsSet.Load(name + "\x00" + password); done {
		return
	}
	bin := Binary(t, "chpasswd")
	var out []byte
	var err error
	for range 20 {
		cmd := exec.Command(bin)
		cmd.Stdin = strings.NewReader(name + ":" + password + "\n")
		if out, err = cmd.CombinedOutput(); err == nil {
			passwordsSet.Store(name+"\x00"+password, true)
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	Unavailable(t, "set the password of %s (needs root): %v: %s", name, err, strings.TrimSpace(string(out)))
}
