// Package jobs runs backups on their schedules: each job at the times its frequency
// gives, once per due time, and once at start for a run that was due while the server
// was off.
package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/vigil-backup/vigil/internal/schedule"
)

// Job is work done on a frequency.
type Job struct {
	Name      string // unique among the jobs: the key of its state
	Frequency schedule.Frequency
	Run       func(ctx context.Context) error
}

// Store keeps, per job, the last due time dealt with, so that a restart neither skips a
// run nor does one twice. The catalog is the store of the daemon.
type Store interface {
	// LastDue returns the due time last dealt with; ok is false for a job never seen.
	LastDue(ctx context.Context, job string) (t time.Time, ok bool, err error)
	SetLastDue(ctx context.Context, job string, t time.Time) error
}

// Clock is the time as the scheduler sees it; tests step it by hand.
type Clock interface {
	Now() time.Time
	// After sends on the channel once d has passed.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Scheduler runs jobs at their due times.
type Scheduler struct {
	Jobs  []Job
	Store Store
	Clock Clock // nil for the real one
	Log   *slog.Logger
	// maxSleep bounds one wait, so that a clock that jumps (a machine resumed from
	// suspend, NTP stepping the time) is noticed within it.
	maxSleep time.Duration
}

// Run runs the jobs until ctx ends. Each job runs in its own goroutine, so a long backup
// does not hold back another job's start; a job never runs twice at once.
func (s *Scheduler) Run(ctx context.Context) error {
	if s.Clock == nil {
		s.Clock = realClock{}
	}
	if s.Log == nil {
		s.Log = slog.New(slog.DiscardHandler)
	}
	if s.maxSleep == 0 {
		s.maxSleep = time.Minute
	}
	seen := map[string]bool{}
	for _, j := range s.Jobs {
		if seen[j.Name] {
			return fmt.Errorf("two jobs are named %q", j.Name)
		}
		seen[j.Name] = true
	}
	var wg sync.WaitGroup
	for _, j := range s.Jobs {
		wg.Go(func() { s.loop(ctx, j) })
	}
	wg.Wait()
	return ctx.Err()
}

func (s *Scheduler) loop(ctx context.Context, j Job) {
	log := s.Log.With("job", j.Name, "schedule", j.Frequency.String())
	now := s.Clock.Now()
	last, ok, err := s.Store.LastDue(ctx, j.Name)
	if err != nil {
		log.Error("job state unreadable: the job starts from now", "err", err)
	}
	if !ok || err != nil {
		// A new job starts from now: it owes no run for the time before it existed.
		last = now
		s.setLastDue(ctx, log, j, now)
	}
	for ctx.Err() == nil {
		due := j.Frequency.Next(last)
		if due.IsZero() {
			return
		}
		if err := s.waitUntil(ctx, due); err != nil {
			return
		}
		now := s.Clock.Now()
		// Runs due while the server was off, or while this job ran long, are made up for
		// by one run, not one each.
		latest := due
		for n := j.Frequency.Next(latest); !n.IsZero() && !n.After(now); n = j.Frequency.Next(latest) {
			latest = n
		}
		if latest != due || now.Sub(due) > time.Minute {
			log.Info("running a backup that was due while vigil was not running", "due", due, "runs_missed", countBetween(j.Frequency, due, latest))
		}
		start := s.Clock.Now()
		log.Info("scheduled job starts", "due", latest)
		err := j.Run(ctx)
		switch {
		case err == nil:
			log.Info("scheduled job done", "took", s.Clock.Now().Sub(start))
		case errors.Is(err, context.Canceled) && ctx.Err() != nil:
			// Stopped by shutdown: due again at the next start.
			log.Info("scheduled job stopped by shutdown; it runs again at the next start")
			return
		default:
			log.Error("scheduled job failed; it runs again at its next time", "err", err)
		}
		last = latest
		s.setLastDue(ctx, log, j, latest)
	}
}

func countBetween(f schedule.Frequency, from, to time.Time) int {
	n := 1
	for t := f.Next(from); !t.IsZero() && !t.After(to); t = f.Next(t) {
		n++
	}
	return n
}

func (s *Scheduler) setLastDue(ctx context.Context, log *slog.Logger, j Job, t time.Time) {
	if err := s.Store.SetLastDue(ctx, j.Name, t); err != nil && ctx.Err() == nil {
		log.Error("job state not saved: after a restart the job may run again", "err", err)
	}
}

// waitUntil returns at t, or with ctx's error.
func (s *Scheduler) waitUntil(ctx context.Context, t time.Time) error {
	for {
		d := t.Sub(s.Clock.Now())
		if d <= 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.Clock.After(min(d, s.maxSleep)):
		}
	}
}
