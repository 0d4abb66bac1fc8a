package footage_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/internal/events"
	"github.com/vigil-backup/vigil/internal/footage"
	"github.com/vigil-backup/vigil/internal/footage/layout"
	"github.com/vigil-backup/vigil/internal/storage"
	"github.com/vigil-backup/vigil/internal/storage/local"
	"github.com/vigil-backup/vigil/internal/storage/storagetest"
	"github.com/vigil-backup/vigil/internal/storage/throttle"
	"github.com/vigil-backup/vigil/internal/testenv"
)

// realtimeRun is a Realtime backup going on in the background.
type realtimeRun struct {
	cancel context.CancelFunc
	done   chan error
	events *eventRecorder

	stopOnce sync.Once

	mu     sync.Mutex
	passes []footage.Result
}

func startRealtime(t *testing.T, opts footage.RealtimeOptions) *realtimeRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rr := &realtimeRun{cancel: cancel, done: make(chan error, 1), events: &eventRecorder{}}
	opts.Events = rr.events
	opts.Pass = func(res footage.Result) {
		rr.mu.Lock()
		rr.passes = append(rr.passes, res)
		rr.mu.Unlock()
	}
	go func() { rr.done <- footage.Realtime(ctx, opts) }()
	t.Cleanup(func() { rr.stop(t) })
	return rr
}

// stop ends the run and waits for it; it may be called more than once.
func (rr *realtimeRun) stop(t *testing.T) {
	t.Helper()
	rr.stopOnce.Do(func() {
		rr.cancel()
		select {
		case err := <-rr.done:
			if err != nil {
				t.Errorf("realtime: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("realtime did not stop within 30 s of its cancellation")
		}
	})
}

func (rr *realtimeRun) passCount() int {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return len(rr.passes)
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// onStorage reports whether chunk c is on s, whole.
func onStorage(t *testing.T, s storage.Storage, c testenv.RecordedChunk) bool {
	t.Helper()
	name := footage.ServerRoot("srv1") + "/" + c.Path
	rc, err := s.Open(context.Background(), name, 0, -1)
	if err != nil {
		return false
	}
	defer rc.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(rc); err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return sha256.Sum256(b.Bytes()) == c.SHA256
}

func localStorage(t *testing.T) storage.Storage {
	t.Helper()
	s, err := local.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRealtime records real footage in the Nx layout, starts a real-time backup while two
// chunks are being written, and closes them: each is on the storage, byte for byte, within
// seconds of its close — long before the 30 s a chunk takes to settle — while the footage
// recorded before the start is left alone without catch-up and copied with it.
func TestRealtime(t *testing.T) {
	for _, catchUp := range []bool{false, true} {
		t.Run(fmt.Sprintf("catch-up=%v", catchUp), func(t *testing.T) {
			archive := t.TempDir()
			rec := testenv.Record(t, archive, testenv.RecorderOptions{
				Cameras: []string{"e0ab12340001", "e0ab12340002"}, Streams: []string{"hi"}, Chunks: 2, Chunk: 2 * time.Second,
				Start: time.Now().Add(-10 * time.Second), Size: "320x240",
			})
			older := append([]testenv.RecordedChunk(nil), rec.Chunks...)
			open1 := rec.StartWriting(t, "e0ab12340001", "hi")
			open2 := rec.StartWriting(t, "e0ab12340002", "hi")
			s := localStorage(t)
			rr := startRealtime(t, footage.RealtimeOptions{
				BackupOptions: footage.BackupOptions{Source: archive, Layout: layout.NewNx(time.UTC), ServerID: "srv1",
					Targets: []footage.Target{{Name: "disk", Storage: s}}, ScanCache: filepath.Join(t.TempDir(), "scan.cache")},
				CatchUp: catchUp,
			})
			waitFor(t, 10*time.Second, "the first pass", func() bool { return rr.passCount() > 0 })
			if catchUp {
				waitFor(t, 10*time.Second, "the older footage caught up", func() bool {
					for _, c := range older {
						if !onStorage(t, s, c) {
							return false
						}
					}
					return true
				})
			}

			c1 := open1.Close(t)
			took := waitFor(t, 5*time.Second, "the first closed chunk on the storage", func() bool { return onStorage(t, s, c1) })
			t.Logf("closed → on the storage: %v", took)
			if onStorage(t, s, testenv.RecordedChunk{Path: open2.Path}) {
				t.Errorf("the chunk still being written was copied")
			}
			c2 := open2.Close(t)
			waitFor(t, 5*time.Second, "the second closed chunk on the storage", func() bool { return onStorage(t, s, c2) })
			for _, c := range older {
				if got := onStorage(t, s, c); got != catchUp {
					t.Errorf("%s recorded before the start on the storage: %v, want %v", c.Path, got, catchUp)
				}
			}
			rr.stop(t)

			// Complete-until rests on the older footage: only what catch-up copied lets it pass.
			sts, err := footage.ReadStatuses(context.Background(), s, "srv1")
			if err != nil {
				t.Fatal(err)
			}
			for _, st := range sts {
				var want time.Time
				if catchUp {
					want = c1.End() // the same for both cameras' chunks
				}
				if !st.CompleteUntil.Equal(want) {
					t.Errorf("%s %s complete until %v, want %v", st.Camera, st.Stream, st.CompleteUntil, want)
				}
			}
			evs := rr.events.all()
			if len(evs) < 2 || evs[0].Type != events.BackupStarted || evs[len(evs)-1].Reason != events.ReasonCancelled {
				t.Errorf("events %+v: want backup.started first and backup.finished (cancelled) last", evs)
			}
			if evs[0].Fields["mode"] != "realtime" {
				t.Errorf("backup.started fields %v: want mode realtime", evs[0].Fields)
			}
		})
	}
}

// TestRealtimeBandwidthInsufficient: chunks close faster than a throttled storage takes
// them, and the run warns once that it falls behind.
func TestRealtimeBandwidthInsufficient(t *testing.T) {
	archive := t.TempDir()
	lay := layout.NewNx(time.UTC)
	limit := throttle.NewLimit(64 << 10)
	s := throttle.New(localStorage(t), limit, nil)
	rr := startRealtime(t, footage.RealtimeOptions{
		BackupOptions: footage.BackupOptions{Source: archive, Layout: lay, ServerID: "srv1",
			Targets: []footage.Target{{Name: "slow", Storage: s}}},
		PassSlice: 500 * time.Millisecond, BacklogWindow: time.Second,
	})
	// A camera closes a 32 KiB chunk every 100 ms: 320 KiB/s for a 64 KiB/s storage.
	cam := startCamera(t, archive, lay, 100*time.Millisecond, 32<<10)
	defer cam.stop()
	defer func() {
		if !t.Failed() {
			return
		}
		rr.mu.Lock()
		for _, p := range rr.passes {
			t.Logf("pass %v–%v queued %d (%d bytes), window ended %v", p.Started.Format("05.000"), p.Finished.Format("05.000"), p.Queued, p.QueuedBytes, p.WindowEnded)
		}
		rr.mu.Unlock()
	}()
	waitFor(t, 30*time.Second, "backup.bandwidth_insufficient", func() bool {
		return rr.events.count(events.BackupBandwidthInsufficient) > 0
	})
	time.Sleep(2 * time.Second)
	if n := rr.events.count(events.BackupBandwidthInsufficient); n != 1 {
		t.Errorf("%d bandwidth warnings while the backlog kept growing, want 1", n)
	}
	e := rr.events.last(events.BackupBandwidthInsufficient)
	if b, _ := e.Fields["backlog_bytes"].(int64); b <= 0 {
		t.Errorf("warning fields %v: want the backlog in bytes", e.Fields)
	}
}

// camera writes closed Nx chunks of size bytes into an archive, one every period, as a
// recorder does.
type camera struct {
	stopped chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	written []footage.Chunk
}

func startCamera(t *testing.T, archive string, lay footage.Layout, period time.Duration, size int) *camera {
	c := &camera{stopped: make(chan struct{})}
	data := bytes.Repeat([]byte{1}, size)
	start := time.Now().Truncate(time.Second)
	c.wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-c.stopped:
				return
			case <-time.After(period):
			}
			ch := footage.Chunk{Camera: "cam1", Stream: footage.High, Start: start.Add(time.Duration(i) * period), Duration: period}
			ch.Path = lay.Path(ch)
			p := filepath.Join(archive, filepath.FromSlash(ch.Path))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Error(err)
				return
			}
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Error(err)
				return
			}
			c.mu.Lock()
			c.written = append(c.written, ch)
			c.mu.Unlock()
		}
	})
	return c
}

func (c *camera) stop() {
	close(c.stopped)
	c.wg.Wait()
}

func (c *camera) chunks() []footage.Chunk {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]footage.Chunk(nil), c.written...)
}

// TestRealtimeStorageFails: a storage that fails while chunks keep closing is reported
// once, not at every pass, and its recovery is news too; once it is back every chunk gets
// there.
func TestRealtimeStorageFails(t *testing.T) {
	archive := t.TempDir()
	lay := layout.NewNx(time.UTC)
	s := storagetest.NewFaulty(localStorage(t))
	rr := startRealtime(t, footage.RealtimeOptions{
		BackupOptions: footage.BackupOptions{Source: archive, Layout: lay, ServerID: "srv1",
			Targets: []footage.Target{{Name: "nas", Storage: s}}},
		Rescan: 200 * time.Millisecond,
	})
	cam := startCamera(t, archive, lay, 100*time.Millisecond, 1<<10)
	waitFor(t, 10*time.Second, "a chunk backed up", func() bool { return s.Calls("put") > 0 })
	s.FailNext("put", 10000, fmt.Errorf("nas gone: %w", storage.ErrUnreachable))
	calls := s.Calls("put")
	waitFor(t, 10*time.Second, "several failing passes", func() bool { return s.Calls("put") > calls+5 })
	if n := rr.events.count(events.BackupFinished); n != 1 {
		t.Errorf("%d backup.finished events over several failing passes, want 1", n)
	}
	if e := rr.events.last(events.BackupFinished); !events.Failed(e.Reason) {
		t.Errorf("backup.finished reason %q, want a failure", e.Reason)
	}
	s.Heal("put")
	waitFor(t, 10*time.Second, "the recovery reported", func() bool { return rr.events.count(events.BackupStarted) == 2 })
	cam.stop()
	want := cam.chunks()
	missing := want
	defer func() {
		if t.Failed() {
			t.Logf("%d of %d chunks missing, first %v", len(missing), len(want), missing[0])
		}
	}()
	waitFor(t, 10*time.Second, "every chunk on the storage", func() bool {
		missing = slices.DeleteFunc(missing, func(c footage.Chunk) bool {
			_, err := s.Stat(context.Background(), footage.ServerRoot("srv1")+"/"+c.Path)
			return err == nil
		})
		return len(missing) == 0
	})
}
