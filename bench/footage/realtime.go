package main

import (
	"crypto/rand"
	"fmt"
	"github.com/vigil-backup/vigil/bench/internal/measure"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
)

// realtimeOptions shape the real-time section: cameras recording both streams, each
// closing a chunk every chunk, for a while.
type realtimeOptions struct {
	cameras  int
	chunk    time.Duration
	duration time.Duration
	hiRate   int64 // bytes per second of the hi stream; lo is an eighth
}

// realtime measures how long a chunk takes from the moment the recorder closes it (renames
// <start>.mkv to <start>_<duration>.mkv, as Nx does) to the moment it is on the backup
// (its final name appears in the destination), with `vigil footage backup --realtime`
// running while cameras record.
func realtime(work, vigil string, opts realtimeOptions) {
	src, dst := filepath.Join(work, "live"), filepath.Join(work, "live-backup")
	measure.Check(os.MkdirAll(src, 0o755))
	measure.Check(os.MkdirAll(dst, 0o755))
	fmt.Printf("Real-time backup, local to local: %d cameras × 2 streams, a chunk every %v per stream (%.1f MiB/s recorded), for %v\n",
		opts.cameras, opts.chunk, float64(opts.hiRate*9/8*int64(opts.cameras))/(1<<20), opts.duration)

	arrived := newArrivals(dst)
	defer arrived.close()
	cmd := exec.Command(vigil, "footage", "backup", "--realtime", "--source", src, "--layout", "nx", "--timezone", "UTC",
		"--to", dst, "--server-id", "bench", "--cache-dir", filepath.Join(work, "live-cache"), "--log-level", "warn")
	cmd.Env = append(os.Environ(), "VIGIL_CONFIG=/dev/null")
	cmd.Stdout = io.Discard
	var stderr strings.Builder
	cmd.Stderr = &stderr
	measure.Check(cmd.Start())
	time.Sleep(2 * time.Second) // its watch set up and first pass done

	closed := record(src, opts)
	// The last chunks get the time a pass takes to arrive.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && arrived.count() < len(closed) {
		time.Sleep(50 * time.Millisecond)
	}
	measure.Check(cmd.Process.Signal(syscall.SIGTERM))
	if err := cmd.Wait(); err != nil {
		fmt.Fprintf(os.Stderr, "vigil --realtime: %v\n%s", err, stderr.String())
		os.Exit(1)
	}
	var lat []time.Duration
	missing := 0
	for rel, at := range closed {
		got, ok := arrived.at(rel)
		if !ok {
			missing++
			continue
		}
		lat = append(lat, got.Sub(at))
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(float64(len(lat))*p))]
	}
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss
	}
	fmt.Printf("  %d chunks closed, %d on the backup, %d missing\n", len(closed), len(lat), missing)
	fmt.Printf("  closed → on the backup: p50 %v  p90 %v  p99 %v  max %v\n",
		pct(0.50).Round(time.Millisecond), pct(0.90).Round(time.Millisecond), pct(0.99).Round(time.Millisecond), pct(1).Round(time.Millisecond))
	fmt.Printf("  vigil peak RSS: %.0f MiB\n\n", float64(rss)/1024)
}

// record has every camera write its streams as an Nx recorder does for opts.duration:
// <start ms>.mkv written a piece at a time through the chunk's length, then renamed to
// <start ms>_<duration ms>.mkv. The cameras' chunks are staggered over the chunk length.
// It returns when each chunk was closed, by its final path.
func record(root string, opts realtimeOptions) map[string]time.Time {
	hi := make([]byte, opts.hiRate*int64(opts.chunk/time.Second))
	_, _ = io.ReadFull(rand.Reader, hi)
	var mu sync.Mutex
	closed := map[string]time.Time{}
	var wg sync.WaitGroup
	end := time.Now().Add(opts.duration)
	const pieces = 10
	for cam := range opts.cameras {
		offset := opts.chunk * time.Duration(cam) / time.Duration(opts.cameras)
		for _, stream := range []string{"hi_quality", "low_quality"} {
			data := hi
			if stream == "low_quality" {
				data = hi[:len(hi)/8]
			}
			wg.Go(func() {
				start := time.Now().Add(offset).Truncate(time.Millisecond)
				time.Sleep(time.Until(start))
				for start.Add(opts.chunk).Before(end) {
					dir := filepath.Join(root, stream, fmt.Sprintf("cam%02d", cam), start.UTC().Format("2006/01/02/15"))
					measure.Check(os.MkdirAll(dir, 0o755))
					open := filepath.Join(dir, fmt.Sprintf("%d.mkv", start.UnixMilli()))
					f, err := os.Create(open)
					measure.Check(err)
					for i := range pieces {
						time.Sleep(time.Until(start.Add(opts.chunk * time.Duration(i+1) / pieces)))
						_, err := f.Write(data[len(data)*i/pieces : len(data)*(i+1)/pieces])
						measure.Check(err)
					}
					measure.Check(f.Close())
					name := fmt.Sprintf("%d_%d.mkv", start.UnixMilli(), opts.chunk.Milliseconds())
					measure.Check(os.Rename(open, filepath.Join(dir, name)))
					at := time.Now()
					rel, err := filepath.Rel(root, filepath.Join(dir, name))
					measure.Check(err)
					mu.Lock()
					closed[filepath.ToSlash(rel)] = at
					mu.Unlock()
					start = start.Add(opts.chunk)
				}
			})
		}
	}
	wg.Wait()
	return closed
}

// arrivals notes when each file appears under a destination folder, by its path below the
// server's footage folder (the archive's relative path).
type arrivals struct {
	root string
	w    *fsnotify.Watcher
	done chan struct{}

	mu   sync.Mutex
	seen map[string]time.Time
}

func newArrivals(root string) *arrivals {
	w, err := fsnotify.NewWatcher()
	measure.Check(err)
	a := &arrivals{root: filepath.Join(root, "vigil", "footage", "bench"), w: w, done: make(chan struct{}), seen: map[string]time.Time{}}
	a.watch(root)
	go a.loop()
	return a
}

// watch watches dir and its folders, noting the files already there.
func (a *arrivals) watch(dir string) {
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			_ = a.w.Add(p)
		} else {
			a.note(p, time.Now())
		}
		return nil
	})
}

func (a *arrivals) note(p string, at time.Time) {
	rel, err := filepath.Rel(a.root, p)
	if err != nil || strings.HasPrefix(rel, "..") || !strings.HasSuffix(rel, ".mkv") {
		return // an index file, or a temporary name
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.seen[filepath.ToSlash(rel)]; !ok {
		a.seen[filepath.ToSlash(rel)] = at
	}
}

func (a *arrivals) loop() {
	defer close(a.done)
	for ev := range a.w.Events {
		at := time.Now()
		if !ev.Has(fsnotify.Create) {
			continue
		}
		if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() {
			a.watch(ev.Name)
			continue
		}
		a.note(ev.Name, at)
	}
}

func (a *arrivals) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.seen)
}

func (a *arrivals) at(rel string) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.seen[rel]
	return t, ok
}

func (a *arrivals) close() {
	a.w.Close()
	<-a.done
}
