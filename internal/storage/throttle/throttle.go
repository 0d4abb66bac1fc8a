// Package throttle is a storage decorator that holds transfers to a bandwidth limit: a token
// bucket shared by every transfer through it, whose rate can change at any time, also in the
// middle of a transfer (for limits that follow the time of day).
package throttle

import (
	"context"
	"io"
	"math"
	"sync"

	"golang.org/x/time/rate"

	"github.com/vigil-backup/vigil/internal/storage"
)

// Limit is a rate in bytes per second, shared by all transfers that go through it.
type Limit struct {
	l *rate.Limiter

	mu     sync.Mutex
	paused chan struct{} // closed by Resume; nil when not paused
}

// The bucket holds a tenth of a second of traffic, within these bounds: small enough that
// the rate holds over short spans, large enough that a read is not split into tiny pieces.
const (
	minBurst = 4 << 10
	maxBurst = 256 << 10
)

// NewLimit returns a limit of bytesPerSecond; 0 or less means unlimited.
func NewLimit(bytesPerSecond int64) *Limit {
	l := &Limit{l: rate.NewLimiter(rate.Inf, maxBurst)}
	l.SetRate(bytesPerSecond)
	return l
}

// SetRate changes the limit; 0 or less means unlimited. Transfers under way follow the new
// rate from their next read.
func (l *Limit) SetRate(bytesPerSecond int64) {
	if bytesPerSecond <= 0 {
		l.l.SetLimit(rate.Inf)
		l.l.SetBurst(maxBurst)
		return
	}
	l.l.SetLimit(rate.Limit(bytesPerSecond))
	l.l.SetBurst(int(min(max(bytesPerSecond/10, minBurst), maxBurst)))
}

// Rate returns the limit in bytes per second, 0 when unlimited.
func (l *Limit) Rate() int64 {
	r := l.l.Limit()
	if r == rate.Inf || r > math.MaxInt64 {
		return 0
	}
	return int64(r)
}

// Pause holds every transfer through the limit, at its next read, until Resume: for hours
// in which the link must carry no backup traffic at all. Pausing a paused limit does
// nothing.
func (l *Limit) Pause() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.paused == nil {
		l.paused = make(chan struct{})
	}
}

// Resume lets the transfers Pause held go on at the current rate.
func (l *Limit) Resume() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.paused != nil {
		close(l.paused)
		l.paused = nil
	}
}

// Paused reports whether the limit is paused.
func (l *Limit) Paused() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.paused != nil
}

// whilePaused blocks until the limit is not paused or ctx ends.
func (l *Limit) whilePaused(ctx context.Context) error {
	for {
		l.mu.Lock()
		ch := l.paused
		l.mu.Unlock()
		if ch == nil {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// limited reports whether transfers must go through the limit: it has a rate, or is paused.
func (l *Limit) limited() bool { return l.Rate() > 0 || l.Paused() }

// chunk is how much one read may move before it waits.
func (l *Limit) chunk() int { return l.l.Burst() }

// wait blocks until n bytes may pass.
func (l *Limit) wait(ctx context.Context, n int) error {
	for n > 0 {
		if err := l.whilePaused(ctx); err != nil {
			return err
		}
		// The burst may have shrunk since the read was sized; WaitN refuses more than it.
		step := min(n, l.l.Burst())
		if err := l.l.WaitN(ctx, step); err != nil {
			return err
		}
		n -= step
	}
	return nil
}

// Storage limits the transfers of the storage it wraps.
type Storage struct {
	next     storage.Storage
	up, down *Limit
}

var _ storage.Storage = (*Storage)(nil)

// New wraps s so that uploads (Put) go through up and downloads (Open) through down; a nil
// limit leaves that direction alone. The same Limit may serve several storages that share
// a link.
func New(s storage.Storage, up, down *Limit) *Storage {
	return &Storage{next: s, up: up, down: down}
}

// Unwrap returns the wrapped storage.
func (t *Storage) Unwrap() storage.Storage { return t.next }

// LimitsWrites keeps storage.SpoolerOf from writing beneath the throttle.
func (t *Storage) LimitsWrites() {}

// Put stores src at the upload rate. A Put that starts while the limit is unlimited and
// not paused goes through untouched, so that a copy can still bypass this process
// (storage.Unwrapped); it keeps no rate set while it runs.
func (t *Storage) Put(ctx context.Context, name string, src storage.Source, opts storage.PutOptions) error {
	if t.up != nil && t.up.limited() {
		src = &source{Source: src, r: reader{ctx: ctx, r: src, l: t.up}}
	}
	return t.next.Put(ctx, name, src, opts)
}

// Open reads at the download rate; like Put, a read that starts unlimited stays so.
func (t *Storage) Open(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	rc, err := t.next.Open(ctx, name, offset, length)
	if err != nil || t.down == nil || !t.down.limited() {
		return rc, err
	}
	return &readCloser{reader: reader{ctx: ctx, r: rc, l: t.down}, c: rc}, nil
}

// Stat describes an object.
func (t *Storage) Stat(ctx context.Context, name string) (storage.FileInfo, error) {
	return t.next.Stat(ctx, name)
}

// List lists objects.
func (t *Storage) List(ctx context.Context, prefix string, fn func(storage.FileInfo) error) error {
	return t.next.List(ctx, prefix, fn)
}

// Remove deletes an object.
func (t *Storage) Remove(ctx context.Context, name string) error { return t.next.Remove(ctx, name) }

// Close closes the wrapped storage.
func (t *Storage) Close() error { return t.next.Close() }

type reader struct {
	ctx context.Context
	r   io.Reader
	l   *Limit
}

func (r *reader) Read(p []byte) (int, error) {
	if c := r.l.chunk(); len(p) > c {
		p = p[:c]
	}
	n, err := r.r.Read(p)
	if n > 0 {
		if werr := r.l.wait(r.ctx, n); werr != nil {
			return n, werr
		}
	}
	return n, err
}

type source struct {
	storage.Source
	r reader
}

func (s *source) Read(p []byte) (int, error) { return s.r.Read(p) }

type readCloser struct {
	reader
	c io.Closer
}

func (r *readCloser) Close() error { return r.c.Close() }
