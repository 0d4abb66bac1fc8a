// Package smb stores backups on a NAS share over SMB 2/3, with a client in Go: no kernel
// mount, no smbclient.
//
// One TCP connection, session and tree connection is shared by all calls. When it breaks
// (the NAS restarts, the network drops), the call that finds out fails with
// storage.ErrUnreachable and the next call dials again; the retry decorator turns that
// into a pause. Transfers keep several requests in flight on the connection, since one
// request at a time leaves the link idle for a round trip per megabyte.
package smb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	smb2 "github.com/cloudsoda/go-smb2"

	"github.com/vigil-backup/vigil/internal/storage"
)

const (
	// dialTimeout bounds connecting and logging in, for hosts that accept TCP connections
	// but never answer (a firewall, or something that is not an SMB server).
	dialTimeout = 30 * time.Second
	// grace is how long requests already sent may still take after the caller's context
	// ends. They are left to finish so that file handles get closed: an open handle can
	// keep a later rename or delete of that file from working. A server silent for that
	// long is taken as gone, and the connection is dropped.
	grace = 5 * time.Second
	// cleanupTimeout bounds removing a temporary file after a failed Put.
	cleanupTimeout = 10 * time.Second
	// maxCredits lets several transfers keep their requests in flight at once: a 1 MiB
	// request costs 16 credits.
	maxCredits = 512
)

// Storage is a folder on an SMB share.
type Storage struct {
	loc    storage.Location // as given, with the user that logs in
	cred   storage.Credentials
	domain string
	root   string // the folder below the share, slash-separated, "" for the share itself

	mu      sync.Mutex
	conn    *conn // nil until the next call dials
	closed  bool
	orphans map[string]bool // temporary files a broken connection kept us from removing
}

var (
	_ storage.Storage       = (*Storage)(nil)
	_ storage.UsageReporter = (*Storage)(nil)
	_ storage.Sweeper       = (*Storage)(nil)
)

// conn is one TCP connection with its session and tree connection.
type conn struct {
	tcp   *watchedConn
	sess  *smb2.Session
	share *smb2.Share
}

// watchedConn notices when the connection fails, which the client library's receiver
// finds out as soon as the server goes away, so that the next call dials again instead
// of failing first.
type watchedConn struct {
	net.Conn
	broken atomic.Bool
}

func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		c.broken.Store(true)
	}
	return n, err
}

func (c *watchedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err != nil {
		c.broken.Store(true)
	}
	return n, err
}

func (c *watchedConn) Close() error {
	c.broken.Store(true)
	return c.Conn.Close()
}

// Open connects to the share of loc and logs in, so that a wrong host, user, password or
// share fails here, with an error that says which. The user is cred.User when set, else
// loc.User; loc's "domain" option is the user's Windows domain.
func Open(ctx context.Context, loc storage.Location, cred storage.Credentials) (*Storage, error) {
	if loc.Kind != storage.SMB {
		return nil, storage.NewError("open", loc.String(), nil, fmt.Errorf("not an SMB location (smb://user@host/share/folder or \\\\host\\share\\folder)"))
	}
	if cred.User != "" {
		loc.User = cred.User
	}
	cred.User = loc.User
	s := &Storage{
		loc:    loc,
		cred:   cred,
		domain: loc.Option("domain", ""),
		root:   strings.Trim(loc.Path, "/"),
	}
	c, err := s.connect(ctx)
	if err != nil {
		return nil, err
	}
	if s.root != "" {
		fi, err := c.share.WithContext(ctx).Stat(s.smbPath(""))
		if err == nil && !fi.IsDir() {
			s.Close()
			return nil, storage.NewError("open", loc.String(), storage.ErrNotFound, fmt.Errorf("%q on share %q is a file, not a folder", s.root, loc.Share))
		}
		// A missing folder is made by the first Put.
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.Close()
			return nil, s.fail(ctx, c, "open", loc.String(), err)
		}
	}
	return s, nil
}

// Location is where the storage is, with the user that logs in.
func (s *Storage) Location() storage.Location { return s.loc }

// smbPath is the path within the share of object name (or of the root, for "").
func (s *Storage) smbPath(name string) string {
	return strings.ReplaceAll(storage.JoinPrefix(s.root, name), "/", `\`)
}

// connect returns the connection, dialing a new one when there is none or it broke.
func (s *Storage) connect(ctx context.Context) (*conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, storage.NewError("connect", s.loc.String(), nil, errors.New("the storage is closed"))
	}
	if s.conn != nil && !s.conn.tcp.broken.Load() {
		return s.conn, nil
	}
	if s.conn != nil {
		s.conn.tcp.Close()
		s.conn = nil
	}
	c, err := s.dial(ctx)
	if err != nil {
		return nil, err
	}
	s.conn = c
	s.removeOrphans(ctx, c)
	return c, nil
}

func (s *Storage) dial(ctx context.Context) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	where := s.loc.String()
	nd := net.Dialer{
		// Probes find a server that vanished without closing the connection (power cut,
		// cable pulled) while the connection is idle; userTimeout covers unanswered data.
		KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 15 * time.Second, Interval: 5 * time.Second, Count: 4},
		Control:         userTimeout,
	}
	raw, err := nd.DialContext(ctx, "tcp", s.loc.Addr())
	if err != nil {
		if ctx.Err() == context.Canceled {
			return nil, cancelled(ctx, "connect", where)
		}
		return nil, storage.NewError("connect", where, storage.ErrUnreachable, dialError(s.loc.Addr(), err))
	}
	tcp := &watchedConn{Conn: raw}
	d := &smb2.Dialer{
		MaxCreditBalance: maxCredits,
		Initiator:        &smb2.NTLMInitiator{User: s.cred.User, Password: s.cred.Password, Domain: s.domain},
	}
	sess, err := d.DialConn(ctx, tcp, s.loc.Addr())
	if err != nil {
		tcp.Close()
		return nil, s.loginError(ctx, err)
	}
	share, err := sess.WithContext(ctx).Mount(s.loc.Share, smb2.WithMapPosix())
	if err != nil {
		logoff(sess)
		tcp.Close()
		return nil, s.mountError(ctx, err)
	}
	return &conn{tcp: tcp, sess: sess, share: share}, nil
}

func (s *Storage) loginError(ctx context.Context, err error) error {
	where := s.loc.String()
	if ctx.Err() == context.Canceled {
		return cancelled(ctx, "connect", where)
	}
	why, refused := loginRefusals[status(err)]
	if !refused && errors.Is(err, fs.ErrPermission) {
		why, refused = "access denied", true
	}
	if refused {
		return storage.NewError("connect", where, storage.ErrPermission, fmt.Errorf("the server refused user %q: %s", s.cred.User, why))
	}
	if ctx.Err() != nil {
		return storage.NewError("connect", where, storage.ErrUnreachable, fmt.Errorf("%s did not complete the SMB login in time: is it an SMB server?", s.loc.Addr()))
	}
	kind, _ := classify(err)
	if kind == nil {
		kind = storage.ErrUnreachable
	}
	return storage.NewError("connect", where, kind, fmt.Errorf("log in as %q: %w", s.cred.User, err))
}

func (s *Storage) mountError(ctx context.Context, err error) error {
	where := s.loc.String()
	if ctx.Err() == context.Canceled {
		return cancelled(ctx, "connect", where)
	}
	switch code := status(err); {
	case code == statusBadNetworkName || code == statusBadNetworkPath:
		return storage.NewError("connect", where, storage.ErrNotFound, fmt.Errorf("share %q does not exist on %s", s.loc.Share, s.loc.Addr()))
	case errors.Is(err, fs.ErrPermission) || code == statusNetworkAccessDenied:
		return storage.NewError("connect", where, storage.ErrPermission, fmt.Errorf("user %q may not use share %q", s.cred.User, s.loc.Share))
	}
	kind, _ := classify(err)
	if kind == nil {
		kind = storage.ErrUnreachable
	}
	return storage.NewError("connect", where, kind, fmt.Errorf("open share %q: %w", s.loc.Share, err))
}

// logoff ends a session politely, without waiting long for a server that may be gone.
func logoff(sess *smb2.Session) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = sess.WithContext(ctx).Logoff()
}

// drop forgets c after it broke, so that the next call dials again.
func (s *Storage) drop(c *conn) {
	s.mu.Lock()
	if s.conn == c {
		s.conn = nil
	}
	s.mu.Unlock()
	c.tcp.Close()
}

// fail turns err from a call on c into a storage error, and drops c when err says the
// connection is broken.
func (s *Storage) fail(ctx context.Context, c *conn, op, name string, err error) error {
	if err == nil {
		return nil
	}
	if isCancel(ctx, err) {
		return cancelled(ctx, op, name)
	}
	var srcErr *sourceError
	if errors.As(err, &srcErr) {
		return storage.NewError(op, name, kindOf(srcErr.err), err)
	}
	var se *storage.Error
	if errors.As(err, &se) {
		return storage.NewError(op, name, se.Kind, err)
	}
	kind, broken := classify(err)
	if broken && c != nil {
		s.drop(c)
		err = fmt.Errorf("lost the connection to %s: %w", s.loc.Addr(), err)
	}
	return storage.NewError(op, name, kind, err)
}

// call is one operation on the connection. Its requests run under a context that outlives
// the caller's by grace (see grace): a call whose context ends stops sending requests, but
// lets those it sent finish, so that the handles it opened get closed.
type call struct {
	c      *conn
	share  *smb2.Share
	active atomic.Int32 // goroutines waiting on requests of this call
	stop   func() bool
}

// begin starts a call: it connects when needed, and drops the connection when requests of
// the call are still unanswered grace after ctx ended.
func (s *Storage) begin(ctx context.Context, op, name string) (*call, error) {
	if err := ctx.Err(); err != nil {
		return nil, cancelled(ctx, op, name)
	}
	c, err := s.connect(ctx)
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, cancelled(ctx, op, name)
		}
		return nil, storage.NewError(op, name, kindOf(err), err)
	}
	reqCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	cl := &call{c: c, share: c.share.WithContext(reqCtx)}
	cl.stop = context.AfterFunc(ctx, func() {
		t := time.NewTimer(grace)
		defer t.Stop()
		<-t.C
		if cl.active.Load() > 0 {
			s.drop(c)
			cancel()
		}
	})
	return cl, nil
}

// end is called when the caller is done with the call; requests it still has in flight go
// on.
func (cl *call) end() { cl.stop() }

// await runs fn and returns when fn does or ctx ends. fn may go on after ctx ended, until
// its requests are answered; after is then called with its result.
func (cl *call) await(ctx context.Context, op, name string, fn func() error, after func(error)) error {
	done := make(chan error, 1)
	cl.active.Add(1)
	go func() {
		defer cl.active.Add(-1)
		done <- fn()
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		select {
		case err := <-done:
			return err
		default:
		}
		if after != nil {
			go func() { after(<-done) }()
		}
		return cancelled(ctx, op, name)
	}
}

// Put writes src to a temporary file in name's folder, flushes it to the server's disk,
// and renames it into place.
//
// When the connection breaks during the Put, the temporary file cannot be removed at
// once: List never shows it, and it is removed after the storage reconnects.
func (s *Storage) Put(ctx context.Context, name string, src storage.Source, opts storage.PutOptions) error {
	if err := storage.ValidName(name); err != nil {
		return err
	}
	cl, err := s.begin(ctx, "put", name)
	if err != nil {
		return err
	}
	cl.active.Add(1)
	defer cl.end()
	defer cl.active.Add(-1)
	sh := cl.share
	full := s.smbPath(name)
	dir := parentDir(full)
	tmp := joinSMB(dir, storage.TempPrefix+randomSuffix())

	f, err := sh.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrNotExist) && dir != "" {
		if err = mkdirAll(sh, dir); err == nil {
			f, err = sh.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		}
	}
	if err != nil {
		return s.fail(ctx, cl.c, "put", name, err)
	}
	open := true
	done := false
	defer func() {
		if done {
			return
		}
		if open {
			_ = f.Close()
		}
		s.discard(ctx, cl.c, tmp)
	}()

	n, err := writeAll(ctx, f, io.LimitReader(storage.Unwrapped(src), src.Size()+1))
	if err != nil {
		return s.fail(ctx, cl.c, "put", name, err)
	}
	if err := storage.CheckLength(src, n); err != nil {
		return storage.NewError("put", name, nil, err)
	}
	if err := f.Sync(); err != nil {
		return s.fail(ctx, cl.c, "put", name, err)
	}
	open = false
	if err := f.Close(); err != nil {
		return s.fail(ctx, cl.c, "put", name, err)
	}
	if ctx.Err() != nil {
		return cancelled(ctx, "put", name)
	}
	if opts.NoOverwrite {
		// The client's rename always replaces, so this check and the rename are two steps
		// (see storage.PutOptions).
		_, err := sh.Stat(full)
		if err == nil {
			return storage.NewError("put", name, storage.ErrExists, nil)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return s.fail(ctx, cl.c, "put", name, err)
		}
	}
	if err := sh.Rename(tmp, full); err != nil {
		return s.fail(ctx, cl.c, "put", name, err)
	}
	done = true
	return nil
}

// discard removes the temporary file of a failed Put, or remembers it for later when the
// connection is gone.
func (s *Storage) discard(ctx context.Context, c *conn, tmp string) {
	if !c.tcp.broken.Load() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		err := c.share.WithContext(rctx).Remove(tmp)
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.orphans == nil {
		s.orphans = map[string]bool{}
	}
	s.orphans[tmp] = true
}

// removeOrphans removes the temporary files that failed Puts left behind, on a fresh
// connection. It is called with s.mu held.
func (s *Storage) removeOrphans(ctx context.Context, c *conn) {
	if len(s.orphans) == 0 {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	sh := c.share.WithContext(rctx)
	for tmp := range s.orphans {
		if err := sh.Remove(tmp); err == nil || errors.Is(err, fs.ErrNotExist) {
			delete(s.orphans, tmp)
		}
	}
}

// mkdirAll makes dir and its missing parents. Another writer making the same folder at the
// same time is fine.
func mkdirAll(sh *smb2.Share, dir string) error {
	err := sh.Mkdir(dir, 0o755)
	if errors.Is(err, fs.ErrNotExist) {
		if parent := parentDir(dir); parent != "" {
			if err := mkdirAll(sh, parent); err != nil {
				return err
			}
			err = sh.Mkdir(dir, 0o755)
		}
	}
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	return err
}

func parentDir(p string) string {
	i := strings.LastIndexByte(p, '\\')
	if i < 0 {
		return ""
	}
	return p[:i]
}

func joinSMB(dir, base string) string {
	if dir == "" {
		return base
	}
	return dir + `\` + base
}

func randomSuffix() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Open reads part of an object, with several reads in flight ahead of the caller.
func (s *Storage) Open(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	if err := storage.ValidName(name); err != nil {
		return nil, err
	}
	cl, err := s.begin(ctx, "open", name)
	if err != nil {
		return nil, err
	}
	var r *reader
	err = cl.await(ctx, "open", name, func() error {
		f, err := cl.share.Open(s.smbPath(name))
		if err != nil {
			return s.fail(ctx, cl.c, "open", name, err)
		}
		fi, err := f.Stat()
		if err == nil && fi.IsDir() {
			err = fs.ErrNotExist
		}
		if err != nil {
			_ = f.Close()
			return s.fail(ctx, cl.c, "open", name, err)
		}
		start, end := min(max(offset, 0), fi.Size()), fi.Size()
		if length > 0 {
			end = min(end, start+length)
		}
		r = newReader(ctx, s, cl, f, name, start, end)
		return nil
	}, func(err error) {
		if err == nil {
			r.Close() // opened after the caller left
		}
	})
	if err != nil {
		cl.end()
		return nil, err
	}
	return r, nil // the reader ends the call when it is closed
}

// Stat describes an object.
func (s *Storage) Stat(ctx context.Context, name string) (storage.FileInfo, error) {
	if err := storage.ValidName(name); err != nil {
		return storage.FileInfo{}, err
	}
	cl, err := s.begin(ctx, "stat", name)
	if err != nil {
		return storage.FileInfo{}, err
	}
	defer cl.end()
	var info storage.FileInfo
	err = cl.await(ctx, "stat", name, func() error {
		fi, err := cl.share.Stat(s.smbPath(name))
		if err == nil && fi.IsDir() {
			err = fs.ErrNotExist
		}
		if err != nil {
			return s.fail(ctx, cl.c, "stat", name, err)
		}
		info = storage.FileInfo{Name: name, Size: fi.Size(), ModTime: fi.ModTime()}
		return nil
	}, nil)
	return info, err
}

// List walks the folder prefix depth first. Temporary files of Puts in progress and
// folders are left out.
func (s *Storage) List(ctx context.Context, prefix string, fn func(storage.FileInfo) error) error {
	if err := storage.ValidPrefix(prefix); err != nil {
		return err
	}
	prefix = strings.TrimSuffix(prefix, "/")
	cl, err := s.begin(ctx, "list", prefix)
	if err != nil {
		return err
	}
	defer cl.end()
	return s.walk(ctx, cl, "list", prefix, func(rel string, e fs.FileInfo) error {
		if storage.IsTemp(e.Name()) {
			return nil
		}
		return fn(storage.FileInfo{Name: rel, Size: e.Size(), ModTime: e.ModTime()})
	})
}

// walk calls fn with the name and the entry of every file below the folder prefix,
// temporary ones too, depth first. A prefix that does not exist, or names a file, has
// nothing below it.
func (s *Storage) walk(ctx context.Context, cl *call, op, prefix string, fn func(rel string, e fs.FileInfo) error) error {
	pending := []string{prefix}
	for len(pending) > 0 {
		dir := pending[len(pending)-1]
		pending = pending[:len(pending)-1]
		var entries []fs.FileInfo
		err := cl.await(ctx, op, prefix, func() (err error) {
			entries, err = cl.share.ReadDir(s.smbPath(dir))
			return err
		}, nil)
		switch {
		case err != nil && dir == prefix && ctx.Err() == nil && s.notFolder(cl.share, dir, err):
			return nil
		case err != nil && dir != prefix && errors.Is(err, fs.ErrNotExist):
			continue // removed while we walked
		case err != nil:
			return s.fail(ctx, cl.c, op, prefix, err)
		}
		for _, e := range entries {
			rel := storage.JoinPrefix(dir, e.Name())
			if e.IsDir() {
				pending = append(pending, rel)
				continue
			}
			if err := ctx.Err(); err != nil {
				return cancelled(ctx, op, prefix)
			}
			if err := fn(rel, e); err != nil {
				return err
			}
		}
	}
	return nil
}

// Sweep removes the temporary files below the folder prefix that were last written more
// than olderThan ago: those of Puts whose process died, or whose connection broke for
// good before the storage could remove them. Only plain files with a temporary name are
// removed. A file that a writer still holds open is left alone: Put opens its temporary
// file without sharing delete access, so the server refuses to remove it.
func (s *Storage) Sweep(ctx context.Context, prefix string, olderThan time.Duration) (int, error) {
	if err := storage.ValidPrefix(prefix); err != nil {
		return 0, err
	}
	prefix = strings.TrimSuffix(prefix, "/")
	cl, err := s.begin(ctx, "sweep", prefix)
	if err != nil {
		return 0, err
	}
	defer cl.end()
	cutoff := time.Now().Add(-olderThan)
	removed := 0
	err = s.walk(ctx, cl, "sweep", prefix, func(rel string, e fs.FileInfo) error {
		if !storage.IsTemp(e.Name()) || !e.Mode().IsRegular() || e.ModTime().After(cutoff) {
			return nil
		}
		err := cl.await(ctx, "sweep", rel, func() error {
			return cl.share.Remove(s.smbPath(rel))
		}, nil)
		switch kind, _ := classify(err); {
		case err == nil:
			removed++
		case kind == storage.ErrNotFound, status(err) == statusSharingViolation:
			// Gone already, or still open by a writer that is alive.
		default:
			return s.fail(ctx, cl.c, "sweep", rel, err)
		}
		return nil
	})
	return removed, err
}

// notFolder reports whether ReadDir failed with err because dir does not exist or is a
// file.
func (s *Storage) notFolder(sh *smb2.Share, dir string, err error) bool {
	if errors.Is(err, fs.ErrNotExist) || status(err) == statusNotADirectory {
		return true
	}
	if kind, broken := classify(err); broken || kind != nil && kind != storage.ErrInvalidName {
		return false
	}
	fi, serr := sh.Stat(s.smbPath(dir))
	return serr == nil && !fi.IsDir()
}

// Remove deletes an object.
func (s *Storage) Remove(ctx context.Context, name string) error {
	if err := storage.ValidName(name); err != nil {
		return err
	}
	cl, err := s.begin(ctx, "remove", name)
	if err != nil {
		return err
	}
	defer cl.end()
	return cl.await(ctx, "remove", name, func() error {
		p := s.smbPath(name)
		// A delete on a folder would remove an empty one: only objects are removed.
		fi, err := cl.share.Stat(p)
		if err == nil && fi.IsDir() {
			return storage.NewError("remove", name, storage.ErrNotFound, errors.New("is a folder"))
		}
		if err == nil {
			err = cl.share.Remove(p)
		}
		return s.fail(ctx, cl.c, "remove", name, err)
	}, nil)
}

// Usage reports the size and free space of the share's volume, as the server reports
// them for this user (quotas included).
func (s *Storage) Usage(ctx context.Context) (storage.Usage, error) {
	cl, err := s.begin(ctx, "usage", "")
	if err != nil {
		return storage.Usage{}, err
	}
	defer cl.end()
	var u storage.Usage
	err = cl.await(ctx, "usage", "", func() error {
		fi, err := cl.share.Statfs(s.smbPath(""))
		if errors.Is(err, fs.ErrNotExist) && s.root != "" {
			fi, err = cl.share.Statfs("") // the folder is made by the first Put
		}
		if err != nil {
			return s.fail(ctx, cl.c, "usage", "", err)
		}
		bs := fi.BlockSize()
		u = storage.Usage{Total: int64(fi.TotalBlockCount() * bs), Free: int64(fi.AvailableBlockCount() * bs)}
		return nil
	}, nil)
	return u, err
}

// Close logs off and closes the connection.
func (s *Storage) Close() error {
	s.mu.Lock()
	c := s.conn
	s.conn, s.closed = nil, true
	s.mu.Unlock()
	if c == nil {
		return nil
	}
	if !c.tcp.broken.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = c.share.WithContext(ctx).Umount()
		cancel()
		logoff(c.sess)
	}
	// A clean log-off closes the connection already.
	if err := c.tcp.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// String shows where the storage is, never the password.
func (s *Storage) String() string { return s.loc.String() }
