package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// SambaShare is one share of a test Samba server.
type SambaShare struct {
	// Path is the folder the share serves; "" makes a fresh temporary folder. It is handed
	// over to the share's user, so that writes through the share work.
	Path     string
	ReadOnly bool
}

// SambaOptions says what a test Samba server serves, and to whom.
type SambaOptions struct {
	// Shares maps share names to what they serve. None at all means one writable share
	// named "share".
	Shares map[string]SambaShare
	// User is the system account that logs in; default "vigiltest". A random password is
	// set for it in the server's own user database.
	User string
}

// Samba is a private smbd on a free loopback port, with its own configuration, state and
// user database. Stop and Start (from Daemon) restart it on the same port, keeping its data.
type Samba struct {
	*Daemon
	User     string
	Password string
	conf     string
	shares   map[string]string
}

// StartSamba starts smbd for the test and stops it when the test ends. When smbd is not
// installed the test is Unavailable.
func StartSamba(t T, opts SambaOptions) *Samba {
	t.Helper()
	smbd := Binary(t, "smbd")
	smbpasswd := Binary(t, "smbpasswd")
	if opts.User == "" {
		opts.User = "vigiltest"
	}
	if len(opts.Shares) == 0 {
		opts.Shares = map[string]SambaShare{"share": {}}
	}
	User(t, opts.User)
	uid, gid := lookupIDs(t, opts.User)

	dir := t.TempDir()
	port := FreePort(t)
	s := &Samba{User: opts.User, Password: randomPassword(t), conf: filepath.Join(dir, "smb.conf"), shares: map[string]string{}}

	var conf strings.Builder
	fmt.Fprintf(&conf, "[global]\n")
	for _, kv := range [][2]string{
		{"server role", "standalone server"},
		{"smb ports", strconv.Itoa(port)},
		{"interfaces", "lo 127.0.0.1"},
		{"bind interfaces only", "yes"},
		{"disable netbios", "yes"},
		{"passdb backend", "tdbsam:" + filepath.Join(dir, "passdb.tdb")},
		{"map to guest", "never"},
		{"load printers", "no"},
		{"printing", "bsd"},
		{"printcap name", "/dev/null"},
		{"disable spoolss", "yes"},
		{"server min protocol", "SMB2_02"},
	} {
		fmt.Fprintf(&conf, "\t%s = %s\n", kv[0], kv[1])
	}
	for _, d := range []string{"lock directory", "state directory", "cache directory", "private dir", "pid directory", "ncalrpc dir", "binddns dir"} {
		p := filepath.Join(dir, strings.ReplaceAll(d, " ", "-"))
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatalf("make samba %s: %v", d, err)
		}
		fmt.Fprintf(&conf, "\t%s = %s\n", d, p)
	}

	names := make([]string, 0, len(opts.Shares))
	for name := range opts.Shares {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		share := opts.Shares[name]
		p := share.Path
		if p == "" {
			p = filepath.Join(t.TempDir(), "share-"+name)
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatalf("make share folder: %v", err)
			}
		}
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatalf("hand share folder %s to %s: %v", p, opts.User, err)
		}
		// smbd opens files as the user, who must be able to reach the folder.
		openPathTo(t, p)
		s.shares[name] = p
		readOnly := "no"
		if share.ReadOnly {
			readOnly = "yes"
		}
		fmt.Fprintf(&conf, "[%s]\n\tpath = %s\n\tread only = %s\n\tvalid users = %s\n", name, p, readOnly, opts.User)
	}
	if err := os.WriteFile(s.conf, []byte(conf.String()), 0o644); err != nil {
		t.Fatalf("write smb.conf: %v", err)
	}

	cmd := exec.Command(smbpasswd, "-c", s.conf, "-s", "-a", opts.User)
	cmd.Stdin = strings.NewReader(s.Password + "\n" + s.Password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		Unavailable(t, "set the samba password of %s: %v: %s", opts.User, err, strings.TrimSpace(string(out)))
	}

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s.Daemon = StartDaemon(t, "smbd", addr, func() *exec.Cmd {
		return exec.Command(smbd, "-F", "--no-process-group", "-s", s.conf, "--debug-stdout", "-d", "1")
	})
	return s
}

// SharePath is the folder on disk that share serves, or "" for a share the server does
// not have.
func (s *Samba) SharePath(share string) string { return s.shares[share] }

func lookupIDs(t T, name string) (uid, gid int) {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatalf("look up user %s: %v", name, err)
	}
	uid, err = strconv.Atoi(u.Uid)
	if err == nil {
		gid, err = strconv.Atoi(u.Gid)
	}
	if err != nil {
		t.Fatalf("user %s: ids %s:%s are not numbers", name, u.Uid, u.Gid)
	}
	return uid, gid
}

// openPathTo lets every user traverse the temporary folders above p, which the test
// framework makes private to root.
func openPathTo(t T, p string) {
	t.Helper()
	tmp := filepath.Clean(os.TempDir())
	for d := filepath.Dir(p); strings.HasPrefix(d, tmp+string(filepath.Separator)); d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatalf("stat %s: %v", d, err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(d, fi.Mode().Perm()|0o011); err != nil {
				t.Fatalf("open %s to the share's user: %v", d, err)
			}
		}
	}
}

func randomPassword(t T) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("make a password: %v", err)
	}
	return "pw-" + hex.EncodeToString(b)
}
