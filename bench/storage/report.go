package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/vigil-backup/vigil/internal/storage"
)

// report is everything one benchmark run measured.
type report struct {
	Files         int      `json:"files"`
	FileMiB       int      `json:"file_mib"`
	TotalMiB      float64  `json:"total_mib"`
	Runs          int      `json:"runs"`
	CachesDropped bool     `json:"caches_dropped"`
	Results       []result `json:"results"`
	Summary       []string `json:"summary"`
	Notes         []string `json:"notes"`
}

// result is one kind of storage in one direction.
type result struct {
	Kind      storage.Kind `json:"kind"`
	Direction string       `json:"direction"` // "put" or "get"
	Tools     []toolResult `json:"tools"`
}

// toolResult is one tool's times. A ratio is the tool's median time over Vigil's, which is
// Vigil's throughput over the tool's: above 1, Vigil is faster.
type toolResult struct {
	Tool     string    `json:"tool"`
	Parallel int       `json:"parallel"`
	Vigil    bool      `json:"vigil"`
	Seconds  []float64 `json:"seconds"`
	Median   float64   `json:"median_seconds"`
	MiBps    float64   `json:"mib_per_second"`
	VigilJ1  float64   `json:"vigil_j1_ratio"`
	VigilJ4  float64   `json:"vigil_j4_ratio"`
}

// newResult computes medians, rates and ratios from the times each tool took, in the
// order of tools.
func newResult(kind storage.Kind, direction string, tools []tool, times map[string][]time.Duration, mib float64) result {
	r := result{Kind: kind, Direction: direction}
	for _, tl := range tools {
		tr := toolResult{Tool: tl.name, Parallel: tl.parallel, Vigil: tl.vigil}
		for _, d := range times[tl.name] {
			tr.Seconds = append(tr.Seconds, d.Seconds())
		}
		tr.Median = median(tr.Seconds)
		tr.MiBps = mib / tr.Median
		r.Tools = append(r.Tools, tr)
	}
	j1, j4 := r.tool(vigilName(1)), r.tool(vigilName(4))
	for i := range r.Tools {
		r.Tools[i].VigilJ1 = r.Tools[i].Median / j1.Median
		r.Tools[i].VigilJ4 = r.Tools[i].Median / j4.Median
	}
	return r
}

func (r result) tool(name string) toolResult {
	for _, t := range r.Tools {
		if t.Tool == name {
			return t
		}
	}
	return toolResult{}
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// summary compares each Vigil variant with the tools that move as many files at a time:
// vigil-j1 with cp, scp and smbclient, vigil-j4 with rclone. Where no tool matches (S3 has
// only rclone), it is compared with every tool.
func (r result) summary() string {
	var parts []string
	for _, jobs := range []int{1, 4} {
		var peers []toolResult
		for _, t := range r.Tools {
			if !t.Vigil && t.Parallel == jobs {
				peers = append(peers, t)
			}
		}
		if len(peers) == 0 {
			peers = slices.DeleteFunc(slices.Clone(r.Tools), func(t toolResult) bool { return t.Vigil })
		}
		for _, t := range peers {
			ratio := t.VigilJ1
			if jobs == 4 {
				ratio = t.VigilJ4
			}
			parts = append(parts, fmt.Sprintf("%s %.2fx %s", vigilName(jobs), ratio, t.Tool))
		}
	}
	return fmt.Sprintf("%s %s: %s", r.Kind, r.Direction, strings.Join(parts, ", "))
}

func (rep *report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

func (rep *report) writeText(w io.Writer) {
	caches := "page cache dropped before every run"
	if !rep.CachesDropped {
		caches = "page cache NOT dropped (see notes)"
	}
	fmt.Fprintf(w, "Vigil storage benchmark: %d files x %d MiB = %.0f MiB, median of %d runs, %s.\n",
		rep.Files, rep.FileMiB, rep.TotalMiB, rep.Runs, caches)
	fmt.Fprintf(w, "Ratios are Vigil's throughput over the tool's (tool seconds / Vigil seconds): above 1.00x Vigil is faster.\n")
	for _, r := range rep.Results {
		fmt.Fprintf(w, "\n%s %s\n", r.Kind, r.Direction)
		fmt.Fprintf(w, "  %-10s %9s %7s %14s %14s   %s\n", "tool", "median s", "MiB/s", "vigil-j1/tool", "vigil-j4/tool", "runs (s)")
		for _, t := range r.Tools {
			fmt.Fprintf(w, "  %-10s %9.2f %7.0f %13.2fx %13.2fx   %s\n", t.Tool, t.Median, t.MiBps, t.VigilJ1, t.VigilJ4, formatRuns(t.Seconds))
		}
	}
	fmt.Fprintf(w, "\nSummary\n")
	for _, s := range rep.Summary {
		fmt.Fprintf(w, "  %s\n", s)
	}
	fmt.Fprintf(w, "\nNotes\n")
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "  - %s\n", n)
	}
}

func formatRuns(secs []float64) string {
	parts := make([]string, len(secs))
	for i, s := range secs {
		parts[i] = fmt.Sprintf("%.2f", s)
	}
	return strings.Join(parts, " ")
}

// flushNotes say what each side makes durable, which the figures depend on.
var flushNotes = []string{
	"Vigil flushes every object before its Put returns: fsync of file and folder locally, SMB FLUSH on Samba, fsync@openssh.com on OpenSSH; on S3, MinIO decides for every client alike.",
	"scp, smbclient and rclone ask the server for no flush; their data may still be in the server's page cache when they return.",
	"Local puts of cp and rclone include a sync after them, timed, so that both sides end with the data on disk; gets flush on no side.",
	fmt.Sprintf("Times include starting each program and logging in; Vigil's include opening and closing the storage. rclone runs with --transfers %d, its default.", rcloneTransfers),
	"Every put is checked on the server's side (names, sizes, SHA-256) and every get against the source; a mismatch fails the benchmark.",
}
