package storagetest

import (
	"context"
	"io"
	"sync"
	"sync/atomic"

	"github.com/vigil-backup/vigil/internal/storage"
)

// Faulty wraps a storage and makes chosen calls fail, for tests of code that must survive a
// storage that goes away: a server restart, a dropped connection, a full disk.
type Faulty struct {
	storage.Storage

	mu     sync.Mutex
	faults map[string][]fault // by operation
	calls  map[string]int
}

type fault struct {
	err   error
	after int64 // for "put" and "read": bytes that pass before the failure
}

var _ storage.Storage = (*Faulty)(nil)

// NewFaulty wraps s.
func NewFaulty(s storage.Storage) *Faulty {
	return &Faulty{Storage: s, faults: map[string][]fault{}, calls: map[string]int{}}
}

// FailNext makes the next n calls of op ("put", "open", "stat", "list", "remove") fail with
// err before they reach the storage.
func (f *Faulty) FailNext(op string, n int, err error) {
	f.add(op, n, fault{err: err})
}

// Heal drops the faults still waiting for calls of op.
func (f *Faulty) Heal(op string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.faults, op)
}

// CutPut makes the next n Puts fail with err after reading `after` bytes of their source,
// as when a connection drops mid-transfer.
func (f *Faulty) CutPut(n int, after int64, err error) {
	f.add("put", n, fault{err: err, after: after})
}

// CutReads makes the next n readers from Open fail with err after `after` bytes.
func (f *Faulty) CutReads(n int, after int64, err error) {
	f.add("read", n, fault{err: err, after: after})
}

// Calls says how often op was called, failures included.
func (f *Faulty) Calls(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// Unwrap returns the wrapped storage.
func (f *Faulty) Unwrap() storage.Storage { return f.Storage }

func (f *Faulty) add(op string, n int, ft fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.faults[op] = append(f.faults[op], ft)
	}
}

// next counts a call of op and returns the fault it should meet, if any.
func (f *Faulty) next(op string) (fault, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[op]++
	q := f.faults[op]
	if len(q) == 0 {
		return fault{}, false
	}
	f.faults[op] = q[1:]
	return q[0], true
}

func (f *Faulty) nextRead() (fault, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := f.faults["read"]
	if len(q) == 0 {
		return fault{}, false
	}
	f.faults["read"] = q[1:]
	return q[0], true
}

// Put fails as told, or stores src.
func (f *Faulty) Put(ctx context.Context, name string, src storage.Source, opts storage.PutOptions) error {
	ft, ok := f.next("put")
	if !ok {
		return f.Storage.Put(ctx, name, src, opts)
	}
	if ft.after > 0 {
		_, _ = io.CopyN(io.Discard, src, ft.after)
	}
	return ft.err
}

// Open fails as told, or opens a reader that may be cut.
func (f *Faulty) Open(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	if ft, ok := f.next("open"); ok {
		return nil, ft.err
	}
	rc, err := f.Storage.Open(ctx, name, offset, length)
	if err != nil {
		return nil, err
	}
	if ft, ok := f.nextRead(); ok {
		return &cutReader{rc: rc, left: ft.after, err: ft.err}, nil
	}
	return rc, nil
}

type cutReader struct {
	rc   io.ReadCloser
	left int64
	err  error
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, c.err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.rc.Read(p)
	c.left -= int64(n)
	return n, err
}

func (c *cutReader) Close() error { return c.rc.Close() }

// Stat fails as told, or describes the object.
func (f *Faulty) Stat(ctx context.Context, name string) (storage.FileInfo, error) {
	if ft, ok := f.next("stat"); ok {
		return storage.FileInfo{}, ft.err
	}
	return f.Storage.Stat(ctx, name)
}

// List fails as told, or lists.
func (f *Faulty) List(ctx context.Context, prefix string, fn func(storage.FileInfo) error) error {
	if ft, ok := f.next("list"); ok {
		return ft.err
	}
	return f.Storage.List(ctx, prefix, fn)
}

// Remove fails as told, or removes.
func (f *Faulty) Remove(ctx context.Context, name string) error {
	if ft, ok := f.next("remove"); ok {
		return ft.err
	}
	return f.Storage.Remove(ctx, name)
}

// TripSource returns src, calling trip once, from the first Read after `after` bytes have
// been read: to stop a server or cut a link in the middle of a transfer.
func TripSource(src storage.Source, after int64, trip func()) storage.Source {
	return &tripSource{Source: src, after: after, trip: trip}
}

type tripSource struct {
	storage.Source
	after int64
	n     atomic.Int64
	trip  func()
	once  sync.Once
}

func (s *tripSource) Read(p []byte) (int, error) {
	if s.n.Load() >= s.after {
		s.once.Do(s.trip)
	}
	n, err := s.Source.Read(p)
	s.n.Add(int64(n))
	return n, err
}
