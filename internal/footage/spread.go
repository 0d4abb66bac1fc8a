package footage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vigil-backup/vigil/internal/storage"
)

// Spreading chunks over a set of storages (BackupOptions.Spread), instead of mirroring them
// to each, puts each chunk on one storage of the set: the one with the most free space
// when its copy begins, as the storage last reported it (again every refreshBytes sent to
// it, or refreshInterval) less what the run has sent it since. A storage that fails is
// given up on for the run, and the chunks not yet copied go to the others.
//
// Each storage's index lists what it holds, as when mirroring, and its own complete-until
// stays the time up to which it alone holds every chunk. What the set holds is written
// beside it, in each storage's status (SpreadStatus): the time up to which every chunk is
// on one storage of the set at least, and the ids of the set's storages, so that any
// machine that reads the storages together (ReadSetStatuses) can tell it. A chunk that
// starts before a storage's SkipBefore or PrunedBefore is not wanted on the set.
//
// A chunk on any storage of the set, by its index, is not copied again. A storage that
// cannot be read when a run begins holds chunks the run cannot see: what the set was
// found to hold before is taken as still there, so they are not copied to the others,
// except those newer than the set's complete-until, which may be copied again. A run that is
// killed may leave chunks on a storage that its index does not list yet: at most what it
// copied since it last wrote the indexes (flushEvery chunks, or flushInterval). The next
// run copies those again, to the same storage, where it finds and indexes them, or to
// another, where they are then twice: verify shows the copy no index lists as not indexed.

// ErrCannotSpread means chunks cannot be spread over the storages given, which the
// operator must change: fewer than two, one given twice, one that cannot tell its free
// space (an S3 bucket cannot), or two that are copies of one another.
var ErrCannotSpread = errors.New("cannot spread chunks")

// How stale the free space a run chooses a storage by may get.
const (
	refreshBytes    = 256 << 20
	refreshInterval = 30 * time.Second
)

// spread is the state of a run that spreads chunks over its storages. r.mu guards it.
type spread struct {
	members []*member // in the order of run.targets
	ids     []string  // of the storages that could be read, sorted
	unknown int       // storages whose ids could not be read
	claims  map[Key]SpreadStatus
	there   map[string]bool // chunks on a storage of the set when the run began
	need    map[string]bool // chunks no storage of the set has, and that one is to have
	cursors map[Key]*cursor // for the set's complete-until
	// lastFlush is when the indexes were last written.
	lastFlush time.Time
}

// member is one storage of the set, with what the run knows of its free space.
type member struct {
	ts         *targetState
	err        error // reading its free space at the start failed
	id         string
	free       int64     // as the storage last reported it
	freeAt     time.Time // when
	sent       int64     // bytes copied to it since
	inflight   int64     // bytes being copied to it now
	refreshing bool      // its free space is being read
}

// estimate is how much room the storage has left, as far as the run can tell.
func (m *member) estimate() int64 { return m.free - m.sent - m.inflight }

func (m *member) stale(now time.Time) bool {
	return m.sent >= refreshBytes || now.Sub(m.freeAt) >= refreshInterval
}

// newSpread reads the free space of each storage, before anything is written to any: a
// set of fewer than two storages, with one given twice, or with one that cannot tell its
// free space is refused.
func newSpread(ctx context.Context, opts BackupOptions) (*spread, error) {
	if len(opts.Targets) < 2 {
		return nil, fmt.Errorf("back up footage: %w: give two storages at least", ErrCannotSpread)
	}
	sp := &spread{lastFlush: opts.Now()}
	for i, t := range opts.Targets {
		if slices.ContainsFunc(opts.Targets[:i], func(u Target) bool { return u.Name == t.Name }) {
			return nil, fmt.Errorf("back up footage: %w: %s is given twice", ErrCannotSpread, t.Name)
		}
		m := &member{freeAt: opts.Now()}
		u, ok, err := storage.UsageOf(ctx, t.Storage)
		switch {
		case err != nil:
			m.err = fmt.Errorf("read the free space: %w", err)
		case !ok:
			return nil, fmt.Errorf("back up footage: %w: %s does not report its free space", ErrCannotSpread, t.Name)
		}
		m.free = u.Free
		sp.members = append(sp.members, m)
	}
	return sp, nil
}

// join adds a storage to the set, as m, and reads its id, making one when it has none. A
// storage that failed to tell its free space, or fails now, is given up on for the run,
// like any storage that fails.
func (r *run) join(ctx context.Context, m *member, ts *targetState) {
	m.ts = ts
	if m.err != nil {
		ts.err = m.err
		return
	}
	var err error
	if m.id, err = ensureStorageID(ctx, ts.target.Storage, r.opts.ServerID); err != nil {
		ts.err = err
	}
}

// checkIDs refuses a set in which two storages have one id, which a copy of a storage
// would: what the set found could not tell them apart. It notes the ids of the set.
func (r *run) checkIDs() error {
	sp := r.spread
	for _, m := range sp.members {
		if m.id == "" {
			sp.unknown++
			continue
		}
		if i := slices.IndexFunc(sp.members, func(o *member) bool { return o.id == m.id }); sp.members[i] != m {
			return fmt.Errorf("back up footage: %w: %s and %s hold the same id in %s: one is a copy of the other, or they are one storage; give the copy a new id by removing that file",
				ErrCannotSpread, sp.members[i].ts.target.Name, m.ts.target.Name, storageIDName(r.opts.ServerID))
		}
		sp.ids = append(sp.ids, m.id)
	}
	slices.Sort(sp.ids)
	return nil
}

// sumKey is what the scan cache keeps a storage's status sums under (see freeze). When
// chunks are spread, a frozen folder's chunks are on the set, not on each storage, so the
// key holds the whole set: a run over another set, or mirroring, trusts none of them.
func (r *run) sumKey(ts *targetState) string {
	if r.spread == nil {
		return ts.target.Name
	}
	return ts.target.Name + "\x00spread over " + strings.Join(r.spread.ids, ",")
}

// loadSet works out which chunks the set lacks: those no storage of it has by its index,
// and that no storage's SkipBefore or PrunedBefore leaves out. Chunks older than what the
// last backups over the set found (SpreadStatus), or than a storage's own complete-until,
// are taken as there without reading their hour of the indexes. For each storage's own
// complete-until, it also notes the chunks not known to be on it.
func (r *run) loadSet(ctx context.Context, closed []File) {
	sp := r.spread
	sp.there, sp.need, sp.cursors = map[string]bool{}, map[string]bool{}, map[Key]*cursor{}
	sp.claims = map[Key]SpreadStatus{}
	for k := range r.series {
		var found []Status
		for _, ts := range r.targets {
			if st, ok := ts.before[k]; ok {
				found = append(found, st)
			}
		}
		if c, ok := spreadClaim(found, sp.ids, sp.unknown); ok {
			sp.claims[k] = c
		}
	}
	for _, f := range closed {
		k := KeyOf(f.Chunk)
		wanted := r.wanted(f)
		c, claimed := sp.claims[k]
		found := !wanted || claimed && f.Start.Before(c.CompleteUntil) && !f.ModTime.After(c.Updated)
		for _, ts := range r.targets {
			if ts.err != nil || !ts.ready || ts.indexes[k].skipped(f.Chunk) {
				continue
			}
			if !found {
				there, err := ts.has(ctx, r.opts.ServerID, f)
				if err != nil {
					ts.err, ts.ready = err, false
					continue
				}
				if there {
					found = true
					continue
				}
			}
			ts.need[f.Path] = true
		}
		switch {
		case !wanted:
		case found:
			sp.there[f.Path] = true
		default:
			sp.need[f.Path] = true
		}
	}
}

// wanted reports whether chunk f is wanted on the set: no storage of it leaves the chunk
// out by its SkipBefore or PrunedBefore.
func (r *run) wanted(f File) bool {
	k := KeyOf(f.Chunk)
	return !slices.ContainsFunc(r.targets, func(ts *targetState) bool {
		si := ts.indexes[k]
		return si != nil && si.skipped(f.Chunk)
	})
}

// onSet reports whether what item stands for is on a storage of the set, in an index as
// written, or is not wanted there.
func (r *run) onSet(it item) bool {
	if it.file < 0 {
		return true // a frozen folder's, on the set when it froze, the statuses unchanged since
	}
	f := r.files[it.file]
	switch {
	case !r.wanted(f):
		return true
	case r.recording[f.Path]:
		return false
	case r.spread.there[f.Path]:
		return true
	}
	k, h := KeyOf(f.Chunk), hourOf(f.Start)
	return slices.ContainsFunc(r.targets, func(ts *targetState) bool {
		si := ts.indexes[k]
		if si == nil || si.dirty[h] {
			return false
		}
		_, ok := si.hours[h][f.Path]
		return ok
	})
}

// onMember reports, for a storage's own complete-until, whether what item stands for is
// on the storage, or not wanted there. A frozen folder's chunks are each on one storage
// of the set: on this one when they all start before its complete-until as the run found
// it, that status being the one the run that froze the folder left.
func (r *run) onMember(ts *targetState, k Key, it item) bool {
	if it.file < 0 {
		return r.blocks[-1-it.file].newestStart().Before(ts.before[k].CompleteUntil)
	}
	return r.done(ts, it)
}

// spreadChunk copies chunk f to the storage of the set pick chooses, or, when that one
// fails, to the next, until one has it or none is left.
func (r *run) spreadChunk(ctx context.Context, f File) {
	for ctx.Err() == nil && !r.windowClosed() {
		m := r.pick(ctx, f)
		if m == nil {
			return // every storage failed: the set's complete-until stays before f
		}
		rec, existed, err := r.put(ctx, m.ts.target.Storage, f)
		r.mu.Lock()
		m.inflight -= f.Size
		if err == nil && !existed {
			m.sent += f.Size
		}
		out := r.noteCopy(ctx, m.ts, f, rec, existed, err)
		r.mu.Unlock()
		if out != copyStorageFailed {
			return
		}
	}
}

// pick chooses the storage chunk f goes to: of those still going, the one with the most
// room left by estimate, the first of them on a tie. A free space figure that is stale is
// read again first. The chunk's size is counted as being sent to the one chosen.
func (r *run) pick(ctx context.Context, f File) *member {
	r.mu.Lock()
	defer r.mu.Unlock()
	for ctx.Err() == nil {
		var best, stale *member
		for _, m := range r.spread.members {
			switch {
			case m.ts.err != nil || !m.ts.ready:
			case !m.refreshing && m.stale(r.opts.Now()):
				stale = m
			case best == nil || m.estimate() > best.estimate():
				best = m
			}
		}
		if stale != nil {
			r.refresh(ctx, stale)
			continue
		}
		if best != nil {
			best.inflight += f.Size
		}
		return best
	}
	return nil
}

// refresh reads a storage's free space again. Called with r.mu held, which it lets go
// meanwhile, so that copies to other storages go on.
func (r *run) refresh(ctx context.Context, m *member) {
	m.refreshing = true
	r.mu.Unlock()
	u, _, err := storage.UsageOf(ctx, m.ts.target.Storage)
	r.mu.Lock()
	m.refreshing = false
	switch {
	case ctx.Err() != nil:
	case err != nil:
		if m.ts.err == nil {
			r.opts.Log.Error("backup storage failed; going on without it for this run", "storage", m.ts.target.Name, "err", err)
			m.ts.err = fmt.Errorf("read the free space: %w", err)
		}
	default:
		// What was sent before is in the new figure; what is being sent may not be yet.
		m.free, m.freeAt, m.sent = u.Free, r.opts.Now(), 0
	}
}

// maybeFlushSet writes the set's indexes when enough has changed. Called with r.mu held.
func (r *run) maybeFlushSet(ctx context.Context) {
	pending := 0
	for _, ts := range r.targets {
		if ts.err == nil {
			pending += ts.pending
		}
	}
	if pending < flushEvery && r.opts.Now().Sub(r.spread.lastFlush) < flushInterval {
		return
	}
	r.flushSet(ctx, false)
}

// flushSet writes the indexes of the set's storages: first the hour files of each, then,
// with the set's complete-until worked out from what the written ones hold, the statuses.
// So no status claims a chunk that is only in an index not yet written. With all, it
// writes those of the storages that failed during the run too, for what they got before.
// Called with r.mu held.
func (r *run) flushSet(ctx context.Context, all bool) {
	var written []*targetState
	for _, ts := range r.targets {
		if !ts.ready || ts.err != nil && !all {
			continue
		}
		if err := r.flushHours(ctx, ts); err != nil {
			if ts.err == nil {
				ts.err = err
			}
			continue
		}
		written = append(written, ts)
	}
	until := r.setUntil()
	for _, ts := range written {
		r.advance(ts)
		if err := r.flushStatuses(ctx, ts, until); err != nil {
			if ts.err == nil {
				ts.err = err
			}
			continue
		}
		r.flushed(ts)
	}
	r.res.SetCompleteUntil = map[Key]time.Time{}
	for k, u := range until {
		if !u.IsZero() {
			r.res.SetCompleteUntil[k] = u
		}
	}
	r.spread.lastFlush = r.opts.Now()
}

func (r *run) flushHours(ctx context.Context, ts *targetState) error {
	for k := range r.series {
		if err := ts.indexes[k].flushHours(ctx, ts.target.Storage, r.opts.ServerID); err != nil {
			return err
		}
	}
	return nil
}

// flushStatuses writes a storage's statuses, with the set's complete-until. It rests on
// the storages of the run, and on those of the claim the run took chunks as there by,
// which may include a storage that could not be read.
func (r *run) flushStatuses(ctx context.Context, ts *targetState, until map[Key]time.Time) error {
	for k := range r.series {
		si := ts.indexes[k]
		members := idSet(r.spread.ids, r.spread.claims[k].Members)
		si.setSpread(SpreadStatus{Members: members, CompleteUntil: until[k], Updated: r.res.Started})
		if err := si.flushStatus(ctx, ts.target.Storage, r.opts.ServerID, r.opts.Now()); err != nil {
			return err
		}
	}
	return nil
}

// setUntil works out the set's complete-until of each series.
func (r *run) setUntil() map[Key]time.Time {
	until := map[Key]time.Time{}
	for k, s := range r.series {
		c := r.spread.cursors[k]
		if c == nil {
			c = &cursor{}
			r.spread.cursors[k] = c
		}
		// A chunk is wanted on the set unless a storage skips it: the latest skip time holds.
		var skip time.Time
		for _, ts := range r.targets {
			if si := ts.indexes[k]; si != nil && si.skip.After(skip) {
				skip = si.skip
			}
		}
		until[k] = skipUntil(c.advance(s.items, r.onSet), s, skip)
	}
	return until
}

// setSpread notes what the run found of the set. A claim that did not change keeps its
// time: the footage it covers is the same.
func (si *seriesIndex) setSpread(sp SpreadStatus) {
	if old := si.status.Spread; old != nil && slices.Equal(old.Members, sp.Members) && old.CompleteUntil.Equal(sp.CompleteUntil) {
		return
	}
	si.status.Spread, si.changed = &sp, true
}

// spreadClaim is what the backups that spread chunks over a set of storages found of a
// series, from the storages' statuses of it: of the claims that rest on those storages
// only (SpreadStatus.restsOn), the earliest complete-until and time, since a storage that
// missed the last run, or whose skip time moved back, holds an older one; and all the
// storages they rest on. ok is false when no claim rests on the set's storages only.
func spreadClaim(sts []Status, ids []string, unknown int) (c SpreadStatus, ok bool) {
	for _, st := range sts {
		sp := st.Spread
		if !sp.restsOn(ids, unknown) {
			continue
		}
		if !ok || sp.CompleteUntil.Before(c.CompleteUntil) {
			c.CompleteUntil = sp.CompleteUntil
		}
		if !ok || sp.Updated.Before(c.Updated) {
			c.Updated = sp.Updated
		}
		c.Members = idSet(c.Members, sp.Members)
		ok = true
	}
	return c, ok
}

// idSet is the ids in a and b, sorted, each once.
func idSet(a, b []string) []string {
	return slices.Compact(slices.Sorted(slices.Values(slices.Concat(a, b))))
}

// SetStatus is one series on a set of storages read together: storages that a backup
// spread chunks over, or mirrors.
type SetStatus struct {
	Camera string `json:"camera"`
	Stream Stream `json:"stream"`
	// CompleteUntil is the time up to which every chunk is on one of the storages at least:
	// the latest of each storage's own complete-until and of what the backups that spread
	// chunks over them found (SpreadStatus); zero when nothing is known.
	CompleteUntil time.Time `json:"complete_until"`
	// Chunks and Bytes are what the storages' indexes list together; a chunk on two
	// storages counts twice.
	Chunks int   `json:"chunks"`
	Bytes  int64 `json:"bytes"`
}

// ReadSetStatuses reads, as ReadStatuses does, the status of every camera and stream a
// server has on each storage of a set, and works out the set's of each.
func ReadSetStatuses(ctx context.Context, set []Target, serverID string) ([]SetStatus, [][]Status, error) {
	each := make([][]Status, len(set))
	ids := make([]string, len(set))
	bySeries := map[Key][]Status{}
	for i, t := range set {
		sts, err := ReadStatuses(ctx, t.Storage, serverID)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", t.Name, err)
		}
		if ids[i], err = storageID(ctx, t.Storage, serverID); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", t.Name, err)
		}
		each[i] = sts
		for _, st := range sts {
			k := Key{st.Camera, st.Stream}
			bySeries[k] = append(bySeries[k], st)
		}
	}
	out := make([]SetStatus, 0, len(bySeries))
	for k, sts := range bySeries {
		ss := SetStatus{Camera: k.Camera, Stream: k.Stream}
		for _, st := range sts {
			ss.Chunks += st.Chunks
			ss.Bytes += st.Bytes
			ss.CompleteUntil = later(ss.CompleteUntil, st.CompleteUntil)
		}
		if c, ok := spreadClaim(sts, ids, 0); ok {
			ss.CompleteUntil = later(ss.CompleteUntil, c.CompleteUntil)
		}
		out = append(out, ss)
	}
	slices.SortFunc(out, func(a, b SetStatus) int {
		return strings.Compare(Key{a.Camera, a.Stream}.String(), Key{b.Camera, b.Stream}.String())
	})
	return out, each, nil
}
