// Package retry is a storage decorator that tries calls again, with exponential back-off,
// when they fail with a transient error (storage.ErrUnreachable): a server restarting, a
// dropped connection, a NAS waking up. Every other error is returned at once.
package retry

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/vigil-backup/vigil/internal/storage"
)

// Policy says how long to keep trying.
type Policy struct {
	Initial  time.Duration // the first wait; default 500 ms
	Max      time.Duration // the longest wait; default 1 minute
	Attempts int           // calls in all, the first included; default 10
	Logger   *slog.Logger  // where retries are logged; default slog.Default()
}

// DefaultPolicy rides out a server restart or a short network outage: about four and a half
// minutes of trying in all.
var DefaultPolicy = Policy{Initial: 500 * time.Millisecond, Max: time.Minute, Attempts: 10}

func (p Policy) withDefaults() Policy {
	if p.Initial <= 0 {
		p.Initial = DefaultPolicy.Initial
	}
	if p.Max <= 0 {
		p.Max = DefaultPolicy.Max
	}
	if p.Max < p.Initial {
		p.Max = p.Initial
	}
	if p.Attempts <= 0 {
		p.Attempts = DefaultPolicy.Attempts
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	return p
}

// Storage retries the calls of the storage it wraps.
type Storage struct {
	next storage.Storage
	p    Policy
}

var _ storage.Storage = (*Storage)(nil)

// New wraps s.
func New(s storage.Storage, p Policy) *Storage {
	return &Storage{next: s, p: p.withDefaults()}
}

// Unwrap returns the wrapped storage.
func (r *Storage) Unwrap() storage.Storage { return r.next }

// do calls fn until it succeeds, fails for good, or the attempts or ctx run out. before is
// called ahead of every attempt but the first.
func (r *Storage) do(ctx context.Context, op, name string, before func() error, fn func() error) error {
	wait := r.p.Initial
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || !storage.IsTransient(err) || ctx.Err() != nil || attempt >= r.p.Attempts {
			return err
		}
		// Jitter keeps many workers that failed together from retrying together.
		d := wait/2 + rand.N(wait)
		r.p.Logger.WarnContext(ctx, "storage call failed, trying again",
			"op", op, "name", name, "attempt", attempt, "wait", d.Round(time.Millisecond), "err", err)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(wait*2, r.p.Max)
		if before != nil {
			if berr := before(); berr != nil {
				return errors.Join(err, berr)
			}
		}
	}
}

// Put stores src, rewinding it before each new attempt. With opts.NoOverwrite, an attempt
// whose reply was lost may have stored the object already, and the next attempt then fails
// with ErrExists: a caller that must tell its own write from another's compares the object.
func (r *Storage) Put(ctx context.Context, name string, src storage.Source, opts storage.PutOptions) error {
	return r.do(ctx, "put", name, src.Rewind, func() error { return r.next.Put(ctx, name, src, opts) })
}

// Stat describes an object.
func (r *Storage) Stat(ctx context.Context, name string) (storage.FileInfo, error) {
	var fi storage.FileInfo
	err := r.do(ctx, "stat", name, nil, func() (err error) {
		fi, err = r.next.Stat(ctx, name)
		return err
	})
	return fi, err
}

// Remove deletes an object. When an attempt was cut off, the object may be gone already by
// the next one: not found after a failed attempt counts as done.
func (r *Storage) Remove(ctx context.Context, name string) error {
	tried := false
	return r.do(ctx, "remove", name, nil, func() error {
		err := r.next.Remove(ctx, name)
		if tried && errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		tried = true
		return err
	})
}

// List lists objects. Only a listing that failed before it reported anything is tried
// again, so that fn sees each object once.
func (r *Storage) List(ctx context.Context, prefix string, fn func(storage.FileInfo) error) error {
	called := false
	var fnErr error
	err := r.do(ctx, "list", prefix, nil, func() error {
		err := r.next.List(ctx, prefix, func(fi storage.FileInfo) error {
			called = true
			fnErr = fn(fi)
			return fnErr
		})
		if called && err != nil && !errors.Is(err, fnErr) {
			// Mark the error permanent for do: the listing cannot be restarted.
			return permanent{err}
		}
		return err
	})
	var p permanent
	if errors.As(err, &p) {
		return p.error
	}
	return err
}

type permanent struct{ error }

func (p permanent) Unwrap() error { return nil }

// Open opens an object. A read that breaks on a transient error is resumed from where it
// stopped, on a new connection.
func (r *Storage) Open(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	rc, err := r.open(ctx, name, offset, length)
	if err != nil {
		return nil, err
	}
	return &resumingReader{r: r, ctx: ctx, name: name, offset: offset, length: length, rc: rc}, nil
}

func (r *Storage) open(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	var rc io.ReadCloser
	err := r.do(ctx, "open", name, nil, func() (err error) {
		rc, err = r.next.Open(ctx, name, offset, length)
		return err
	})
	return rc, err
}

// Close closes the wrapped storage.
func (r *Storage) Close() error { return r.next.Close() }

type resumingReader struct {
	r      *Storage
	ctx    context.Context
	name   string
	offset int64 // where rc started
	length int64 // bytes wanted from offset; 0 = to the end
	read   int64 // bytes read so far
	rc     io.ReadCloser
	fails  int // transient read failures since the last progress
}

func (rr *resumingReader) Read(p []byte) (int, error) {
	for {
		if rr.rc == nil {
			return 0, errors.New("read after close")
		}
		n, err := rr.rc.Read(p)
		rr.read += int64(n)
		if n > 0 {
			rr.fails = 0
		}
		if err == nil || err == io.EOF || !storage.IsTransient(err) || rr.ctx.Err() != nil {
			return n, err
		}
		if n > 0 {
			// Hand over what arrived; the next Read meets the broken reader again.
			return n, nil
		}
		if rr.length > 0 && rr.read >= rr.length {
			return 0, io.EOF
		}
		rr.fails++
		if rr.fails >= rr.r.p.Attempts {
			return 0, err
		}
		rr.r.p.Logger.WarnContext(rr.ctx, "storage read broke, resuming", "name", rr.name, "at", rr.offset+rr.read, "err", err)
		_ = rr.rc.Close()
		rr.rc = nil
		length := int64(0)
		if rr.length > 0 {
			length = rr.length - rr.read
		}
		rc, oerr := rr.r.open(rr.ctx, rr.name, rr.offset+rr.read, length)
		if oerr != nil {
			return 0, oerr
		}
		rr.rc = rc
	}
}

func (rr *resumingReader) Close() error {
	if rr.rc == nil {
		return nil
	}
	err := rr.rc.Close()
	rr.rc = nil
	return err
}
