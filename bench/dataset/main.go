// Command dataset measures Vigil's dataset backups, the real vigil binary, against the tools
// an operator would use instead, in the same run on the same data (scripts/bench runs it):
//
//   - a compressed full backup of a generated dataset (1 GiB of database-like files, about
//     half compressible) from one local folder to another, against tar --zstd (the
//     practical limit: one stream through zstd at its default level) and restic backup;
//   - an incremental backup after 1% of the data changed, against restic backup and
//     tar --zstd --listed-incremental;
//   - restoring the fourth incremental (its chain applied) against restoring the full one,
//     and against tar -x and restic restore of the same data.
//
// Every writer is followed by a timed sync, since Vigil flushes what it writes.
package main

import (
	"flag"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-backup/vigil/bench/internal/measure"
	"github.com/vigil-backup/vigil/internal/testenv"
)

func main() {
	mib := flag.Int("mib", 1024, "size of the dataset, in MiB")
	files := flag.Int("files", 100, "files in the dataset")
	runs := flag.Int("runs", 3, "runs per tool; the median is reported")
	flag.Parse()
	p := testenv.NewProgram("vigil-bench-dataset")
	defer p.Close()
	work := p.TempDir()
	vigil := filepath.Join(work, "vigil")
	build := exec.Command("go", "build", "-o", vigil, "./cmd/vigil")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	measure.Check(build.Run())

	src := filepath.Join(work, "data")
	size := makeDataset(src, int64(*mib)<<20, *files)
	fmt.Printf("Dataset backup benchmark: %d files, %d MiB; median of %d runs; ratios are the tool's time over Vigil's (above 1.00x Vigil is faster).\n\n", *files, size>>20, *runs)

	full := map[string][]time.Duration{}
	var rss int64
	var stored int64
	names := []string{"vigil", "tar --zstd", "restic backup"}
	for round := range *runs {
		for i := range names {
			name := names[(i+round)%len(names)]
			dst := fresh(work, "full")
			measure.DropCaches()
			start := time.Now()
			var ru *syscall.Rusage
			switch name {
			case "vigil":
				ru = measure.Run(vigilBackup(vigil, src, dst, "full", work)...)
			case "tar --zstd":
				measure.Run("tar", "--zstd", "-cf", filepath.Join(dst, "x.tar.zst"), "-C", src, ".")
			case "restic backup":
				measure.Run("restic", "-q", "-r", dst, "init")
				start = time.Now()
				measure.Run("restic", "-q", "-r", dst, "backup", src)
			}
			measure.Run("sync")
			full[name] = append(full[name], time.Since(start))
			if name == "vigil" {
				rss = max(rss, ru.Maxrss)
				stored = duSize(dst)
			}
		}
	}
	fmt.Printf("Compressed full backup (vigil stored %d MiB, %.2fx smaller):\n", stored>>20, float64(size)/float64(max(stored, 1)))
	report(names, full, size)
	fmt.Printf("  vigil peak RSS: %.0f MiB\n\n", float64(rss)/1024)

	incremental(work, vigil, src, size, *runs)
}

// incremental measures an incremental after 1% changed, then restores of a chain.
func incremental(work, vigil, src string, size int64, runs int) {
	inc := map[string][]time.Duration{}
	restore := map[string][]time.Duration{}
	for range runs {
		data := fresh(work, "chain-data")
		measure.Run("cp", "-a", src+"/.", data)
		vdst := fresh(work, "chain-vigil")
		rdst := fresh(work, "chain-restic")
		tdst := fresh(work, "chain-tar")
		snar := filepath.Join(tdst, "snar")
		// The full backups the incrementals follow, untimed.
		measure.Run(vigilBackup(vigil, data, vdst, "full", vdst)...)
		measure.Run("restic", "-q", "-r", rdst, "init")
		measure.Run("restic", "-q", "-r", rdst, "backup", data)
		measure.Run("tar", "--zstd", "--listed-incremental="+snar, "-cf", filepath.Join(tdst, "0.tar.zst"), "-C", data, ".")
		for step := 1; step <= 4; step++ {
			change(data, size/100, step)
			timed := step == 1
			measure.DropCaches()
			for _, name := range []string{"vigil", "restic backup", "tar --listed-incremental"} {
				start := time.Now()
				switch name {
				case "vigil":
					measure.Run(vigilBackup(vigil, data, vdst, "incremental", vdst)...)
				case "restic backup":
					measure.Run("restic", "-q", "-r", rdst, "backup", data)
				case "tar --listed-incremental":
					time.Sleep(1100 * time.Millisecond) // tar compares times in seconds
					start = time.Now()
					measure.Run("tar", "--zstd", "--listed-incremental="+snar, "-cf", filepath.Join(tdst, fmt.Sprintf("%d.tar.zst", step)), "-C", data, ".")
				}
				measure.Run("sync")
				if timed {
					inc[name] = append(inc[name], time.Since(start))
				}
			}
			time.Sleep(1100 * time.Millisecond) // a backup a second per dataset
		}
		ids := vigilIDs(vigil, vdst)
		for _, tc := range []struct {
			name string
			args func(target string) []string
		}{
			{"vigil, full", func(t string) []string { return vigilRestore(vigil, vdst, ids[0], t) }},
			{"vigil, 4th incremental", func(t string) []string { return vigilRestore(vigil, vdst, ids[4], t) }},
			{"tar -x, full", func(t string) []string {
				return []string{"tar", "--zstd", "-xf", filepath.Join(tdst, "0.tar.zst"), "-C", t}
			}},
			{"restic restore", func(t string) []string {
				return []string{"restic", "-q", "-r", rdst, "restore", "latest", "--target", t}
			}},
		} {
			target := fresh(work, "restore")
			measure.DropCaches()
			start := time.Now()
			measure.Run(tc.args(target)...)
			measure.Run("sync")
			restore[tc.name] = append(restore[tc.name], time.Since(start))
		}
	}
	fmt.Println("Incremental backup after 1% of the data changed:")
	report([]string{"vigil", "restic backup", "tar --listed-incremental"}, inc, 0)
	fmt.Println("\nRestore (ratios over vigil restoring the full backup):")
	names := []string{"vigil, full", "vigil, 4th incremental", "tar -x, full", "restic restore"}
	report(names, restore, size)
}

func vigilBackup(vigil, src, dst, kind, stateDir string) []string {
	return []string{vigil, "dataset", "backup", "--name", "Bench", "--letter", "B", "--source", "dir://" + src,
		"--to", dst, "--format", "compressed", "--type", kind, "--state-dir", filepath.Join(stateDir, ".state")}
}

func vigilRestore(vigil, dst, id, target string) []string {
	return []string{vigil, "dataset", "restore", "--from", dst, "--backup", id, "--target", target}
}

// vigilIDs lists the backups on dst, oldest first.
func vigilIDs(vigil, dst string) []string {
	out, err := exec.Command(vigil, "dataset", "list", "--from", dst).Output()
	measure.Check(err)
	var ids []string
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) > 0 && strings.HasPrefix(f[0], "B_") {
			ids = append(ids, f[0])
		}
	}
	if len(ids) != 5 {
		measure.Check(fmt.Errorf("vigil dataset list: %d backups, want 5:\n%s", len(ids), out))
	}
	return ids
}

// makeDataset writes files of database-like content: pages of records, about half of each
// page random (keys, hashes, blobs) and half repeated structure, so that zstd halves it.
func makeDataset(dir string, total int64, files int) int64 {
	measure.Check(os.MkdirAll(dir, 0o755))
	per := total / int64(files)
	var written int64
	for i := range files {
		p := filepath.Join(dir, fmt.Sprintf("table%03d.db", i))
		measure.Check(os.WriteFile(p, pages(per, uint64(i)), 0o644))
		written += per
	}
	return written
}

func pages(n int64, seed uint64) []byte {
	r := mrand.New(mrand.NewPCG(seed, 42))
	b := make([]byte, n)
	const page = 4096
	tmpl := []byte(strings.Repeat("INSERT INTO events (door, card, kind, at) VALUES ", page/48+1))
	for off := int64(0); off < n; off += page {
		end := min(off+page, n)
		half := off + (end-off)/2
		for i := off; i < half; i += 8 {
			v := r.Uint64()
			for j := int64(0); j < 8 && i+j < half; j++ {
				b[i+j] = byte(v >> (8 * j))
			}
		}
		copy(b[half:end], tmpl)
	}
	return b
}

// change rewrites about n bytes: whole files, as a database rewrites its pages.
func change(dir string, n int64, step int) {
	ents, err := os.ReadDir(dir)
	measure.Check(err)
	var done int64
	for i := step * 7; done < n; i++ {
		p := filepath.Join(dir, ents[i%len(ents)].Name())
		fi, err := os.Stat(p)
		measure.Check(err)
		measure.Check(os.WriteFile(p, pages(fi.Size(), uint64(1000*step+i)), 0o644))
		done += fi.Size()
	}
}

func fresh(work, name string) string {
	p := filepath.Join(work, name)
	measure.Check(os.RemoveAll(p))
	measure.Check(os.MkdirAll(p, 0o755))
	return p
}

func duSize(dir string) int64 {
	var n int64
	measure.Check(filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return err
	}))
	return n
}

func report(names []string, times map[string][]time.Duration, size int64) {
	v := measure.Median(times[names[0]])
	for _, name := range names {
		m := measure.Median(times[name])
		rate := ""
		if size > 0 {
			rate = fmt.Sprintf("  %6.0f MiB/s", float64(size)/(1<<20)/m.Seconds())
		}
		fmt.Printf("  %-26s %8.3f s%s  %6.2fx\n", name, m.Seconds(), rate, m.Seconds()/v.Seconds())
	}
}
