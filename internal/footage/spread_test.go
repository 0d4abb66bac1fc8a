package footage_test

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/internal/footage"
	"github.com/vigil-backup/vigil/internal/storage"
	"github.com/vigil-backup/vigil/internal/storage/mem"
	"github.com/vigil-backup/vigil/internal/storage/storagetest"
	"github.com/vigil-backup/vigil/internal/testenv"
)

// sizedArchive writes n chunks of 10 s and size bytes for each stream of cam1 and cam2, the
// last one still being recorded, and returns the closed chunks' paths.
func sizedArchive(t *testing.T, root string, n, size int, now time.Time) []string {
	t.Helper()
	var closed []string
	for _, cam := range []string{"cam1", "cam2"} {
		for _, st := range []footage.Stream{footage.High, footage.Low} {
			for i := range n {
				c := footage.Chunk{Camera: cam, Stream: st, Start: t0.Add(time.Duration(i) * 10 * time.Second), Duration: 10 * time.Second}
				rel := testLayout{}.Path(c)
				data := bytes.Repeat([]byte{byte(i)}, size)
				copy(data, rel) // no two chunks alike
				mtime := c.End()
				if i == n-1 {
					mtime = now
				} else {
					closed = append(closed, rel)
				}
				writeChunk(t, root, rel, data, mtime)
			}
		}
	}
	slices.Sort(closed)
	return closed
}

func spreadOptions(root string, now time.Time, targets ...footage.Target) footage.BackupOptions {
	return footage.BackupOptions{
		Source: root, Layout: testLayout{}, ServerID: "srv1", Targets: targets, Spread: true,
		Parallel: 1, Now: func() time.Time { return now },
	}
}

func spreadBackup(t *testing.T, opts footage.BackupOptions) footage.Result {
	t.Helper()
	res, err := footage.Backup(context.Background(), opts)
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	return res
}

// checkSpread checks that the storages together hold each chunk of want once, and only
// those, each listed in the index of the storage it is on.
func checkSpread(t *testing.T, want []string, set ...storage.Storage) {
	t.Helper()
	var all []string
	for i, s := range set {
		on := stored(t, s)
		all = append(all, on...)
		indexed := indexedOn(t, s)
		for _, p := range on {
			if !indexed[p] {
				t.Fatalf("storage %d holds %s, which its index does not list", i, p)
			}
		}
		if len(indexed) != len(on) {
			t.Fatalf("storage %d: its index lists %d chunks, it holds %d", i, len(indexed), len(on))
		}
	}
	slices.Sort(all)
	if !slices.Equal(all, want) {
		t.Fatalf("the storages hold %q together, want each of %q once", all, want)
	}
}

// indexedOn is the chunks the index of s lists.
func indexedOn(t *testing.T, s storage.Storage) map[string]bool {
	t.Helper()
	indexed := map[string]bool{}
	for _, k := range seriesKeys() {
		recs, err := footage.ReadRecords(context.Background(), s, "srv1", k)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			indexed[r.Path] = true
		}
	}
	return indexed
}

func seriesKeys() []footage.Key {
	var out []footage.Key
	for _, cam := range []string{"cam1", "cam2"} {
		for _, st := range []footage.Stream{footage.High, footage.Low} {
			out = append(out, footage.Key{Camera: cam, Stream: st})
		}
	}
	return out
}

// checkClaims checks that no complete-until claims a chunk that is in no index: neither a
// storage's own, nor the set's as ReadSetStatuses works it out. It returns the set's.
func checkClaims(t *testing.T, archive []string, set ...storage.Storage) map[footage.Key]time.Time {
	t.Helper()
	targets := make([]footage.Target, len(set))
	onSet := map[string]bool{}
	on := make([]map[string]bool, len(set))
	for i, s := range set {
		targets[i] = footage.Target{Name: string(rune('a' + i)), Storage: s}
		on[i] = indexedOn(t, s)
		maps.Copy(onSet, on[i])
	}
	sets, each, err := footage.ReadSetStatuses(context.Background(), targets, "srv1")
	if err != nil {
		t.Fatal(err)
	}
	claimsOnly := func(who string, k footage.Key, until time.Time, listed map[string]bool) {
		for _, p := range archive {
			c, _ := testLayout{}.Parse(p)
			if footage.KeyOf(c) == k && c.Start.Before(until) && !listed[p] {
				t.Fatalf("%s claims %s complete until %v, but %s is not in its index", who, k, until, p)
			}
		}
	}
	out := map[footage.Key]time.Time{}
	for _, ss := range sets {
		k := footage.Key{Camera: ss.Camera, Stream: ss.Stream}
		claimsOnly("the set", k, ss.CompleteUntil, onSet)
		out[k] = ss.CompleteUntil
	}
	for i, sts := range each {
		for _, st := range sts {
			claimsOnly(targets[i].Name, footage.Key{Camera: st.Camera, Stream: st.Stream}, st.CompleteUntil, on[i])
		}
	}
	return out
}

// wantSetComplete checks that the set is complete until want for every series, as the
// run found it and as read from the storages' statuses.
func wantSetComplete(t *testing.T, res footage.Result, read map[footage.Key]time.Time, want time.Time) {
	t.Helper()
	for _, k := range seriesKeys() {
		if !read[k].Equal(want) || !res.SetCompleteUntil[k].Equal(want) {
			t.Fatalf("%s: the set is complete until %v (run: %v), want %v", k, read[k], res.SetCompleteUntil[k], want)
		}
	}
}

// TestSpreadByFreeSpace: each chunk goes to the storage with the most room left, so the
// one with 6 chunks' worth more free space takes the first 6, and then they take turns;
// every chunk is on one storage, and the set is complete where every chunk is somewhere.
func TestSpreadByFreeSpace(t *testing.T) {
	root := t.TempDir()
	now := t0.Add(time.Hour)
	closed := sizedArchive(t, root, 5, 1000, now)
	a, b := mem.New(mem.WithCapacity(1<<20)), mem.New(mem.WithCapacity(1<<20+6000))
	res := spreadBackup(t, spreadOptions(root, now, footage.Target{Name: "a", Storage: a}, footage.Target{Name: "b", Storage: b}))
	if !res.Complete() || res.Chunks != 16 || res.Queued != 16 {
		t.Fatalf("result: %+v", res)
	}
	if got := []int{res.Targets[0].Copied, res.Targets[1].Copied}; !slices.Equal(got, []int{5, 11}) {
		t.Fatalf("copied %v chunks to a and b, want [5 11]", got)
	}
	checkSpread(t, closed, a, b)
	// Four closed chunks of 10 s; the fifth is being recorded.
	wantSetComplete(t, res, checkClaims(t, closed, a, b), t0.Add(40*time.Second))

	// Nothing is copied again, to either storage.
	again := spreadBackup(t, spreadOptions(root, now, footage.Target{Name: "a", Storage: a}, footage.Target{Name: "b", Storage: b}))
	if !again.Complete() || again.Targets[0].Copied+again.Targets[1].Copied != 0 || again.Queued != 0 {
		t.Fatalf("a re-run: %+v", again)
	}
	checkSpread(t, closed, a, b)
}

// TestSpreadRerunsAndFrozenFolders: with a scan cache, re-runs take frozen folders as on
// the set and copy nothing; the storages' own complete-until never claims what they lack;
// a mirror run to one of them afterwards trusts none of that and copies what it lacks.
func TestSpreadRerunsAndFrozenFolders(t *testing.T) {
	root, cache, now := frozenArchive(t)
	closed := sizes(scan(t, root, "", now))
	var want []string
	for p := range closed {
		want = append(want, p)
	}
	slices.Sort(want)
	a, b := mem.New(), mem.New()
	set := []footage.Target{{Name: "a", Storage: a}, {Name: "b", Storage: b}}
	opts := spreadOptions(root, now, set...)
	opts.ScanCache = cache
	first := spreadBackup(t, opts)
	if !first.Complete() || first.Targets[0].Copied == 0 || first.Targets[1].Copied == 0 {
		t.Fatalf("first run: %+v", first)
	}
	checkSpread(t, want, a, b)
	allUntil := t0.Add(40 * time.Second)
	for range 2 {
		res := spreadBackup(t, opts)
		if !res.Complete() || res.Targets[0].Copied+res.Targets[1].Copied != 0 || res.Chunks != first.Chunks {
			t.Fatalf("a re-run: %+v", res)
		}
		checkSpread(t, want, a, b)
		wantSetComplete(t, res, checkClaims(t, want, a, b), allUntil)
	}

	// Mirroring to a alone: a lacks what b has, frozen or not.
	res := cachedBackup(t, root, cache, now, footage.Target{Name: "a", Storage: a})
	if !res.Complete() || res.Targets[0].Copied != first.Targets[1].Copied {
		t.Fatalf("a mirror run after spreading: %+v, want %d copied", res, first.Targets[1].Copied)
	}
	if got := stored(t, a); !slices.Equal(got, want) {
		t.Fatalf("a holds %q, want %q", got, want)
	}
}

// breaking makes chunk uploads fail once `left` have got through, and index writes too
// when index is set, as a disk that fills up or a NAS that goes away would.
type breaking struct {
	storage.Storage
	mu    sync.Mutex
	left  int
	index bool
}

func (b *breaking) Put(ctx context.Context, name string, src storage.Source, opts storage.PutOptions) error {
	b.mu.Lock()
	fail := false
	switch {
	case strings.HasSuffix(name, ".bin"):
		fail = b.left == 0
		b.left = max(b.left-1, 0)
	case strings.Contains(name, "/.vigil/index/") && !strings.HasSuffix(name, "status.json"):
		fail = b.index
	}
	b.mu.Unlock()
	if fail {
		return storage.NewError("put", name, storage.ErrUnreachable, errors.New("connection reset"))
	}
	return b.Storage.Put(ctx, name, src, opts)
}

func (b *breaking) Unwrap() storage.Storage { return b.Storage }

// TestSpreadFailingStorage: a storage that fails is given up on for the run, and the
// chunks it would have had go to the others. What it got before it failed counts for the
// set only once its index lists it.
func TestSpreadFailingStorage(t *testing.T) {
	for _, c := range []struct {
		name       string
		indexFails bool
	}{{"chunks fail", false}, {"index fails too", true}} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			now := t0.Add(time.Hour)
			closed := sizedArchive(t, root, 5, 1000, now)
			// a has the most room, so it is chosen until it fails.
			a := &breaking{Storage: mem.New(mem.WithCapacity(1 << 30)), left: 2, index: c.indexFails}
			b := mem.New(mem.WithCapacity(1 << 20))
			res := spreadBackup(t, spreadOptions(root, now, footage.Target{Name: "a", Storage: a}, footage.Target{Name: "b", Storage: b}))
			if res.Complete() || !errors.Is(res.Targets[0].Err, storage.ErrUnreachable) || res.Targets[1].Err != nil {
				t.Fatalf("result: %+v", res)
			}
			if got := []int{res.Targets[0].Copied, res.Targets[1].Copied}; !slices.Equal(got, []int{2, 14}) {
				t.Fatalf("copied %v chunks to a and b, want [2 14]", got)
			}
			if got := len(stored(t, a)) + len(stored(t, b)); got != len(closed) {
				t.Fatalf("%d chunks stored, want %d once each", got, len(closed))
			}
			until := checkClaims(t, closed, a, b)
			if c.indexFails {
				// a got the first chunk of cam1's streams, which no index lists.
				for _, st := range []footage.Stream{footage.High, footage.Low} {
					k := footage.Key{Camera: "cam1", Stream: st}
					if u, ok := res.SetCompleteUntil[k]; ok || !until[k].IsZero() {
						t.Fatalf("%s: the set is complete until %v (run: %v), want nothing: a's chunk is in no index", k, until[k], u)
					}
				}
				return
			}
			checkSpread(t, closed, a, b)
			wantSetComplete(t, res, until, t0.Add(40*time.Second))
		})
	}
}

// TestSpreadStorageDownAtStart: a storage that cannot be read when a run begins keeps what
// it holds: the run does not copy it to the others, only the new chunks, and once the
// storage is back the set is whole, each chunk once.
func TestSpreadStorageDownAtStart(t *testing.T) {
	root := t.TempDir()
	now := t0.Add(time.Hour)
	closed := sizedArchive(t, root, 5, 1000, now)
	a, b := mem.New(), storagetest.NewFaulty(mem.New())
	set := []footage.Target{{Name: "a", Storage: a}, {Name: "b", Storage: b}}
	spreadBackup(t, spreadOptions(root, now, set...))

	// The recorder closes the chunks it was writing; b is unreachable.
	var all []string
	for _, k := range seriesKeys() {
		c := footage.Chunk{Camera: k.Camera, Stream: k.Stream, Start: t0.Add(40 * time.Second), Duration: 10 * time.Second}
		os.Chtimes(filepath.Join(root, testLayout{}.Path(c)), c.End(), c.End())
		all = append(all, testLayout{}.Path(c))
	}
	all = append(all, closed...)
	slices.Sort(all)
	down := storage.NewError("open", "x", storage.ErrUnreachable, errors.New("no route to host"))
	for _, op := range []string{"put", "open", "stat", "list", "remove"} {
		b.FailNext(op, 1000, down)
	}
	res := spreadBackup(t, spreadOptions(root, now, set...))
	if res.Targets[0].Copied != 4 || !errors.Is(res.Targets[1].Err, storage.ErrUnreachable) {
		t.Fatalf("with b down: %+v, want the 4 new chunks copied to a", res)
	}

	for _, op := range []string{"put", "open", "stat", "list", "remove"} {
		b.Heal(op)
	}
	res = spreadBackup(t, spreadOptions(root, now, set...))
	if !res.Complete() || res.Targets[0].Copied+res.Targets[1].Copied != 0 {
		t.Fatalf("b back: %+v", res)
	}
	checkSpread(t, all, a, b)
	wantSetComplete(t, res, checkClaims(t, all, a, b), t0.Add(50*time.Second))
}

// usageScript reports the free space free gives for each call, counting from 0.
type usageScript struct {
	storage.Storage
	calls atomic.Int32
	free  func(call int) int64
}

func (u *usageScript) Usage(ctx context.Context) (storage.Usage, error) {
	n := int(u.calls.Add(1)) - 1
	return storage.Usage{Total: 1 << 40, Free: u.free(n)}, nil
}

// TestSpreadReadsFreeSpaceAgain: the free space a storage reported is read again after 30
// seconds, and what it says then decides.
func TestSpreadReadsFreeSpaceAgain(t *testing.T) {
	root := t.TempDir()
	now := t0.Add(time.Hour)
	closed := sizedArchive(t, root, 5, 1000, now)
	// a looks far emptier until it is asked again: it filled up meanwhile.
	a := &usageScript{Storage: mem.New(), free: func(call int) int64 { return map[bool]int64{true: 1 << 40, false: 0}[call == 0] }}
	b := &usageScript{Storage: mem.New(), free: func(int) int64 { return 1 << 30 }}
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	opts := spreadOptions(root, now, footage.Target{Name: "a", Storage: a}, footage.Target{Name: "b", Storage: b})
	opts.Now = func() time.Time { return time.Unix(0, clock.Load()) }
	opts.Progress = func(p footage.Progress) {
		if p.CopiesDone == 3 {
			clock.Store(now.Add(time.Minute).UnixNano())
		}
	}
	res := spreadBackup(t, opts)
	if got := []int{res.Targets[0].Copied, res.Targets[1].Copied}; !res.Complete() || !slices.Equal(got, []int{3, 13}) {
		t.Fatalf("copied %v chunks to a and b, want [3 13]: %+v", got, res)
	}
	if a.calls.Load() != 2 || b.calls.Load() != 2 {
		t.Fatalf("free space read %d times from a, %d from b; want twice each", a.calls.Load(), b.calls.Load())
	}
	checkSpread(t, closed, a, b)
}

func TestSpreadRefusals(t *testing.T) {
	root := t.TempDir()
	now := t0.Add(time.Hour)
	sizedArchive(t, root, 2, 10, now)
	s3like := footage.Target{Name: "bucket", Storage: noUsage{mem.New()}}
	disk := footage.Target{Name: "disk", Storage: mem.New()}
	copyOf := mem.New()
	for _, c := range []struct {
		name    string
		targets []footage.Target
		says    string
	}{
		{"one storage", []footage.Target{disk}, "two storages at least"},
		{"the same storage twice", []footage.Target{disk, disk}, "disk is given twice"},
		{"no free space", []footage.Target{disk, s3like}, "bucket does not report its free space"},
		{"a copy of a storage", []footage.Target{disk, {Name: "copy", Storage: copyOf}}, "disk and copy hold the same id"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "a copy of a storage" {
				spreadBackup(t, spreadOptions(root, now, disk, footage.Target{Name: "other", Storage: mem.New()}))
				id := footage.ServerRoot("srv1") + "/.vigil/storage-id.json"
				storagetest.MustPut(t, copyOf, id, storagetest.MustRead(t, disk.Storage, id))
			}
			_, err := footage.Backup(context.Background(), spreadOptions(root, now, c.targets...))
			if !errors.Is(err, footage.ErrCannotSpread) || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("got %v, want ErrCannotSpread that says %q", err, c.says)
			}
			// A real-time backup stops at once: no later pass could do better.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err = footage.Realtime(ctx, footage.RealtimeOptions{BackupOptions: spreadOptions(root, now, c.targets...)})
			if !errors.Is(err, footage.ErrCannotSpread) {
				t.Fatalf("real-time: got %v, want ErrCannotSpread", err)
			}
			for _, tg := range c.targets {
				// Refused before anything was written: no id, no sweep marker, no chunk.
				if got := storagetest.Names(t, tg.Storage, ""); len(got) != 0 && c.name != "a copy of a storage" {
					t.Fatalf("refused, yet %s has %q", tg.Name, got)
				}
			}
		})
	}
}

// TestRestoreFromSet restores a camera's footage from the storages it was spread over,
// byte for byte; a chunk whose copy on the first storage that lists it is damaged comes
// from the other.
func TestRestoreFromSet(t *testing.T) {
	root := t.TempDir()
	now := t0.Add(time.Hour)
	sizedArchive(t, root, 5, 1000, now)
	a, b := mem.New(mem.WithCapacity(1<<20)), mem.New(mem.WithCapacity(1<<20))
	set := []footage.Target{{Name: "a", Storage: a}, {Name: "b", Storage: b}}
	spreadBackup(t, spreadOptions(root, now, set...))

	target := t.TempDir()
	res, err := footage.RestoreFrom(context.Background(), set, "srv1", footage.RestoreOptions{Camera: "cam1", Target: target})
	if err != nil || res.Restored != 8 {
		t.Fatalf("restore: %+v, %v", res, err)
	}
	for _, p := range testenv.Files(t, target) {
		got, _ := os.ReadFile(filepath.Join(target, p))
		want, _ := os.ReadFile(filepath.Join(root, p))
		if !bytes.Equal(got, want) {
			t.Fatalf("%s differs from the archive's", p)
		}
	}

	// A chunk of b's is on a too, damaged there, with a's index listing it as it should be.
	rel := stored(t, b)[0]
	c, _ := testLayout{}.Parse(rel)
	good, _ := os.ReadFile(filepath.Join(root, rel))
	recs, err := footage.ReadRecords(context.Background(), b, "srv1", footage.KeyOf(c))
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(recs, func(r footage.Record) bool { return r.Path == rel })
	putIndex(t, a, c.Camera, c.Stream, []footage.Record{recs[i]})
	storagetest.MustPut(t, a, footage.ServerRoot("srv1")+"/"+rel, append([]byte{good[0] ^ 1}, good[1:]...))
	target = t.TempDir()
	opts := footage.RestoreOptions{Camera: c.Camera, Streams: []footage.Stream{c.Stream}, Since: c.Start, Until: c.End(), Target: target}
	if res, err := footage.RestoreFrom(context.Background(), set, "srv1", opts); err != nil || res.Restored != 1 {
		t.Fatalf("restore with a damaged copy: %+v, %v", res, err)
	}
	if got, _ := os.ReadFile(filepath.Join(target, rel)); !bytes.Equal(got, good) {
		t.Fatalf("%s was restored from the damaged copy", rel)
	}
	// With the good copy damaged too, the restore fails and says where.
	storagetest.MustPut(t, b, footage.ServerRoot("srv1")+"/"+rel, good[1:])
	_, err = footage.RestoreFrom(context.Background(), set, "srv1", footage.RestoreOptions{Camera: c.Camera, Streams: []footage.Stream{c.Stream}, Since: c.Start, Until: c.End(), Target: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "a: ") || !strings.Contains(err.Error(), "b: ") || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("both copies damaged: %v", err)
	}
}
