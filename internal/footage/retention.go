package footage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vigil-backup/vigil/internal/storage"
)

// Retention removes old footage from a backup storage, as a recorder does from its own
// disks: oldest first, by age and/or until enough space is free, never what an evidence
// lock protects and, when asked, never what exists nowhere else.
//
// A prune removes chunks in batches of at most pruneBatch chunks, each of one UTC hour
// across all cameras (or the batch a stopped prune left in its journal):
//
//  1. the journal (.vigil/pruning.json) lists the batch;
//  2. each series' status gets PrunedBefore moved past the batch, so that a backup that
//     starts from now on does not copy the chunks back from the recorder;
//  3. the chunks are removed;
//  4. the hour files of the index are written without them (or removed when empty);
//  5. each series' status is written with the new counts;
//  6. the journal is removed.
//
// So the index lists only chunks that are there, but for those of the journal's batch,
// and a prune that finds a journal finishes its batch before anything else. A prune that
// stops at any point, killed or failing, leaves the index listing missing chunks at most
// until the next prune starts, and a prune that ran to its end leaves none: verify finds
// every chunk the index lists. Hour files are written once per batch, not once per
// chunk, and the status never counts less than its hour files hold.
//
// A prune and a backup of the same server to the same storage should not run at once (the
// job runner keeps them apart). If they do, the backup keeps the PrunedBefore it finds
// when it writes its status, so what was removed is not copied again later; what the
// backup writes of an hour the prune changed meanwhile may list a removed chunk again,
// until the next prune by age drops it.
const (
	journalName = ".vigil/pruning.json"
	pruneBatch  = 500
)

// PruneOptions say what retention removes from one server's footage on one storage.
type PruneOptions struct {
	Storage  storage.Storage
	ServerID string
	// MaxAge removes the chunks whose footage ended more than MaxAge before Now; 0 for no
	// limit by age.
	MaxAge time.Duration
	// KeepFreePercent (of the storage's capacity) and KeepFreeBytes are a goal of free
	// space: the oldest chunks across all cameras are removed until the storage has that
	// much free, the larger of the two when both are set; 0 for none. A goal needs a
	// storage that reports its free space (storage.UsageOf).
	KeepFreePercent float64
	KeepFreeBytes   int64
	// Elsewhere are places a chunk must still be in, every one of them, before it may be
	// removed; none for no such check.
	Elsewhere []Place
	// DryRun removes nothing and writes nothing: the result is what a prune would do now.
	DryRun bool
	// Parallel is how many chunks are looked for elsewhere and removed at once; default 4.
	Parallel int
	Now      func() time.Time
	Log      *slog.Logger
	// Progress is called from one goroutine at a time: Copies and Bytes are the chunks
	// chosen so far, CopiesDone and BytesDone those removed.
	Progress func(Progress)
}

// PruneResult is what a prune removed, or in a dry run would remove.
type PruneResult struct {
	DryRun  bool
	Removed Count // chunks removed, and the bytes that freed
	// Gone are chunks the index listed but that were not on the storage: dropped from the
	// index, freeing nothing.
	Gone int
	// Resumed is how many chunks of a stopped prune's last batch were finished first.
	Resumed int
	// Locked and NotElsewhere are chunks that would have gone but were kept: under an
	// evidence lock, or missing from a place of PruneOptions.Elsewhere.
	Locked, NotElsewhere Count
	Series               []SeriesPrune // every series of the index, in order of Key.String
	// FreeGoal is the free space wanted, 0 for none; FreeBefore and FreeAfter are the
	// free space before and after (in a dry run, as it would be), of Total.
	FreeGoal, FreeBefore, FreeAfter, Total int64
}

// Short is how many bytes of free space the goal still lacks after the prune: the chunks
// that could go are gone, and the rest are locked, kept for want of another copy, or not
// footage of this server. 0 when the goal is met or there is none.
func (r PruneResult) Short() int64 {
	if r.FreeGoal == 0 {
		return 0
	}
	return max(r.FreeGoal-r.FreeAfter, 0)
}

// SeriesPrune is what a prune did to one series.
type SeriesPrune struct {
	Key
	Removed, Locked, NotElsewhere Count
	// Left is what the index lists of the series afterwards, and OldestLeft the start of
	// its oldest chunk (zero when none is left).
	Left       Count
	OldestLeft time.Time
	// PrunedBefore is the series' Status.PrunedBefore afterwards.
	PrunedBefore time.Time
}

// pruneEntry is a chunk of the index, with its series: what the journal lists.
type pruneEntry struct {
	Camera string `json:"camera"`
	Stream Stream `json:"stream"`
	Record
}

func (e pruneEntry) key() Key { return Key{e.Camera, e.Stream} }

// compareEntries orders chunks oldest first, then as Chunk.Before does.
func compareEntries(a, b pruneEntry) int {
	return cmp.Or(a.Start.Compare(b.Start), strings.Compare(a.Camera, b.Camera),
		strings.Compare(string(a.Stream), string(b.Stream)), strings.Compare(a.Path, b.Path))
}

// prunedUntil is the PrunedBefore that removing r needs: past its end, and past its start
// when its length is unknown, so that a backup skips it.
func prunedUntil(r Record) time.Time {
	return later(recordEnd(r), r.Start.Add(time.Millisecond))
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

type pruner struct {
	opts   PruneOptions
	s      storage.Storage
	res    *PruneResult
	series map[Key]*seriesPrune
	locks  []Lock
	cutoff time.Time // chunks that end before it are too old; zero for no limit
	need   int64     // bytes still to free, by the sizes of the index and what the storage says

	mu       sync.Mutex // guards progress, res and need while chunks are removed in parallel
	progress Progress
}

// seriesPrune is one series during a prune.
type seriesPrune struct {
	SeriesPrune
	status Status
	hours  []indexHour // not yet gone through, oldest first
}

// Prune removes, from one server's footage on one storage, the chunks that are older than
// MaxAge and, oldest first across all cameras, those whose room is needed to keep the free
// space goal, but never a chunk an evidence lock covers, nor one missing from any place of
// Elsewhere. It writes the index as it goes (see Retention above), and moves each series'
// PrunedBefore past what it removed, so that backups do not copy it back. Complete-until
// is left as it is: from PrunedBefore on, all footage up to it is still there.
//
// A free space goal that cannot be met because of locks, or of chunks found nowhere else,
// is no error: PruneResult.Short and the counts say so. The error is for a prune that could
// not run to its end; the result then says what was done before it stopped.
func Prune(ctx context.Context, opts PruneOptions) (PruneResult, error) {
	if err := checkPruneOptions(&opts); err != nil {
		return PruneResult{}, err
	}
	res := PruneResult{DryRun: opts.DryRun}
	p := &pruner{opts: opts, s: opts.Storage, res: &res, series: map[Key]*seriesPrune{}}
	if opts.MaxAge > 0 {
		p.cutoff = opts.Now().Add(-opts.MaxAge)
	}
	err := p.run(ctx)
	p.finishResult()
	if err != nil {
		return res, fmt.Errorf("prune footage: %w", err)
	}
	return res, nil
}

func checkPruneOptions(opts *PruneOptions) error {
	switch {
	case opts.Storage == nil:
		return errors.New("prune footage: no storage given")
	case opts.ServerID == "":
		return errors.New("prune footage: no server id given")
	case opts.MaxAge < 0 || opts.KeepFreeBytes < 0:
		return errors.New("prune footage: a negative age or free space")
	case opts.KeepFreePercent < 0 || opts.KeepFreePercent >= 100 || math.IsNaN(opts.KeepFreePercent):
		return fmt.Errorf("prune footage: keep %v%% free: give a percentage from 0 to below 100", opts.KeepFreePercent)
	case opts.MaxAge == 0 && opts.KeepFreePercent == 0 && opts.KeepFreeBytes == 0:
		return errors.New("prune footage: nothing to prune by: give a maximum age or a free space goal")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 4
	}
	return nil
}

func (p *pruner) run(ctx context.Context) error {
	if err := p.resume(ctx); err != nil {
		return err
	}
	if err := p.loadSeries(ctx); err != nil {
		return err
	}
	if err := p.readGoal(ctx); err != nil {
		return err
	}
	for _, h := range p.allHours() {
		if (p.cutoff.IsZero() || !h.Before(p.cutoff)) && p.need <= 0 {
			break // nothing from this hour on is too old, and the space is there
		}
		if err := p.pruneHour(ctx, h); err != nil {
			return err
		}
	}
	return p.findOldestLeft(ctx)
}

// resume finishes the batch a stopped prune left in its journal.
func (p *pruner) resume(ctx context.Context) error {
	var batch []pruneEntry
	switch err := readJSON(ctx, p.s, ServerRoot(p.opts.ServerID)+"/"+journalName, &batch); {
	case errors.Is(err, storage.ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("read what a stopped prune left to do: %w", err)
	}
	for _, e := range batch {
		if err := validRecordPath(e.Path); err != nil || !validSeries(e.key()) {
			return fmt.Errorf("the prune journal %s lists %q of %s, which is not a chunk: remove the file if nobody else wrote there",
				ServerRoot(p.opts.ServerID)+"/"+journalName, e.Path, e.key())
		}
	}
	p.res.Resumed = len(batch)
	if p.opts.DryRun || len(batch) == 0 {
		return nil
	}
	p.opts.Log.Info("finishing what a stopped prune began", "chunks", len(batch))
	return p.apply(ctx, batch, true)
}

func validSeries(k Key) bool {
	return storage.ValidName(k.Camera) == nil && !strings.Contains(k.Camera, "/") &&
		storage.ValidName(string(k.Stream)) == nil && !strings.Contains(string(k.Stream), "/")
}

// loadSeries finds every series of the index, with its hour files and its status.
func (p *pruner) loadSeries(ctx context.Context) error {
	dir := ServerRoot(p.opts.ServerID) + "/" + indexDir
	err := p.s.List(ctx, dir, func(fi storage.FileInfo) error {
		parts := strings.SplitN(strings.TrimPrefix(fi.Name, dir+"/"), "/", 3)
		if len(parts) != 3 {
			return nil
		}
		k := Key{Camera: parts[0], Stream: Stream(parts[1])}
		h, err := time.Parse("2006/01/02/15.json", parts[2])
		if err != nil && parts[2] != "status.json" || !validSeries(k) {
			return nil
		}
		sp := p.series[k]
		if sp == nil {
			sp = &seriesPrune{SeriesPrune: SeriesPrune{Key: k}}
			p.series[k] = sp
		}
		if err == nil {
			sp.hours = append(sp.hours, indexHour{name: fi.Name, hour: h})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list the footage index: %w", err)
	}
	for k, sp := range p.series {
		slices.SortFunc(sp.hours, func(a, b indexHour) int { return a.hour.Compare(b.hour) })
		sp.status = Status{Camera: k.Camera, Stream: k.Stream}
		if err := readJSON(ctx, p.s, statusName(p.opts.ServerID, k), &sp.status); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
	}
	return nil
}

// readGoal works out how many bytes must go for the free space goal.
func (p *pruner) readGoal(ctx context.Context) error {
	if p.opts.KeepFreePercent == 0 && p.opts.KeepFreeBytes == 0 {
		return nil
	}
	u, ok, err := storage.UsageOf(ctx, p.s)
	switch {
	case err != nil:
		return fmt.Errorf("read the free space of the storage: %w", err)
	case !ok:
		// Pruning by age alone would quietly drop a goal the operator counts on.
		return errors.New("the storage does not report its free space (S3 buckets cannot), so a free space goal cannot be kept there: prune it by age")
	}
	p.res.FreeGoal = max(int64(math.Ceil(p.opts.KeepFreePercent/100*float64(u.Total))), p.opts.KeepFreeBytes)
	p.res.FreeBefore, p.res.FreeAfter, p.res.Total = u.Free, u.Free, u.Total
	p.need = max(p.res.FreeGoal-u.Free, 0)
	return nil
}

// allHours are the hours of every series' index, oldest first, each once.
func (p *pruner) allHours() []time.Time {
	var hours []time.Time
	for _, sp := range p.series {
		for _, h := range sp.hours {
			hours = append(hours, h.hour)
		}
	}
	slices.SortFunc(hours, time.Time.Compare)
	return slices.Compact(hours)
}

// pruneHour goes through the chunks that start in hour h, of every series, oldest first.
func (p *pruner) pruneHour(ctx context.Context, h time.Time) error {
	// Locks are read again for every hour: one set while a long prune runs still holds
	// from its next hour on.
	locks, err := ReadLocks(ctx, p.s, p.opts.ServerID)
	if err != nil {
		return err
	}
	p.locks = locks
	var entries []pruneEntry
	for k, sp := range p.series {
		if len(sp.hours) == 0 || !sp.hours[0].hour.Equal(h) {
			continue
		}
		var recs []Record
		if err := readJSON(ctx, p.s, sp.hours[0].name, &recs); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		sp.hours = sp.hours[1:]
		for _, r := range recs {
			// A path outside the footage (the locks, say) is never removed: verify reports it.
			if validRecordPath(r.Path) == nil {
				entries = append(entries, pruneEntry{Camera: k.Camera, Stream: k.Stream, Record: r})
			}
		}
	}
	slices.SortFunc(entries, compareEntries)
	for len(entries) > 0 {
		var batch []pruneEntry
		batch, entries = p.choose(entries)
		batch, err := p.foundElsewhere(ctx, batch)
		if err != nil {
			return err
		}
		if err := p.apply(ctx, batch, false); err != nil {
			return err
		}
		if err := p.readFree(ctx); err != nil {
			return err
		}
	}
	return nil
}

// choose takes from entries, oldest first, the next batch of chunks to remove, as far as
// the free space goal can tell before the chunks are looked for elsewhere, and returns
// the entries it has not decided on.
func (p *pruner) choose(entries []pruneEntry) (batch, rest []pruneEntry) {
	var pending int64
	for i, e := range entries {
		if len(batch) == pruneBatch {
			return batch, entries[i:]
		}
		sp := p.series[e.key()]
		tooOld := !p.cutoff.IsZero() && recordEnd(e.Record).Before(p.cutoff)
		if !tooOld && p.need-pending <= 0 {
			if len(batch) > 0 {
				// Whether this one must go for space depends on how much of the batch can.
				return batch, entries[i:]
			}
			sp.keep(e.Record)
			continue
		}
		if locked(p.locks, e.key(), e.Record) {
			sp.Locked.add(e.Record)
			p.res.Locked.add(e.Record)
			sp.keep(e.Record)
			continue
		}
		batch = append(batch, e)
		pending += e.Size
	}
	return batch, nil
}

func (c *Count) add(r Record) {
	c.Chunks++
	c.Bytes += r.Size
}

// keep notes that the chunk of r stays.
func (sp *seriesPrune) keep(r Record) {
	if sp.OldestLeft.IsZero() || r.Start.Before(sp.OldestLeft) {
		sp.OldestLeft = r.Start
	}
}

// foundElsewhere returns the chunks of batch that every place of Elsewhere has, in order,
// and keeps the others.
func (p *pruner) foundElsewhere(ctx context.Context, batch []pruneEntry) ([]pruneEntry, error) {
	if len(p.opts.Elsewhere) == 0 || len(batch) == 0 {
		return batch, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	there := make([]bool, len(batch))
	var firstErr error
	idx := make([]int, len(batch))
	for i := range idx {
		idx[i] = i
	}
	forEach(ctx, p.opts.Parallel, idx, func(i int) {
		ok, err := p.everywhere(ctx, batch[i])
		p.mu.Lock()
		defer p.mu.Unlock()
		if err != nil && firstErr == nil {
			firstErr = err
			cancel()
		}
		there[i] = ok
	})
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		return nil, firstErr
	}
	var out []pruneEntry
	for i, e := range batch {
		if there[i] {
			out = append(out, e)
			continue
		}
		sp := p.series[e.key()]
		sp.NotElsewhere.add(e.Record)
		p.res.NotElsewhere.add(e.Record)
		sp.keep(e.Record)
	}
	return out, nil
}

func (p *pruner) everywhere(ctx context.Context, e pruneEntry) (bool, error) {
	for _, pl := range p.opts.Elsewhere {
		ok, err := pl.Has(ctx, e.key(), e.Record)
		if err != nil {
			return false, fmt.Errorf("look for %s in %s: %w", e.Path, pl, err)
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}

// apply removes the chunks of batch and takes them out of the index, in the order
// Retention describes; journaled says the journal lists the batch already.
func (p *pruner) apply(ctx context.Context, batch []pruneEntry, journaled bool) error {
	if len(batch) == 0 {
		return nil
	}
	for _, e := range batch {
		p.progress.Copies++
		p.progress.Bytes += e.Size
	}
	if p.opts.DryRun {
		for _, e := range batch {
			p.removed(e, true)
		}
		p.report()
		return nil
	}
	journal := ServerRoot(p.opts.ServerID) + "/" + journalName
	if !journaled {
		if err := writeJSON(ctx, p.s, journal, batch); err != nil {
			return fmt.Errorf("write the prune journal: %w", err)
		}
	}
	bounds := map[Key]time.Time{}
	for _, e := range batch {
		bounds[e.key()] = later(bounds[e.key()], prunedUntil(e.Record))
	}
	for k, b := range bounds {
		err := p.updateStatus(ctx, k, func(st *Status) bool {
			if !b.After(st.PrunedBefore) {
				return false
			}
			st.PrunedBefore = b
			return true
		})
		if err != nil {
			return err
		}
	}
	gone, removeErr := p.removeChunks(ctx, batch)
	if err := p.unindex(ctx, gone); err != nil {
		return err
	}
	if removeErr != nil {
		// The chunks that could not be removed are still there and still listed: the
		// journal's batch is done as far as it goes.
		return removeErr
	}
	if err := p.s.Remove(ctx, journal); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("remove the prune journal: %w", err)
	}
	p.opts.Log.Debug("pruned a batch of chunks", "chunks", len(batch), "through", batch[len(batch)-1].Start)
	return nil
}

// removeChunks removes the chunks of batch, Parallel at a time, and returns those that are
// gone now, also those that were gone already. The error is the first removal that failed.
func (p *pruner) removeChunks(ctx context.Context, batch []pruneEntry) ([]pruneEntry, error) {
	root := ServerRoot(p.opts.ServerID)
	var gone []pruneEntry
	var firstErr error
	forEach(ctx, p.opts.Parallel, batch, func(e pruneEntry) {
		err := p.s.Remove(ctx, root+"/"+e.Path)
		p.mu.Lock()
		defer p.mu.Unlock()
		switch {
		case err == nil || errors.Is(err, storage.ErrNotFound):
			gone = append(gone, e)
			p.removed(e, err == nil)
			p.report()
		case firstErr == nil:
			firstErr = fmt.Errorf("remove %s: %w", e.Path, err)
		}
	})
	if firstErr == nil && len(gone) < len(batch) {
		firstErr = ctx.Err()
	}
	return gone, firstErr
}

// removed counts chunk e as gone, and as freeing its bytes when it was there.
func (p *pruner) removed(e pruneEntry, wasThere bool) {
	sp := p.series[e.key()]
	if !wasThere {
		p.res.Gone++
	} else {
		p.res.Removed.add(e.Record)
		if sp != nil {
			sp.Removed.add(e.Record)
		}
		p.need -= e.Size
	}
	p.progress.CopiesDone++
	p.progress.BytesDone += e.Size
	p.progress.Last = e.Path
	if sp != nil && p.opts.DryRun {
		sp.status.Chunks--
		sp.status.Bytes -= e.Size
		sp.status.PrunedBefore = later(sp.status.PrunedBefore, prunedUntil(e.Record))
	}
}

// unindex takes the chunks of gone out of their hour files, and then writes each series'
// status with the new counts of those hours.
func (p *pruner) unindex(ctx context.Context, gone []pruneEntry) error {
	type seriesHour struct {
		k Key
		h time.Time
	}
	byHour := map[seriesHour]map[string]bool{}
	for _, e := range gone {
		hk := seriesHour{e.key(), hourOf(e.Start)}
		if byHour[hk] == nil {
			byHour[hk] = map[string]bool{}
		}
		byHour[hk][e.Path] = true
	}
	counts := map[Key]map[time.Time]Count{}
	for hk, paths := range byHour {
		name := hourName(p.opts.ServerID, hk.k, hk.h)
		// Read again rather than from the plan: a backup may have added to the hour.
		var recs []Record
		if err := readJSON(ctx, p.s, name, &recs); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		recs = slices.DeleteFunc(recs, func(r Record) bool { return paths[r.Path] })
		var c Count
		for _, r := range recs {
			c.add(r)
		}
		var err error
		if len(recs) == 0 {
			if err = p.s.Remove(ctx, name); errors.Is(err, storage.ErrNotFound) {
				err = nil
			}
		} else {
			err = writeJSON(ctx, p.s, name, recs)
		}
		if err != nil {
			return fmt.Errorf("write the index of %s: %w", hk.k, err)
		}
		if counts[hk.k] == nil {
			counts[hk.k] = map[time.Time]Count{}
		}
		counts[hk.k][hk.h] = c
	}
	for k, hours := range counts {
		err := p.updateStatus(ctx, k, func(st *Status) bool {
			for h, c := range hours {
				if st.Hours == nil {
					st.Hours = map[string]Count{}
				}
				if c.Chunks == 0 {
					delete(st.Hours, hourKey(h))
				} else {
					st.Hours[hourKey(h)] = c
				}
			}
			return true
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// updateStatus reads the status of series k, lets change change it, and writes it when
// change says it did, with its totals summed again. What the prune does not change is
// kept as stored, so that a backup's complete-until and the operator's skip time stay.
func (p *pruner) updateStatus(ctx context.Context, k Key, change func(*Status) bool) error {
	st := Status{Camera: k.Camera, Stream: k.Stream}
	if err := readJSON(ctx, p.s, statusName(p.opts.ServerID, k), &st); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	if !change(&st) {
		return nil
	}
	st.Chunks, st.Bytes = 0, 0
	for _, c := range st.Hours {
		st.Chunks += c.Chunks
		st.Bytes += c.Bytes
	}
	if err := writeJSON(ctx, p.s, statusName(p.opts.ServerID, k), st); err != nil {
		return fmt.Errorf("write the status of %s: %w", k, err)
	}
	if sp := p.series[k]; sp != nil {
		sp.status = st
	}
	return nil
}

// readFree asks the storage how much is free after a batch, so that a prune stops as soon
// as the goal is met. It never raises what is still to free above what the sizes of the
// index say: a storage that keeps removed files (a recycle bin, snapshots) must not make a
// prune remove everything.
func (p *pruner) readFree(ctx context.Context) error {
	if p.res.FreeGoal == 0 || p.opts.DryRun {
		return nil
	}
	u, _, err := storage.UsageOf(ctx, p.s)
	if err != nil {
		return fmt.Errorf("read the free space of the storage: %w", err)
	}
	p.res.FreeAfter = u.Free
	p.need = min(p.need, max(p.res.FreeGoal-u.Free, 0))
	return nil
}

// findOldestLeft finds the oldest chunk of each series the prune did not reach.
func (p *pruner) findOldestLeft(ctx context.Context) error {
	for _, sp := range p.series {
		for len(sp.hours) > 0 && sp.OldestLeft.IsZero() {
			var recs []Record
			if err := readJSON(ctx, p.s, sp.hours[0].name, &recs); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return err
			}
			sp.hours = sp.hours[1:]
			for _, r := range recs {
				sp.keep(r)
			}
		}
	}
	return nil
}

func (p *pruner) finishResult() {
	res := p.res
	if res.FreeGoal > 0 && p.opts.DryRun {
		res.FreeAfter = res.FreeBefore + res.Removed.Bytes
	}
	for _, sp := range p.series {
		sp.Left = Count{sp.status.Chunks, sp.status.Bytes}
		sp.PrunedBefore = sp.status.PrunedBefore
		res.Series = append(res.Series, sp.SeriesPrune)
	}
	slices.SortFunc(res.Series, func(a, b SeriesPrune) int { return strings.Compare(a.Key.String(), b.Key.String()) })
}

func (p *pruner) report() {
	if p.opts.Progress != nil {
		p.opts.Progress(p.progress)
	}
}
