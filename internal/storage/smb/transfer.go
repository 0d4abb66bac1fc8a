package smb

import (
	"context"
	"errors"
	"io"
	"sync"

	smb2 "github.com/cloudsoda/go-smb2"
)

const (
	// chunkSize is what one READ or WRITE request carries: the most the client sends in
	// one request, and what Windows servers accept.
	chunkSize = 1 << 20
	// depth is how many requests one transfer keeps in flight. On a LAN with a round trip
	// of about half a millisecond a few already fill a gigabit link; more help on slower
	// links and disks that like deep queues.
	depth = 8
)

var chunkPool = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// sourceError is a failure to read what a Put stores, as opposed to a failure of the
// server: it must not be taken for a broken connection.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return "read the source: " + e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// writeAll copies r to f from offset 0: it reads r in order, one chunk at a time, and
// writes up to depth chunks at once. It returns the bytes read from r, all of which were
// written when the error is nil.
func writeAll(ctx context.Context, f *smb2.File, r io.Reader) (int64, error) {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		werr error
		free = make(chan *[]byte, depth) // nil until a chunk buffer is first needed
	)
	for range depth {
		free <- nil
	}
	writeErr := func() error {
		mu.Lock()
		defer mu.Unlock()
		return werr
	}
	var (
		off int64
		err error
	)
	for err == nil {
		var buf *[]byte
		select {
		case buf = <-free:
		case <-ctx.Done():
			err = ctx.Err()
			continue
		}
		if buf == nil {
			buf = chunkPool.Get().(*[]byte)
		}
		if ctx.Err() != nil || writeErr() != nil {
			free <- buf
			break
		}
		n, rerr := io.ReadFull(r, *buf)
		if n > 0 {
			wg.Add(1)
			go func(b *[]byte, n int, at int64) {
				defer wg.Done()
				if _, err := f.WriteAt((*b)[:n], at); err != nil {
					mu.Lock()
					if werr == nil {
						werr = err
					}
					mu.Unlock()
				}
				free <- b
			}(buf, n, off)
			off += int64(n)
		} else {
			free <- buf
		}
		switch {
		case rerr == io.EOF || rerr == io.ErrUnexpectedEOF:
			err = io.EOF
		case rerr != nil && ctx.Err() != nil:
			err = ctx.Err()
		case rerr != nil:
			err = &sourceError{rerr}
		}
	}
	wg.Wait()
	close(free)
	for b := range free {
		if b != nil {
			chunkPool.Put(b)
		}
	}
	if ctx.Err() != nil {
		return off, ctx.Err()
	}
	if werr != nil {
		return off, werr
	}
	if err == io.EOF {
		err = nil
	}
	return off, err
}

// reader reads the range [next, end) of a file with up to depth READ requests in flight,
// and hands their data out in order.
type reader struct {
	ctx  context.Context
	s    *Storage
	cl   *call
	f    *smb2.File
	name string

	next, end int64 // the range not yet asked for
	wg        sync.WaitGroup
	queue     []*chunk // asked for, in order
	cur       *chunk   // being handed out
	pos       int      // how much of cur was handed out
	err       error    // what every later Read returns
	closed    bool
}

type chunk struct {
	off  int64
	want int
	buf  *[]byte
	n    int
	err  error
	done chan struct{}
}

func newReader(ctx context.Context, s *Storage, cl *call, f *smb2.File, name string, start, end int64) *reader {
	return &reader{ctx: ctx, s: s, cl: cl, f: f, name: name, next: start, end: end}
}

// fill asks for chunks until depth are in flight or the range is covered.
func (r *reader) fill() {
	for len(r.queue) < depth && r.next < r.end {
		ch := &chunk{off: r.next, want: int(min(chunkSize, r.end-r.next)), buf: chunkPool.Get().(*[]byte), done: make(chan struct{})}
		r.next += int64(ch.want)
		r.queue = append(r.queue, ch)
		r.wg.Add(1)
		r.cl.active.Add(1)
		go func() {
			defer r.wg.Done()
			defer r.cl.active.Add(-1)
			defer close(ch.done)
			ch.n, ch.err = r.f.ReadAt((*ch.buf)[:ch.want], ch.off)
			if ch.err == io.EOF {
				ch.err = nil // the file is shorter than it was at Open
			}
		}()
	}
}

func (r *reader) Read(p []byte) (int, error) {
	for {
		if r.cur != nil {
			if r.pos < r.cur.n {
				n := copy(p, (*r.cur.buf)[r.pos:r.cur.n])
				r.pos += n
				return n, nil
			}
			if r.cur.n < r.cur.want {
				r.err = io.EOF
			}
			chunkPool.Put(r.cur.buf)
			r.cur = nil
		}
		if r.err != nil {
			return 0, r.err
		}
		if len(p) == 0 {
			return 0, nil
		}
		r.fill()
		if len(r.queue) == 0 {
			r.err = io.EOF
			continue
		}
		head := r.queue[0]
		select {
		case <-head.done:
		case <-r.ctx.Done():
			r.err = cancelled(r.ctx, "read", r.name)
			continue
		}
		r.queue = r.queue[1:]
		if head.err != nil {
			chunkPool.Put(head.buf)
			r.err = r.s.fail(r.ctx, r.cl.c, "read", r.name, head.err)
			continue
		}
		r.cur, r.pos = head, 0
	}
}

// Close waits for the reads in flight, which end when the server answers or the
// connection is dropped, and closes the file.
func (r *reader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	r.err = errors.New("read after close")
	r.wg.Wait()
	for _, ch := range r.queue {
		chunkPool.Put(ch.buf)
	}
	if r.cur != nil {
		chunkPool.Put(r.cur.buf)
	}
	r.queue, r.cur = nil, nil
	defer r.cl.end()
	if r.cl.c.tcp.broken.Load() {
		return nil // the server closed the file with the session
	}
	r.cl.active.Add(1)
	defer r.cl.active.Add(-1)
	if err := r.f.Close(); err != nil {
		return r.s.fail(context.Background(), r.cl.c, "close", r.name, err)
	}
	return nil
}
