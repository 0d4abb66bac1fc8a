package footage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/vigil-backup/vigil/internal/events"
	"github.com/vigil-backup/vigil/internal/storage"
)

// Target is a backup storage footage goes to.
type Target struct {
	Name    string // how the operator knows it: a storage name or URL
	Storage storage.Storage
}

// BackupOptions say what to back up, from where, to where.
type BackupOptions struct {
	Source   string // the recorder's archive folder
	Layout   Layout
	ServerID string // this recording server's id: its folder on the storages
	Targets  []Target
	// Spread puts each chunk on one of the Targets only, the one with the most free space,
	// instead of on each of them (see spread.go). It needs two storages at least, each able
	// to report its free space.
	Spread   bool
	Cameras  []string // nil: every camera, also those that appear later
	Streams  []Stream // nil: both
	Parallel int      // chunks copied at once; default 4
	Settle   time.Duration
	// ScanCache is a file for the archive's folder listings between runs (ScanOptions.Cache).
	ScanCache string
	// Until is when the run's time window closes; zero for none. From then on no chunk
	// copy starts: copies under way finish, the indexes are written and the run ends with
	// Result.WindowEnded. The next run goes on where this one stopped.
	Until    time.Time
	Now      func() time.Time
	Progress func(Progress) // called from one goroutine at a time
	Log      *slog.Logger
	// Events hears when the run starts and how it ended; nil for none. A sink that fails
	// is logged and does not fail the run.
	Events events.Sink

	// fresh, set by Realtime, tells the chunks closed since it began, which a pass copies
	// before the older ones; the older only with catchUp, in the time the new leave.
	fresh   *freshness
	catchUp bool
}

// freshness tells the chunks a real-time backup found closed when it began: those that
// start and were last written before since, except the chunk that was open in their
// series then.
type freshness struct {
	since time.Time
	open  map[Key]time.Time
}

// old reports whether f was closed before the real-time backup began.
func (fr *freshness) old(f File) bool {
	if fr == nil || !f.Start.Before(fr.since) || !f.ModTime.Before(fr.since) {
		return false
	}
	o, ok := fr.open[KeyOf(f.Chunk)]
	return !ok || f.Start.Before(o)
}

// Progress is how far a run has got, in bytes and chunk copies (one chunk to two
// storages is two copies).
type Progress struct {
	Copies, CopiesDone int
	Bytes, BytesDone   int64
	Last               string // the chunk last copied
}

// Result is what a run did.
type Result struct {
	Started, Finished time.Time
	Chunks            int      // closed chunks selected in the archive
	Recording         int      // chunks still being written, left for a later run
	Unmatched         []string // files that fit no chunk of the layout
	SourceFailed      []string // chunks that could not be read, with why
	Targets           []TargetResult
	// WindowEnded is set when BackupOptions.Until came before every chunk was copied.
	WindowEnded bool
	// Queued and QueuedBytes are the chunk copies the run set out to make (of a real-time
	// pass: of new footage only).
	Queued      int
	QueuedBytes int64
	// SetCompleteUntil is, with BackupOptions.Spread, the time up to which every chunk of a
	// series is on one of the storages at least; each storage's own is in Targets.
	SetCompleteUntil map[Key]time.Time

	open []File // the chunks being recorded when the archive was scanned
}

// TargetResult is what one storage received.
type TargetResult struct {
	Name          string
	Copied        int   // chunks copied this run
	Bytes         int64 // their bytes
	Skipped       int   // chunks found there already
	Err           error // why the storage was given up on this run; nil when it got all
	CompleteUntil map[Key]time.Time
}

// Complete reports whether every selected closed chunk is on every storage (with
// BackupOptions.Spread: on one of them, and no storage failed).
func (r Result) Complete() bool {
	if len(r.SourceFailed) > 0 || r.WindowEnded {
		return false
	}
	for _, t := range r.Targets {
		if t.Err != nil {
			return false
		}
	}
	return true
}

// flushEvery bounds how much of the index a crash can lose: at most this many chunks, or
// this long, are on a storage without being in its index (a later run finds them there).
const (
	flushEvery    = 256
	flushInterval = 15 * time.Second
)

// errChanged means the recorder wrote to a chunk while it was copied.
var errChanged = errors.New("the chunk changed while it was copied")

// sourceError marks a failure to read the archive, as opposed to a failure of a storage.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return "read the archive: " + e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// Backup copies every selected chunk that a storage lacks to it, oldest first across all
// cameras, and updates each storage's index and complete-until. Chunks that start before
// a series' SkipBefore or PrunedBefore on a storage are not wanted there. A storage that fails is
// given up on for this run while the others go on. The error is nil unless the run could
// not start or was cancelled; Result.Complete tells whether everything got through.
func Backup(ctx context.Context, opts BackupOptions) (Result, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 4
	}
	if len(opts.Targets) == 0 {
		err := errors.New("back up footage: no storage to back up to")
		emit(ctx, opts, failedEarly(ctx, events.ReasonFailedNoStorage, err))
		return Result{}, err
	}
	res := Result{Started: opts.Now()}
	r := &run{opts: opts, res: &res, recording: map[string]bool{}, series: map[Key]*series{}}
	// The storages' statuses of the series of frozen folders come first: the scan takes
	// those folders as backed up only while every storage's status is the one the run
	// that froze them left.
	cache := loadScanCache(opts.ScanCache)
	r.oldSums = cache.Sums
	if opts.Spread {
		sp, err := newSpread(ctx, opts)
		if err != nil {
			emit(ctx, opts, failedEarly(ctx, events.ReasonFailedTarget, err))
			return Result{}, err
		}
		r.spread = sp
	}
	for i, t := range opts.Targets {
		sweepIfDue(ctx, t, opts)
		ts := newTargetState(t, opts.Now())
		if r.spread != nil {
			r.join(ctx, r.spread.members[i], ts)
		}
		for k := range cache.series() {
			if _, err := ts.index(ctx, opts.ServerID, k); err != nil {
				// An index that cannot be read is this storage's failure, not the run's.
				ts.err = err
				break
			}
		}
		r.targets = append(r.targets, ts)
	}
	if r.spread != nil {
		if err := r.checkIDs(); err != nil {
			emit(ctx, opts, failedEarly(ctx, events.ReasonFailedTarget, err))
			return Result{}, err
		}
	}
	scan, err := scanArchive(ctx, opts.Source, ScanOptions{Layout: opts.Layout, Settle: opts.Settle, Now: opts.Now}, cache, r.trusted)
	if err != nil {
		// An archive that cannot be read (a disk gone, a share unmounted) is news too.
		emit(context.WithoutCancel(ctx), opts, failedEarly(ctx, events.ReasonFailedSource, err))
		return res, err
	}
	r.cache = scan.cache
	res.Unmatched = scan.Unmatched
	closed, recording := selected(scan.Closed, opts), selected(scan.Recording, opts)
	r.files = selected(scan.All, opts)
	blocks := slices.DeleteFunc(scan.blocks, func(b block) bool { return !opts.selects(b.Key) })
	r.addSeries(blocks)
	res.Chunks, res.Recording = len(closed), len(recording)
	for _, b := range blocks {
		res.Chunks += b.Chunks
	}
	names := make([]string, len(opts.Targets))
	for i, t := range opts.Targets {
		names[i] = t.Name
	}
	emit(ctx, opts, events.Event{Type: events.BackupStarted, Message: "Archive backup started", Fields: map[string]any{
		"storages": names, "chunks": res.Chunks, "recording": res.Recording,
	}})

	for _, f := range recording {
		r.recording[f.Path] = true
	}
	res.open = recording
	for _, ts := range r.targets {
		if ts.err == nil {
			ts.err = r.loadTarget(ctx, ts, closed)
		}
	}
	if r.spread != nil {
		r.loadSet(ctx, closed)
	}
	err = r.copyAll(ctx, closed)
	r.finish(ctx)
	res.Finished = opts.Now()
	// A cancelled run is reported too: that is when an operator most wants to know.
	emit(context.WithoutCancel(ctx), opts, finishedEvent(res, err))
	return res, err
}

// sweepEvery is how often a storage is swept of what killed runs left behind. A sweep walks
// the server's whole folder on the storage, which a re-run must not pay for every time.
const sweepEvery = 24 * time.Hour

// sweepIfDue removes the temporary files and incomplete uploads killed runs left on a
// storage, at most once a day, as a marker object below the server's root records. What
// they left only takes space, so a sweep that fails does not hold the backup back: it is
// logged, and a later run tries again.
func sweepIfDue(ctx context.Context, t Target, opts BackupOptions) {
	marker := ServerRoot(opts.ServerID) + "/.vigil/swept"
	var last time.Time
	if err := readJSON(ctx, t.Storage, marker, &last); err == nil && opts.Now().Sub(last) < sweepEvery {
		return
	}
	swept, ok, err := storage.SweepOf(ctx, t.Storage, ServerRoot(opts.ServerID), time.Hour)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			opts.Log.Warn("could not remove what interrupted uploads left on the storage", "storage", t.Name, "err", err)
		}
		return
	case swept > 0:
		opts.Log.Info("removed what interrupted uploads left on the storage", "storage", t.Name, "removed", swept)
	}
	if ok {
		if err := writeJSON(ctx, t.Storage, marker, opts.Now().UTC()); err != nil && ctx.Err() == nil {
			opts.Log.Warn("could not note the sweep on the storage", "storage", t.Name, "err", err)
		}
	}
}

// selects reports whether series k is chosen.
func (opts BackupOptions) selects(k Key) bool {
	return (opts.Cameras == nil || slices.Contains(opts.Cameras, k.Camera)) &&
		(opts.Streams == nil || slices.Contains(opts.Streams, k.Stream))
}

// selected keeps the chunks of the chosen cameras and streams.
func selected(files []File, opts BackupOptions) []File {
	if opts.Cameras == nil && opts.Streams == nil {
		return files // the common case: no copy of a large archive's list
	}
	var out []File
	for _, f := range files {
		if opts.selects(KeyOf(f.Chunk)) {
			out = append(out, f)
		}
	}
	return out
}

type run struct {
	opts      BackupOptions
	res       *Result
	files     []File  // selected chunks, still recording ones too, oldest first
	blocks    []block // the selected series' chunks in frozen folders
	series    map[Key]*series
	recording map[string]bool
	targets   []*targetState
	spread    *spread                   // nil unless BackupOptions.Spread
	cache     *scanCache                // the scan's, saved when the run ends
	oldSums   map[string]map[Key]string // the cache's Sums as the run found them
	// closeWindow stops handing out chunks when the window closes.
	closeWindow func()

	mu       sync.Mutex // guards what follows and every targetState
	progress Progress
}

// series is one camera's stream in a run.
type series struct {
	items  []item    // oldest first
	newest time.Time // the start of its newest chunk
}

// item is a chunk of run.files, or the chunks of a series in a frozen folder.
type item struct {
	start, end time.Time
	file       int // in run.files; for a frozen folder's, -1 less its index in run.blocks
}

// addSeries sorts the run's chunks and frozen blocks into series.
func (r *run) addSeries(blocks []block) {
	add := func(k Key, it item, newest time.Time) {
		s := r.series[k]
		if s == nil {
			s = &series{}
			r.series[k] = s
		}
		s.items = append(s.items, it)
		if newest.After(s.newest) {
			s.newest = newest
		}
	}
	for i, f := range r.files {
		add(KeyOf(f.Chunk), item{start: f.Start, end: f.end(), file: i}, f.Start)
	}
	r.blocks = blocks
	for i, b := range blocks {
		add(b.Key, item{start: time.Unix(0, b.First), end: time.Unix(0, b.Last), file: -1 - i}, b.newestStart())
	}
	if len(blocks) > 0 {
		for _, s := range r.series {
			slices.SortStableFunc(s.items, func(a, b item) int { return a.start.Compare(b.start) })
		}
	}
}

// trusted reports whether every storage's status of series k is the one the run that
// froze its folders left.
func (r *run) trusted(k Key) bool {
	for _, ts := range r.targets {
		if ts.err != nil {
			return false
		}
		si := ts.indexes[k]
		if si == nil || si.sum == "" || r.oldSums[r.sumKey(ts)][k] != si.sum {
			return false
		}
	}
	return true
}

// targetState is one storage during a run.
type targetState struct {
	target    Target
	indexes   map[Key]*seriesIndex // read, by series
	before    map[Key]Status       // the status as the run found it
	cursors   map[Key]*cursor
	need      map[string]bool
	ready     bool // the index of every selected series is read
	result    TargetResult
	err       error
	pending   int // chunks added since the last flush
	lastFlush time.Time
}

func newTargetState(t Target, now time.Time) *targetState {
	return &targetState{target: t, indexes: map[Key]*seriesIndex{}, before: map[Key]Status{}, cursors: map[Key]*cursor{},
		need: map[string]bool{}, result: TargetResult{Name: t.Name}, lastFlush: now}
}

// index returns the storage's index of series k, reading its status the first time.
func (ts *targetState) index(ctx context.Context, serverID string, k Key) (*seriesIndex, error) {
	if si, ok := ts.indexes[k]; ok {
		return si, nil
	}
	si := newSeriesIndex(k)
	if err := si.loadStatus(ctx, ts.target.Storage, serverID, k); err != nil {
		return nil, err
	}
	ts.indexes[k], ts.before[k] = si, si.status
	return si, nil
}

// loadTarget reads what a storage's index says of the selected series, and works out which
// chunks the storage lacks. Chunks older than its complete-until are taken as there
// without reading their hour of the index, unless they appeared in the archive after the
// index was written (footage imported late from a camera's own card). When chunks are
// spread, loadSet works that out for the set instead.
func (r *run) loadTarget(ctx context.Context, ts *targetState, closed []File) error {
	for k := range r.series {
		if _, err := ts.index(ctx, r.opts.ServerID, k); err != nil {
			return err
		}
	}
	if r.spread != nil {
		ts.ready = true
		return nil
	}
	for _, f := range closed {
		if ts.indexes[KeyOf(f.Chunk)].skipped(f.Chunk) {
			continue // not wanted on this storage
		}
		there, err := ts.has(ctx, r.opts.ServerID, f)
		if err != nil {
			return err
		}
		if !there {
			ts.need[f.Path] = true
		}
	}
	ts.ready = true
	return nil
}

// has reports whether the storage has chunk f, by its index.
func (ts *targetState) has(ctx context.Context, serverID string, f File) (bool, error) {
	k := KeyOf(f.Chunk)
	before := ts.before[k]
	if f.Start.Before(before.CompleteUntil) && !f.ModTime.After(before.Updated) {
		return true, nil
	}
	recs, err := ts.indexes[k].hour(ctx, ts.target.Storage, serverID, k, hourOf(f.Start))
	if err != nil {
		return false, err
	}
	rec, ok := recs[f.Path]
	return ok && rec.Size == f.Size, nil
}

// done reports whether what item stands for is on the storage, or not wanted there.
func (r *run) done(ts *targetState, it item) bool {
	if it.file < 0 {
		return true // a frozen folder's
	}
	f := r.files[it.file]
	si := ts.indexes[KeyOf(f.Chunk)]
	switch {
	case si.skipped(f.Chunk):
		return true
	case ts.need[f.Path]:
		_, ok := si.hours[hourOf(f.Start)][f.Path]
		return ok
	}
	// There before the run, unless it is still being recorded.
	return !r.recording[f.Path]
}

// copyAll copies the chunks the storages lack, Parallel at a time, oldest first; in a
// real-time pass the new ones first.
func (r *run) copyAll(ctx context.Context, closed []File) error {
	var work, older []File
	for _, f := range closed {
		copies := r.copies(f)
		if copies == 0 {
			continue
		}
		old := r.opts.fresh.old(f)
		if old && !r.opts.catchUp {
			continue
		}
		r.progress.Copies += copies
		r.progress.Bytes += int64(copies) * f.Size
		if !old {
			r.res.Queued += copies
			r.res.QueuedBytes += int64(copies) * f.Size
		}
		if old {
			older = append(older, f)
		} else {
			work = append(work, f)
		}
	}
	work = append(work, older...)
	r.report()
	// Once the window closes no more chunks are handed out, while the copies under way
	// keep ctx and finish.
	handout, stop := context.WithCancel(ctx)
	defer stop()
	r.closeWindow = stop
	copyChunk := r.copyChunk
	if r.spread != nil {
		copyChunk = r.spreadChunk
	}
	forEach(handout, r.opts.Parallel, work, func(f File) { copyChunk(ctx, f) })
	return ctx.Err()
}

// copies is how many copies of chunk f the run is to make: one for each storage that
// lacks it and is still going, or when chunks are spread, one when the set lacks it.
func (r *run) copies(f File) int {
	if r.spread != nil {
		if r.spread.need[f.Path] {
			return 1
		}
		return 0
	}
	n := 0
	for _, ts := range r.targets {
		if ts.err == nil && ts.need[f.Path] {
			n++
		}
	}
	return n
}

// copyChunk copies one chunk to each storage that lacks it and is still going.
func (r *run) copyChunk(ctx context.Context, f File) {
	for _, ts := range r.targets {
		r.mu.Lock()
		skip := ts.err != nil || !ts.need[f.Path]
		r.mu.Unlock()
		if skip || ctx.Err() != nil {
			continue
		}
		if r.windowClosed() {
			return
		}
		rec, existed, err := r.put(ctx, ts.target.Storage, f)
		r.mu.Lock()
		out := r.noteCopy(ctx, ts, f, rec, existed, err)
		r.mu.Unlock()
		if out == copySourceFailed {
			return
		}
	}
}

// copyOutcome is how copying a chunk to one storage went, for what to do next.
type copyOutcome int

const (
	copyDone          copyOutcome = iota // copied, or left for a later run (changed, cancelled)
	copyStorageFailed                    // the storage failed: the run goes on without it
	copySourceFailed                     // the archive could not be read: no storage can have the chunk
)

// noteCopy records how copying chunk f to ts went: in the storage's index and result, the
// run's progress, or the failure. Called with r.mu held.
func (r *run) noteCopy(ctx context.Context, ts *targetState, f File, rec Record, existed bool, err error) copyOutcome {
	defer r.report()
	switch {
	case err == nil:
		if existed {
			ts.result.Skipped++
		} else {
			ts.result.Copied++
			ts.result.Bytes += f.Size
		}
		r.progress.CopiesDone++
		r.progress.BytesDone += f.Size
		r.progress.Last = f.Path
		if aerr := ts.indexes[KeyOf(f.Chunk)].add(ctx, ts.target.Storage, r.opts.ServerID, rec); aerr != nil {
			ts.err = aerr
		}
		ts.pending++
		r.maybeFlush(ctx, ts)
	case ctx.Err() != nil:
	case errors.Is(err, errChanged):
		r.res.Recording++
		r.recording[f.Path] = true
	case isSourceError(err):
		r.res.SourceFailed = append(r.res.SourceFailed, fmt.Sprintf("%s: %v", f.Path, err))
		return copySourceFailed
	default:
		r.opts.Log.Error("backup storage failed; going on without it for this run", "storage", ts.target.Name, "chunk", f.Path, "err", err)
		ts.err = fmt.Errorf("copy %s: %w", f.Path, err)
		return copyStorageFailed
	}
	return copyDone
}

// windowClosed reports whether the run's window has closed, and notes it in the result:
// a copy that has not started by then waits for the next run.
func (r *run) windowClosed() bool {
	if r.opts.Until.IsZero() || r.opts.Now().Before(r.opts.Until) {
		return false
	}
	r.mu.Lock()
	r.res.WindowEnded = true
	r.mu.Unlock()
	if r.closeWindow != nil {
		r.closeWindow()
	}
	return true
}

func isSourceError(err error) bool {
	var se *sourceError
	return errors.As(err, &se)
}

// put stores chunk f on s under its archive path and returns its record. A chunk a run cut
// short by a crash already stored is found by the no-overwrite put and kept: a stored
// object is always whole, and chunks do not change once closed.
func (r *run) put(ctx context.Context, s storage.Storage, f File) (rec Record, existed bool, err error) {
	file, err := os.Open(filepath.Join(r.opts.Source, filepath.FromSlash(f.Path)))
	if err != nil {
		return rec, false, &sourceError{err}
	}
	defer file.Close()
	before, err := file.Stat()
	if err != nil {
		return rec, false, &sourceError{err}
	}
	if before.Size() != f.Size || !before.ModTime().Equal(f.ModTime) {
		return rec, false, errChanged
	}
	src, err := storage.FileSource(file)
	if err != nil {
		return rec, false, &sourceError{err}
	}
	// The hash comes from a second reader beside the copy, so that the copy itself can go
	// through the kernel (copy_file_range) without passing through this process.
	sum := make(chan hashResult, 1)
	go func() { sum <- hashFile(ctx, file, f.Size) }()
	name := ServerRoot(r.opts.ServerID) + "/" + f.Path
	err = s.Put(ctx, name, src, storage.PutOptions{NoOverwrite: true})
	if errors.Is(err, storage.ErrExists) {
		fi, serr := s.Stat(ctx, name)
		if serr != nil {
			err = serr
		} else if fi.Size != f.Size {
			err = fmt.Errorf("%s is on the storage with %d bytes, the archive has %d: remove it there to copy it again", name, fi.Size, f.Size)
		} else {
			existed, err = true, nil
		}
	}
	h := <-sum
	if err != nil {
		return rec, false, err
	}
	if h.err != nil {
		return rec, false, &sourceError{h.err}
	}
	after, err := file.Stat()
	if err != nil {
		return rec, false, &sourceError{err}
	}
	if after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime()) {
		if !existed {
			// What was copied may be half of what the chunk is now.
			_ = s.Remove(context.WithoutCancel(ctx), name)
		}
		return rec, false, errChanged
	}
	return Record{Path: f.Path, Size: f.Size, SHA256: h.sum, Start: f.Start, DurationMS: f.Duration.Milliseconds()}, existed, nil
}

// maybeFlush writes a storage's index when enough has changed. Called with r.mu held.
func (r *run) maybeFlush(ctx context.Context, ts *targetState) {
	if r.spread != nil {
		r.maybeFlushSet(ctx)
		return
	}
	if ts.pending < flushEvery && r.opts.Now().Sub(ts.lastFlush) < flushInterval {
		return
	}
	if err := r.flush(ctx, ts); err != nil && ts.err == nil {
		ts.err = err
	}
}

// flush works out each series' complete-until on the storage and writes its index.
func (r *run) flush(ctx context.Context, ts *targetState) error {
	r.advance(ts)
	for k := range r.series {
		if err := ts.indexes[k].flush(ctx, ts.target.Storage, r.opts.ServerID, r.opts.Now()); err != nil {
			return err
		}
	}
	r.flushed(ts)
	return nil
}

// advance works out each series' complete-until on the storage, from what is in its index
// now, written or not.
func (r *run) advance(ts *targetState) {
	for k, s := range r.series {
		si, c := ts.indexes[k], ts.cursors[k]
		if c == nil {
			c = &cursor{}
			ts.cursors[k] = c
		}
		done := func(it item) bool { return r.done(ts, it) }
		if r.spread != nil {
			done = func(it item) bool { return r.onMember(ts, k, it) }
		}
		si.status.CompleteUntil = skipUntil(c.advance(s.items, done), s, si.skip)
	}
}

// skipUntil is the complete-until of series s, until as its chunks say, when chunks that
// start before skip are not wanted.
func skipUntil(until time.Time, s *series, skip time.Time) time.Time {
	if s.newest.Before(skip) {
		// Every chunk is skipped: all that is wanted is there up to the skip time, even
		// when no footage reaches it, and no later, since a skipped chunk's footage
		// after it is not copied.
		return skip
	}
	return until
}

// flushed notes that the storage's index is written, with the complete-until of each series.
func (r *run) flushed(ts *targetState) {
	until := map[Key]time.Time{}
	for k := range r.series {
		if u := ts.indexes[k].status.CompleteUntil; !u.IsZero() {
			until[k] = u
		}
	}
	ts.result.CompleteUntil = until
	ts.pending, ts.lastFlush = 0, r.opts.Now()
}

// finish writes what the run added to every index, even when the run was cancelled, then
// freezes the folders it can and saves the scan cache.
func (r *run) finish(ctx context.Context) {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.spread != nil {
		r.flushSet(fctx, true)
	}
	for _, ts := range r.targets {
		if ts.ready && r.spread == nil {
			if err := r.flush(fctx, ts); err != nil && ts.err == nil {
				ts.err = err
			}
		}
		ts.result.Err = ts.err
		r.res.Targets = append(r.res.Targets, ts.result)
	}
	r.freeze()
	if r.cache.changed {
		// A cache that cannot be written costs speed only.
		_ = r.cache.save(r.opts.ScanCache)
	}
}

func (r *run) report() {
	if r.opts.Progress != nil {
		r.opts.Progress(r.progress)
	}
}

type hashResult struct {
	sum string
	err error
}

// hashFile hashes the first size bytes of f, reading it at offsets so that it does not
// disturb another reader of the same file.
func hashFile(ctx context.Context, f *os.File, size int64) hashResult {
	h := sha256.New()
	n, err := io.Copy(h, storage.ContextReader(ctx, io.NewSectionReader(f, 0, size)))
	if err == nil && n != size {
		err = fmt.Errorf("hash %s: read %d of %d bytes", f.Name(), n, size)
	}
	return hashResult{sum: hex.EncodeToString(h.Sum(nil)), err: err}
}
