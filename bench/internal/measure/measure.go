// Package measure holds what the benchmark programs share: running the tools compared,
// with their resource use, dropping the page cache between runs, and medians.
package measure

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Run runs a command and returns its resource usage; a failure ends the benchmark. The
// tools get a restic password and no settings file of the machine's.
func Run(args ...string) *syscall.Rusage {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "RESTIC_PASSWORD=bench", "VIGIL_CONFIG=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n%s", strings.Join(args, " "), err, out)
		os.Exit(1)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		return ru
	}
	return &syscall.Rusage{}
}

// DropCaches writes back and drops the page cache, so that the next run reads from disk.
// It needs root; without it the caches stay warm.
func DropCaches() {
	Run("sync")
	_ = os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0o200)
}

// Check ends the benchmark on an error.
func Check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// Median is the middle of ds (the upper one of an even count).
func Median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
