package sftp_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/vigil-backup/vigil/internal/storage"
	"github.com/vigil-backup/vigil/internal/storage/sftp"
	"github.com/vigil-backup/vigil/internal/storage/storagetest"
	"github.com/vigil-backup/vigil/internal/testenv"
)

// login says how a test logs in: with the key or with the password.
type login int

const (
	withKey login = iota
	withPassword
)

// location returns the URL of folder dir on d with the given query options, parsed.
func location(t *testing.T, d *testenv.SSHD, dir string, opts url.Values) storage.Location {
	t.Helper()
	u := url.URL{Scheme: "sftp", User: url.User(d.User), Host: d.Addr(), Path: dir, RawQuery: opts.Encode()}
	loc, err := storage.ParseLocation(u.String())
	if err != nil {
		t.Fatalf("parse %s: %v", u.String(), err)
	}
	return loc
}

// settings returns the location and credentials of dir on d, trusting d's key through its
// known_hosts file.
func settings(t *testing.T, d *testenv.SSHD, dir string, how login) (storage.Location, storage.Credentials) {
	t.Helper()
	opts := url.Values{"known_hosts": {d.KnownHostsFile}}
	var cred storage.Credentials
	switch how {
	case withKey:
		opts.Set("identity", d.KeyFile)
	case withPassword:
		cred.Password = d.Password
	}
	return location(t, d, dir, opts), cred
}

func open(t *testing.T, d *testenv.SSHD, dir string, how login) *sftp.Storage {
	t.Helper()
	loc, cred := settings(t, d, dir, how)
	s, err := sftp.Open(context.Background(), loc, cred)
	if err != nil {
		t.Fatalf("open %s: %v", loc, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func harness(d *testenv.SSHD, how login) storagetest.Harness {
	return storagetest.Harness{
		New: func(t *testing.T) storage.Storage { return open(t, d, d.Folder(t), how) },
		Debris: func(t *testing.T, s storage.Storage) []string {
			var debris []string
			_ = filepath.WalkDir(s.(*sftp.Storage).Root(), func(p string, e fs.DirEntry, err error) error {
				if err == nil && storage.IsTemp(e.Name()) {
					debris = append(debris, p)
				}
				return nil
			})
			return debris
		},
		MakeDebris: func(t *testing.T, s storage.Storage, prefix string) time.Duration {
			return storagetest.WriteDebris(t, filepath.Join(s.(*sftp.Storage).Root(), filepath.FromSlash(prefix)))
		},
		Stop:  d.Stop,
		Start: d.Start,
		Full: func(t *testing.T) storage.Storage {
			dir := testenv.Volume(t, storagetest.FullSize)
			d.Give(t, dir)
			return open(t, d, dir, how)
		},
		Denied: func(t *testing.T) error {
			loc, _ := settings(t, d, d.Folder(t), withPassword)
			_, err := sftp.Open(context.Background(), loc, storage.Credentials{Password: "not-" + d.Password})
			return err
		},
		Missing: func(t *testing.T) error {
			loc, cred := settings(t, d, filepath.Join(d.Folder(t), "not-there"), how)
			_, err := sftp.Open(context.Background(), loc, cred)
			return err
		},
		Unreachable: func(t *testing.T) error {
			loc, cred := settings(t, d, "/", how)
			closed, err := storage.ParseLocation("sftp://" + d.User + "@" + testenv.ClosedAddr(t) + "/")
			if err != nil {
				t.Fatal(err)
			}
			loc.Host, loc.Port = closed.Host, closed.Port
			_, err = sftp.Open(context.Background(), loc, cred)
			return err
		},
		Secret:       d.Password,
		ReportsUsage: true,
	}
}

func TestConformanceKey(t *testing.T) {
	t.Parallel()
	d := testenv.StartSSHD(t, testenv.SSHDOptions{})
	storagetest.Run(t, harness(d, withKey))
}

func TestConformancePassword(t *testing.T) {
	t.Parallel()
	d := testenv.StartSSHD(t, testenv.SSHDOptions{})
	storagetest.Run(t, harness(d, withPassword))
}

// otherKey returns a host key that is not d's, as a known_hosts key and a fingerprint.
func otherKey(t *testing.T) (ssh.PublicKey, string) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k, ssh.FingerprintSHA256(k)
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHostKey(t *testing.T) {
	d := testenv.StartSSHD(t, testenv.SSHDOptions{})
	dir := d.Folder(t)
	other, otherFP := otherKey(t)
	hostPort := fmt.Sprintf("[127.0.0.1]:%d", d.Port())
	cases := []struct {
		name     string
		opts     func(t *testing.T) url.Values
		kind     error    // nil: accepted
		mentions []string // what the error must say
	}{
		{"pinned", func(t *testing.T) url.Values {
			return url.Values{"fingerprint": {d.Fingerprint}}
		}, nil, nil},
		{"pinned with padding", func(t *testing.T) url.Values {
			return url.Values{"fingerprint": {d.Fingerprint + "="}}
		}, nil, nil},
		{"pinned wrong", func(t *testing.T) url.Values {
			return url.Values{"fingerprint": {otherFP}}
		}, storage.ErrPermission, []string{"CHANGED", "attack", d.Fingerprint, otherFP, "?fingerprint="}},
		{"pinned malformed", func(t *testing.T) url.Values {
			return url.Values{"fingerprint": {"MD5:12:34"}}
		}, nil, []string{"not a SHA256 fingerprint", "ssh-keygen -lf"}},
		{"known", func(t *testing.T) url.Values {
			return url.Values{"known_hosts": {d.KnownHostsFile}}
		}, nil, nil},
		{"known among others", func(t *testing.T) url.Values {
			line, err := os.ReadFile(d.KnownHostsFile)
			if err != nil {
				t.Fatal(err)
			}
			f := writeFile(t, "# comment\n"+"[127.0.0.1]:1 "+string(ssh.MarshalAuthorizedKey(other))+string(line))
			return url.Values{"known_hosts": {f}}
		}, nil, nil},
		{"known with another key", func(t *testing.T) url.Values {
			f := writeFile(t, hostPort+" "+string(ssh.MarshalAuthorizedKey(other)))
			return url.Values{"known_hosts": {f}}
		}, storage.ErrPermission, []string{"CHANGED", "attack", d.Fingerprint, otherFP, "line 1"}},
		{"host not in known_hosts", func(t *testing.T) url.Values {
			f := writeFile(t, "[127.0.0.1]:1 "+string(ssh.MarshalAuthorizedKey(other)))
			return url.Values{"known_hosts": {f}}
		}, storage.ErrPermission, []string{"unknown", d.Fingerprint, "?fingerprint=" + d.Fingerprint, "ssh-keyscan"}},
		{"known_hosts missing", func(t *testing.T) url.Values {
			return url.Values{"known_hosts": {filepath.Join(t.TempDir(), "nope")}}
		}, storage.ErrPermission, []string{"unknown", "does not exist", "?fingerprint=" + d.Fingerprint}},
		{"default known_hosts", func(t *testing.T) url.Values {
			t.Setenv("HOME", t.TempDir())
			return url.Values{}
		}, storage.ErrPermission, []string{"unknown", ".ssh/known_hosts", "?fingerprint=" + d.Fingerprint}},
		{"pinned right but known_hosts wrong", func(t *testing.T) url.Values {
			f := writeFile(t, hostPort+" "+string(ssh.MarshalAuthorizedKey(other)))
			return url.Values{"fingerprint": {d.Fingerprint}, "known_hosts": {f}}
		}, storage.ErrPermission, []string{"CHANGED"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := c.opts(t)
			opts.Set("identity", d.KeyFile)
			loc := location(t, d, dir, opts)
			s, err := sftp.Open(context.Background(), loc, storage.Credentials{})
			if c.kind == nil && c.mentions == nil {
				if err != nil {
					t.Fatalf("a server with the right key was refused: %v", err)
				}
				s.Close()
				return
			}
			if err == nil {
				s.Close()
				t.Fatalf("a server was accepted, want a refusal")
			}
			if c.kind != nil && !errors.Is(err, c.kind) {
				t.Fatalf("got %v, want %v", err, c.kind)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("the error is not one line: %q", err)
			}
			t.Logf("refused: %v", err)
			for _, m := range c.mentions {
				if !strings.Contains(err.Error(), m) {
					t.Fatalf("the error does not say %q: %v", m, err)
				}
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	d := testenv.StartSSHD(t, testenv.SSHDOptions{})
	dir := d.Folder(t)
	ctx := context.Background()

	encrypted := filepath.Join(t.TempDir(), "encrypted")
	testenv.Run(t, testenv.Binary(t, "ssh-keygen"), "-q", "-t", "ed25519", "-N", "a passphrase", "-f", encrypted)
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		dir      string
		opts     url.Values
		cred     storage.Credentials
		kind     error
		mentions []string
	}{
		{"encrypted key", dir, url.Values{"identity": {encrypted}}, storage.Credentials{}, storage.ErrPermission, []string{"passphrase"}},
		{"missing key", dir, url.Values{"identity": {encrypted + ".nope"}}, storage.Credentials{}, storage.ErrNotFound, []string{"does not exist"}},
		{"no way to log in", dir, url.Values{}, storage.Credentials{}, storage.ErrPermission, []string{"password", "identity"}},
		{"wrong user", dir, url.Values{"identity": {d.KeyFile}}, storage.Credentials{User: "nobody-here", Password: d.Password}, storage.ErrPermission, []string{"refused user nobody-here"}},
		{"root is a file", file, url.Values{"identity": {d.KeyFile}}, storage.Credentials{}, nil, []string{"not a folder"}},
		{"missing root", dir + "/gone", url.Values{"identity": {d.KeyFile}}, storage.Credentials{}, storage.ErrNotFound, []string{"folder " + dir + "/gone does not exist on " + d.Addr()}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.opts.Set("known_hosts", d.KnownHostsFile)
			_, err := sftp.Open(ctx, location(t, d, c.dir, c.opts), c.cred)
			if err == nil {
				t.Fatalf("opened, want an error")
			}
			if c.kind != nil && !errors.Is(err, c.kind) {
				t.Fatalf("got %v, want %v", err, c.kind)
			}
			if strings.Contains(err.Error(), d.Password) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("the error shows the password or is not one line: %q", err)
			}
			for _, m := range c.mentions {
				if !strings.Contains(err.Error(), m) {
					t.Fatalf("the error does not say %q: %v", m, err)
				}
			}
		})
	}
}

// TestKeyAndPassword logs in with both offered, the key being refused: the password
// must still get in.
func TestKeyAndPassword(t *testing.T) {
	t.Parallel()
	d := testenv.StartSSHD(t, testenv.SSHDOptions{})
	other := filepath.Join(t.TempDir(), "other")
	testenv.Run(t, testenv.Binary(t, "ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", other)
	loc := location(t, d, d.Folder(t), url.Values{"known_hosts": {d.KnownHostsFile}, "identity": {other}})
	s, err := sftp.Open(context.Background(), loc, storage.Credentials{Password: d.Password})
	if err != nil {
		t.Fatalf("open with a refused key and the right password: %v", err)
	}
	defer s.Close()
	storagetest.MustPut(t, s, "x", []byte("x"))
}

// TestServerGone checks that calls fail fast as unreachable while the server is down,
// and work again when it is back, without a new Open.
func TestServerGone(t *testing.T) {
	t.Parallel()
	d := testenv.StartSSHD(t, testenv.SSHDOptions{})
	s := open(t, d, d.Folder(t), withKey)
	storagetest.MustPut(t, s, "a", []byte("a"))
	d.Stop()
	start := time.Now()
	_, err := s.Stat(context.Background(), "a")
	if !storage.IsTransient(err) {
		t.Fatalf("stat with the server down: %v, want a transient error", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("stat with the server down took %v", took)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	if got := storagetest.MustRead(t, s, "a"); string(got) != "a" {
		t.Fatalf("after the server came back: %q", got)
	}
}

// TestBrokenPutLeavesNothing checks that the temporary file of a Put cut off by the
// server's death, which cannot be removed then, is removed once the server is back.
func TestBrokenPutLeavesNothing(t *testing.T) {
	t.Parallel()
	d := testenv.StartSSHD(t, testenv.SSHDOptions{})
	dir := d.Folder(t)
	s := open(t, d, dir, withKey)
	ctx := context.Background()
	src := storagetest.TripSource(storage.BytesSource(storagetest.RandomBytes(5, 16<<20)), 4<<20, d.Stop)
	err := s.Put(ctx, "cut/off.bin", src, storage.PutOptions{})
	if !storage.IsTransient(err) {
		t.Fatalf("put cut off by the server's death: %v, want a transient error", err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, "cut/off.bin"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("stat of a put that failed: %v, want not found", err)
	}
	var left []string
	_ = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			left = append(left, p)
		}
		return nil
	})
	if len(left) != 0 {
		t.Fatalf("files left after a broken put and a reconnection: %q", left)
	}
}

// TestHungServer checks that a server that stops answering, without closing the
// connection, makes calls fail as unreachable within seconds instead of hanging.
func TestHungServer(t *testing.T) {
	t.Parallel()
	d := testenv.StartSSHD(t, testenv.SSHDOptions{})
	s := open(t, d, d.Folder(t), withKey)
	storagetest.MustPut(t, s, "a", []byte("a"))
	thaw := d.Freeze()
	defer thaw()

	start := time.Now()
	_, err := s.Stat(context.Background(), "a")
	if !storage.IsTransient(err) {
		t.Fatalf("stat on a hung server: %v, want a transient error", err)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Fatalf("a hung server was noticed after %v", took)
	}
	t.Logf("a hung server was noticed after %v: %v", time.Since(start).Round(time.Millisecond), err)

	// Connecting again meets the same silence; the caller's deadline ends the wait.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start = time.Now()
	if _, err := s.Stat(ctx, "a"); err == nil {
		t.Fatalf("stat on a hung server succeeded")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("a call with a 1 s deadline on a hung server took %v", took)
	}

	thaw()
	if got := storagetest.MustRead(t, s, "a"); string(got) != "a" {
		t.Fatalf("after the server woke up: %q", got)
	}
}

// TestDeniedWrite checks that writing where the user may not is a permission error.
func TestDeniedWrite(t *testing.T) {
	t.Parallel()
	d := testenv.StartSSHD(t, testenv.SSHDOptions{})
	dir := filepath.Join(t.TempDir(), "root-owned")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	testenv.MakeReachable(t, dir)
	s := open(t, d, dir, withKey)
	err := s.Put(context.Background(), "x", storage.BytesSource([]byte("x")), storage.PutOptions{})
	if !errors.Is(err, storage.ErrPermission) {
		t.Fatalf("put into a folder the user may not write: %v, want %v", err, storage.ErrPermission)
	}
}

// TestRelativeRoot opens a folder given relative to the login folder (/~/path).
func TestRelativeRoot(t *testing.T) {
	t.Parallel()
	d := testenv.StartSSHD(t, testenv.SSHDOptions{})
	dir := d.Folder(t)
	u, err := user.Lookup(d.User)
	if err != nil {
		t.Fatal(err)
	}
	// sshd starts a user without a home folder in /.
	login := "/"
	if fi, err := os.Stat(u.HomeDir); err == nil && fi.IsDir() {
		login = u.HomeDir
	}
	rel, err := filepath.Rel(login, dir)
	if err != nil || strings.HasPrefix(rel, "..") {
		t.Fatalf("the test folder %s is not below the login folder %s", dir, login)
	}
	loc, err := storage.ParseLocation(fmt.Sprintf("sftp://%s@%s/~/%s?identity=%s&fingerprint=%s",
		d.User, d.Addr(), rel, url.QueryEscape(d.KeyFile), url.QueryEscape(d.Fingerprint)))
	if err != nil {
		t.Fatal(err)
	}
	s, err := sftp.Open(context.Background(), loc, storage.Credentials{})
	if err != nil {
		t.Fatalf("open %s: %v", loc, err)
	}
	defer s.Close()
	if s.Root() != dir {
		t.Fatalf("root %s, want %s", s.Root(), dir)
	}
	storagetest.MustPut(t, s, "x", []byte("x"))
	if _, err := os.Stat(filepath.Join(dir, "x")); err != nil {
		t.Fatalf("the object is not in the folder: %v", err)
	}
}

// TestHostWithSeveralKeys checks that a pin or a known_hosts line naming any one of a
// server's keys is honoured, whichever key the handshake would show first.
func TestHostWithSeveralKeys(t *testing.T) {
	t.Parallel()
	ecdsaFile := filepath.Join(t.TempDir(), "host_ecdsa")
	testenv.Run(t, testenv.Binary(t, "ssh-keygen"), "-q", "-t", "ecdsa", "-N", "", "-f", ecdsaFile)
	d := testenv.StartSSHD(t, testenv.SSHDOptions{Config: []string{"HostKey " + ecdsaFile}})
	pub, err := os.ReadFile(ecdsaFile + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	ecdsaKey, _, _, _, err := ssh.ParseAuthorizedKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	ecdsaFP := ssh.FingerprintSHA256(ecdsaKey)
	_, otherFP := otherKey(t)
	dir := d.Folder(t)
	cases := []struct {
		name string
		opts url.Values
		ok   bool
	}{
		{"pinned first key", url.Values{"fingerprint": {d.Fingerprint}}, true},
		{"pinned second key", url.Values{"fingerprint": {ecdsaFP}}, true},
		{"pinned neither", url.Values{"fingerprint": {otherFP}}, false},
		{"known second key only", url.Values{"known_hosts": {writeFile(t, fmt.Sprintf("[127.0.0.1]:%d %s", d.Port(), pub))}}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.opts.Set("identity", d.KeyFile)
			s, err := sftp.Open(context.Background(), location(t, d, dir, c.opts), storage.Credentials{})
			switch {
			case c.ok && err != nil:
				t.Fatalf("refused: %v", err)
			case !c.ok && err == nil:
				s.Close()
				t.Fatalf("accepted a server whose keys are none of the pinned one")
			case !c.ok:
				for _, want := range []string{"CHANGED", d.Fingerprint, ecdsaFP} {
					if !errors.Is(err, storage.ErrPermission) || !strings.Contains(err.Error(), want) {
						t.Fatalf("the refusal does not say %q or is not a permission error: %v", want, err)
					}
				}
			default:
				s.Close()
			}
		})
	}
}

// heldSource is a Source whose first Read says so on started, then waits for release.
type heldSource struct {
	storage.Source
	started chan<- struct{}
	release <-chan struct{}
	once    sync.Once
}

func (h *heldSource) Read(p []byte) (int, error) {
	h.once.Do(func() {
		h.started <- struct{}{}
		<-h.release
	})
	return h.Source.Read(p)
}

// putHeld runs n Puts at once and calls whileHeld when all of them are sending, with their
// connections taken.
func putHeld(t *testing.T, s storage.Storage, n int, whileHeld func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	started, release := make(chan struct{}), make(chan struct{})
	errs := make(chan error, n)
	for i := range n {
		src := &heldSource{Source: storage.BytesSource(storagetest.RandomBytes(uint64(i), 1<<20)), started: started, release: release}
		go func() { errs <- s.Put(ctx, fmt.Sprintf("held/%d", i), src, storage.PutOptions{}) }()
	}
	for range n {
		select {
		case <-started:
		case err := <-errs:
			t.Fatalf("a put ended before it read its source: %v", err)
		case <-ctx.Done():
			t.Fatalf("the puts did not all start")
		}
	}
	whileHeld()
	close(release)
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("put: %v", err)
		}
	}
}

// TestConnections checks that concurrent Puts spread over as many connections as the
// connections option allows and no more, and that they share the connections they have
// when the server refuses one more.
func TestConnections(t *testing.T) {
	t.Parallel()
	d := testenv.StartSSHD(t, testenv.SSHDOptions{})
	openWith := func(t *testing.T, connections string) storage.Storage {
		loc := location(t, d, d.Folder(t), url.Values{"known_hosts": {d.KnownHostsFile}, "identity": {d.KeyFile}, "connections": {connections}})
		s, err := sftp.Open(context.Background(), loc, storage.Credentials{})
		if err != nil {
			t.Fatalf("open with connections=%s: %v", connections, err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	for _, bad := range []string{"0", "17", "many"} {
		loc := location(t, d, d.Folder(t), url.Values{"known_hosts": {d.KnownHostsFile}, "identity": {d.KeyFile}, "connections": {bad}})
		if s, err := sftp.Open(context.Background(), loc, storage.Credentials{}); err == nil || storage.IsTransient(err) || !strings.Contains(err.Error(), "connections") {
			if err == nil {
				s.Close()
			}
			t.Fatalf("open with connections=%s: %v, want a lasting error about the option", bad, err)
		}
	}

	for _, limit := range []int{1, 3} {
		s := openWith(t, strconv.Itoa(limit))
		before := d.Logins(t)
		putHeld(t, s, 5, func() {
			// Open logged in once already.
			if got := d.Logins(t) - before; got != limit-1 {
				t.Fatalf("connections=%d: 5 puts at once logged in %d more times, want %d", limit, got, limit-1)
			}
		})
	}

	s := openWith(t, "4")
	d.RefuseKey(t)
	putHeld(t, s, 3, func() {})
	storagetest.MustPut(t, s, "after", []byte("after"))
}
