package events_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/internal/catalog"
	"github.com/vigil-backup/vigil/internal/events"
)

var _ events.State = (*catalog.Catalog)(nil)

// stateKinds makes, for each kind of State, two values that share what they hold: the
// same file, the same catalog file, or, in memory, the same value.
var stateKinds = []struct {
	name string
	open func(t *testing.T) (a, b events.State)
}{
	{"memory", func(t *testing.T) (events.State, events.State) {
		s := events.NewMemoryState()
		return s, s
	}},
	{"file", func(t *testing.T) (events.State, events.State) {
		path := filepath.Join(t.TempDir(), "state", "events.json")
		return events.NewFileState(path), events.NewFileState(path)
	}},
	{"catalog", func(t *testing.T) (events.State, events.State) {
		path := filepath.Join(t.TempDir(), "catalog.db")
		return openCatalog(t, path), openCatalog(t, path)
	}},
}

func openCatalog(t *testing.T, path string) *catalog.Catalog {
	t.Helper()
	c, err := catalog.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestState is the contract every State keeps.
func TestState(t *testing.T) {
	ctx := context.Background()
	for _, kind := range stateKinds {
		t.Run(kind.name, func(t *testing.T) {
			a, b := kind.open(t)
			failing := func(s events.State, key string) bool {
				t.Helper()
				f, err := s.EventFailing(ctx, key)
				if err != nil {
					t.Fatal(err)
				}
				return f
			}
			// The sinks' keys join type and source with a NUL.
			key, other := "backup.finished\x00footage", "backup.finished\x00datasets"
			if failing(a, key) {
				t.Fatal("a key never set is failing")
			}
			if err := a.ClearEventFailing(ctx, key); err != nil {
				t.Fatalf("clearing a key that is not failing: %v", err)
			}
			for _, s := range []events.State{a, b} {
				if err := s.SetEventFailing(ctx, key, t0); err != nil {
					t.Fatal(err)
				}
			}
			if !failing(a, key) || !failing(b, key) {
				t.Fatal("a key set is not failing")
			}
			if failing(b, other) {
				t.Fatal("another key is failing too")
			}
			if err := b.SetEventFailing(ctx, other, t0); err != nil {
				t.Fatal(err)
			}
			if err := b.ClearEventFailing(ctx, key); err != nil {
				t.Fatal(err)
			}
			if failing(a, key) || !failing(a, other) {
				t.Fatal("clearing one key did not clear it, or cleared another")
			}
		})
	}
}

// TestOnceUntilSuccessSharedState stands for a restart: a second sink on the same state
// does not repeat a failure the first delivered, and hears of the recovery.
func TestOnceUntilSuccessSharedState(t *testing.T) {
	ctx := context.Background()
	key := func(e events.Event) string { return e.Type + "\x00" + e.Source }
	for _, kind := range stateKinds {
		t.Run(kind.name, func(t *testing.T) {
			a, b := kind.open(t)
			first, second := &recorder{}, &recorder{}
			before := events.OnceUntilSuccess(first, key, a)
			after := events.OnceUntilSuccess(second, key, b)
			for i, step := range []struct {
				sink  events.Sink
				next  *recorder
				event events.Event
				sent  bool
			}{
				{before, first, finished(events.ReasonFailedTarget), true},
				{after, second, finished(events.ReasonFailedTarget), false},
				{after, second, finished(events.ReasonDone), true},
				{before, first, finished(events.ReasonFailedSource), true},
				{after, second, finished(events.ReasonFailedSource), false},
			} {
				n := len(step.next.got)
				if err := step.sink.Send(ctx, step.event); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if sent := len(step.next.got) > n; sent != step.sent {
					t.Fatalf("step %d (%s): sent %v, want %v", i, step.event.Reason, sent, step.sent)
				}
			}
		})
	}
}

func TestFileStateCorrupt(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.json")
	if err := os.WriteFile(path, []byte(`{"failing": {"k": `), 0o600); err != nil {
		t.Fatal(err)
	}
	next := &recorder{}
	sink := events.OnceUntilSuccess(next, func(e events.Event) string { return e.Source }, events.NewFileState(path))

	// The failure is delivered, as the file cannot say it was before, and the corrupt
	// file is reported.
	err := sink.Send(ctx, finished(events.ReasonFailedTarget))
	if err == nil || !strings.Contains(err.Error(), "corrupt") || !strings.Contains(err.Error(), path) {
		t.Fatalf("error %v, want one that says %s is corrupt", err, path)
	}
	if len(next.got) != 1 {
		t.Fatalf("%d events delivered, want the failure", len(next.got))
	}
	// Delivering it replaced the file, which now holds the failure.
	if err := sink.Send(ctx, finished(events.ReasonFailedTarget)); err != nil {
		t.Fatal(err)
	}
	if len(next.got) != 1 {
		t.Fatal("the failure was delivered again")
	}
	var st struct{ Failing map[string]time.Time }
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("the file is still corrupt: %v\n%s", err, b)
	}
	if !st.Failing["footage"].Equal(t0) {
		t.Fatalf("file holds %s, want footage failing since %s", b, t0)
	}
}

func TestFileStateUnusable(t *testing.T) {
	// A folder where the file should be makes the state unusable: events are delivered
	// all the same, and the error says the state was not read or recorded.
	path := filepath.Join(t.TempDir(), "events.json")
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	next := &recorder{}
	sink := events.OnceUntilSuccess(next, func(e events.Event) string { return e.Source }, events.NewFileState(path))
	for i, e := range []events.Event{finished(events.ReasonFailedTarget), finished(events.ReasonFailedTarget), finished(events.ReasonDone)} {
		err := sink.Send(context.Background(), e)
		if len(next.got) != i+1 {
			t.Fatalf("event %d (%s) was not delivered", i, e.Reason)
		}
		if err == nil || !strings.Contains(err.Error(), "event state") {
			t.Fatalf("event %d (%s): error %v, want one about the event state", i, e.Reason, err)
		}
	}
}
