// Command storage measures how fast Vigil puts footage-like files on each kind of storage
// and gets them back, against the tools an operator would use instead (cp, smbclient, scp,
// rclone), in the same run, on the same files and the same loopback servers, so that the
// ratios hold even when the disk's speed drifts between runs. scripts/bench runs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-backup/vigil/bench/internal/fileset"
	"github.com/vigil-backup/vigil/internal/storage"
	"github.com/vigil-backup/vigil/internal/testenv"
)

type options struct {
	files   int
	sizeMiB int
	runs    int
	kinds   []storage.Kind
	json    bool
}

func main() {
	opts, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(2)
	}
	p := testenv.NewProgram("vigil-bench")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	rep, err := run(ctx, p, opts)
	stop()
	p.Close()
	if err == nil {
		if opts.json {
			err = rep.writeJSON(os.Stdout)
		} else {
			rep.writeText(os.Stdout)
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.IntVar(&o.files, "files", 64, "number of files in the workload")
	fs.IntVar(&o.sizeMiB, "size-mib", 8, "size of each file, in MiB")
	fs.IntVar(&o.runs, "runs", 3, "timed runs per tool and direction; the median is reported")
	kinds := fs.String("kinds", "local,smb,sftp,s3", "storage kinds to measure, comma-separated")
	fs.BoolVar(&o.json, "json", false, "print the results as JSON")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.files < 1 || o.sizeMiB < 1 || o.runs < 1 {
		return o, errors.New("-files, -size-mib and -runs must be at least 1")
	}
	for _, k := range strings.Split(*kinds, ",") {
		switch kind := storage.Kind(strings.TrimSpace(k)); kind {
		case storage.Local, storage.SMB, storage.SFTP, storage.S3:
			o.kinds = append(o.kinds, kind)
		default:
			return o, fmt.Errorf("-kinds: unknown kind %q (local, smb, sftp, s3)", k)
		}
	}
	return o, nil
}

// runner runs the timed transfers of one benchmark.
type runner struct {
	p          *testenv.Program
	w          *workload
	runs       int
	dropCaches bool
	getDir     string // where the gets write, emptied before each
}

func run(ctx context.Context, p *testenv.Program, opts options) (*report, error) {
	bins := findBinaries(p, opts.kinds)
	dir := p.TempDir()
	p.Logf("writing %d files x %d MiB into %s", opts.files, opts.sizeMiB, dir)
	w, err := makeWorkload(dir, opts.files, int64(opts.sizeMiB)<<20)
	if err != nil {
		return nil, fmt.Errorf("make workload: %w", err)
	}
	r := &runner{p: p, w: w, runs: opts.runs, dropCaches: true, getDir: filepath.Join(dir, "got")}
	rep := &report{Files: opts.files, FileMiB: opts.sizeMiB, TotalMiB: r.mib(), Runs: opts.runs, CachesDropped: true}
	if err := dropCaches(); err != nil {
		r.dropCaches, rep.CachesDropped = false, false
		rep.Notes = append(rep.Notes, fmt.Sprintf("The page cache could not be dropped (%v): only a sync runs before each run, and gets may read from memory.", err))
	}
	rep.Notes = append(rep.Notes, flushNotes...)
	// Other work on the machine slows some runs and not others: the load shows whether any ran.
	loadBefore := loadAverage()
	for _, kind := range opts.kinds {
		results, err := r.benchKind(ctx, bins, kind)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", kind, err)
		}
		rep.Results = append(rep.Results, results...)
		for _, res := range results {
			rep.Summary = append(rep.Summary, res.summary())
		}
	}
	rep.Notes = append(rep.Notes, fmt.Sprintf("Load average (1, 5, 15 min) before: %s, after: %s, on %d CPUs.", loadBefore, loadAverage(), runtime.NumCPU()))
	return rep, nil
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

func (r *runner) mib() float64 { return float64(r.w.bytes) / (1 << 20) }

// benchKind starts the server of one kind, times every tool in both directions and stops
// the server. Each round runs every tool once, in an order that turns by one each round,
// so that a disk that slows down or speeds up during the run hits all tools alike.
func (r *runner) benchKind(ctx context.Context, bins *binaries, kind storage.Kind) ([]result, error) {
	r.p.Logf("%s: starting the server", kind)
	t, err := startTarget(ctx, r.p, bins, kind, r.w)
	if err != nil {
		return nil, err
	}
	defer t.stop()
	tools := append([]tool{vigilTool(t, 1), vigilTool(t, 4)}, t.tools...)
	puts, gets := map[string][]time.Duration{}, map[string][]time.Duration{}
	for round := range r.runs {
		order := slices.Concat(tools[round%len(tools):], tools[:round%len(tools)])
		for _, tl := range order {
			d, err := r.timePut(ctx, t, tl)
			if err != nil {
				return nil, fmt.Errorf("%s put: %w", tl.name, err)
			}
			r.p.Logf("%s put %-10s run %d: %6.2f s", kind, tl.name, round+1, d.Seconds())
			puts[tl.name] = append(puts[tl.name], d)
		}
		for _, tl := range order {
			d, err := r.timeGet(ctx, tl)
			if err != nil {
				return nil, fmt.Errorf("%s get: %w", tl.name, err)
			}
			r.p.Logf("%s get %-10s run %d: %6.2f s", kind, tl.name, round+1, d.Seconds())
			gets[tl.name] = append(gets[tl.name], d)
		}
	}
	return []result{
		newResult(kind, "put", tools, puts, r.mib()),
		newResult(kind, "get", tools, gets, r.mib()),
	}, nil
}

// timePut times one put into an empty folder and checks what the server then holds.
func (r *runner) timePut(ctx context.Context, t *target, tl tool) (time.Duration, error) {
	if err := t.clearPut(ctx); err != nil {
		return 0, fmt.Errorf("empty the put folder: %w", err)
	}
	r.settle()
	start := time.Now()
	if err := tl.put(ctx, r.w.dir); err != nil {
		return 0, err
	}
	took := time.Since(start)
	got, err := t.readPut(ctx)
	if err != nil {
		return 0, fmt.Errorf("read back: %w", err)
	}
	if err := r.w.files.Check(got); err != nil {
		return 0, fmt.Errorf("stored files differ from the source: %w", err)
	}
	return took, nil
}

// timeGet times one get into a fresh folder and checks the files it wrote.
func (r *runner) timeGet(ctx context.Context, tl tool) (time.Duration, error) {
	if err := os.RemoveAll(r.getDir); err != nil {
		return 0, err
	}
	r.settle()
	start := time.Now()
	if err := tl.get(ctx, r.getDir); err != nil {
		return 0, err
	}
	took := time.Since(start)
	got, err := fileset.SumTree(r.getDir)
	if err != nil {
		return 0, fmt.Errorf("read back: %w", err)
	}
	if err := r.w.files.Check(got); err != nil {
		return 0, fmt.Errorf("downloaded files differ from the source: %w", err)
	}
	return took, nil
}

// settle starts the next run from the same state as every other: nothing left to write
// from the run before, and, where allowed, nothing cached.
func (r *runner) settle() {
	if !r.dropCaches {
		syscall.Sync()
		return
	}
	if err := dropCaches(); err != nil {
		r.p.Logf("drop the page cache: %v", err)
	}
}
