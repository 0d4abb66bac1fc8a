// Command footage measures Vigil's footage backup, the real vigil binary, against the tools
// an operator would use instead, in the same run on the same archive (scripts/bench runs
// it):
//
//   - an initial backup of a generated archive (Nx layout, 16 cameras, both streams, 2–10
//     MiB chunks) from one local folder to another, against cp -r, rsync -a, rclone copy
//     and restic backup, each followed by a timed sync since Vigil flushes every chunk;
//   - a re-run with nothing new over an archive of 100,000 chunk files, against rsync and
//     rclone doing the same, with warm and with cold caches;
//   - Vigil's peak memory (maximum resident set) in both, and in the first backup of the
//     100,000 chunks;
//   - real-time: with 32 cameras recording, how long a chunk takes from its close to the
//     backup with vigil footage backup --realtime, p50 and p99;
//   - with -sections remote, the same initial backup to SMB, SFTP and S3 servers on
//     loopback (Samba, OpenSSH, MinIO), against rclone copy to the same server, each run
//     into an empty destination and read back from the server after it.
package main

import (
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-backup/vigil/bench/internal/measure"
	"github.com/vigil-backup/vigil/internal/testenv"
)

func main() {
	initialMiB := flag.Int("initial-mib", 2048, "size of the archive of the initial backup, in MiB")
	rerunChunks := flag.Int("rerun-chunks", 100_000, "chunk files in the archive of the no-change re-run")
	runs := flag.Int("runs", 3, "runs per tool; the median is reported")
	sections := flag.String("sections", "initial,rerun,realtime", "what to measure, comma-separated: initial (local backup), rerun (no-change re-run), realtime (close-to-backup latency), remote (backup to servers)")
	rtCameras := flag.Int("realtime-cameras", 32, "realtime section: cameras recording, each with both streams")
	rtChunk := flag.Duration("realtime-chunk", 4*time.Second, "realtime section: length of a chunk")
	rtDuration := flag.Duration("realtime-duration", time.Minute, "realtime section: how long the cameras record")
	kinds := flag.String("remote", strings.Join(serverKinds, ","), "servers of the remote section, comma-separated: "+strings.Join(serverKinds, ", "))
	remoteMiB := flag.Int("remote-mib", 1024, "size of the archive of the remote backups, in MiB")
	parallel := flag.String("vigil-parallel", "", "remote section: vigil --parallel values to measure besides the default, comma-separated")
	trees := flag.String("vigil-trees", "", "remote section: other source trees whose vigil to measure beside this one's, as NAME=DIR,... (to try a change)")
	flag.Parse()
	want, err := parseSections(*sections)
	measure.Check(err)
	ropts := remoteOptions{mib: *remoteMiB, runs: *runs}
	var others []tree
	if want["remote"] {
		ropts.kinds, ropts.parallel, err = parseRemote(*kinds, *parallel)
		measure.Check(err)
		others, err = parseTrees(*trees)
		measure.Check(err)
	}
	// The servers of the remote section stop, and work goes, also when one fails to start.
	p := testenv.NewProgram("vigil-bench-footage")
	defer p.Close()
	work := p.TempDir()
	vigil := buildVigil(work, "vigil", ".")
	for _, t := range others {
		ropts.builds = append(ropts.builds, vigilBuild{name: "vigil " + t.name, bin: buildVigil(work, "vigil-"+t.name, t.dir)})
	}

	fmt.Printf("Footage backup benchmark, median of %d runs; ratios are the tool's time over Vigil's (above 1.00x Vigil is faster).\n\n", *runs)
	if want["initial"] {
		initial(work, vigil, *initialMiB, *runs)
	}
	if want["rerun"] {
		rerun(work, vigil, *rerunChunks, *runs)
	}
	if want["realtime"] {
		realtime(work, vigil, realtimeOptions{cameras: *rtCameras, chunk: *rtChunk, duration: *rtDuration, hiRate: 4 << 20 / 8})
	}
	if want["remote"] {
		remote(p, work, vigil, ropts)
	}
}

// buildVigil builds the vigil of the source tree dir as work/name.
func buildVigil(work, name, dir string) string {
	bin := filepath.Join(work, name)
	build := exec.Command("go", "build", "-C", dir, "-o", bin, "./cmd/vigil")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	measure.Check(build.Run())
	return bin
}

func parseSections(s string) (map[string]bool, error) {
	want := map[string]bool{}
	for _, sec := range strings.Split(s, ",") {
		switch sec = strings.TrimSpace(sec); sec {
		case "initial", "rerun", "realtime", "remote":
			want[sec] = true
		default:
			return nil, fmt.Errorf("-sections: unknown section %q (initial, rerun, realtime, remote)", sec)
		}
	}
	return want, nil
}

func parseRemote(kinds, parallel string) ([]string, []int, error) {
	var ks []string
	for _, k := range strings.Split(kinds, ",") {
		if k = strings.TrimSpace(k); !slices.Contains(serverKinds, k) {
			return nil, nil, fmt.Errorf("-remote: unknown server %q (%s)", k, strings.Join(serverKinds, ", "))
		}
		ks = append(ks, k)
	}
	var ps []int
	for _, f := range strings.FieldsFunc(parallel, func(r rune) bool { return r == ',' }) {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 64 {
			return nil, nil, fmt.Errorf("-vigil-parallel: %q is not a number from 1 to 64", f)
		}
		ps = append(ps, n)
	}
	return ks, ps, nil
}

// tree is a source tree of Vigil, such as another worktree, named for the report.
type tree struct{ name, dir string }

// parseTrees reads NAME=DIR,...; a name goes into bucket names, so it is lower case.
func parseTrees(s string) ([]tree, error) {
	var ts []tree
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' }) {
		name, dir, ok := strings.Cut(strings.TrimSpace(f), "=")
		if !ok || name == "" || strings.ToLower(name) != name || strings.ContainsAny(name, " /_") {
			return nil, fmt.Errorf("-vigil-trees: %q is not NAME=DIR with a lower-case NAME", f)
		}
		if _, err := os.Stat(filepath.Join(dir, "cmd", "vigil")); err != nil {
			return nil, fmt.Errorf("-vigil-trees: %s: %w", name, err)
		}
		ts = append(ts, tree{name, dir})
	}
	return ts, nil
}

// tool is one way of copying the archive src to dst.
type tool struct {
	name string
	cmd  func(src, dst string) []string
	// prepare readies dst (restic needs a repository).
	prepare func(dst string)
}

func tools(vigil string) []tool {
	return []tool{
		{name: "vigil", cmd: func(src, dst string) []string {
			return []string{vigil, "footage", "backup", "--source", src, "--layout", "nx", "--timezone", "UTC", "--to", dst, "--server-id", "bench",
				"--cache-dir", filepath.Join(filepath.Dir(dst), "vigil-cache-"+filepath.Base(dst))}
		}},
		{name: "cp -r", cmd: func(src, dst string) []string { return []string{"cp", "-r", src + "/.", dst} }},
		{name: "rsync -a", cmd: func(src, dst string) []string { return []string{"rsync", "-a", src + "/", dst + "/"} }},
		{name: "rclone copy", cmd: func(src, dst string) []string {
			return []string{"rclone", "copy", "--config", "/dev/null", src, dst}
		}},
		{name: "restic backup", cmd: func(src, dst string) []string {
			return []string{"restic", "-q", "-r", dst, "backup", src}
		}, prepare: func(dst string) {
			measure.Run("restic", "-q", "-r", dst, "init")
		}},
	}
}

func initial(work, vigil string, mib, runs int) {
	src := filepath.Join(work, "archive")
	n, size := makeArchive(src, int64(mib)<<20, 2<<20, 10<<20, 16)
	fmt.Printf("Initial backup, local to local: %d chunks, %d MiB\n", n, size>>20)
	times := map[string][]time.Duration{}
	var rss int64
	all := tools(vigil)
	for round := range runs {
		for i := range all {
			tl := all[(i+round)%len(all)]
			dst := filepath.Join(work, "dst")
			os.RemoveAll(dst)
			measure.Check(os.MkdirAll(dst, 0o755))
			if tl.prepare != nil {
				tl.prepare(dst)
			}
			measure.DropCaches()
			start := time.Now()
			ru := measure.Run(tl.cmd(src, dst)...)
			measure.Run("sync")
			times[tl.name] = append(times[tl.name], time.Since(start))
			if tl.name == "vigil" {
				rss = max(rss, ru.Maxrss)
			}
		}
	}
	report(all, times, size)
	fmt.Printf("  vigil peak RSS: %.0f MiB\n\n", float64(rss)/1024)
}

func rerun(work, vigil string, chunks, runs int) {
	src := filepath.Join(work, "many")
	// Tiny chunks: the re-run is about finding what is new, not about bytes.
	perStream := chunks / 32
	n, _ := makeArchive(src, int64(perStream*32)*1024, 1024, 1024, 16)
	fmt.Printf("Re-run with nothing new: %d chunk files\n", n)
	all := slices.DeleteFunc(tools(vigil), func(t tool) bool { return t.name == "cp -r" || t.name == "restic backup" })
	dsts := map[string]string{}
	for _, tl := range all {
		dst := filepath.Join(work, "rerun-"+strings.Fields(tl.name)[0])
		measure.Check(os.MkdirAll(dst, 0o755))
		ru := measure.Run(tl.cmd(src, dst)...) // the first, full copy is not timed
		if tl.name == "vigil" {
			fmt.Printf("  vigil peak RSS in the first backup of the %d chunks: %.0f MiB\n", n, float64(ru.Maxrss)/1024)
		}
		dsts[tl.name] = dst
	}
	for _, cold := range []bool{false, true} {
		times := map[string][]time.Duration{}
		var rss int64
		for round := range runs {
			for i := range all {
				tl := all[(i+round)%len(all)]
				if cold {
					measure.DropCaches()
				}
				start := time.Now()
				ru := measure.Run(tl.cmd(src, dsts[tl.name])...)
				times[tl.name] = append(times[tl.name], time.Since(start))
				if tl.name == "vigil" {
					rss = max(rss, ru.Maxrss)
				}
			}
		}
		fmt.Printf(" caches %s:\n", map[bool]string{false: "warm", true: "dropped"}[cold])
		report(all, times, 0)
		fmt.Printf("  vigil peak RSS: %.0f MiB\n", float64(rss)/1024)
	}
	fmt.Println()
}

func report(all []tool, times map[string][]time.Duration, size int64) {
	v := measure.Median(times["vigil"])
	for _, tl := range all {
		m := measure.Median(times[tl.name])
		rate := ""
		if size > 0 {
			rate = fmt.Sprintf("  %6.0f MiB/s", float64(size)/(1<<20)/m.Seconds())
		}
		fmt.Printf("  %-14s %8.3f s%s  %6.2fx\n", tl.name, m.Seconds(), rate, m.Seconds()/v.Seconds())
	}
}

// makeArchive writes about total bytes of random chunks, between minSize and maxSize each,
// in the Nx layout: hi and lo streams of cameras, 10-second chunks one after another.
func makeArchive(root string, total, minSize, maxSize int64, cameras int) (n int, written int64) {
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	next := make([]time.Time, cameras*2)
	for i := range next {
		next[i] = start
	}
	buf := make([]byte, maxSize)
	for written < total {
		for i := range next {
			size := minSize + mrand.Int64N(maxSize-minSize+1)
			cam, stream := i/2, []string{"hi_quality", "low_quality"}[i%2]
			t := next[i]
			rel := fmt.Sprintf("%s/cam%02d/%s/%d_10000.mkv", stream, cam, t.Format("2006/01/02/15"), t.UnixMilli())
			p := filepath.Join(root, rel)
			measure.Check(os.MkdirAll(filepath.Dir(p), 0o755))
			_, _ = io.ReadFull(rand.Reader, buf[:size])
			measure.Check(os.WriteFile(p, buf[:size], 0o644))
			end := t.Add(10 * time.Second)
			measure.Check(os.Chtimes(p, end, end))
			next[i] = end
			n++
			written += size
			if written >= total {
				break
			}
		}
	}
	// A recorder left its past folders alone long ago: their times are not just now.
	old := time.Now().Add(-time.Hour)
	measure.Check(filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			err = os.Chtimes(p, old, old)
		}
		return err
	}))
	return n, written
}
