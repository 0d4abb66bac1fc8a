package footage_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/internal/events"
	"github.com/vigil-backup/vigil/internal/footage"
	"github.com/vigil-backup/vigil/internal/storage"
	"github.com/vigil-backup/vigil/internal/storage/mem"
)

// clock is a run's time, moved on by the storage as it stores chunks.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// slowStorage takes a minute of the clock to store each chunk, so that a window closes
// after a known number of copies.
type slowStorage struct {
	storage.Storage
	clock *clock
}

func (s *slowStorage) Put(ctx context.Context, name string, src storage.Source, opts storage.PutOptions) error {
	err := s.Storage.Put(ctx, name, src, opts)
	if !strings.Contains(name, "/.vigil/") {
		s.clock.mu.Lock()
		s.clock.now = s.clock.now.Add(time.Minute)
		s.clock.mu.Unlock()
	}
	return err
}

func backupUntil(t *testing.T, root string, c *clock, until time.Time, s storage.Storage) (footage.Result, *eventRecorder) {
	t.Helper()
	rec := &eventRecorder{}
	res, err := footage.Backup(context.Background(), footage.BackupOptions{
		Source: root, Layout: testLayout{}, ServerID: "srv1", Parallel: 1, Now: c.Now, Until: until,
		Targets: []footage.Target{{Name: "s", Storage: s}}, Events: rec,
	})
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	if n := len(rec.got); n != 2 {
		t.Fatalf("got %d events, want started and finished", n)
	}
	return res, rec
}

func TestBackupWindowClosedAtStart(t *testing.T) {
	root := t.TempDir()
	now := t0.Add(time.Hour)
	archive(t, root, []string{"cam1"}, 3, false, now)
	c := &clock{now: now}
	s := mem.New()
	res, rec := backupUntil(t, root, c, now, &slowStorage{Storage: s, clock: c})
	if !res.WindowEnded || res.Complete() || res.Targets[0].Copied != 0 || res.Targets[0].Err != nil {
		t.Fatalf("result: %+v", res)
	}
	if got := rec.got[1].Reason; got != events.ReasonWindowEnded {
		t.Fatalf("reason %q, want %q", got, events.ReasonWindowEnded)
	}
	if got := stored(t, s); len(got) != 0 {
		t.Fatalf("copied %q after the window closed", got)
	}
	for key, st := range statusOf(t, s) {
		if !st.CompleteUntil.IsZero() {
			t.Fatalf("%s: complete until %v with nothing copied", key, st.CompleteUntil)
		}
	}
}

func TestBackupWindowEndsMidRun(t *testing.T) {
	root := t.TempDir()
	now := t0.Add(time.Hour)
	closed := archive(t, root, []string{"cam1"}, 5, false, now)
	c := &clock{now: now}
	s := mem.New()
	slow := &slowStorage{Storage: s, clock: c}
	// Each copy takes a minute: three start before the window closes.
	res, rec := backupUntil(t, root, c, now.Add(150*time.Second), slow)
	if !res.WindowEnded || res.Complete() || res.Targets[0].Copied != 3 || res.Targets[0].Err != nil {
		t.Fatalf("result: %+v", res)
	}
	if fin := rec.got[1]; fin.Reason != events.ReasonWindowEnded || fin.Fields["window_ended"] != true {
		t.Fatalf("finished: %+v", fin)
	}
	got := stored(t, s)
	if len(got) != 3 {
		t.Fatalf("stored %q, want the three oldest chunks", got)
	}
	for _, p := range got {
		if c, _ := (testLayout{}).Parse(p); !c.Start.Before(t0.Add(20 * time.Second)) {
			t.Fatalf("stored %s before older chunks", p)
		}
	}
	// Oldest first: both streams' first chunk and one stream's second.
	sts := statusOf(t, s)
	var untils []time.Time
	chunks := 0
	for _, st := range sts {
		untils = append(untils, st.CompleteUntil)
		chunks += st.Chunks
	}
	slices.SortFunc(untils, time.Time.Compare)
	if len(untils) != 2 || !untils[0].Equal(t0.Add(10*time.Second)) || !untils[1].Equal(t0.Add(20*time.Second)) || chunks != 3 {
		t.Fatalf("statuses after the window closed: %+v", sts)
	}
	for _, tr := range res.Targets {
		if u, _ := footage.Oldest(tr.CompleteUntil); !u.Equal(t0.Add(10 * time.Second)) {
			t.Fatalf("result complete until %v", tr.CompleteUntil)
		}
	}

	// The next window: the run goes on where this one stopped.
	res, rec = backupUntil(t, root, c, time.Time{}, slow)
	if res.WindowEnded || !res.Complete() || res.Targets[0].Copied != 7 {
		t.Fatalf("next run: %+v", res)
	}
	if got := rec.got[1].Reason; got != events.ReasonDone {
		t.Fatalf("next run's reason %q", got)
	}
	slices.Sort(closed)
	if got := stored(t, s); !slices.Equal(got, closed) {
		t.Fatalf("stored %q, want %q", got, closed)
	}
	for key, st := range statusOf(t, s) {
		if want := t0.Add(50 * time.Second); !st.CompleteUntil.Equal(want) || st.Chunks != 5 {
			t.Fatalf("%s: status %+v, want complete until %v", key, st, want)
		}
	}
}

func TestBackupWindowOpenThroughout(t *testing.T) {
	root := t.TempDir()
	now := t0.Add(time.Hour)
	archive(t, root, []string{"cam1"}, 2, false, now)
	c := &clock{now: now}
	res, rec := backupUntil(t, root, c, now.Add(time.Hour), &slowStorage{Storage: mem.New(), clock: c})
	if res.WindowEnded || !res.Complete() || res.Targets[0].Copied != 4 {
		t.Fatalf("result: %+v", res)
	}
	if got := rec.got[1].Reason; got != events.ReasonDone {
		t.Fatalf("reason %q", got)
	}
}
