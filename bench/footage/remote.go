package main

import (
	"context"
	"fmt"
	"github.com/vigil-backup/vigil/bench/internal/measure"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-backup/vigil/bench/internal/fileset"
	"github.com/vigil-backup/vigil/internal/testenv"
)

// The remote section backs the archive up to a server on loopback (Samba for SMB,
// OpenSSH for SFTP, MinIO for S3) with vigil and with rclone copy, each with its defaults,
// each run into an empty destination of its own on the same server.

// remoteOptions say what the remote section measures.
type remoteOptions struct {
	kinds    []string
	mib      int
	runs     int
	parallel []int        // vigil --parallel values to measure besides the default
	builds   []vigilBuild // vigil of other source trees, to measure beside this one's
}

// vigilBuild is a vigil binary from another source tree, measured beside this one's.
type vigilBuild struct{ name, bin string }

// vigilServerID is the server id the backups run with; Vigil stores the footage below it.
const vigilServerID = "bench"

// remoteTool is one way of copying the archive to a destination on a server.
type remoteTool struct {
	name  string
	label string // in the destination's name: a bucket name, so lower case
	vigil bool
	// command is what copies the archive src to d, with its whole environment; scratch is
	// an empty local folder of the run's own.
	command func(src, scratch string, d *destination) (args, env []string)
	// root is where the tool puts the archive's files, in the destination.
	root string
	// index tells the objects the tool keeps beside the archive's files (Vigil's index).
	index func(name string) bool
}

func remoteTools(vigil string, builds []vigilBuild, srv *server, parallel []int) []remoteTool {
	root := "vigil/footage/" + vigilServerID + "/"
	vigilTool := func(vigil, name, label string, extra ...string) remoteTool {
		return remoteTool{
			name: name, label: label, vigil: true,
			command: func(src, scratch string, d *destination) ([]string, []string) {
				// An initial backup has no listings of the archive from an earlier run.
				args := []string{vigil, "footage", "backup", "--source", src, "--layout", "nx", "--timezone", "UTC",
					"--to", d.vigilURL, "--server-id", vigilServerID, "--cache-dir", scratch}
				args = append(args, srv.vigilArgs...)
				env := append(os.Environ(), "VIGIL_CONFIG=/dev/null")
				return append(args, extra...), append(env, srv.vigilEnv...)
			},
			root:  root,
			index: func(name string) bool { return strings.HasPrefix(name, root+".vigil/") },
		}
	}
	tools := []remoteTool{vigilTool(vigil, "vigil", "vigil")}
	for _, n := range parallel {
		tools = append(tools, vigilTool(vigil, fmt.Sprintf("vigil --parallel %d", n), fmt.Sprintf("vigil-p%d", n), "--parallel", strconv.Itoa(n)))
	}
	for _, b := range builds {
		tools = append(tools, vigilTool(b.bin, b.name, strings.ReplaceAll(b.name, " ", "-")))
	}
	return append(tools, remoteTool{
		name: "rclone copy", label: "rclone",
		command: func(src, _ string, d *destination) ([]string, []string) {
			return []string{srv.rclone.Bin, "--config", "/dev/null", "copy", src, "bench:" + d.rclonePath}, srv.rclone.Env
		},
	})
}

// sample is what one run measured.
type sample struct {
	copy, synced             time.Duration // the tool's run; and with the sync after it
	tool, server, other      time.Duration // CPU time during the run
	rss                      int64         // the tool's peak resident set, in KiB
	indexObjects, indexBytes int64
	warnings                 []string // lines the tool logged at warning level or above
}

func remote(p *testenv.Program, work, vigil string, opts remoteOptions) {
	ctx := context.Background()
	src := filepath.Join(work, "remote-archive")
	n, size := makeArchive(src, int64(opts.mib)<<20, 2<<20, 10<<20, 16)
	want, err := fileset.SumTree(src)
	if err != nil {
		p.Fatalf("read the archive: %v", err)
	}
	fmt.Printf("Initial backup to a server on loopback: %d chunks, %d MiB, vigil and rclone copy with their defaults\n", n, size>>20)
	fmt.Println("  copy: the tool's run; +sync: and the sync that puts what the server wrote on its disk (Vigil flushes every chunk, rclone none).")
	fmt.Println("  x: the tool's time over vigil's with its defaults (above 1.00x vigil is faster).")
	fmt.Println("  CPU: seconds of the tool, of the server's processes and of all else on the machine during the run")
	fmt.Println("  (the kernel writing back what rclone left in memory, other people's work). Peak RSS: the tool's, over the runs.")
	for _, kind := range opts.kinds {
		load := loadAverage()
		// The server's CPU time helps read the figures and is not one of them: where it
		// cannot be counted (no cgroup2), the benchmark goes on without it, and says so.
		group, err := newCgroup("vigil-bench-" + kind)
		if err != nil {
			p.Logf("%s: the server's CPU time is not counted: %v", kind, err)
		}
		// Registered before the server starts, the removal runs after the server stops.
		p.Cleanup(group.remove)
		srv, err := startServer(ctx, p, kind)
		if err != nil {
			p.Fatalf("%s: %v", kind, err)
		}
		if group != nil {
			if err := group.adopt(srv.port); err != nil {
				p.Logf("%s: the server's CPU time is not counted: %v", kind, err)
				group.remove()
				group = nil
			}
		}
		tools := remoteTools(vigil, opts.builds, srv, opts.parallel)
		samples, err := benchServer(ctx, p, srv, group, tools, src, want, opts.runs)
		srv.stop()
		group.remove()
		if err != nil {
			p.Fatalf("%s: %v", kind, err)
		}
		reportRemote(srv, tools, samples, want, size, opts.runs, group != nil)
		fmt.Printf("  load average (1, 5, 15 min) before: %s, after: %s, on %d CPUs\n", load, loadAverage(), runtime.NumCPU())
	}
	fmt.Println()
}

// benchServer runs every tool runs times, in an order that turns by one each round, so
// that a disk or a machine that slows down or speeds up hits all tools alike.
func benchServer(ctx context.Context, p *testenv.Program, srv *server, group *cgroup, tools []remoteTool, src string, want fileset.Set, runs int) (map[string][]sample, error) {
	samples := map[string][]sample{}
	for round := range runs {
		for i := range tools {
			tl := tools[(i+round)%len(tools)]
			s, err := runRemote(ctx, srv, group, tl, src, want, fmt.Sprintf("r%d-%s", round+1, tl.label))
			if err != nil {
				return nil, fmt.Errorf("%s, run %d: %w", tl.name, round+1, err)
			}
			p.Logf("%s %-20s run %d: copy %6.2f s, +sync %6.2f s; CPU tool %5.1f s, server %5.1f s, other %5.1f s; %d warnings",
				srv.name, tl.name, round+1, s.copy.Seconds(), s.synced.Seconds(), s.tool.Seconds(), s.server.Seconds(), s.other.Seconds(), len(s.warnings))
			for _, w := range s.warnings[:min(len(s.warnings), 3)] {
				p.Logf("  %s", w)
			}
			samples[tl.name] = append(samples[tl.name], s)
		}
	}
	return samples, nil
}

// runRemote times one run into a fresh destination, checks what the server then holds and
// removes it.
func runRemote(ctx context.Context, srv *server, group *cgroup, tl remoteTool, src string, want fileset.Set, label string) (s sample, err error) {
	d, err := srv.fresh(ctx, label)
	if err != nil {
		return s, fmt.Errorf("make the destination: %w", err)
	}
	defer func() {
		if rerr := d.remove(ctx); rerr != nil && err == nil {
			err = fmt.Errorf("remove the destination: %w", rerr)
		}
	}()
	scratch, err := os.MkdirTemp("", "vigil-bench-run-")
	if err != nil {
		return s, err
	}
	defer os.RemoveAll(scratch)
	args, env := tl.command(src, scratch, d)
	measure.DropCaches()
	machine0, server0, err := cpuTimes(group)
	if err != nil {
		return s, err
	}
	start := time.Now()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	s.copy = time.Since(start)
	if err != nil {
		return s, fmt.Errorf("%s: %w\n%s", strings.Join(args, " "), err, lastLines(out, 20))
	}
	syscall.Sync()
	s.synced = time.Since(start)
	machine1, server1, err := cpuTimes(group)
	if err != nil {
		return s, err
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		s.tool = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		s.rss = ru.Maxrss
	}
	// The counters differ in grain and in what they charge (the machine's count interrupts
	// apart): on a quiet machine the rest may come out a little below zero.
	s.server = server1 - server0
	s.other = max(0, machine1-machine0-s.server-s.tool)
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") || strings.Contains(line, " ERROR ") {
			s.warnings = append(s.warnings, line)
		}
	}
	got, err := d.read(ctx)
	if err != nil {
		return s, fmt.Errorf("read back: %w", err)
	}
	chunks := fileset.Set{}
	for name, sum := range got {
		switch {
		case tl.index != nil && tl.index(name):
			s.indexObjects++
			s.indexBytes += sum.Size
		default:
			// A name outside root keeps its whole name, which no chunk has: Check names it.
			chunks[strings.TrimPrefix(name, tl.root)] = sum
		}
	}
	if err := want.Check(chunks); err != nil {
		return s, fmt.Errorf("the server holds other files than the archive: %w", err)
	}
	return s, nil
}

func reportRemote(srv *server, tools []remoteTool, samples map[string][]sample, want fileset.Set, size int64, runs int, serverCounted bool) {
	fmt.Printf("\n %s, median of %d runs:\n", srv.name, runs)
	fmt.Printf("  %-20s %8s %6s %6s  %8s %6s %6s   %6s %6s %6s   %s\n", "", "copy s", "MiB/s", "x", "+sync s", "MiB/s", "x", "tool", "server", "other", "peak RSS")
	mib := float64(size) / (1 << 20)
	copyTime := func(s sample) time.Duration { return s.copy }
	syncedTime := func(s sample) time.Duration { return s.synced }
	base := samples[tools[0].name]
	vCopy, vSynced := medianOf(base, copyTime), medianOf(base, syncedTime)
	var notes []string
	for _, tl := range tools {
		ss := samples[tl.name]
		c, sy := medianOf(ss, copyTime), medianOf(ss, syncedTime)
		var rss int64
		var warned, warnedRuns int
		for _, s := range ss {
			rss = max(rss, s.rss)
			warned += len(s.warnings)
			if len(s.warnings) > 0 {
				warnedRuns++
			}
		}
		fmt.Printf("  %-20s %8.2f %6.0f %5.2fx  %8.2f %6.0f %5.2fx   %6.1f %6.1f %6.1f   %4.0f MiB\n", tl.name,
			c.Seconds(), mib/c.Seconds(), c.Seconds()/vCopy.Seconds(),
			sy.Seconds(), mib/sy.Seconds(), sy.Seconds()/vSynced.Seconds(),
			medianOf(ss, func(s sample) time.Duration { return s.tool }).Seconds(),
			medianOf(ss, func(s sample) time.Duration { return s.server }).Seconds(),
			medianOf(ss, func(s sample) time.Duration { return s.other }).Seconds(),
			float64(rss)/1024)
		if warned > 0 {
			notes = append(notes, fmt.Sprintf("%s logged %d warnings or errors in %d of %d runs (lines above), and still stored every chunk", tl.name, warned, warnedRuns, len(ss)))
		}
	}
	last := base[len(base)-1]
	fmt.Printf("  read back after every run: all %d chunks, %d MiB, byte for byte; Vigil's index beside them: %d objects, %d KiB\n",
		len(want), want.Bytes()>>20, last.indexObjects, last.indexBytes>>10)
	if !serverCounted {
		notes = append(notes, "the server's CPU time was not counted (see above): its share is in the other column")
	}
	for _, n := range notes {
		fmt.Printf("  %s\n", n)
	}
}

func medianOf(ss []sample, field func(sample) time.Duration) time.Duration {
	ds := make([]time.Duration, len(ss))
	for i, s := range ss {
		ds[i] = field(s)
	}
	return measure.Median(ds)
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

// lastLines keeps the end of a program's output, where the reason it failed is.
func lastLines(out []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
