package jobs

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/internal/schedule"
)

// jumpClock jumps to the end of every wait at once, so a year of schedule runs in
// milliseconds, in order.
type jumpClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *jumpClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *jumpClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

func (c *jumpClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type memStore struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (m *memStore) LastDue(_ context.Context, job string) (time.Time, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.last[job]
	return t, ok, nil
}

func (m *memStore) SetLastDue(_ context.Context, job string, t time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.last[job] = t
	return nil
}

// runUntil runs a scheduler of one job until the job has run n times, and returns when
// each run started, in the frequency's zone.
func runUntil(t *testing.T, clk *jumpClock, store *memStore, f schedule.Frequency, n int, run func(ctx context.Context, i int) error) []string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var runs []string
	s := &Scheduler{Store: store, Clock: clk, maxSleep: 6 * time.Hour, Jobs: []Job{{Name: "Data", Frequency: f, Run: func(ctx context.Context) error {
		runs = append(runs, clk.Now().In(f.Location()).Format("Mon 2006-01-02 15:04"))
		if len(runs) == n {
			cancel() // the n-th run is the last; it sees the shutdown coming
		}
		if run != nil {
			return run(ctx, len(runs)-1)
		}
		return nil
	}}}}
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("the scheduler did not run %d times: %v", n, runs)
	}
	return runs
}

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// TestDailyAcrossDST: a daily 02:30 run in Berlin happens every day of a year, once: at
// 03:00 on the spring-forward night, and at the first 02:30 on the fall-back night.
func TestDailyAcrossDST(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	clk := &jumpClock{now: time.Date(2026, 1, 1, 12, 0, 0, 0, berlin)}
	runs := runUntil(t, clk, &memStore{last: map[string]time.Time{}}, schedule.Daily(2, 30, berlin), 365, nil)
	seen := map[string]bool{}
	for _, r := range runs {
		day := r[:14]
		if seen[day] {
			t.Errorf("two runs on %s", day)
		}
		seen[day] = true
		want := "02:30"
		if day == "Sun 2026-03-29" {
			want = "03:00"
		}
		if r[15:] != want {
			t.Errorf("run %s, want at %s", r, want)
		}
	}
	if runs[0] != "Fri 2026-01-02 02:30" || runs[364] != "Fri 2027-01-01 02:30" {
		t.Errorf("first %s, last %s", runs[0], runs[364])
	}
}

// TestMissedRun: backups due while the server was off are made up for by one run at
// start; a new job owes nothing for the time before it existed.
func TestMissedRun(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	weekly := schedule.Weekly(time.Sunday, 4, 0, berlin)
	for _, tc := range []struct {
		name string
		last time.Time // zero: never seen
		want []string
	}{
		{"two Sundays missed", time.Date(2026, 11, 1, 4, 0, 0, 0, berlin), []string{"Wed 2026-11-18 10:00", "Sun 2026-11-22 04:00", "Sun 2026-11-29 04:00"}},
		{"nothing missed", time.Date(2026, 11, 15, 4, 0, 0, 0, berlin), []string{"Sun 2026-11-22 04:00", "Sun 2026-11-29 04:00", "Sun 2026-12-06 04:00"}},
		{"new job", time.Time{}, []string{"Sun 2026-11-22 04:00", "Sun 2026-11-29 04:00", "Sun 2026-12-06 04:00"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := &memStore{last: map[string]time.Time{}}
			if !tc.last.IsZero() {
				store.last["Data"] = tc.last
			}
			clk := &jumpClock{now: time.Date(2026, 11, 18, 10, 0, 0, 0, berlin)}
			runs := runUntil(t, clk, store, weekly, 3, nil)
			if len(runs) != 3 || runs[0] != tc.want[0] || runs[1] != tc.want[1] || runs[2] != tc.want[2] {
				t.Errorf("runs %v, want %v", runs, tc.want)
			}
		})
	}
}

// TestStoppedMidRun: a run cut short by shutdown is due again at the next start, and runs
// once then; a run that fails is not repeated before its next time.
func TestStoppedMidRun(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	weekly := schedule.Weekly(time.Sunday, 4, 0, berlin)
	store := &memStore{last: map[string]time.Time{"Data": time.Date(2026, 11, 15, 4, 0, 0, 0, berlin)}}
	clk := &jumpClock{now: time.Date(2026, 11, 18, 10, 0, 0, 0, berlin)}
	// The first run is cut by shutdown: the scheduler's context ends during it.
	runs := runUntil(t, clk, store, weekly, 1, func(ctx context.Context, i int) error {
		<-ctx.Done()
		return ctx.Err()
	})
	if runs[0] != "Sun 2026-11-22 04:00" || !store.last["Data"].Equal(time.Date(2026, 11, 15, 4, 0, 0, 0, berlin)) {
		t.Fatalf("runs %v, last due %v", runs, store.last["Data"])
	}
	clk.advance(2 * time.Hour) // restarted at 06:00
	runs = runUntil(t, clk, store, weekly, 2, func(ctx context.Context, i int) error {
		if i == 0 {
			return context.DeadlineExceeded // a failure, not a shutdown
		}
		return nil
	})
	if want := []string{"Sun 2026-11-22 06:00", "Sun 2026-11-29 04:00"}; runs[0] != want[0] || runs[1] != want[1] {
		t.Errorf("after restart: %v, want %v", runs, want)
	}
}
