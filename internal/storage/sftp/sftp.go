// Package sftp stores backups on an SSH server through SFTP (OpenSSH's sftp-server or
// internal-sftp, or any server that speaks SFTP version 3).
//
// The server's host key is always checked, against a pinned fingerprint or a known_hosts
// file. Calls spread over a few SSH connections (the connections option, default 2):
// each connection is carried by one process on the server and one goroutine here, so
// transfers that share a connection share one core on either side. When a connection
// breaks, the calls on it fail with storage.ErrUnreachable and later calls connect again.
package sftp

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"

	"github.com/vigil-backup/vigil/internal/storage"
)

// Storage is a folder on an SFTP server.
type Storage struct {
	d    *dialer
	root string // absolute folder on the server

	dialMu sync.Mutex // one dial at a time; the others wait for its connection

	mu      sync.Mutex
	conns   []*conn // open, in the order they were dialled; see client
	limit   int     // most connections to open
	closed  bool
	orphans []string // temporary files a broken connection kept us from removing
}

var (
	_ storage.Storage       = (*Storage)(nil)
	_ storage.UsageReporter = (*Storage)(nil)
	_ storage.Sweeper       = (*Storage)(nil)
)

var errClosed = errors.New("the storage is closed")

const (
	// cancelGrace is how long a cancelled call may take to wind down before its connection
	// is dropped: the SFTP client's calls take no context, and a server that hangs would
	// hold them forever.
	cancelGrace = 5 * time.Second
	// nearlyFull is the free space below which a failed write is taken for a full volume:
	// more than the writes in flight when the disk filled (inFlight bytes).
	nearlyFull = 4 << 20
	// smallRange bounds the ranged reads done in one go by Open; longer ones stream.
	smallRange = 1 << 20
	// listWorkers is how many folders List reads at once, to hide the round trips of
	// deep trees (footage is camera/year/month/day/hour).
	listWorkers = 8
)

// Open connects to the server at loc as the user of cred (or of loc), with the private key
// of loc's identity option and/or cred's password, and checks that the folder loc.Path
// exists. A relative loc.Path is below the user's login folder.
//
// The host key must match loc's fingerprint option, or the known_hosts file of its
// known_hosts option (default ~/.ssh/known_hosts); an unknown or changed key fails with
// storage.ErrPermission and says how to trust the key.
//
// Open makes one connection; calls open more as they need them, up to loc's connections
// option (default 2).
func Open(ctx context.Context, loc storage.Location, cred storage.Credentials) (*Storage, error) {
	if loc.Kind != storage.SFTP {
		return nil, storage.NewError("open", loc.String(), nil, fmt.Errorf("not an SFTP location (kind %q)", loc.Kind))
	}
	limit, err := connectionsOption(loc)
	if err != nil {
		return nil, err
	}
	d, err := newDialer(loc, cred)
	if err != nil {
		return nil, err
	}
	c, err := d.dial(ctx)
	if err != nil {
		return nil, err
	}
	root := loc.Path
	if !path.IsAbs(root) {
		wd, err := c.sftp.Getwd()
		if err != nil {
			c.close()
			return nil, classify("open", "", c, err)
		}
		root = path.Join(wd, root)
	}
	root = path.Clean(root)
	fi, err := c.sftp.Stat(root)
	switch {
	case errors.Is(err, os.ErrNotExist):
		c.close()
		return nil, storage.NewError("open", "", storage.ErrNotFound, fmt.Errorf("folder %s does not exist on %s", root, d.addr))
	case err != nil:
		c.close()
		return nil, classify("open", root, c, err)
	case !fi.IsDir():
		c.close()
		return nil, storage.NewError("open", "", nil, fmt.Errorf("%s on %s is not a folder", root, d.addr))
	}
	return &Storage{d: d, root: root, conns: []*conn{c}, limit: limit}, nil
}

// Root is the absolute folder on the server the objects are kept in.
func (s *Storage) Root() string { return s.root }

func (s *Storage) path(name string) string { return path.Join(s.root, name) }

// fail classifies err from an operation on c and drops c when the connection broke.
func (s *Storage) fail(op, name string, c *conn, err error) error {
	err = classify(op, name, c, err)
	if errors.Is(err, storage.ErrUnreachable) {
		s.discard(c)
	}
	return err
}

// classify gives err the kind callers act on. An answer from the server keeps its own
// meaning even when the connection has broken since.
func classify(op, name string, c *conn, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s %s: %w", op, name, err)
	}
	var se *storage.Error
	if errors.As(err, &se) {
		return err
	}
	var status *sftp.StatusError
	var kind error
	switch {
	case errors.Is(err, os.ErrNotExist):
		kind = storage.ErrNotFound
	case errors.Is(err, os.ErrPermission):
		kind = storage.ErrPermission
	case errors.Is(err, errClosed):
	case errors.As(err, &status):
		switch status.FxCode() {
		case sftp.ErrSSHFxNoSuchFile:
			kind = storage.ErrNotFound
		case sftp.ErrSSHFxPermissionDenied:
			kind = storage.ErrPermission
		case sftp.ErrSSHFxConnectionLost, sftp.ErrSSHFxNoConnection:
			kind = storage.ErrUnreachable
		}
	case isConnErr(err) || (c != nil && !c.alive()):
		kind = storage.ErrUnreachable
	}
	return storage.NewError(op, name, kind, err)
}

// isFailure reports whether the server answered SSH_FX_FAILURE, the status of every
// error that SFTP version 3 has no code for: a full disk, an existing target, ...
func isFailure(err error) bool {
	var status *sftp.StatusError
	return errors.As(err, &status) && status.FxCode() == sftp.ErrSSHFxFailure
}

// writeFail classifies a failed write into dir. OpenSSH reports a full disk only as the
// generic SSH_FX_FAILURE, so the volume's free space tells whether that is what happened.
// It must be asked before the temporary file is removed, which gives the space back. A
// full quota on a volume that is not full stays a plain error: statvfs cannot see quotas.
func (s *Storage) writeFail(op, name, dir string, c *conn, err error) error {
	if isFailure(err) && c.statvfs {
		if vfs, verr := c.sftp.StatVFS(dir); verr == nil {
			if free := vfs.Frsize * vfs.Bavail; free < nearlyFull {
				return storage.NewError(op, name, storage.ErrNoSpace, fmt.Errorf("%v (%d bytes left on the server's volume)", err, free))
			}
		}
	}
	return s.fail(op, name, c, err)
}

// abortOnCancel drops c when ctx ends and the call still runs cancelGrace later. stop
// must be called when the call returns.
func (s *Storage) abortOnCancel(ctx context.Context, c *conn) (stop func()) {
	var mu sync.Mutex
	var timer *time.Timer
	done := false
	stopAfter := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			timer = time.AfterFunc(cancelGrace, func() { s.discard(c) })
		}
	})
	return func() {
		stopAfter()
		mu.Lock()
		defer mu.Unlock()
		done = true
		if timer != nil {
			timer.Stop()
		}
	}
}

// Put writes src to a temporary file in name's folder, flushes it to the server's disk
// when the server can (fsync@openssh.com), and renames it into place. OpenSSH offers no
// flush of a folder, so the rename itself is as durable as the server's file system makes it.
func (s *Storage) Put(ctx context.Context, name string, src storage.Source, opts storage.PutOptions) error {
	if err := storage.ValidName(name); err != nil {
		return err
	}
	c, err := s.client(ctx)
	if err != nil {
		return classify("put", name, nil, err)
	}
	defer s.release(c)
	stop := s.abortOnCancel(ctx, c)
	defer stop()
	return s.put(ctx, c, name, src, opts)
}

func (s *Storage) put(ctx context.Context, c *conn, name string, src storage.Source, opts storage.PutOptions) (err error) {
	full := s.path(name)
	dir := path.Dir(full)
	tmp := path.Join(dir, storage.TempPrefix+randomSuffix())
	const flags = os.O_WRONLY | os.O_CREATE | os.O_EXCL
	// Most folders exist already: try first, and make them only when that fails.
	f, err := c.sftp.OpenFile(tmp, flags)
	if errors.Is(err, os.ErrNotExist) {
		if err := c.sftp.MkdirAll(dir); err != nil {
			return s.writeFail("put", name, dir, c, err)
		}
		f, err = c.sftp.OpenFile(tmp, flags)
	}
	if err != nil {
		return s.writeFail("put", name, dir, c, err)
	}
	open := true
	defer func() {
		if err == nil {
			return
		}
		if open {
			_ = f.Close()
		}
		s.removeTemp(c, tmp)
	}()

	size := src.Size()
	// One byte more than announced is enough to know the source is too long.
	counted := &storage.CountingReader{R: io.LimitReader(storage.ContextReader(ctx, storage.Unwrapped(src)), size+1)}
	if _, err := f.ReadFromWithConcurrency(counted, c.concurrency(size)); err != nil {
		return s.writeFail("put", name, dir, c, err)
	}
	if err := storage.CheckLength(src, counted.N); err != nil {
		return storage.NewError("put", name, nil, err)
	}
	if c.fsync {
		if err := f.Sync(); err != nil {
			return s.writeFail("put", name, dir, c, err)
		}
	}
	open = false
	if err := f.Close(); err != nil {
		return s.writeFail("put", name, dir, c, err)
	}
	if err := ctx.Err(); err != nil {
		return classify("put", name, c, err)
	}
	switch {
	case opts.NoOverwrite:
		// Plain SFTP rename refuses an existing target (OpenSSH links, then unlinks): the
		// check and the rename are one step on the server.
		if err := c.sftp.Rename(tmp, full); err != nil {
			if isFailure(err) {
				if _, serr := c.sftp.Lstat(full); serr == nil {
					return storage.NewError("put", name, storage.ErrExists, nil)
				}
			}
			return s.writeFail("put", name, dir, c, err)
		}
	case c.posixRename:
		if err := c.sftp.PosixRename(tmp, full); err != nil {
			return s.writeFail("put", name, dir, c, err)
		}
	default:
		if err := replace(c, tmp, full); err != nil {
			return s.writeFail("put", name, dir, c, err)
		}
	}
	return nil
}

// replace renames tmp to full on a server without posix-rename@openssh.com. There the
// old object must be removed first: a crash in between loses the old version, but never
// leaves a partial object under the name.
func replace(c *conn, tmp, full string) error {
	err := c.sftp.Rename(tmp, full)
	if err == nil || !isFailure(err) {
		return err
	}
	if fi, serr := c.sftp.Lstat(full); serr != nil || !fi.Mode().IsRegular() {
		return err
	}
	if err := c.sftp.Remove(full); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return c.sftp.Rename(tmp, full)
}

// removeTemp removes a failed Put's temporary file, or remembers it for the next
// connection when this one broke.
func (s *Storage) removeTemp(c *conn, tmp string) {
	err := c.sftp.Remove(tmp)
	if err == nil || errors.Is(err, os.ErrNotExist) {
		return
	}
	if isConnErr(err) || !c.alive() {
		s.mu.Lock()
		s.orphans = append(s.orphans, tmp)
		s.mu.Unlock()
	}
}

// concurrency is how many writes of a size-byte file to keep in flight.
func (c *conn) concurrency(size int64) int {
	return int(min(size/int64(c.packet)+1, inFlight/int64(c.packet)))
}

func randomSuffix() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Open reads part of an object. Reads to the end, or of more than smallRange bytes, stream
// with many read requests in flight; shorter ones are read at once.
func (s *Storage) Open(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	if err := storage.ValidName(name); err != nil {
		return nil, err
	}
	if offset < 0 || length < 0 {
		return nil, storage.NewError("open", name, nil, fmt.Errorf("negative offset %d or length %d", offset, length))
	}
	c, err := s.client(ctx)
	if err != nil {
		return nil, classify("open", name, nil, err)
	}
	streaming := false
	defer func() {
		if !streaming {
			s.release(c)
		}
	}()
	stop := s.abortOnCancel(ctx, c)
	defer stop()
	f, err := c.sftp.Open(s.path(name))
	if err != nil {
		return nil, s.fail("open", name, c, err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = storage.NewError("open", name, storage.ErrNotFound, errors.New("not a file"))
	}
	if err != nil {
		_ = f.Close()
		return nil, s.fail("open", name, c, err)
	}
	if offset >= fi.Size() {
		_ = f.Close()
		return io.NopCloser(strings.NewReader("")), nil
	}
	if length > 0 && length <= smallRange {
		defer f.Close()
		buf := make([]byte, min(length, fi.Size()-offset))
		n, err := f.ReadAt(buf, offset)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, s.fail("open", name, c, err)
		}
		return io.NopCloser(bytes.NewReader(buf[:n])), nil
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		_ = f.Close()
		return nil, s.fail("open", name, c, err)
	}
	streaming = true // the reader releases c when it is closed
	return s.stream(ctx, c, f, name, length), nil
}

// stream reads f from its offset with File.WriteTo, which keeps many read requests in
// flight, into a pipe the caller reads. Closing the reader releases c.
func (s *Storage) stream(ctx context.Context, c *conn, f *sftp.File, name string, length int64) io.ReadCloser {
	pr, pw := io.Pipe()
	r := &streamReader{s: s, c: c, f: f, pr: pr, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		var w io.Writer = pw
		if length > 0 {
			w = &limitWriter{w: pw, n: length}
		}
		_, err := f.WriteTo(w)
		switch {
		case err == nil, errors.Is(err, errLimit):
			err = nil
		case errors.Is(err, errReaderClosed), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		default:
			err = s.fail("read", name, c, err)
		}
		pw.CloseWithError(err)
	}()
	r.stopCtx = context.AfterFunc(ctx, func() { pr.CloseWithError(ctx.Err()) })
	return r
}

var (
	errLimit        = errors.New("read as much as asked")
	errReaderClosed = errors.New("reader closed")
)

type streamReader struct {
	s       *Storage
	c       *conn
	f       *sftp.File
	pr      *io.PipeReader
	done    chan struct{}
	stopCtx func() bool
	once    sync.Once
}

func (r *streamReader) Read(p []byte) (int, error) { return r.pr.Read(p) }

// Close stops the transfer. File.WriteTo ends at its next write into the closed pipe; if
// the server does not answer the reads in flight, the connection is dropped.
func (r *streamReader) Close() error {
	r.once.Do(func() {
		r.stopCtx()
		r.pr.CloseWithError(errReaderClosed)
		select {
		case <-r.done:
		case <-time.After(cancelGrace):
			r.s.discard(r.c)
			<-r.done
		}
		_ = r.f.Close()
		r.s.release(r.c)
	})
	return nil
}

// limitWriter passes n bytes, then fails with errLimit to end File.WriteTo.
type limitWriter struct {
	w io.Writer
	n int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if int64(len(p)) < l.n {
		n, err := l.w.Write(p)
		l.n -= int64(n)
		return n, err
	}
	n, err := l.w.Write(p[:l.n])
	l.n -= int64(n)
	if err == nil {
		err = errLimit
	}
	return n, err
}

// Stat describes an object. Folders and anything else that is not a regular file are
// not objects.
func (s *Storage) Stat(ctx context.Context, name string) (storage.FileInfo, error) {
	if err := storage.ValidName(name); err != nil {
		return storage.FileInfo{}, err
	}
	c, err := s.client(ctx)
	if err != nil {
		return storage.FileInfo{}, classify("stat", name, nil, err)
	}
	defer s.release(c)
	stop := s.abortOnCancel(ctx, c)
	defer stop()
	fi, err := c.sftp.Stat(s.path(name))
	if err == nil && !fi.Mode().IsRegular() {
		return storage.FileInfo{}, storage.NewError("stat", name, storage.ErrNotFound, errors.New("not a file"))
	}
	if err != nil {
		return storage.FileInfo{}, s.fail("stat", name, c, err)
	}
	return storage.FileInfo{Name: name, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// List walks the folder prefix, reading several folders at once. Temporary files of Puts
// in progress, folders, links and other non-regular files are left out.
func (s *Storage) List(ctx context.Context, prefix string, fn func(storage.FileInfo) error) error {
	if err := storage.ValidPrefix(prefix); err != nil {
		return err
	}
	prefix = strings.TrimSuffix(prefix, "/")
	c, err := s.client(ctx)
	if err != nil {
		return classify("list", prefix, nil, err)
	}
	defer s.release(c)
	return s.walk(ctx, c, "list", prefix, func(rel string, e os.FileInfo) error {
		if storage.IsTemp(e.Name()) {
			return nil
		}
		return fn(storage.FileInfo{Name: rel, Size: e.Size(), ModTime: e.ModTime()})
	})
}

// walk calls fn with the name and the entry of every regular file below the folder
// prefix, temporary ones too, reading several folders at once; fn is called from one
// goroutine at a time. A prefix that does not exist, or names a file, has nothing below it.
func (s *Storage) walk(ctx context.Context, c *conn, op, prefix string, fn func(rel string, e os.FileInfo) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	type folder struct {
		rel     string // relative to the root
		entries []os.FileInfo
		err     error
	}
	// Buffered for every reader in flight, so that none blocks when walk returns early.
	results := make(chan folder, listWorkers)
	pending := []string{prefix}
	running := 0
	defer func() {
		cancel()
		for ; running > 0; running-- {
			<-results
		}
	}()
	for len(pending) > 0 || running > 0 {
		for len(pending) > 0 && running < listWorkers {
			rel := pending[len(pending)-1]
			pending = pending[:len(pending)-1]
			running++
			go func() {
				entries, err := c.sftp.ReadDirContext(ctx, path.Join(s.root, rel))
				results <- folder{rel, entries, err}
			}()
		}
		r := <-results
		running--
		switch {
		case errors.Is(r.err, os.ErrNotExist):
			// The prefix does not exist or is a file, or the folder went while we walked.
			continue
		case r.err != nil:
			if err := ctx.Err(); err != nil {
				return classify(op, prefix, c, err)
			}
			return s.fail(op, prefix, c, r.err)
		}
		for _, e := range r.entries {
			switch {
			case e.IsDir():
				pending = append(pending, storage.JoinPrefix(r.rel, e.Name()))
			case e.Mode().IsRegular():
				if err := fn(storage.JoinPrefix(r.rel, e.Name()), e); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Sweep removes the temporary files below the folder prefix that were last written more
// than olderThan ago: those of Puts whose process died, or whose connection broke for
// good before the storage could remove them. Only regular files with a temporary name are
// removed.
func (s *Storage) Sweep(ctx context.Context, prefix string, olderThan time.Duration) (int, error) {
	if err := storage.ValidPrefix(prefix); err != nil {
		return 0, err
	}
	prefix = strings.TrimSuffix(prefix, "/")
	c, err := s.client(ctx)
	if err != nil {
		return 0, classify("sweep", prefix, nil, err)
	}
	defer s.release(c)
	stop := s.abortOnCancel(ctx, c)
	defer stop()
	cutoff := time.Now().Add(-olderThan)
	removed := 0
	err = s.walk(ctx, c, "sweep", prefix, func(rel string, e os.FileInfo) error {
		if !storage.IsTemp(e.Name()) || e.ModTime().After(cutoff) {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return classify("sweep", prefix, c, err)
		}
		err := c.sftp.Remove(s.path(rel))
		switch {
		case err == nil:
			removed++
		case errors.Is(err, os.ErrNotExist):
			// Gone already.
		default:
			return s.fail("sweep", rel, c, err)
		}
		return nil
	})
	return removed, err
}

// Remove deletes an object. It checks first that name is a file: SFTP clients remove an
// empty folder of that name too.
func (s *Storage) Remove(ctx context.Context, name string) error {
	if err := storage.ValidName(name); err != nil {
		return err
	}
	c, err := s.client(ctx)
	if err != nil {
		return classify("remove", name, nil, err)
	}
	defer s.release(c)
	stop := s.abortOnCancel(ctx, c)
	defer stop()
	full := s.path(name)
	fi, err := c.sftp.Lstat(full)
	if err == nil && fi.IsDir() {
		return storage.NewError("remove", name, storage.ErrNotFound, errors.New("is a folder"))
	}
	if err == nil {
		err = c.sftp.Remove(full)
	}
	return s.fail("remove", name, c, err)
}

// Usage reports the space of the server's volume that holds the root folder. It needs
// the statvfs@openssh.com extension (OpenSSH has it); on other servers it fails, though
// storage.UsageOf is told that it can report, since that is known only once connected.
func (s *Storage) Usage(ctx context.Context) (storage.Usage, error) {
	c, err := s.client(ctx)
	if err != nil {
		return storage.Usage{}, classify("usage", "", nil, err)
	}
	defer s.release(c)
	if !c.statvfs {
		return storage.Usage{}, storage.NewError("usage", "", nil, fmt.Errorf("the server at %s cannot report free space (no statvfs@openssh.com extension)", s.d.addr))
	}
	stop := s.abortOnCancel(ctx, c)
	defer stop()
	vfs, err := c.sftp.StatVFS(s.root)
	if err != nil {
		return storage.Usage{}, s.fail("usage", "", c, err)
	}
	return storage.Usage{Total: int64(vfs.Frsize * vfs.Blocks), Free: int64(vfs.Frsize * vfs.Bavail)}, nil
}
