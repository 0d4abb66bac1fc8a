package footage_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/internal/footage"
	"github.com/vigil-backup/vigil/internal/storage"
	"github.com/vigil-backup/vigil/internal/storage/local"
	"github.com/vigil-backup/vigil/internal/storage/mem"
	"github.com/vigil-backup/vigil/internal/storage/storagetest"
	"github.com/vigil-backup/vigil/internal/testenv"
)

// chunkAt is a chunk of 10 s of the retention tests, starting at t0 plus at.
type chunkAt struct {
	cam string
	st  footage.Stream
	at  time.Duration
}

func (c chunkAt) chunk() footage.Chunk {
	return footage.Chunk{Camera: c.cam, Stream: c.st, Start: t0.Add(c.at), Duration: 10 * time.Second}
}

func (c chunkAt) path() string { return testLayout{}.Path(c.chunk()) }

func (c chunkAt) key() footage.Key { return footage.Key{Camera: c.cam, Stream: c.st} }

// c1h, c1l and c2h are the chunks of the fixture that start s seconds after t0.
func c1h(s int) chunkAt { return chunkAt{"cam1", footage.High, time.Duration(s) * time.Second} }
func c1l(s int) chunkAt { return chunkAt{"cam1", footage.Low, time.Duration(s) * time.Second} }
func c2h(s int) chunkAt { return chunkAt{"cam2", footage.High, time.Duration(s) * time.Second} }

// chunkSize dwarfs the index files, so that a free space goal in chunks is met by the
// chunks removed, whatever the index's own files take.
const chunkSize = 8192

// pruneFixture is six chunks of cam1's two streams, from t0, and six of cam2's high stream,
// 5 s later each: oldest first across cameras they interleave.
func pruneFixture() []chunkAt {
	var out []chunkAt
	for i := range 6 {
		at := time.Duration(i) * 10 * time.Second
		out = append(out, chunkAt{"cam1", footage.High, at}, chunkAt{"cam1", footage.Low, at}, chunkAt{"cam2", footage.High, at + 5*time.Second})
	}
	return out
}

// writeArchive writes the chunks into an archive at root, each size bytes and unlike any
// other.
func writeArchive(t *testing.T, root string, chunks []chunkAt, size int) {
	t.Helper()
	for _, c := range chunks {
		data := []byte(c.path() + " ")
		data = append(data, make([]byte, size-len(data))...)
		writeChunk(t, root, c.path(), data, c.chunk().End())
	}
}

// pruneFixtureOn writes the chunks into a new archive, backs it up to s, and returns the
// archive.
func pruneFixtureOn(t *testing.T, s storage.Storage, chunks []chunkAt) string {
	t.Helper()
	root := t.TempDir()
	writeArchive(t, root, chunks, chunkSize)
	if res := backup(t, root, t0.Add(time.Hour), footage.Target{Name: "s", Storage: s}); !res.Complete() {
		t.Fatalf("backup: %+v", res)
	}
	return root
}

func prune(t *testing.T, opts footage.PruneOptions) footage.PruneResult {
	t.Helper()
	res, err := footage.Prune(context.Background(), opts)
	if err != nil {
		t.Fatalf("prune: %v", err)
	}
	return res
}

// pruneOpts are the options of a prune of srv1's footage on s at t0 + 1 h.
func pruneOpts(s storage.Storage) footage.PruneOptions {
	return footage.PruneOptions{Storage: s, ServerID: "srv1", Now: func() time.Time { return t0.Add(time.Hour) }}
}

// olderThan is the MaxAge that removes, at t0 + 1 h, the chunks that end before t0 + at.
func olderThan(at time.Duration) time.Duration { return time.Hour - at }

func addLock(t *testing.T, s storage.Storage, l footage.Lock) footage.Lock {
	t.Helper()
	if l.Reason == "" {
		l.Reason = "incident 4711"
	}
	got, err := footage.AddLock(context.Background(), s, "srv1", l)
	if err != nil {
		t.Fatalf("add lock: %v", err)
	}
	return got
}

// verifyClean checks that every chunk the index lists is there, and nothing else is.
func verifyClean(t *testing.T, s storage.Storage) {
	t.Helper()
	res, err := footage.Verify(context.Background(), s, "srv1", footage.VerifyOptions{})
	if err != nil || !res.OK() || len(res.NotIndexed) > 0 {
		t.Fatalf("verify after the prune: %v, bad %v, not indexed %q", err, res.Bad, res.NotIndexed)
	}
}

// snapshot is every object of a storage with its content, to tell that nothing changed.
func snapshot(t *testing.T, s storage.Storage) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := s.List(context.Background(), "", func(fi storage.FileInfo) error {
		rc, err := s.Open(context.Background(), fi.Name, 0, 0)
		if err != nil {
			return err
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		out[fi.Name] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func pathsOf(chunks []chunkAt) []string {
	var out []string
	for _, c := range chunks {
		out = append(out, c.path())
	}
	slices.Sort(out)
	return out
}

// checkPruned checks the storage and the result after the chunks of gone were removed
// from all, and every series' status: its PrunedBefore past the last chunk removed, its
// counts those of the chunks left, its complete-until as before.
func checkPruned(t *testing.T, s storage.Storage, all, gone []chunkAt, before map[string]footage.Status, res footage.PruneResult) {
	t.Helper()
	left := slices.DeleteFunc(slices.Clone(all), func(c chunkAt) bool { return slices.Contains(gone, c) })
	if got := stored(t, s); !slices.Equal(got, pathsOf(left)) {
		t.Fatalf("left %q, want %q", got, pathsOf(left))
	}
	if res.Removed.Chunks != len(gone) || res.Removed.Bytes != int64(len(gone))*chunkSize {
		t.Fatalf("the result says %+v removed, want %d chunks", res.Removed, len(gone))
	}
	verifyClean(t, s)
	sts := statusOf(t, s)
	for key, st := range sts {
		var wantPruned, oldest time.Time
		n := 0
		for _, c := range gone {
			if c.key().String() == key && c.chunk().End().After(wantPruned) {
				wantPruned = c.chunk().End()
			}
		}
		for _, c := range left {
			if c.key().String() == key {
				n++
				if oldest.IsZero() || c.chunk().Start.Before(oldest) {
					oldest = c.chunk().Start
				}
			}
		}
		if !st.PrunedBefore.Equal(wantPruned) || st.Chunks != n || st.Bytes != int64(n)*chunkSize || !st.CompleteUntil.Equal(before[key].CompleteUntil) {
			t.Fatalf("%s after the prune: %+v; want pruned before %v, %d chunks, complete until %v", key, st, wantPruned, n, before[key].CompleteUntil)
		}
		i := slices.IndexFunc(res.Series, func(sp footage.SeriesPrune) bool { return sp.Key.String() == key })
		if i < 0 || !res.Series[i].OldestLeft.Equal(oldest) || res.Series[i].Left.Chunks != n || !res.Series[i].PrunedBefore.Equal(wantPruned) {
			t.Fatalf("%s in the result: %+v, want %d left from %v", key, res.Series, n, oldest)
		}
	}
}

// TestPruneChooses: by age, by free space, or both, with and without locks, a prune
// removes exactly the oldest chunks it should, across cameras, and a dry run tells the
// same without changing anything.
func TestPruneChooses(t *testing.T) {
	all := pruneFixture()
	cases := []struct {
		name   string
		maxAge time.Duration
		chunks float64 // the free space goal, in chunks more than is free
		locks  []footage.Lock
		gone   []chunkAt
		locked int
	}{
		{name: "by age", maxAge: olderThan(30 * time.Second),
			gone: []chunkAt{c1h(0), c1l(0), c2h(5), c1h(10), c1l(10), c2h(15)}},
		// A chunk that ends at the cutoff is not older than it.
		{name: "by age, at a chunk's end", maxAge: olderThan(20 * time.Second),
			gone: []chunkAt{c1h(0), c1l(0), c2h(5)}},
		{name: "by age, a camera's range locked", maxAge: olderThan(30 * time.Second),
			locks: []footage.Lock{{Camera: "cam1", From: t0.Add(12 * time.Second), To: t0.Add(13 * time.Second)}},
			gone:  []chunkAt{c1h(0), c1l(0), c2h(5), c2h(15)}, locked: 2},
		// A lock that ends where a chunk starts does not cover it.
		{name: "by age, a lock up to a chunk's start", maxAge: olderThan(30 * time.Second),
			locks: []footage.Lock{{Camera: "cam2", From: t0, To: t0.Add(5 * time.Second)}},
			gone:  []chunkAt{c1h(0), c1l(0), c2h(5), c1h(10), c1l(10), c2h(15)}},
		{name: "by age, every camera's low stream locked", maxAge: olderThan(30 * time.Second),
			locks: []footage.Lock{{Camera: footage.AllCameras, Stream: footage.Low, From: t0, To: t0.Add(time.Hour)}},
			gone:  []chunkAt{c1h(0), c2h(5), c1h(10), c2h(15)}, locked: 2},
		{name: "by space, oldest first across cameras", chunks: 2.5,
			gone: []chunkAt{c1h(0), c1l(0), c2h(5)}},
		{name: "by space, past a locked chunk", chunks: 2.5,
			locks: []footage.Lock{{Camera: "cam1", Stream: footage.High, From: t0, To: t0.Add(time.Second)}},
			gone:  []chunkAt{c1l(0), c2h(5), c1h(10)}, locked: 1},
		{name: "by age and space", maxAge: olderThan(20 * time.Second), chunks: 4.5,
			gone: []chunkAt{c1h(0), c1l(0), c2h(5), c1h(10), c1l(10)}},
		{name: "by space, all locked", chunks: 2.5,
			locks:  []footage.Lock{{Camera: footage.AllCameras, From: t0.Add(-time.Hour), To: t0.Add(time.Hour)}},
			locked: len(all)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := mem.New(mem.WithCapacity(1 << 20))
			pruneFixtureOn(t, s, all)
			for _, l := range c.locks {
				addLock(t, s, l)
			}
			opts := pruneOpts(s)
			opts.MaxAge = c.maxAge
			var goal int64
			if c.chunks > 0 {
				u, _ := s.Usage(context.Background())
				goal = u.Free + int64(c.chunks*chunkSize)
				opts.KeepFreeBytes = goal
			}
			before, was := statusOf(t, s), snapshot(t, s)

			opts.DryRun = true
			dry := prune(t, opts)
			if !maps.Equal(snapshot(t, s), was) {
				t.Fatalf("a dry run changed the storage")
			}
			opts.DryRun = false
			res := prune(t, opts)
			checkPruned(t, s, all, c.gone, before, res)
			if dry.Removed != res.Removed || dry.Locked != res.Locked || !dry.DryRun || res.DryRun {
				t.Fatalf("the dry run said %+v, the prune did %+v", dry, res)
			}
			if res.Locked.Chunks != c.locked {
				t.Fatalf("%d chunks kept for locks, want %d", res.Locked.Chunks, c.locked)
			}
			if res.FreeGoal != goal {
				t.Fatalf("free space goal %d, want %d", res.FreeGoal, goal)
			}
			if u, _ := s.Usage(context.Background()); c.chunks > 0 && (u.Free < goal) != (res.Short() > 0) {
				t.Fatalf("%d free of a goal of %d, and the result says %d short", u.Free, goal, res.Short())
			}
			if c.chunks > 0 && len(c.gone) == 0 && res.Short() == 0 {
				t.Fatalf("a goal that locks keep from being met is not reported short: %+v", res)
			}
		})
	}
}

// shiftedLayout reads every chunk a second later than testLayout: another recorder's idea
// of the same paths.
type shiftedLayout struct{ testLayout }

func (shiftedLayout) Parse(rel string) (footage.Chunk, bool) {
	c, ok := testLayout{}.Parse(rel)
	c.Start = c.Start.Add(time.Second)
	return c, ok
}

// editIndex changes the records of one hour of a series' index on s.
func editIndex(t *testing.T, s storage.Storage, c chunkAt, edit func([]footage.Record) []footage.Record) {
	t.Helper()
	name := fmt.Sprintf("%s/.vigil/index/%s/%s/%s.json", footage.ServerRoot("srv1"), c.cam, c.st, c.chunk().Start.UTC().Format("2006/01/02/15"))
	var recs []footage.Record
	if err := json.Unmarshal(storagetest.MustRead(t, s, name), &recs); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(edit(recs))
	if err != nil {
		t.Fatal(err)
	}
	storagetest.MustPut(t, s, name, b)
}

// TestPruneOnlyIfElsewhere: with places given, a chunk goes only when each of them has
// it whole; one that is missing, or different, there is kept and counted.
func TestPruneOnlyIfElsewhere(t *testing.T) {
	all := pruneFixture()
	// Too old: c1h(0), c1l(0), c2h(5), c1h(10), c1l(10), c2h(15).
	cases := []struct {
		name string
		// places prepares the places, given the archive and a second storage with the
		// same backup.
		places func(t *testing.T, archive string, other storage.Storage) []footage.Place
		gone   []chunkAt
	}{
		{"in the archive, where the recorder removed two", func(t *testing.T, archive string, other storage.Storage) []footage.Place {
			for _, c := range []chunkAt{c1h(0), c2h(15)} {
				if err := os.Remove(filepath.Join(archive, c.path())); err != nil {
					t.Fatal(err)
				}
			}
			return []footage.Place{footage.ArchivePlace(archive, testLayout{})}
		}, []chunkAt{c1l(0), c2h(5), c1h(10), c1l(10)}},
		{"in the archive, one of another size", func(t *testing.T, archive string, other storage.Storage) []footage.Place {
			writeChunk(t, archive, c1l(0).path(), []byte("cut short"), c1l(0).chunk().End())
			return []footage.Place{footage.ArchivePlace(archive, nil)}
		}, []chunkAt{c1h(0), c2h(5), c1h(10), c1l(10), c2h(15)}},
		{"in an archive of another layout", func(t *testing.T, archive string, other storage.Storage) []footage.Place {
			return []footage.Place{footage.ArchivePlace(archive, shiftedLayout{})}
		}, nil},
		{"on another storage that has one camera", func(t *testing.T, archive string, other storage.Storage) []footage.Place {
			for _, c := range []chunkAt{c2h(5), c2h(15)} {
				if err := other.Remove(context.Background(), footage.ServerRoot("srv1")+"/"+c.path()); err != nil {
					t.Fatal(err)
				}
			}
			return []footage.Place{footage.StoragePlace("other", other, "srv1")}
		}, []chunkAt{c1h(0), c1l(0), c1h(10), c1l(10)}},
		{"on another storage whose index has another hash", func(t *testing.T, archive string, other storage.Storage) []footage.Place {
			editIndex(t, other, c1h(10), func(recs []footage.Record) []footage.Record {
				for i := range recs {
					if recs[i].Path == c1h(10).path() {
						recs[i].SHA256 = strings.Repeat("0", 64)
					}
				}
				return recs
			})
			return []footage.Place{footage.StoragePlace("other", other, "srv1")}
		}, []chunkAt{c1h(0), c1l(0), c2h(5), c1l(10), c2h(15)}},
		{"on another storage that does not list it", func(t *testing.T, archive string, other storage.Storage) []footage.Place {
			editIndex(t, other, c2h(5), func(recs []footage.Record) []footage.Record {
				return slices.DeleteFunc(recs, func(r footage.Record) bool { return r.Path == c2h(5).path() })
			})
			return []footage.Place{footage.StoragePlace("other", other, "srv1")}
		}, []chunkAt{c1h(0), c1l(0), c1h(10), c1l(10), c2h(15)}},
		{"in the archive and on another storage", func(t *testing.T, archive string, other storage.Storage) []footage.Place {
			if err := os.Remove(filepath.Join(archive, c1h(0).path())); err != nil {
				t.Fatal(err)
			}
			if err := other.Remove(context.Background(), footage.ServerRoot("srv1")+"/"+c1l(10).path()); err != nil {
				t.Fatal(err)
			}
			return []footage.Place{footage.ArchivePlace(archive, testLayout{}), footage.StoragePlace("other", other, "srv1")}
		}, []chunkAt{c1l(0), c2h(5), c1h(10), c2h(15)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, other := mem.New(), mem.New()
			archive := pruneFixtureOn(t, s, all)
			if res := backup(t, archive, t0.Add(time.Hour), footage.Target{Name: "other", Storage: other}); !res.Complete() {
				t.Fatalf("backup to the other storage: %+v", res)
			}
			opts := pruneOpts(s)
			opts.MaxAge = olderThan(30 * time.Second)
			opts.Elsewhere = c.places(t, archive, other)
			before := statusOf(t, s)
			res := prune(t, opts)
			checkPruned(t, s, all, c.gone, before, res)
			if want := 6 - len(c.gone); res.NotElsewhere.Chunks != want || res.NotElsewhere.Bytes != int64(want)*chunkSize {
				t.Fatalf("%+v kept for want of another copy, want %d chunks", res.NotElsewhere, want)
			}
		})
	}
}

// TestPruneArchiveNotThere: an archive folder that is not there stops the prune before it
// removes anything, rather than keeping everything in silence.
func TestPruneArchiveNotThere(t *testing.T) {
	s := mem.New()
	pruneFixtureOn(t, s, pruneFixture())
	was := snapshot(t, s)
	opts := pruneOpts(s)
	opts.MaxAge = olderThan(30 * time.Second)
	opts.Elsewhere = []footage.Place{footage.ArchivePlace(filepath.Join(t.TempDir(), "unmounted"), nil)}
	_, err := footage.Prune(context.Background(), opts)
	if err == nil || !strings.Contains(err.Error(), "is not there") {
		t.Fatalf("prune with an archive that is not there: %v", err)
	}
	if !maps.Equal(snapshot(t, s), was) {
		t.Fatalf("the prune changed the storage")
	}
}

// TestPruneThenBackup: the next backup does not copy what a prune removed back from the
// recorder, which still has it, but does copy new footage; the statuses keep what the
// prune wrote.
func TestPruneThenBackup(t *testing.T) {
	all := pruneFixture()
	s := mem.New()
	archive := pruneFixtureOn(t, s, all)
	opts := pruneOpts(s)
	opts.MaxAge = olderThan(30 * time.Second)
	res := prune(t, opts)
	pruned := statusOf(t, s)

	// The archive's files look newer than the index (copied back from elsewhere, say), so
	// the backup looks each chunk up in the index instead of trusting complete-until.
	for _, c := range all {
		touched := t0.Add(time.Hour + 30*time.Minute)
		if err := os.Chtimes(filepath.Join(archive, c.path()), touched, touched); err != nil {
			t.Fatal(err)
		}
	}
	newer := []chunkAt{{"cam1", footage.High, 60 * time.Second}, {"cam1", footage.Low, 60 * time.Second}, {"cam2", footage.High, 65 * time.Second}}
	writeArchive(t, archive, newer, chunkSize)
	b := backup(t, archive, t0.Add(2*time.Hour), footage.Target{Name: "s", Storage: s})
	if tr := b.Targets[0]; !b.Complete() || tr.Copied != len(newer) {
		t.Fatalf("the backup after the prune: %+v", tr)
	}
	left := slices.DeleteFunc(slices.Clone(all), func(c chunkAt) bool {
		return c.chunk().End().Before(t0.Add(30 * time.Second))
	})
	if got, want := stored(t, s), pathsOf(append(left, newer...)); !slices.Equal(got, want) {
		t.Fatalf("after the backup %q, want %q", got, want)
	}
	for key, st := range statusOf(t, s) {
		if !st.PrunedBefore.Equal(pruned[key].PrunedBefore) || st.PrunedBefore.IsZero() || st.Chunks != pruned[key].Chunks+1 {
			t.Fatalf("%s after the backup: %+v; after the prune: %+v", key, st, pruned[key])
		}
	}
	verifyClean(t, s)
	if res.Removed.Chunks != 6 {
		t.Fatalf("prune: %+v", res)
	}
}

// pruneDuringRun prunes by age while a backup run stores its first chunk, as a prune
// started beside a scheduled backup would.
type pruneDuringRun struct {
	storage.Storage
	t    *testing.T
	once sync.Once
}

func (s *pruneDuringRun) Put(ctx context.Context, name string, src storage.Source, opts storage.PutOptions) error {
	if strings.HasSuffix(name, ".bin") {
		s.once.Do(func() {
			opts := pruneOpts(s.Storage)
			opts.MaxAge = olderThan(30 * time.Second)
			if _, err := footage.Prune(ctx, opts); err != nil {
				s.t.Errorf("prune during the run: %v", err)
			}
		})
	}
	return s.Storage.Put(ctx, name, src, opts)
}

// TestPruneDuringBackup: a backup that runs while a prune does keeps the prune's
// PrunedBefore, so no later backup copies the footage back; what it wrote of the hour the
// prune changed may list removed chunks again, and the next prune drops them.
func TestPruneDuringBackup(t *testing.T) {
	all := pruneFixture()
	inner := mem.New()
	archive := pruneFixtureOn(t, inner, all)
	newer := []chunkAt{{"cam1", footage.High, 60 * time.Second}, {"cam1", footage.Low, 60 * time.Second}, {"cam2", footage.High, 65 * time.Second}}
	writeArchive(t, archive, newer, chunkSize)
	s := &pruneDuringRun{Storage: inner, t: t}
	if res := backup(t, archive, t0.Add(2*time.Hour), footage.Target{Name: "s", Storage: s}); !res.Complete() || res.Targets[0].Copied != len(newer) {
		t.Fatalf("the backup during the prune: %+v", res.Targets[0])
	}
	for key, st := range statusOf(t, inner) {
		if st.PrunedBefore.IsZero() {
			t.Fatalf("%s: the backup wrote over the prune's PrunedBefore: %+v", key, st)
		}
	}
	if res := backup(t, archive, t0.Add(2*time.Hour+time.Minute), footage.Target{Name: "s", Storage: inner}); res.Targets[0].Copied != 0 {
		t.Fatalf("a later backup copied pruned footage back: %+v", res.Targets[0])
	}
	opts := pruneOpts(inner)
	opts.MaxAge = olderThan(30 * time.Second)
	res := prune(t, opts)
	if res.Removed.Chunks != 0 || res.Gone > 6 {
		t.Fatalf("the prune after: %+v", res)
	}
	verifyClean(t, inner)
	left := slices.DeleteFunc(slices.Clone(all), func(c chunkAt) bool {
		return c.chunk().End().Before(t0.Add(30 * time.Second))
	})
	if got, want := stored(t, inner), pathsOf(append(left, newer...)); !slices.Equal(got, want) {
		t.Fatalf("stored %q, want %q", got, want)
	}
}

// crashing fails a prune at one step, as a machine that stops there would leave things:
// the hour files of the index cannot be written, or the process is killed after a few
// chunks are removed.
type crashing struct {
	storage.Storage
	failIndex bool
	killAfter int32 // removals of chunks; 0 for none
	kill      context.CancelFunc
	removed   atomic.Int32
}

func (c *crashing) Put(ctx context.Context, name string, src storage.Source, opts storage.PutOptions) error {
	if c.failIndex && strings.Contains(name, "/.vigil/index/") && !strings.HasSuffix(name, "/status.json") {
		return storage.NewError("put", name, storage.ErrUnreachable, errors.New("connection reset"))
	}
	return c.Storage.Put(ctx, name, src, opts)
}

func (c *crashing) Remove(ctx context.Context, name string) error {
	if strings.HasSuffix(name, ".bin") && c.killAfter > 0 && c.removed.Add(1) == c.killAfter {
		c.kill()
	}
	return c.Storage.Remove(ctx, name)
}

// TestPruneResumes: a prune stopped between removing chunks and writing the index leaves
// the index listing at most the chunks of its journal, and backups do not copy them back;
// the next prune finishes the batch and ends where an uninterrupted prune does.
func TestPruneResumes(t *testing.T) {
	all := pruneFixture()
	// Where a prune that is not stopped ends.
	ref := mem.New()
	pruneFixtureOn(t, ref, all)
	refOpts := pruneOpts(ref)
	refOpts.MaxAge = olderThan(30 * time.Second)
	prune(t, refOpts)

	cases := []struct {
		name string
		c    *crashing
	}{
		{"the index cannot be written", &crashing{failIndex: true}},
		{"killed while removing", &crashing{killAfter: 3}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inner := mem.New()
			archive := pruneFixtureOn(t, inner, all)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			tc.c.Storage, tc.c.kill = inner, cancel
			opts := pruneOpts(tc.c)
			opts.MaxAge = olderThan(30 * time.Second)
			opts.Parallel = 1 // so that the kill comes between two removals
			if _, err := footage.Prune(ctx, opts); err == nil {
				t.Fatalf("the prune did not stop")
			}

			var journal []footage.Record
			if err := json.Unmarshal(storagetest.MustRead(t, inner, footage.ServerRoot("srv1")+"/.vigil/pruning.json"), &journal); err != nil {
				t.Fatalf("the journal: %v", err)
			}
			v, err := footage.Verify(context.Background(), inner, "srv1", footage.VerifyOptions{})
			if err != nil || len(v.NotIndexed) > 0 {
				t.Fatalf("verify after the stop: %v, not indexed %q", err, v.NotIndexed)
			}
			if len(v.Bad) == 0 {
				t.Fatalf("the stop left nothing to finish: the test tests nothing")
			}
			for _, b := range v.Bad {
				if !slices.ContainsFunc(journal, func(r footage.Record) bool { return r.Path == b.Path }) || b.Problem != "missing" {
					t.Fatalf("after the stop the index lists %s (%s), which the journal does not", b.Path, b.Problem)
				}
			}
			if res := backup(t, archive, t0.Add(time.Hour+time.Minute), footage.Target{Name: "s", Storage: inner}); res.Targets[0].Copied != 0 {
				t.Fatalf("a backup after the stop copied pruned footage back: %+v", res.Targets[0])
			}

			// The next prune would remove nothing of itself: it finishes the journal's batch.
			opts.Storage, opts.MaxAge = inner, olderThan(0)
			res := prune(t, opts)
			if res.Resumed != len(journal) || res.Removed.Chunks+res.Gone != 6 {
				t.Fatalf("the next prune: %+v, the journal had %d chunks", res, len(journal))
			}
			verifyClean(t, inner)
			if got, want := stored(t, inner), stored(t, ref); !slices.Equal(got, want) {
				t.Fatalf("after resuming %q, want %q", got, want)
			}
			got, want := statusOf(t, inner), statusOf(t, ref)
			for key := range want {
				g, w := got[key], want[key]
				g.Updated, w.Updated = time.Time{}, time.Time{}
				if !reflect.DeepEqual(g, w) {
					t.Fatalf("%s after resuming: %+v, want %+v", key, g, w)
				}
			}
			if _, err := inner.Stat(context.Background(), footage.ServerRoot("srv1")+"/.vigil/pruning.json"); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("the journal is still there: %v", err)
			}
		})
	}
}

// TestPruneKeepFreeOnVolume keeps a percentage of a real file system free: the oldest
// chunks go until it is, and no more.
func TestPruneKeepFreeOnVolume(t *testing.T) {
	const size = 64 << 10
	dir := testenv.Volume(t, 4<<20)
	s, err := local.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	var chunks []chunkAt
	for i := range 40 {
		chunks = append(chunks, chunkAt{"cam1", footage.High, time.Duration(i) * 10 * time.Second})
	}
	archive := t.TempDir()
	writeArchive(t, archive, chunks, size)
	if res := backup(t, archive, t0.Add(time.Hour), footage.Target{Name: "volume", Storage: s}); !res.Complete() {
		t.Fatalf("backup: %+v", res)
	}
	opts := pruneOpts(s)
	opts.KeepFreePercent = 60
	res := prune(t, opts)
	u, err := s.Usage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	goal := int64(0.6*float64(u.Total) + 0.5)
	if res.FreeGoal < goal-1 || res.FreeGoal > goal+1 || u.Free < res.FreeGoal || res.Short() != 0 || res.FreeAfter != u.Free {
		t.Fatalf("free %d of %d after the prune, result %+v", u.Free, u.Total, res)
	}
	if res.FreeBefore >= res.FreeGoal || res.Removed.Chunks == 0 {
		t.Fatalf("nothing to remove: %+v", res)
	}
	// One chunk fewer would not have been enough.
	if u.Free-size >= res.FreeGoal {
		t.Fatalf("removed more than needed: %d free, goal %d, chunks of %d bytes", u.Free, res.FreeGoal, size)
	}
	if got, want := stored(t, s), pathsOf(chunks[res.Removed.Chunks:]); !slices.Equal(got, want) {
		t.Fatalf("left %q, want the newest %q", got, want)
	}
	verifyClean(t, s)
}

// noUsage is a storage that cannot tell its free space, as S3 cannot.
type noUsage struct{ storage.Storage }

func TestPruneRefuses(t *testing.T) {
	cases := []struct {
		name string
		opts func(footage.PruneOptions) footage.PruneOptions
		says string
	}{
		{"nothing to prune by", func(o footage.PruneOptions) footage.PruneOptions { return o }, "nothing to prune by"},
		{"all free", func(o footage.PruneOptions) footage.PruneOptions { o.KeepFreePercent = 100; return o }, "below 100"},
		{"a negative age", func(o footage.PruneOptions) footage.PruneOptions { o.MaxAge = -time.Hour; return o }, "negative"},
		{"free space of a storage that cannot tell it", func(o footage.PruneOptions) footage.PruneOptions {
			o.Storage, o.KeepFreeBytes, o.MaxAge = noUsage{o.Storage}, 1<<20, time.Minute
			return o
		}, "does not report its free space"},
		{"locks that cannot be read", func(o footage.PruneOptions) footage.PruneOptions {
			storagetest.MustPut(t, o.Storage, footage.LocksName("srv1"), []byte(`{"locks": [{"id": "x", "camera": "cam1", "from": "2026-11-22T04:00:00Z", "to": "2026-11-22T05:00:00Z"}]}`))
			o.MaxAge = time.Minute
			return o
		}, "a reason is required"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := mem.New()
			pruneFixtureOn(t, s, pruneFixture())
			opts := c.opts(pruneOpts(s))
			was := snapshot(t, s)
			_, err := footage.Prune(context.Background(), opts)
			if err == nil || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("prune: %v, want an error that says %q", err, c.says)
			}
			if !maps.Equal(snapshot(t, s), was) {
				t.Fatalf("a prune that was refused changed the storage")
			}
		})
	}
}

// countingWrites counts the writes and removals of the index's hour files and statuses.
type countingWrites struct {
	storage.Storage
	hours, statuses atomic.Int32
}

func (c *countingWrites) count(name string) {
	switch {
	case strings.HasSuffix(name, "/status.json"):
		c.statuses.Add(1)
	case strings.Contains(name, "/.vigil/index/"):
		c.hours.Add(1)
	}
}

func (c *countingWrites) Put(ctx context.Context, name string, src storage.Source, opts storage.PutOptions) error {
	c.count(name)
	return c.Storage.Put(ctx, name, src, opts)
}

func (c *countingWrites) Remove(ctx context.Context, name string) error {
	c.count(name)
	return c.Storage.Remove(ctx, name)
}

// TestPruneBatches: a prune of thousands of chunks over several hours writes the index a
// few times per hour, not once per chunk, and leaves it whole.
func TestPruneBatches(t *testing.T) {
	inner := mem.New()
	var chunks []chunkAt
	for i := range 3 * 360 {
		at := time.Duration(i) * 10 * time.Second
		chunks = append(chunks, chunkAt{"cam1", footage.High, at}, chunkAt{"cam1", footage.Low, at})
	}
	archive := t.TempDir()
	writeArchive(t, archive, chunks, 64)
	if res := backup(t, archive, t0.Add(4*time.Hour), footage.Target{Name: "s", Storage: inner}); !res.Complete() {
		t.Fatalf("backup: %+v", res)
	}
	s := &countingWrites{Storage: inner}
	opts := pruneOpts(s)
	opts.Now = func() time.Time { return t0.Add(4 * time.Hour) }
	opts.MaxAge = 90 * time.Minute
	cutoff := t0.Add(150 * time.Minute)
	var gone []chunkAt
	var prunedBefore time.Time
	for _, c := range chunks {
		if c.chunk().End().Before(cutoff) {
			gone = append(gone, c)
			prunedBefore = later(prunedBefore, c.chunk().End())
		}
	}
	res := prune(t, opts)
	if res.Removed.Chunks != len(gone) {
		t.Fatalf("removed %+v, want %d chunks", res.Removed, len(gone))
	}
	// 720 chunks an hour, in batches of at most 500: two batches for each of the first
	// two hours and one for the half hour. Each batch writes (or removes) the hour file of
	// each stream, and each stream's status twice.
	if h, st := s.hours.Load(), s.statuses.Load(); h > 5*2 || st > 5*2*2 {
		t.Fatalf("%d writes of hour files and %d of statuses for %d chunks in 5 batches", h, st, len(gone))
	}
	left := slices.DeleteFunc(slices.Clone(chunks), func(c chunkAt) bool { return slices.Contains(gone, c) })
	if got, want := stored(t, inner), pathsOf(left); !slices.Equal(got, want) {
		t.Fatalf("left %d chunks, want %d", len(got), len(want))
	}
	for key, st := range statusOf(t, inner) {
		if st.Chunks != len(left)/2 || !st.PrunedBefore.Equal(prunedBefore) {
			t.Fatalf("%s after the prune: chunks %d, pruned before %v; want %d, %v", key, st.Chunks, st.PrunedBefore, len(left)/2, prunedBefore)
		}
	}
	verifyClean(t, inner)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
