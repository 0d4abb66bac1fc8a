package footage_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/internal/footage"
	"github.com/vigil-backup/vigil/internal/storage"
	"github.com/vigil-backup/vigil/internal/storage/mem"
	"github.com/vigil-backup/vigil/internal/storage/storagetest"
	"github.com/vigil-backup/vigil/internal/testenv"
)

// putIndex writes records as the index's hour file of their first record's start, as
// anyone with access to the storage could.
func putIndex(t *testing.T, s storage.Storage, camera string, st footage.Stream, recs []footage.Record) {
	t.Helper()
	b, err := json.Marshal(recs)
	if err != nil {
		t.Fatal(err)
	}
	name := footage.ServerRoot("srv1") + "/.vigil/index/" + camera + "/" + string(st) + "/" + recs[0].Start.UTC().Format("2006/01/02/15") + ".json"
	storagetest.MustPut(t, s, name, b)
}

func restoreOpts(target string, since, until time.Duration) footage.RestoreOptions {
	return footage.RestoreOptions{Camera: "cam1", Since: t0.Add(since), Until: t0.Add(until), Target: target}
}

// TestRestoreRange restores ranges of a camera's footage of six 10-second chunks per
// stream, [t0, t0+60s), and one chunk of unknown length at t0+100s.
func TestRestoreRange(t *testing.T) {
	root, s, _ := backedUp(t, []string{"cam1", "cam2"}, 6)
	unknown := testLayout{}.Path(footage.Chunk{Camera: "cam1", Stream: footage.High, Start: t0.Add(100 * time.Second)})
	writeChunk(t, root, unknown, []byte("a chunk of unknown length"), t0.Add(105*time.Second))
	backup(t, root, t0.Add(time.Hour), footage.Target{Name: "s", Storage: s})

	chunk := func(st string, i int) string {
		return testLayout{}.Path(footage.Chunk{Camera: "cam1", Stream: footage.Stream(st), Start: t0.Add(time.Duration(i) * 10 * time.Second), Duration: 10 * time.Second})
	}
	both := func(is ...int) []string {
		var out []string
		for _, i := range is {
			out = append(out, chunk("hi", i), chunk("lo", i))
		}
		return out
	}
	s10 := 10 * time.Second
	cases := []struct {
		name         string
		since, until time.Duration
		streams      []footage.Stream
		want         []string
	}{
		{"everything", -time.Hour, time.Hour, nil, append(both(0, 1, 2, 3, 4, 5), unknown)},
		{"exactly one chunk", s10, 2 * s10, nil, both(1)},
		{"ends where a chunk starts", 0, s10, nil, both(0)},
		{"starts where a chunk ends", 6 * s10, 7 * s10, nil, nil},
		{"inside one chunk", 12 * time.Second, 13 * time.Second, nil, both(1)},
		{"across a boundary", 15 * time.Second, 25 * time.Second, nil, both(1, 2)},
		{"one instant past a start", 20*time.Second + time.Millisecond, 30 * time.Second, nil, both(2)},
		{"up to one instant past a start", 0, 10*time.Second + time.Millisecond, nil, both(0, 1)},
		{"one stream", s10, 3 * s10, []footage.Stream{footage.Low}, []string{chunk("lo", 1), chunk("lo", 2)}},
		{"unknown length: start in range", 100 * time.Second, 101 * time.Second, nil, []string{unknown}},
		{"unknown length: start at until", 90 * time.Second, 100 * time.Second, nil, nil},
		{"unknown length: start before since", 101 * time.Second, time.Hour, nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			target := filepath.Join(t.TempDir(), "restored")
			opts := restoreOpts(target, c.since, c.until)
			opts.Streams = c.streams
			res, err := footage.Restore(context.Background(), s, "srv1", opts)
			if c.want == nil {
				if !errors.Is(err, footage.ErrNoFootage) || !strings.Contains(err.Error(), "has footage of it from") {
					t.Fatalf("a range without footage: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("restore: %v", err)
			}
			slices.Sort(c.want)
			if got := testenv.Files(t, target); !slices.Equal(got, c.want) {
				t.Fatalf("restored %q, want %q", got, c.want)
			}
			if res.Chunks != len(c.want) || res.Restored != len(c.want) || res.Skipped != 0 {
				t.Fatalf("result %+v, want %d chunks", res, len(c.want))
			}
			for _, rel := range c.want {
				want, _ := os.ReadFile(filepath.Join(root, rel))
				got, _ := os.ReadFile(filepath.Join(target, rel))
				if !bytes.Equal(got, want) {
					t.Fatalf("%s differs from the archive", rel)
				}
				c, _ := testLayout{}.Parse(rel)
				if fi, err := os.Stat(filepath.Join(target, rel)); err != nil || !fi.ModTime().Equal(c.End()) {
					t.Fatalf("%s: modified %v, want the chunk's end %v (%v)", rel, fi.ModTime(), c.End(), err)
				}
			}
		})
	}
}

func TestRestoreNoSuchCamera(t *testing.T) {
	_, s, _ := backedUp(t, []string{"cam1", "cam2"}, 1)
	opts := restoreOpts(t.TempDir(), 0, time.Hour)
	opts.Camera = "cam7"
	_, err := footage.Restore(context.Background(), s, "srv1", opts)
	if !errors.Is(err, footage.ErrNoFootage) || !strings.Contains(err.Error(), "cameras there: cam1, cam2") {
		t.Fatalf("an unknown camera: %v", err)
	}
}

// TestRestoreHostileIndex: an index that names a path outside the target gets nothing
// restored, not even the chunks with sound paths.
func TestRestoreHostileIndex(t *testing.T) {
	for _, bad := range []string{"../x.bin", "cam1/../../x.bin", "/tmp/x.bin", "cam1//x.bin", ".vigil/index/x.json"} {
		t.Run(bad, func(t *testing.T) {
			s := mem.New()
			data := []byte("footage")
			sum := sha256.Sum256(data)
			good := footage.Record{Path: testLayout{}.Path(footage.Chunk{Camera: "cam1", Stream: footage.High, Start: t0, Duration: 10 * time.Second}), Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), Start: t0, DurationMS: 10000}
			storagetest.MustPut(t, s, footage.ServerRoot("srv1")+"/"+good.Path, data)
			hostile := good
			hostile.Path = bad
			hostile.Start = t0.Add(10 * time.Second)
			putIndex(t, s, "cam1", footage.High, []footage.Record{good, hostile})

			parent := t.TempDir()
			target := filepath.Join(parent, "restored")
			_, err := footage.Restore(context.Background(), s, "srv1", restoreOpts(target, 0, time.Hour))
			if err == nil || !strings.Contains(err.Error(), "not a path inside the target") {
				t.Fatalf("a hostile index: %v", err)
			}
			if got := testenv.Files(t, parent); len(got) != 0 {
				t.Fatalf("a hostile index had files written: %q", got)
			}
		})
	}
}

func TestRestoreExistingFiles(t *testing.T) {
	root, s, _ := backedUp(t, []string{"cam1"}, 3)
	first := testLayout{}.Path(footage.Chunk{Camera: "cam1", Stream: footage.High, Start: t0, Duration: 10 * time.Second})
	target := t.TempDir()

	// An identical file is kept and counted as skipped.
	identical, _ := os.ReadFile(filepath.Join(root, first))
	writeChunk(t, target, first, identical, t0)
	res, err := footage.Restore(context.Background(), s, "srv1", restoreOpts(target, 0, time.Hour))
	if err != nil || res.Skipped != 1 || res.Restored != 5 {
		t.Fatalf("with an identical file there: %+v, %v", res, err)
	}
	if fi, _ := os.Stat(filepath.Join(target, first)); !fi.ModTime().Equal(t0) {
		t.Fatalf("the identical file was rewritten")
	}

	// A file with other content is never replaced.
	other := []byte("the operator's own file")
	writeChunk(t, target, first, other, t0)
	_, err = footage.Restore(context.Background(), s, "srv1", restoreOpts(target, 0, 10*time.Second))
	if err == nil || !strings.Contains(err.Error(), "with other content") || !strings.Contains(err.Error(), first) {
		t.Fatalf("with another file there: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(target, first)); !bytes.Equal(got, other) {
		t.Fatalf("the operator's file was replaced")
	}
}

// TestRestoreDamagedChunk: a stored chunk that does not match its record leaves no file,
// whole or partial, under its name or a temporary one.
func TestRestoreDamagedChunk(t *testing.T) {
	_, s, _ := backedUp(t, []string{"cam1"}, 2)
	rel := testLayout{}.Path(footage.Chunk{Camera: "cam1", Stream: footage.High, Start: t0, Duration: 10 * time.Second})
	name := footage.ServerRoot("srv1") + "/" + rel
	data := storagetest.MustRead(t, s, name)
	for _, c := range []struct {
		name, says string
		stored     []byte
	}{
		{"flipped byte", "SHA-256", append([]byte{data[0] ^ 0x80}, data[1:]...)},
		{"cut", "bytes, the index says", data[:len(data)-1]},
		{"longer", "more than", append(slices.Clone(data), 'x')},
	} {
		t.Run(c.name, func(t *testing.T) {
			storagetest.MustPut(t, s, name, c.stored)
			target := t.TempDir()
			opts := restoreOpts(target, 0, 10*time.Second)
			opts.Streams = []footage.Stream{footage.High}
			_, err := footage.Restore(context.Background(), s, "srv1", opts)
			if err == nil || !strings.Contains(err.Error(), c.says) || !strings.Contains(err.Error(), "damaged") {
				t.Fatalf("a damaged chunk: %v", err)
			}
			if got := testenv.Files(t, target); len(got) != 0 {
				t.Fatalf("a damaged chunk left %q", got)
			}
		})
	}
}

func TestRestoreBadOptions(t *testing.T) {
	s := mem.New()
	for _, opts := range []footage.RestoreOptions{
		{Target: t.TempDir(), Since: t0, Until: t0.Add(time.Hour)},
		{Camera: "cam1", Since: t0, Until: t0.Add(time.Hour)},
		{Camera: "cam1", Target: t.TempDir(), Since: t0, Until: t0},
		{Camera: "../cam1", Target: t.TempDir(), Since: t0, Until: t0.Add(time.Hour)},
		{Camera: "cam1/hi", Target: t.TempDir(), Since: t0, Until: t0.Add(time.Hour)},
	} {
		if _, err := footage.Restore(context.Background(), s, "srv1", opts); err == nil {
			t.Fatalf("restore with %+v succeeded", opts)
		}
	}
}

// TestRestoreReadsIndexAroundRange: a restore reads the hours of the index around its
// range, not the whole index, and still finds a chunk that began in the hour before.
func TestRestoreReadsIndexAroundRange(t *testing.T) {
	root := t.TempDir()
	var paths []string
	for _, start := range []time.Time{t0, t0.Add(time.Hour - 5*time.Second), t0.Add(48 * time.Hour)} {
		c := footage.Chunk{Camera: "cam1", Stream: footage.High, Start: start, Duration: 10 * time.Second}
		rel := testLayout{}.Path(c)
		writeChunk(t, root, rel, []byte(rel), c.End())
		paths = append(paths, rel)
	}
	inner := mem.New()
	backup(t, root, t0.Add(72*time.Hour), footage.Target{Name: "s", Storage: inner})

	s := storagetest.NewFaulty(inner)
	target := t.TempDir()
	res, err := footage.Restore(context.Background(), s, "srv1", restoreOpts(target, 48*time.Hour, 48*time.Hour+time.Second))
	if err != nil || res.Restored != 1 || !slices.Equal(testenv.Files(t, target), paths[2:]) {
		t.Fatalf("a range two days later: %+v, %v, %q", res, err, testenv.Files(t, target))
	}
	// One hour file of the index and one chunk.
	if n := s.Calls("open"); n != 2 {
		t.Fatalf("%d objects opened, want 2", n)
	}

	target = t.TempDir()
	res, err = footage.Restore(context.Background(), s, "srv1", restoreOpts(target, time.Hour, time.Hour+2*time.Second))
	if err != nil || res.Restored != 1 || !slices.Equal(testenv.Files(t, target), paths[1:2]) {
		t.Fatalf("a chunk from the hour before: %+v, %v, %q", res, err, testenv.Files(t, target))
	}
	if !res.From.Equal(t0.Add(time.Hour-5*time.Second)) || !res.To.Equal(t0.Add(time.Hour+5*time.Second)) {
		t.Fatalf("restored footage from %v to %v", res.From, res.To)
	}
}

func TestRestoreOpenRange(t *testing.T) {
	_, s, closed := backedUp(t, []string{"cam1", "cam2"}, 3)
	target := t.TempDir()
	res, err := footage.Restore(context.Background(), s, "srv1", footage.RestoreOptions{Camera: "cam2", Target: target, Parallel: 2})
	if err != nil || res.Restored != len(closed)/2 || len(testenv.Files(t, target)) != len(closed)/2 {
		t.Fatalf("all of a camera's footage: %+v, %v", res, err)
	}
}
