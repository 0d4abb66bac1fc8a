package retry_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/internal/storage"
	"github.com/vigil-backup/vigil/internal/storage/mem"
	"github.com/vigil-backup/vigil/internal/storage/retry"
	"github.com/vigil-backup/vigil/internal/storage/storagetest"
)

var (
	dropped = storage.NewError("put", "x", storage.ErrUnreachable, errors.New("connection reset"))
	denied  = storage.NewError("put", "x", storage.ErrPermission, errors.New("access denied"))
	fast    = retry.Policy{Initial: time.Millisecond, Max: 4 * time.Millisecond, Attempts: 4}
)

func TestRetries(t *testing.T) {
	cases := []struct {
		name      string
		op        string
		failures  int
		err       error
		wantErr   error // nil: success
		wantCalls int
	}{
		{"put recovers", "put", 3, dropped, nil, 4},
		{"put gives up", "put", 4, dropped, storage.ErrUnreachable, 4},
		{"put fails for good at once", "put", 1, denied, storage.ErrPermission, 1},
		{"stat recovers", "stat", 2, dropped, nil, 3},
		{"list recovers", "list", 1, dropped, nil, 2},
		{"remove recovers", "remove", 1, dropped, nil, 2},
		{"open recovers", "open", 3, dropped, nil, 4},
		{"cancellation is final", "stat", 1, context.Canceled, context.Canceled, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			f := storagetest.NewFaulty(mem.New())
			storagetest.MustPut(t, f, "x", []byte("content"))
			base := f.Calls(c.op)
			f.FailNext(c.op, c.failures, c.err)
			s := retry.New(f, fast)
			var err error
			switch c.op {
			case "put":
				err = s.Put(ctx, "x", storage.BytesSource([]byte("new content")), storage.PutOptions{})
			case "stat":
				_, err = s.Stat(ctx, "x")
			case "list":
				err = s.List(ctx, "", func(storage.FileInfo) error { return nil })
			case "remove":
				err = s.Remove(ctx, "x")
			case "open":
				var rc io.ReadCloser
				if rc, err = s.Open(ctx, "x", 0, 0); err == nil {
					rc.Close()
				}
			}
			if c.wantErr == nil && err != nil || c.wantErr != nil && !errors.Is(err, c.wantErr) {
				t.Fatalf("got %v, want %v", err, c.wantErr)
			}
			if got := f.Calls(c.op) - base; got != c.wantCalls {
				t.Fatalf("%d calls, want %d", got, c.wantCalls)
			}
		})
	}
}

// TestPutRewinds checks that a Put cut off mid-transfer resends the whole source.
func TestPutRewinds(t *testing.T) {
	f := storagetest.NewFaulty(mem.New())
	f.CutPut(2, 5, dropped)
	data := storagetest.RandomBytes(1, 1000)
	if err := retry.New(f, fast).Put(context.Background(), "x", storage.BytesSource(data), storage.PutOptions{}); err != nil {
		t.Fatalf("put: %v", err)
	}
	if got := storagetest.MustRead(t, f, "x"); !bytes.Equal(got, data) {
		t.Fatalf("stored %d bytes that differ from the %d sent", len(got), len(data))
	}
}

// TestRemoveAfterLostReply: a remove whose reply was lost has done its work; the retry
// finds nothing and that is success.
func TestRemoveAfterLostReply(t *testing.T) {
	ctx := context.Background()
	inner := mem.New()
	storagetest.MustPut(t, inner, "x", []byte("x"))
	s := retry.New(&lostReply{Storage: inner}, fast)
	if err := s.Remove(ctx, "x"); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if err := s.Remove(ctx, "x"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a first remove of a missing object: got %v, want not found", err)
	}
}

// lostReply removes, then reports the connection dropped, once.
type lostReply struct {
	storage.Storage
	done bool
}

func (l *lostReply) Remove(ctx context.Context, name string) error {
	err := l.Storage.Remove(ctx, name)
	if !l.done && err == nil {
		l.done = true
		return dropped
	}
	return err
}

// TestListNotRepeated: once the callback has seen objects, a broken listing is not started
// again, so no object is reported twice.
func TestListNotRepeated(t *testing.T) {
	s := retry.New(&brokenList{Storage: mem.New()}, fast)
	storagetest.MustPut(t, s, "a", []byte("a"))
	seen := 0
	err := s.List(context.Background(), "", func(storage.FileInfo) error { seen++; return nil })
	if !errors.Is(err, storage.ErrUnreachable) || seen != 1 {
		t.Fatalf("got %v after %d objects, want unreachable after 1", err, seen)
	}
}

type brokenList struct{ storage.Storage }

func (b *brokenList) List(ctx context.Context, prefix string, fn func(storage.FileInfo) error) error {
	if err := b.Storage.List(ctx, prefix, fn); err != nil {
		return err
	}
	return dropped
}

// TestReadResumes checks that reads broken twice still deliver every byte, in order, once.
func TestReadResumes(t *testing.T) {
	f := storagetest.NewFaulty(mem.New())
	data := storagetest.RandomBytes(2, 100_000)
	storagetest.MustPut(t, f, "x", data)
	f.CutReads(2, 30_000, dropped)
	for _, c := range []struct{ off, n int64 }{{0, 0}, {1000, 80_000}} {
		got, err := storagetest.Read(context.Background(), retry.New(f, fast), "x", c.off, c.n)
		want := data[c.off:]
		if c.n > 0 {
			want = want[:c.n]
		}
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("read %d+%d: %d bytes (want %d), %v", c.off, c.n, len(got), len(want), err)
		}
		f.CutReads(2, 30_000, dropped)
	}
}

func TestCancelledWait(t *testing.T) {
	f := storagetest.NewFaulty(mem.New())
	f.FailNext("stat", 1, dropped)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	start := time.Now()
	_, err := retry.New(f, retry.Policy{Initial: time.Hour, Attempts: 3}).Stat(ctx, "x")
	if !errors.Is(err, storage.ErrUnreachable) || time.Since(start) > 10*time.Second {
		t.Fatalf("a cancelled wait: got %v after %v", err, time.Since(start))
	}
}
