package footage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/vigil-backup/vigil/internal/events"
)

// RealtimeOptions say what a real-time backup copies and how it watches the archive.
type RealtimeOptions struct {
	BackupOptions
	// CatchUp copies the chunks closed before the start too, in the time new footage
	// leaves; without it only chunks closed from then on are copied, and complete-until
	// stays where the older footage holds it (see SkipBefore).
	CatchUp bool
	// Debounce is how long a pass waits after a change in the archive, so that one pass
	// takes the chunks many cameras close at once. Default 50 ms.
	Debounce time.Duration
	// Rescan is the longest time between two passes, changes or not: it finds what the
	// watch cannot see (footage imported into old folders, a chunk that settles). Default
	// one minute.
	Rescan time.Duration
	// PassSlice is how long a pass hands out copies before it looks for new chunks again
	// (BackupOptions.Until is not used). Default 10 s.
	PassSlice time.Duration
	// BacklogWindow is how long the new footage waiting to be copied must keep growing,
	// over at least three passes, before backup.bandwidth_insufficient is sent. Default one
	// minute.
	BacklogWindow time.Duration
	// Pass is called after each pass with what it did; nil for none.
	Pass func(Result)
}

// Realtime backs up chunks as the recorder closes them, until ctx ends. It watches the
// archive's folders (fsnotify) and, after each change, runs a pass of Backup: with the
// scan cache a pass lists only the folders being written, so a closed chunk is on the
// storages about a pass later. A chunk is closed when the layout names it so
// (NamedOnClose), when its series' next chunk appears, or when its file settles.
//
// Events: backup.started when it starts, backup.finished with a failure reason when a
// pass fails (a storage or the archive), backup.started again once a pass succeeds after
// that, backup.bandwidth_insufficient when new footage arrives faster than it is copied,
// and backup.finished (cancelled) when ctx ends. The error is nil when ctx ended it; it is
// ErrCannotSpread, at once, when chunks cannot be spread over the storages given.
func Realtime(ctx context.Context, opts RealtimeOptions) error {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Debounce <= 0 {
		opts.Debounce = 50 * time.Millisecond
	}
	if opts.Rescan <= 0 {
		opts.Rescan = time.Minute
	}
	if opts.PassSlice <= 0 {
		opts.PassSlice = 10 * time.Second
	}
	if opts.BacklogWindow <= 0 {
		opts.BacklogWindow = time.Minute
	}
	if len(opts.Targets) == 0 {
		err := errors.New("back up footage: no storage to back up to")
		emit(ctx, opts.BackupOptions, failedEarly(ctx, events.ReasonFailedNoStorage, err))
		return err
	}
	w, limited, err := newWatcher(opts.Source)
	if err != nil {
		emit(ctx, opts.BackupOptions, failedEarly(ctx, events.ReasonFailedSource, err))
		return err
	}
	defer w.close()
	if limited {
		opts.Log.Warn("the archive has more folders than the system lets one process watch; new chunks in the others are found by the periodic rescan",
			"rescan", opts.Rescan, "hint", "raise fs.inotify.max_user_watches")
	}
	rt := &realtime{opts: opts, watcher: w, backlog: backlog{window: opts.BacklogWindow}}
	rt.started(ctx, opts.Now())
	settle := opts.Settle
	if settle <= 0 {
		settle = DefaultSettle
	}
	timer := time.NewTimer(0) // the first pass at once
	defer timer.Stop()
	due := opts.Now()
	for {
		select {
		case <-ctx.Done():
			rt.finished(ctx)
			return nil
		case <-w.changed:
			// The pass waits a little, so that what other cameras close meanwhile goes in
			// it; further changes do not put it off.
			if at := opts.Now().Add(opts.Debounce); at.Before(due) {
				due = at
				timer.Reset(opts.Debounce)
			}
			continue
		case <-timer.C:
		}
		w.drain()
		res, err := rt.pass(ctx)
		next := opts.Rescan
		switch {
		case err != nil && ctx.Err() != nil:
			rt.finished(ctx)
			return nil
		case errors.Is(err, ErrCannotSpread):
			// The operator must change the storages: no later pass could do better.
			emit(ctx, opts.BackupOptions, failedEarly(ctx, events.ReasonFailedTarget, err))
			return err
		case err != nil:
			// The archive could not be read: a disk gone, a share unmounted. It may come
			// back; the next pass tries again.
			rt.failed(ctx, events.ReasonFailedSource, res, err)
			next = min(next, 5*time.Second)
		case res.WindowEnded:
			next = 0 // the pass ran out of time: more is left
		case res.Recording > 0:
			next = min(next, settle) // a chunk that is closed by settling
		}
		due = opts.Now().Add(next)
		timer.Reset(next)
	}
}

type realtime struct {
	opts    RealtimeOptions
	watcher *watcher
	backlog backlog
	failing bool // the last pass failed, and the failure was reported
	fresh   *freshness
}

// pass runs one Backup over the archive.
func (rt *realtime) pass(ctx context.Context) (Result, error) {
	opts := rt.opts.BackupOptions
	opts.Events = nil // the real-time run reports for its passes
	first := rt.fresh == nil
	if first {
		// What was closed before the first pass is older footage; what it finds open, or
		// what starts later, is new. Until that pass has scanned, nothing is known to be new.
		rt.fresh = &freshness{since: opts.Now(), open: map[Key]time.Time{}}
		opts.fresh = &freshness{since: time.Unix(1<<62, 0)}
	} else {
		opts.fresh = rt.fresh
	}
	opts.catchUp = rt.opts.CatchUp
	opts.Until = opts.Now().Add(rt.opts.PassSlice)
	res, err := Backup(ctx, opts)
	if first {
		for _, f := range res.open {
			rt.fresh.open[KeyOf(f.Chunk)] = f.Start
		}
	}
	if err != nil {
		return res, err
	}
	if rt.opts.Pass != nil {
		rt.opts.Pass(res)
	}
	switch e := finishedEvent(res, nil); {
	case events.Failed(e.Reason):
		rt.failed(ctx, e.Reason, res, nil)
	case rt.failing:
		rt.failing = false
		rt.started(ctx, res.Finished)
	}
	if grew, ok := rt.backlog.add(res); ok {
		e := events.Event{Type: events.BackupBandwidthInsufficient, Message: "Archive backup falls behind: new footage arrives faster than it is copied",
			Fields: map[string]any{"backlog_chunks": grew.Queued, "backlog_bytes": grew.QueuedBytes, "seconds_growing": grew.Finished.Sub(grew.since).Seconds()}}
		emit(ctx, rt.opts.BackupOptions, e)
	}
	return res, nil
}

func (rt *realtime) started(ctx context.Context, at time.Time) {
	names := make([]string, len(rt.opts.Targets))
	for i, t := range rt.opts.Targets {
		names[i] = t.Name
	}
	emit(ctx, rt.opts.BackupOptions, events.Event{Type: events.BackupStarted, Message: "Archive backup started",
		Fields: map[string]any{"storages": names, "mode": "realtime", "catch_up": rt.opts.CatchUp, "since": at.UTC().Format(time.RFC3339)}})
}

// failed reports a pass that failed, once until a pass succeeds.
func (rt *realtime) failed(ctx context.Context, reason string, res Result, err error) {
	if rt.failing {
		return
	}
	rt.failing = true
	e := finishedEvent(res, nil)
	e.Reason = reason
	e.Fields["mode"] = "realtime"
	if err != nil {
		e.Fields["error"] = err.Error()
	}
	emit(ctx, rt.opts.BackupOptions, e)
}

func (rt *realtime) finished(ctx context.Context) {
	emit(context.WithoutCancel(ctx), rt.opts.BackupOptions, events.Event{Type: events.BackupFinished, Reason: events.ReasonCancelled,
		Message: "Archive backup finished", Fields: map[string]any{"mode": "realtime"}})
}

// backlog tells when new footage keeps arriving faster than it is copied: the copies a pass
// finds to make at its start grow pass after pass.
type backlog struct {
	window time.Duration
	last   Result    // the previous pass
	since  time.Time // when the growth began; zero when it does not grow
	passes int       // passes it has grown in
	warned bool
}

type growth struct {
	Result
	since time.Time
}

// add takes a pass's result and reports whether the backlog has now grown long enough to
// warn, once per growth.
func (b *backlog) add(res Result) (growth, bool) {
	defer func() { b.last = res }()
	switch {
	case res.QueuedBytes > b.last.QueuedBytes && b.last.QueuedBytes > 0:
		if b.since.IsZero() {
			b.since = b.last.Started
		}
		b.passes++
	case res.QueuedBytes*2 <= b.last.QueuedBytes || res.QueuedBytes == 0:
		// It is draining: a new growth warns again.
		b.since, b.passes, b.warned = time.Time{}, 0, false
		return growth{}, false
	default:
		return growth{}, false // holding steady is keeping up
	}
	if b.warned || b.passes < 3 || res.Finished.Sub(b.since) < b.window {
		return growth{}, false
	}
	b.warned = true
	return growth{res, b.since}, true
}

// watcher tells when something changed in the archive's folders. fsnotify watches one
// folder at a time, so every folder is watched, and each new one as it appears.
type watcher struct {
	root    string
	w       *fsnotify.Watcher
	changed chan struct{}
	done    chan struct{}
	// limited is set when the system's limit on watches was reached.
	limited bool
}

// newWatcher watches root's tree; limited reports that some folders could not be.
func newWatcher(root string) (w *watcher, limited bool, err error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, false, fmt.Errorf("watch archive %s: %w", root, err)
	}
	w = &watcher{root: root, w: fw, changed: make(chan struct{}, 1), done: make(chan struct{})}
	if err := w.addTree(root); err != nil {
		fw.Close()
		return nil, false, err
	}
	limited = w.limited // before the loop may change it
	go w.loop()
	return w, limited, nil
}

// addTree watches dir and the folders below it.
func (w *watcher) addTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		switch {
		case errors.Is(err, fs.ErrNotExist) && p != w.root:
			return nil // gone meanwhile
		case err != nil:
			return fmt.Errorf("watch archive %s: %w", w.root, err)
		case !d.IsDir() || w.limited:
			return nil
		}
		if err := w.w.Add(p); err != nil {
			if p == w.root {
				return fmt.Errorf("watch archive %s: %w", w.root, err)
			}
			// Out of watches (ENOSPC), or the folder went: the rescans cover it.
			w.limited = w.limited || !errors.Is(err, fs.ErrNotExist)
		}
		return nil
	})
}

func (w *watcher) loop() {
	defer close(w.done)
	for {
		select {
		case ev, ok := <-w.w.Events:
			if !ok {
				return
			}
			// A recorder writes to an open chunk many times a second; that changes nothing a
			// pass would act on. A new name does: a chunk closed (renamed) or begun.
			if !ev.Has(fsnotify.Create) && !ev.Has(fsnotify.Rename) && !ev.Has(fsnotify.Remove) {
				continue
			}
			if ev.Has(fsnotify.Create) {
				// A new folder may already hold files by the time it is watched: the pass
				// this event brings lists it.
				_ = w.addTree(ev.Name)
			}
			w.notify()
		case _, ok := <-w.w.Errors:
			if !ok {
				return
			}
			// An overflowed queue lost events: a pass finds what they were about.
			w.notify()
		}
	}
}

func (w *watcher) notify() {
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

// drain forgets the changes noticed so far: the pass about to start sees them.
func (w *watcher) drain() {
	select {
	case <-w.changed:
	default:
	}
}

func (w *watcher) close() {
	w.w.Close()
	<-w.done
}
