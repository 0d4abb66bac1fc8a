package vault

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/internal/events"
)

// fastParams keep tests quick; one test uses DefaultParams.
var fastParams = Params{Time: 1, MemoryKiB: 1024, Threads: 1}

var t0 = time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)

// The PINs tests use. Neither may ever show in an error or an event.
const (
	oldPIN = "4711-0815"
	newPIN = "2718281828"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// recorder is a sink that keeps the events it is sent.
type recorder struct {
	mu     sync.Mutex
	events []events.Event
}

func (r *recorder) Send(ctx context.Context, e events.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	return nil
}

// take returns the events sent since the last take.
func (r *recorder) take() []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.events
	r.events = nil
	return e
}

func types(es []events.Event) []string {
	var s []string
	for _, e := range es {
		s = append(s, e.Type)
	}
	return s
}

type fixture struct {
	v     *Vault
	store Store
	clock *clock
	sink  *recorder
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{store: NewMemoryStore(), clock: &clock{t: t0}, sink: &recorder{}}
	f.v = New(f.store, WithParams(fastParams), WithClock(f.clock.now), WithEvents(f.sink))
	return f
}

// withPIN is a fixture whose vault has oldPIN set, its events taken.
func withPIN(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t)
	if err := f.v.Set(context.Background(), oldPIN); err != nil {
		t.Fatal(err)
	}
	f.sink.take()
	return f
}

func (f *fixture) status(t *testing.T) Status {
	t.Helper()
	s, err := f.v.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s = %v, want %v", what, err, target)
	}
}
