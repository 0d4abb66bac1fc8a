package main

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/bench/internal/fileset"
)

func TestCheckRefusesBrokenTransfers(t *testing.T) {
	dir := t.TempDir()
	w, err := makeWorkload(dir, 3, 1000)
	if err != nil {
		t.Fatal(err)
	}
	got, err := fileset.SumTree(w.dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.files.Check(got); err != nil {
		t.Fatalf("the source itself: %v", err)
	}
	for name, broken := range map[string]func(fileset.Set){
		"missing":   func(s fileset.Set) { delete(s, "cam01-000001.mkv") },
		"short":     func(s fileset.Set) { f := s["cam01-000001.mkv"]; f.Size--; s["cam01-000001.mkv"] = f },
		"corrupted": func(s fileset.Set) { f := s["cam01-000001.mkv"]; f.SHA256[0]++; s["cam01-000001.mkv"] = f },
		"extra":     func(s fileset.Set) { s[".vigil-tmp-1"] = fileset.Sum{} },
	} {
		s := fileset.Set{}
		for k, v := range got {
			s[k] = v
		}
		broken(s)
		if err := w.files.Check(s); err == nil {
			t.Errorf("%s file: no error", name)
		}
	}
}

func TestSummaryPairsByParallelism(t *testing.T) {
	tools := []tool{
		{name: "vigil-j1", parallel: 1, vigil: true},
		{name: "vigil-j4", parallel: 4, vigil: true},
		{name: "smbclient", parallel: 1},
		{name: "rclone", parallel: 4},
	}
	times := map[string][]time.Duration{
		"vigil-j1":  {2 * time.Second, 1 * time.Second, 9 * time.Second},
		"vigil-j4":  {time.Second},
		"smbclient": {3 * time.Second},
		"rclone":    {time.Second / 2},
	}
	r := newResult("smb", "put", tools, times, 512)
	if got, want := r.tool("vigil-j1").MiBps, 256.0; got != want {
		t.Errorf("vigil-j1: %v MiB/s, want %v (from the median)", got, want)
	}
	if got, want := r.summary(), "smb put: vigil-j1 1.50x smbclient, vigil-j4 0.50x rclone"; got != want {
		t.Errorf("summary %q, want %q", got, want)
	}
	r = newResult("s3", "get", []tool{tools[0], tools[1], tools[3]}, times, 512)
	if got := r.summary(); !strings.Contains(got, "vigil-j1 0.25x rclone") {
		t.Errorf("summary without a one-at-a-time tool: %q", got)
	}
}
