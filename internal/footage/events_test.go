package footage_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/internal/events"
	"github.com/vigil-backup/vigil/internal/footage"
	"github.com/vigil-backup/vigil/internal/storage"
	"github.com/vigil-backup/vigil/internal/storage/mem"
	"github.com/vigil-backup/vigil/internal/storage/storagetest"
)

// eventRecorder is a sink that keeps what it is sent, and whether the context it was
// given was already done; it fails every send when err is set.
type eventRecorder struct {
	mu      sync.Mutex
	got     []events.Event
	ctxDone []bool
	err     error
}

func (r *eventRecorder) Send(ctx context.Context, e events.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, e)
	r.ctxDone = append(r.ctxDone, ctx.Err() != nil)
	return r.err
}

func storageFields(t *testing.T, e events.Event) map[string]map[string]any {
	t.Helper()
	list, ok := e.Fields["storages"].([]map[string]any)
	if !ok {
		t.Fatalf("storages field: %#v", e.Fields["storages"])
	}
	out := map[string]map[string]any{}
	for _, st := range list {
		out[st["name"].(string)] = st
	}
	return out
}

func TestBackupEvents(t *testing.T) {
	noSpace := storage.NewError("put", "x", storage.ErrNoSpace, errors.New("disk full"))
	for _, tc := range []struct {
		name       string
		failing    []string // storages whose puts fail
		cancel     bool     // cancel the run after its first copy
		wantReason string
	}{
		{name: "done", wantReason: events.ReasonDone},
		{name: "one storage fails", failing: []string{"bad"}, wantReason: events.ReasonFailedTarget},
		{name: "every storage fails", failing: []string{"good", "bad"}, wantReason: events.ReasonFailedNoStorage},
		{name: "cancelled", cancel: true, wantReason: events.ReasonCancelled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			now := t0.Add(time.Hour)
			archive(t, root, []string{"cam1"}, 4, true, now)
			good, bad := storagetest.NewFaulty(mem.New()), storagetest.NewFaulty(mem.New())
			for _, name := range tc.failing {
				map[string]*storagetest.Faulty{"good": good, "bad": bad}[name].FailNext("put", 1000, noSpace)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			rec := &eventRecorder{}
			res, err := footage.Backup(ctx, footage.BackupOptions{
				Source: root, Layout: testLayout{}, ServerID: "srv1", Parallel: 1, Now: func() time.Time { return now },
				Targets: []footage.Target{{Name: "good", Storage: good}, {Name: "bad", Storage: bad}},
				Events:  rec,
				Progress: func(p footage.Progress) {
					if tc.cancel && p.CopiesDone > 0 {
						cancel()
					}
				},
			})
			if tc.cancel != (err != nil) {
				t.Fatalf("backup: %v", err)
			}
			if len(rec.got) != 2 {
				t.Fatalf("got %d events, want started and finished: %+v", len(rec.got), rec.got)
			}
			started, fin := rec.got[0], rec.got[1]
			if started.Type != events.BackupStarted || started.Source != "footage" || !started.Time.Equal(now) ||
				started.Fields["chunks"] != 6 || started.Fields["recording"] != 2 {
				t.Fatalf("started: %+v", started)
			}
			if fin.Type != events.BackupFinished || fin.Source != "footage" || fin.Message != "Archive backup finished" || fin.Reason != tc.wantReason {
				t.Fatalf("finished: %+v, want reason %s", fin, tc.wantReason)
			}
			if rec.ctxDone[1] {
				t.Fatalf("the finished event was sent with a context already done")
			}
			if _, ok := fin.Fields["duration_seconds"].(float64); !ok {
				t.Fatalf("duration_seconds: %#v", fin.Fields["duration_seconds"])
			}
			sts := storageFields(t, fin)
			for _, tr := range res.Targets {
				st := sts[tr.Name]
				if st["copied_chunks"] != tr.Copied || st["copied_bytes"] != tr.Bytes {
					t.Errorf("%s: event %v, result %+v", tr.Name, st, tr)
				}
				if (tr.Err != nil) != (st["error"] != nil) {
					t.Errorf("%s: event error %v, result error %v", tr.Name, st["error"], tr.Err)
				}
				if u, ok := footage.Oldest(tr.CompleteUntil); ok != (st["complete_until"] != nil) ||
					ok && st["complete_until"] != u.Format(time.RFC3339) {
					t.Errorf("%s: event complete_until %v, result %v", tr.Name, st["complete_until"], tr.CompleteUntil)
				}
			}
			if tc.wantReason == events.ReasonDone {
				// The three closed chunks of each stream, 10 s each from t0.
				if want := t0.Add(30 * time.Second).Format(time.RFC3339); sts["good"]["complete_until"] != want {
					t.Fatalf("complete_until %v, want %s", sts["good"]["complete_until"], want)
				}
			}
		})
	}
}

func TestBackupEventSinkFails(t *testing.T) {
	root := t.TempDir()
	now := t0.Add(time.Hour)
	archive(t, root, []string{"cam1"}, 2, false, now)
	rec := &eventRecorder{err: errors.New("the receiver is down")}
	res, err := footage.Backup(context.Background(), footage.BackupOptions{
		Source: root, Layout: testLayout{}, ServerID: "srv1", Now: func() time.Time { return now },
		Targets: []footage.Target{{Name: "good", Storage: mem.New()}}, Events: rec,
	})
	if err != nil || !res.Complete() {
		t.Fatalf("a sink that fails failed the backup: %v, complete %v", err, res.Complete())
	}
	if len(rec.got) != 2 {
		t.Fatalf("got %d events", len(rec.got))
	}
}

func TestBackupEventUnreadableArchive(t *testing.T) {
	rec := &eventRecorder{}
	_, err := footage.Backup(context.Background(), footage.BackupOptions{
		Source: t.TempDir() + "/gone", Layout: testLayout{}, ServerID: "srv1",
		Targets: []footage.Target{{Name: "good", Storage: mem.New()}}, Events: rec,
	})
	if err == nil {
		t.Fatalf("a backup of a missing archive succeeded")
	}
	if len(rec.got) != 1 || rec.got[0].Type != events.BackupFinished || rec.got[0].Reason != events.ReasonFailedSource {
		t.Fatalf("events: %+v", rec.got)
	}
}

// all returns the events sent so far.
func (r *eventRecorder) all() []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]events.Event(nil), r.got...)
}

// count is how many events of type typ were sent.
func (r *eventRecorder) count(typ string) int {
	n := 0
	for _, e := range r.all() {
		if e.Type == typ {
			n++
		}
	}
	return n
}

// last returns the last event of type typ.
func (r *eventRecorder) last(typ string) events.Event {
	var out events.Event
	for _, e := range r.all() {
		if e.Type == typ {
			out = e
		}
	}
	return out
}
