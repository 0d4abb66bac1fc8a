package sftp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/vigil-backup/vigil/internal/storage"
)

const (
	dialTimeout      = 10 * time.Second
	handshakeTimeout = 30 * time.Second // key exchange and login together
	// A server that is gone without a word (a cut cable, a host that froze) is noticed
	// within keepAliveEvery+keepAliveWait; one that was killed, at once, by the reset.
	keepAliveEvery = 5 * time.Second
	keepAliveWait  = 10 * time.Second
)

// dialer holds what connecting needs, checked once by Open.
type dialer struct {
	addr     string
	user     string
	auth     []ssh.AuthMethod
	authDesc string // what we log in with, for messages: "key", "password", "key and password"
	hostKeys *hostKeyCheck
}

// conn is one SSH connection with its SFTP session.
type conn struct {
	ssh  *ssh.Client
	sftp *sftp.Client
	dead chan struct{} // closed when the connection is gone

	fsync       bool // fsync@openssh.com: File.Sync reaches the server's disk
	posixRename bool // posix-rename@openssh.com: rename that replaces the target
	statvfs     bool // statvfs@openssh.com: free space
	packet      int  // bytes in one read or write request

	calls int // calls using the connection; guarded by the Storage's mu

	closeOnce sync.Once
}

func (c *conn) alive() bool {
	select {
	case <-c.dead:
		return false
	default:
		return true
	}
}

// close ends the connection. The TCP connection goes first: closing the SFTP session
// first would wait for a server that may never answer.
func (c *conn) close() {
	c.closeOnce.Do(func() {
		_ = c.ssh.Close()
		_ = c.sftp.Close()
	})
}

func newDialer(loc storage.Location, cred storage.Credentials) (*dialer, error) {
	d := &dialer{addr: loc.Addr(), user: cred.User}
	if d.user == "" {
		d.user = loc.User
	}
	if d.user == "" {
		return nil, storage.NewError("connect", d.addr, storage.ErrPermission, errors.New("no user name: give one in the URL (sftp://user@host/path) or in the credentials"))
	}
	var what []string
	if id := loc.Option("identity", ""); id != "" {
		signer, err := loadKey(id)
		if err != nil {
			return nil, err
		}
		d.auth = append(d.auth, ssh.PublicKeys(signer))
		what = append(what, "key "+id)
	}
	if pw := cred.Password; pw != "" {
		d.auth = append(d.auth, ssh.Password(pw), ssh.KeyboardInteractive(answerWith(pw)))
		what = append(what, "password")
	}
	if len(d.auth) == 0 {
		return nil, storage.NewError("connect", d.addr, storage.ErrPermission,
			fmt.Errorf("no way to log in as %s: give a password, or a private key with ?identity=/path/to/key", d.user))
	}
	d.authDesc = strings.Join(what, " and ")
	hk, err := newHostKeyCheck(loc)
	if err != nil {
		return nil, err
	}
	d.hostKeys = hk
	return d, nil
}

// loadKey reads an unencrypted private key. An encrypted key would need its passphrase
// at every connection, unattended, so it is refused rather than asked for.
func loadKey(file string) (ssh.Signer, error) {
	if rest, ok := strings.CutPrefix(file, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			file = filepath.Join(home, rest)
		}
	}
	b, err := os.ReadFile(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, storage.NewError("read key", file, storage.ErrNotFound, errors.New("the identity file does not exist"))
	case errors.Is(err, fs.ErrPermission):
		return nil, storage.NewError("read key", file, storage.ErrPermission, err)
	case err != nil:
		return nil, storage.NewError("read key", file, nil, err)
	}
	signer, err := ssh.ParsePrivateKey(b)
	var encrypted *ssh.PassphraseMissingError
	switch {
	case errors.As(err, &encrypted):
		return nil, storage.NewError("read key", file, storage.ErrPermission,
			errors.New("the key is protected by a passphrase, which an unattended backup cannot type: give a key without one (ssh-keygen -p -N '' -f COPY removes it from a copy)"))
	case err != nil:
		return nil, storage.NewError("read key", file, storage.ErrPermission, fmt.Errorf("not a private key in OpenSSH or PEM form: %v", err))
	}
	return signer, nil
}

// answerWith answers keyboard-interactive prompts that hide what is typed, as password
// prompts do, with the password. A prompt that echoes asks for something else.
func answerWith(pw string) ssh.KeyboardInteractiveChallenge {
	return func(_, _ string, questions []string, echos []bool) ([]string, error) {
		answers := make([]string, len(questions))
		for i, q := range questions {
			if i < len(echos) && echos[i] {
				return nil, fmt.Errorf("the server asks %q, which only a person can answer", strings.TrimSpace(q))
			}
			answers[i] = pw
		}
		return answers, nil
	}
}

// dial connects, checks the host key, logs in and starts the SFTP session.
func (d *dialer) dial(ctx context.Context) (*conn, error) {
	algos := d.hostKeys.algorithms()
	var mismatched []ssh.PublicKey
	for {
		c, err := d.dialOnce(ctx, algos)
		if err == nil || d.hostKeys.fingerprint == "" {
			return c, err
		}
		// A server has one key per type and shows the one the client prefers. A pin may
		// name another of its keys: try the others before calling the key changed.
		var hk *hostKeyError
		switch {
		case errors.As(err, &hk) && hk.pinned:
			mismatched = append(mismatched, hk.key)
			if algos = withoutType(algos, hk.key.Type()); len(algos) > 0 {
				continue
			}
		case len(mismatched) > 0 && strings.Contains(err.Error(), "no common algorithm for host key"):
		default:
			return nil, err
		}
		return nil, storage.NewError("connect", d.addr, storage.ErrPermission, d.hostKeys.pinMismatch(mismatched))
	}
}

func (d *dialer) dialOnce(ctx context.Context, algos []string) (*conn, error) {
	nd := net.Dialer{Timeout: dialTimeout, KeepAlive: 15 * time.Second}
	raw, err := nd.DialContext(ctx, "tcp", d.addr)
	if err != nil {
		return nil, d.connectError(ctx, err)
	}
	_ = raw.SetDeadline(time.Now().Add(handshakeTimeout))
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	cfg := &ssh.ClientConfig{
		User:              d.user,
		Auth:              d.auth,
		HostKeyCallback:   d.hostKeys.callback,
		HostKeyAlgorithms: algos,
	}
	sc, chans, reqs, err := ssh.NewClientConn(raw, d.addr, cfg)
	if !stop() {
		if err == nil {
			sc.Close()
		}
		raw.Close()
		return nil, fmt.Errorf("connect %s: %w", d.addr, ctx.Err())
	}
	if err != nil {
		raw.Close()
		return nil, d.connectError(ctx, err)
	}
	_ = raw.SetDeadline(time.Time{})
	client := ssh.NewClient(sc, chans, reqs)
	c := &conn{ssh: client, dead: make(chan struct{})}
	go func() {
		_ = client.Wait()
		close(c.dead)
	}()
	go keepAlive(client, c.dead)

	sc2, packet, err := d.startSFTP(client)
	if err != nil {
		client.Close()
		if !c.alive() || isConnErr(err) {
			return nil, storage.NewError("connect", d.addr, storage.ErrUnreachable, err)
		}
		return nil, storage.NewError("connect", d.addr, nil, fmt.Errorf("start SFTP: %w (is the sftp subsystem enabled on the server?)", err))
	}
	c.sftp, c.packet = sc2, packet
	go func() {
		// An SFTP session that ends leaves the connection useless to us.
		_ = sc2.Wait()
		client.Close()
	}()
	_, c.fsync = sc2.HasExtension("fsync@openssh.com")
	_, c.posixRename = sc2.HasExtension("posix-rename@openssh.com")
	_, c.statvfs = sc2.HasExtension("statvfs@openssh.com")
	return c, nil
}

// startSFTP starts the SFTP session, reading and writing files in packets of the size it
// returns, with inFlight bytes of them in flight.
func (d *dialer) startSFTP(client *ssh.Client) (*sftp.Client, int, error) {
	// A session that never answers (a server that hangs after login) must not hang us.
	type result struct {
		c      *sftp.Client
		packet int
		err    error
	}
	res := make(chan result, 1)
	go func() {
		packet := packetSize(client)
		c, err := sftp.NewClient(client,
			sftp.UseConcurrentWrites(true),
			sftp.UseConcurrentReads(true),
			sftp.MaxPacketUnchecked(packet),
			sftp.MaxConcurrentRequestsPerFile(inFlight/packet),
			// Fstat sizes the file that is open, not whatever a concurrent rename put at
			// its path since.
			sftp.UseFstat(true),
		)
		res <- result{c, packet, err}
	}()
	select {
	case r := <-res:
		return r.c, r.packet, r.err
	case <-time.After(handshakeTimeout):
		client.Close()
		return nil, 0, errors.New("the server did not start the SFTP session in time")
	}
}

// keepAlive closes the connection when the server stops answering, so that calls fail
// and the next one dials again, instead of waiting forever on a dead TCP connection.
func keepAlive(client *ssh.Client, dead <-chan struct{}) {
	tick := time.NewTicker(keepAliveEvery)
	defer tick.Stop()
	for {
		select {
		case <-dead:
			return
		case <-tick.C:
		}
		answered := make(chan error, 1)
		go func() {
			// OpenSSH answers an unknown request with a failure: an answer all the same.
			_, _, err := client.SendRequest("keepalive@openssh.com", true, nil)
			answered <- err
		}()
		timer := time.NewTimer(keepAliveWait)
		select {
		case err := <-answered:
			timer.Stop()
			if err != nil {
				client.Close()
				return
			}
		case <-timer.C:
			client.Close()
			return
		case <-dead:
			timer.Stop()
			return
		}
	}
}

// connectError classifies a failure to connect or log in.
func (d *dialer) connectError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("connect %s: %w", d.addr, ctx.Err())
	}
	var hk *hostKeyError
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &hk):
		return storage.NewError("connect", d.addr, storage.ErrPermission, hk)
	case strings.Contains(err.Error(), "no common algorithm for host key") && len(d.hostKeys.knownTypes) > 0:
		return storage.NewError("connect", d.addr, storage.ErrPermission, d.hostKeys.typesGone())
	case strings.Contains(err.Error(), "unable to authenticate"),
		strings.Contains(err.Error(), "unexpected message type 51 (expected 60)"):
		// x/crypto/ssh has no type for a refused login, only the first message. The second
		// is what it says when keyboard-interactive, tried last, is refused at once
		// (SSH_MSG_USERAUTH_FAILURE instead of a prompt), as OpenSSH without PAM does.
		return storage.NewError("connect", d.addr, storage.ErrPermission,
			fmt.Errorf("the server refused user %s with the %s given", d.user, d.authDesc))
	case errors.As(err, &dnsErr):
		return storage.NewError("connect", d.addr, storage.ErrUnreachable, fmt.Errorf("cannot resolve host %s: %v", dnsErr.Name, dnsErr.Err))
	case errors.Is(err, syscall.ECONNREFUSED):
		return storage.NewError("connect", d.addr, storage.ErrUnreachable, errors.New("connection refused: nothing listens on that port"))
	case isTimeout(err):
		return storage.NewError("connect", d.addr, storage.ErrUnreachable, errors.New("timed out"))
	case isConnErr(err):
		return storage.NewError("connect", d.addr, storage.ErrUnreachable, err)
	}
	return storage.NewError("connect", d.addr, nil, err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isConnErr reports whether err means the connection broke, rather than the server
// answering that an operation failed.
func isConnErr(err error) bool {
	var ne net.Error
	var opErr *net.OpError
	return errors.Is(err, sftp.ErrSSHFxConnectionLost) ||
		errors.Is(err, sftp.ErrSSHFxNoConnection) ||
		errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, io.ErrClosedPipe) ||
		errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNABORTED) ||
		errors.Is(err, syscall.EPIPE) ||
		errors.As(err, &opErr) ||
		(errors.As(err, &ne) && ne.Timeout()) ||
		strings.Contains(err.Error(), "ssh: disconnect")
}
