package footage_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/internal/footage"
	"github.com/vigil-backup/vigil/internal/storage"
	"github.com/vigil-backup/vigil/internal/storage/mem"
	"github.com/vigil-backup/vigil/internal/storage/storagetest"
)

// testLayout names chunks <camera>/<stream>/<start unix s>_<duration s>.bin, so that the
// job's tests do not depend on any real recorder's layout.
type testLayout struct{}

func (testLayout) Name() string { return "test" }

func (testLayout) Parse(rel string) (footage.Chunk, bool) {
	parts := strings.Split(rel, "/")
	if len(parts) != 3 || !strings.HasSuffix(parts[2], ".bin") {
		return footage.Chunk{}, false
	}
	start, dur, ok := strings.Cut(strings.TrimSuffix(parts[2], ".bin"), "_")
	s, err1 := strconv.ParseInt(start, 10, 64)
	d, err2 := strconv.ParseInt(dur, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return footage.Chunk{}, false
	}
	return footage.Chunk{Path: rel, Camera: parts[0], Stream: footage.Stream(parts[1]), Start: time.Unix(s, 0).UTC(), Duration: time.Duration(d) * time.Second}, true
}

func (testLayout) Path(c footage.Chunk) string {
	return fmt.Sprintf("%s/%s/%d_%d.bin", c.Camera, c.Stream, c.Start.Unix(), int(c.Duration.Seconds()))
}

var t0 = time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)

// archive writes chunks of 10 s for each camera and stream: n of them, the last one
// modified at `now` (still recording) when open is true. It returns the closed chunks' paths.
func archive(t *testing.T, root string, cameras []string, n int, open bool, now time.Time) []string {
	t.Helper()
	var closed []string
	for _, cam := range cameras {
		for _, st := range []footage.Stream{footage.High, footage.Low} {
			for i := range n {
				c := footage.Chunk{Camera: cam, Stream: st, Start: t0.Add(time.Duration(i) * 10 * time.Second), Duration: 10 * time.Second}
				rel := testLayout{}.Path(c)
				writeChunk(t, root, rel, []byte(fmt.Sprintf("%s %d", rel, i)), c.End())
				if open && i == n-1 {
					os.Chtimes(filepath.Join(root, rel), now, now)
					continue
				}
				closed = append(closed, rel)
			}
		}
	}
	return closed
}

func writeChunk(t *testing.T, root, rel string, data []byte, mtime time.Time) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func backup(t *testing.T, root string, now time.Time, targets ...footage.Target) footage.Result {
	t.Helper()
	res, err := footage.Backup(context.Background(), footage.BackupOptions{
		Source: root, Layout: testLayout{}, ServerID: "srv1", Targets: targets, Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	return res
}

// stored lists the chunk paths on a storage, relative to the server's footage root.
func stored(t *testing.T, s storage.Storage) []string {
	t.Helper()
	var out []string
	for _, n := range storagetest.Names(t, s, footage.ServerRoot("srv1")) {
		if rel := strings.TrimPrefix(n, footage.ServerRoot("srv1")+"/"); !strings.HasPrefix(rel, ".vigil/") {
			out = append(out, rel)
		}
	}
	return out
}

func statusOf(t *testing.T, s storage.Storage) map[string]footage.Status {
	t.Helper()
	sts, err := footage.ReadStatuses(context.Background(), s, "srv1")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]footage.Status{}
	for _, st := range sts {
		out[st.Camera+"/"+string(st.Stream)] = st
	}
	return out
}

func TestBackupMirrorsAndIndexes(t *testing.T) {
	root := t.TempDir()
	now := t0.Add(time.Hour)
	closed := archive(t, root, []string{"cam1", "cam2"}, 5, true, now)
	a, b := mem.New(), mem.New()
	res := backup(t, root, now, footage.Target{Name: "a", Storage: a}, footage.Target{Name: "b", Storage: b})
	if !res.Complete() || res.Chunks != 16 || res.Recording != 4 {
		t.Fatalf("result: %+v", res)
	}
	slices.Sort(closed)
	for _, s := range []storage.Storage{a, b} {
		if got := stored(t, s); !slices.Equal(got, closed) {
			t.Fatalf("stored %q, want %q", got, closed)
		}
		for key, st := range statusOf(t, s) {
			// Four closed chunks of 10 s; the fifth is still being recorded.
			if want := t0.Add(40 * time.Second); !st.CompleteUntil.Equal(want) || st.Chunks != 4 {
				t.Fatalf("%s: status %+v, want complete until %v", key, st, want)
			}
		}
		recs, err := footage.ReadRecords(context.Background(), s, "srv1", footage.Key{Camera: "cam1", Stream: footage.High})
		if err != nil || len(recs) != 4 || len(recs[0].SHA256) != 64 || recs[0].Size == 0 {
			t.Fatalf("records: %+v, %v", recs, err)
		}
	}
	for _, tr := range res.Targets {
		if tr.Copied != 16 || tr.Skipped != 0 {
			t.Fatalf("target %s: %+v", tr.Name, tr)
		}
	}
	// Nothing new: nothing copied, nothing read but the index.
	again := backup(t, root, now.Add(10*time.Second), footage.Target{Name: "a", Storage: a})
	if again.Targets[0].Copied != 0 || again.Targets[0].Skipped != 0 || !again.Complete() {
		t.Fatalf("a run with nothing new: %+v", again.Targets[0])
	}
}

// TestBackupClosedChunkAdvances: once the recorder closes the open chunk, the next run
// copies it and complete-until reaches its end.
func TestBackupClosedChunkAdvances(t *testing.T) {
	root := t.TempDir()
	now := t0.Add(time.Hour)
	archive(t, root, []string{"cam1"}, 3, true, now)
	s := mem.New()
	backup(t, root, now, footage.Target{Name: "s", Storage: s})
	later := now.Add(time.Hour) // the open chunk settled
	res := backup(t, root, later, footage.Target{Name: "s", Storage: s})
	if res.Targets[0].Copied != 2 || res.Recording != 0 {
		t.Fatalf("second run: %+v", res.Targets[0])
	}
	if st := statusOf(t, s)["cam1/hi"]; !st.CompleteUntil.Equal(t0.Add(30 * time.Second)) {
		t.Fatalf("complete until %v", st.CompleteUntil)
	}
}

// TestBackupAfterCrash: chunks a crashed run stored without indexing them are kept, not
// copied twice, and indexed.
func TestBackupAfterCrash(t *testing.T) {
	root := t.TempDir()
	now := t0.Add(time.Hour)
	closed := archive(t, root, []string{"cam1"}, 4, false, now)
	s := mem.New()
	// What a crash leaves: the first two chunks on the storage, no index.
	for _, rel := range closed[:2] {
		data, _ := os.ReadFile(filepath.Join(root, rel))
		storagetest.MustPut(t, s, footage.ServerRoot("srv1")+"/"+rel, data)
	}
	res := backup(t, root, now, footage.Target{Name: "s", Storage: s})
	if tr := res.Targets[0]; tr.Copied != 6 || tr.Skipped != 2 || !res.Complete() {
		t.Fatalf("after a crash: %+v", tr)
	}
	if st := statusOf(t, s)["cam1/hi"]; st.Chunks != 4 || !st.CompleteUntil.Equal(t0.Add(40*time.Second)) {
		t.Fatalf("status after a crash: %+v", st)
	}
}

func TestBackupFailingStorage(t *testing.T) {
	root := t.TempDir()
	now := t0.Add(time.Hour)
	archive(t, root, []string{"cam1"}, 4, false, now)
	good := mem.New()
	bad := storagetest.NewFaulty(mem.New())
	bad.FailNext("put", 1000, storage.NewError("put", "x", storage.ErrNoSpace, errors.New("disk full")))
	res := backup(t, root, now, footage.Target{Name: "good", Storage: good}, footage.Target{Name: "bad", Storage: bad})
	if res.Complete() {
		t.Fatalf("a run where one storage failed is complete")
	}
	byName := map[string]footage.TargetResult{}
	for _, tr := range res.Targets {
		byName[tr.Name] = tr
	}
	if tr := byName["good"]; tr.Err != nil || tr.Copied != 8 {
		t.Fatalf("the good storage: %+v", tr)
	}
	if tr := byName["bad"]; !errors.Is(tr.Err, storage.ErrNoSpace) || tr.Copied != 0 {
		t.Fatalf("the failing storage: %+v", tr)
	}
	// The failing storage must not claim anything.
	for key, st := range statusOf(t, bad) {
		if !st.CompleteUntil.IsZero() {
			t.Fatalf("%s: the failing storage claims complete until %v", key, st.CompleteUntil)
		}
	}
}

func TestBackupSelection(t *testing.T) {
	root := t.TempDir()
	now := t0.Add(time.Hour)
	archive(t, root, []string{"cam1", "cam2"}, 2, false, now)
	s := mem.New()
	res, err := footage.Backup(context.Background(), footage.BackupOptions{
		Source: root, Layout: testLayout{}, ServerID: "srv1", Now: func() time.Time { return now },
		Targets: []footage.Target{{Name: "s", Storage: s}}, Cameras: []string{"cam2"}, Streams: []footage.Stream{footage.Low},
	})
	if err != nil || res.Chunks != 2 {
		t.Fatalf("selection: %+v, %v", res, err)
	}
	if got := stored(t, s); len(got) != 2 || !strings.HasPrefix(got[0], "cam2/lo/") {
		t.Fatalf("stored %q", got)
	}
}

// TestBackupLateFootage: a chunk that appears in the archive after the index was written,
// with a start before complete-until (imported from a camera's card), is still copied,
// and complete-until steps back until it is.
func TestBackupLateFootage(t *testing.T) {
	root := t.TempDir()
	now := t0.Add(time.Hour)
	archive(t, root, []string{"cam1"}, 3, false, now)
	s := mem.New()
	backup(t, root, now, footage.Target{Name: "s", Storage: s})
	late := footage.Chunk{Camera: "cam1", Stream: footage.High, Start: t0.Add(-time.Minute), Duration: 10 * time.Second}
	later := now.Add(time.Hour)
	writeChunk(t, root, testLayout{}.Path(late), []byte("imported"), later.Add(-time.Minute))
	res := backup(t, root, later, footage.Target{Name: "s", Storage: s})
	if res.Targets[0].Copied != 1 {
		t.Fatalf("late footage: %+v", res.Targets[0])
	}
	if got := stored(t, s); !slices.Contains(got, testLayout{}.Path(late)) {
		t.Fatalf("late chunk not stored: %q", got)
	}
}

// changingStorage appends to a chunk of the archive while it is being stored, as a
// recorder that was not done with it would.
type changingStorage struct {
	storage.Storage
	file string
}

func (c *changingStorage) Put(ctx context.Context, name string, src storage.Source, opts storage.PutOptions) error {
	if strings.HasSuffix(name, filepath.Base(c.file)) {
		f, err := os.OpenFile(c.file, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		f.WriteString("more frames")
		f.Close()
	}
	return c.Storage.Put(ctx, name, src, opts)
}

func TestBackupChunkChangedDuringCopy(t *testing.T) {
	root := t.TempDir()
	now := t0.Add(time.Hour)
	closed := archive(t, root, []string{"cam1"}, 2, false, now)
	inner := mem.New()
	s := &changingStorage{Storage: inner, file: filepath.Join(root, closed[0])}
	res := backup(t, root, now, footage.Target{Name: "s", Storage: s})
	if res.Recording != 1 || res.Targets[0].Copied != 3 {
		t.Fatalf("result: recording %d, %+v", res.Recording, res.Targets[0])
	}
	if got := stored(t, inner); slices.Contains(got, closed[0]) {
		t.Fatalf("a chunk that changed while it was copied stayed on the storage")
	}
	if st := statusOf(t, inner)["cam1/hi"]; !st.CompleteUntil.IsZero() {
		t.Fatalf("complete-until passes a chunk that is not backed up: %v", st.CompleteUntil)
	}
}

// statusRefused fails the writes of status files until told otherwise, as a crash between
// writing an hour of the index and the status would leave things.
type statusRefused struct {
	storage.Storage
	refuse bool
}

func (s *statusRefused) Put(ctx context.Context, name string, src storage.Source, opts storage.PutOptions) error {
	if s.refuse && strings.HasSuffix(name, "/status.json") {
		return storage.NewError("put", name, storage.ErrUnreachable, errors.New("connection reset"))
	}
	return s.Storage.Put(ctx, name, src, opts)
}

func TestBackupIndexHealsAfterCrash(t *testing.T) {
	root := t.TempDir()
	now := t0.Add(time.Hour)
	archive(t, root, []string{"cam1"}, 4, false, now)
	s := &statusRefused{Storage: mem.New(), refuse: true}
	if res := backup(t, root, now, footage.Target{Name: "s", Storage: s}); res.Complete() {
		t.Fatalf("a run whose status writes failed is complete")
	}
	s.refuse = false
	res := backup(t, root, now, footage.Target{Name: "s", Storage: s})
	if !res.Complete() || res.Targets[0].Copied != 0 {
		t.Fatalf("second run: %+v", res.Targets[0])
	}
	for key, st := range statusOf(t, s) {
		if st.Chunks != 4 || st.Bytes == 0 || !st.CompleteUntil.Equal(t0.Add(40*time.Second)) {
			t.Fatalf("%s after the index healed: %+v", key, st)
		}
	}
}

func skipBefore(t *testing.T, s storage.Storage, k footage.Key, at time.Time) {
	t.Helper()
	if err := footage.SkipBefore(context.Background(), s, "srv1", k, at); err != nil {
		t.Fatalf("skip before %v: %v", at, err)
	}
}

// storedOf lists the stored chunks of one series.
func storedOf(t *testing.T, s storage.Storage, k footage.Key) []string {
	t.Helper()
	var out []string
	for _, rel := range stored(t, s) {
		if strings.HasPrefix(rel, k.Camera+"/"+string(k.Stream)+"/") {
			out = append(out, rel)
		}
	}
	return out
}

// TestBackupSkipBefore: chunks of a series that start before its SkipBefore are not
// copied and do not hold complete-until back; the other stream is backed up whole.
func TestBackupSkipBefore(t *testing.T) {
	hi := footage.Key{Camera: "cam1", Stream: footage.High}
	cases := []struct {
		name   string
		skip   time.Time
		copied int // of cam1/hi's four chunks of 10 s
		until  time.Time
	}{
		{"before every chunk", t0.Add(-time.Minute), 4, t0.Add(40 * time.Second)},
		{"at a chunk's start", t0.Add(20 * time.Second), 2, t0.Add(40 * time.Second)},
		// The chunk of [10 s, 20 s) starts before the skip time: it is left out whole.
		{"inside a chunk", t0.Add(15 * time.Second), 2, t0.Add(40 * time.Second)},
		// Every chunk is skipped: complete until the skip time, not the end of the last
		// chunk, whose footage after it is not copied.
		{"inside the last chunk", t0.Add(35 * time.Second), 0, t0.Add(35 * time.Second)},
		// Nothing unbacked before the skip time, though no footage reaches it.
		{"after every chunk", t0.Add(time.Hour), 0, t0.Add(time.Hour)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			now := t0.Add(2 * time.Hour)
			archive(t, root, []string{"cam1"}, 4, false, now)
			s := mem.New()
			skipBefore(t, s, hi, c.skip)
			res := backup(t, root, now, footage.Target{Name: "s", Storage: s})
			if tr := res.Targets[0]; !res.Complete() || tr.Copied != c.copied+4 {
				t.Fatalf("copied %d chunks, want %d of cam1/hi and 4 of cam1/lo: %+v", tr.Copied, c.copied, tr)
			}
			if got := storedOf(t, s, hi); len(got) != c.copied {
				t.Fatalf("stored %q, want the last %d chunks", got, c.copied)
			}
			if got := res.Targets[0].CompleteUntil[hi]; !got.Equal(c.until) {
				t.Fatalf("the run says complete until %v, want %v", got, c.until)
			}
			st := statusOf(t, s)
			if got := st["cam1/hi"]; !got.CompleteUntil.Equal(c.until) || !got.SkipBefore.Equal(c.skip) || got.Chunks != c.copied {
				t.Fatalf("cam1/hi: %+v, want complete until %v, skip before %v", got, c.until, c.skip)
			}
			if got := st["cam1/lo"]; !got.CompleteUntil.Equal(t0.Add(40*time.Second)) || !got.SkipBefore.IsZero() {
				t.Fatalf("cam1/lo, not skipped: %+v", got)
			}
			// A run with nothing new keeps the skip time and complete-until.
			backup(t, root, now.Add(time.Minute), footage.Target{Name: "s", Storage: s})
			if got := statusOf(t, s)["cam1/hi"]; !got.CompleteUntil.Equal(c.until) || !got.SkipBefore.Equal(c.skip) {
				t.Fatalf("cam1/hi after a second run: %+v", got)
			}
		})
	}
}

// TestBackupSkipMovedBack: moving the skip time back makes the next run copy the chunks no
// longer skipped, though complete-until had passed them.
func TestBackupSkipMovedBack(t *testing.T) {
	hi := footage.Key{Camera: "cam1", Stream: footage.High}
	root := t.TempDir()
	now := t0.Add(2 * time.Hour)
	archive(t, root, []string{"cam1"}, 4, false, now)
	s := mem.New()
	skipBefore(t, s, hi, t0.Add(time.Hour))
	backup(t, root, now, footage.Target{Name: "s", Storage: s})
	if got := statusOf(t, s)["cam1/hi"]; !got.CompleteUntil.Equal(t0.Add(time.Hour)) || got.Chunks != 0 {
		t.Fatalf("all skipped: %+v", got)
	}
	skipBefore(t, s, hi, t0.Add(20*time.Second))
	if got := statusOf(t, s)["cam1/hi"]; !got.CompleteUntil.Equal(t0.Add(20*time.Second)) || got.Chunks != 0 {
		t.Fatalf("complete-until still passes chunks no longer skipped: %+v", got)
	}
	res := backup(t, root, now.Add(time.Minute), footage.Target{Name: "s", Storage: s})
	if tr := res.Targets[0]; tr.Copied != 2 {
		t.Fatalf("after moving the skip back: %+v", tr)
	}
	skipBefore(t, s, hi, time.Time{})
	res = backup(t, root, now.Add(2*time.Minute), footage.Target{Name: "s", Storage: s})
	if tr := res.Targets[0]; tr.Copied != 2 {
		t.Fatalf("after clearing the skip: %+v", tr)
	}
	if got := statusOf(t, s)["cam1/hi"]; !got.CompleteUntil.Equal(t0.Add(40*time.Second)) || got.Chunks != 4 || !got.SkipBefore.IsZero() {
		t.Fatalf("all backed up: %+v", got)
	}
}

// skipDuringRun moves a series' skip time while a run copies its first chunk, as an
// operator running footage skip beside a scheduled backup would.
type skipDuringRun struct {
	storage.Storage
	t    *testing.T
	key  footage.Key
	to   time.Time
	once sync.Once
}

func (s *skipDuringRun) Put(ctx context.Context, name string, src storage.Source, opts storage.PutOptions) error {
	if strings.HasSuffix(name, ".bin") {
		s.once.Do(func() {
			if err := footage.SkipBefore(ctx, s.Storage, "srv1", s.key, s.to); err != nil {
				s.t.Errorf("skip during the run: %v", err)
			}
		})
	}
	return s.Storage.Put(ctx, name, src, opts)
}

// TestBackupSkipChangedDuringRun: a run keeps to the skip time it read, but does not write
// over the operator's new one, nor claim complete what it skipped.
func TestBackupSkipChangedDuringRun(t *testing.T) {
	hi := footage.Key{Camera: "cam1", Stream: footage.High}
	root := t.TempDir()
	now := t0.Add(2 * time.Hour)
	archive(t, root, []string{"cam1"}, 4, false, now)
	inner := mem.New()
	skipBefore(t, inner, hi, t0.Add(20*time.Second))
	s := &skipDuringRun{Storage: inner, t: t, key: hi, to: t0}
	res := backup(t, root, now, footage.Target{Name: "s", Storage: s})
	if tr := res.Targets[0]; tr.Copied != 6 {
		t.Fatalf("the run did not keep to its skip time: %+v", tr)
	}
	if got := statusOf(t, inner)["cam1/hi"]; !got.SkipBefore.Equal(t0) || !got.CompleteUntil.Equal(t0) {
		t.Fatalf("after the skip moved back during the run: %+v", got)
	}
	res = backup(t, root, now.Add(time.Minute), footage.Target{Name: "s", Storage: inner})
	if tr := res.Targets[0]; tr.Copied != 2 {
		t.Fatalf("the next run: %+v", tr)
	}
	if got := statusOf(t, inner)["cam1/hi"]; !got.CompleteUntil.Equal(t0.Add(40*time.Second)) || got.Chunks != 4 {
		t.Fatalf("all backed up: %+v", got)
	}
}
