package testenv

import (
	"crypto/sha256"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Berlin on machines without a zoneinfo database
)

var nxChunkPath = regexp.MustCompile(`^(hi_quality|low_quality)/([^/]+)/([0-9]{4}/[0-9]{2}/[0-9]{2}/[0-9]{2})/([0-9]+)(?:_([0-9]+))?\.mkv$`)

// checkChunk checks that the file of c is what the recording says, in the Nx layout with the
// date folders in loc.
func checkChunk(t *testing.T, r *Recording, c RecordedChunk, loc *time.Location) {
	t.Helper()
	m := nxChunkPath.FindStringSubmatch(c.Path)
	if m == nil {
		t.Fatalf("%s is not in the Nx layout", c.Path)
	}
	if m[1] != nxFolders[c.Stream] || m[2] != c.Camera {
		t.Errorf("%s: folders %s/%s for stream %s of camera %s", c.Path, m[1], m[2], c.Stream, c.Camera)
	}
	if want := c.Start.In(loc).Format("2006/01/02/15"); m[3] != want {
		t.Errorf("%s: date folders %s, want %s", c.Path, m[3], want)
	}
	if ms, _ := strconv.ParseInt(m[4], 10, 64); ms != c.Start.UnixMilli() {
		t.Errorf("%s: start %d ms in the name, want %d", c.Path, ms, c.Start.UnixMilli())
	}
	if ms, _ := strconv.ParseInt(m[5], 10, 64); ms != c.Duration.Milliseconds() || ms == 0 {
		t.Errorf("%s: duration %q ms in the name, want %d", c.Path, m[5], c.Duration.Milliseconds())
	}
	data, err := os.ReadFile(r.Abs(c))
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(data)) != c.Size || sha256.Sum256(data) != c.SHA256 {
		t.Errorf("%s: %d bytes with another hash, recorded %d bytes", c.Path, len(data), c.Size)
	}
	fi, err := os.Stat(r.Abs(c))
	if err != nil {
		t.Fatal(err)
	}
	if !fi.ModTime().Equal(c.End()) {
		t.Errorf("%s: modified %v, want the chunk's end %v", c.Path, fi.ModTime(), c.End())
	}
	if want := int(25 * c.Duration.Seconds()); c.Frames != want {
		t.Errorf("%s: %d frames recorded, want %d", c.Path, c.Frames, want)
	}
}

func TestRecordDefault(t *testing.T) {
	root := t.TempDir()
	began := time.Now()
	r := Record(t, root, RecorderOptions{})
	took := time.Since(began)
	t.Logf("default recording took %v", took)

	if len(r.Chunks) != 12 {
		t.Fatalf("%d chunks, want 2 cameras × 2 streams × 3", len(r.Chunks))
	}
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(root, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 12 {
		t.Fatalf("%d files in the archive, want 12: %v", len(files), files)
	}

	// Record picks its start when it begins, and a busy machine takes a while to encode.
	wantStart := began.Add(-time.Hour).Truncate(10 * time.Second)
	if d := r.Chunks[0].Start.Sub(wantStart); d < -10*time.Second || d > 10*time.Second {
		t.Errorf("first chunk starts at %v, want about %v", r.Chunks[0].Start, wantStart)
	}
	hashes := map[[32]byte]string{}
	next := map[string]time.Time{}
	for i, c := range r.Chunks {
		checkChunk(t, r, c, time.UTC)
		if c.Duration != 10*time.Second {
			t.Errorf("%s: duration %v", c.Path, c.Duration)
		}
		if prev, ok := hashes[c.SHA256]; ok {
			t.Errorf("%s has the same bytes as %s", c.Path, prev)
		}
		hashes[c.SHA256] = c.Path
		key := c.Camera + " " + c.Stream
		if n, ok := next[key]; ok && !c.Start.Equal(n) {
			t.Errorf("%s starts at %v, not where the previous chunk ended (%v)", c.Path, c.Start, n)
		}
		next[key] = c.End()
		if i > 0 && c.Start.Before(r.Chunks[i-1].Start) {
			t.Errorf("%s is listed after the newer %s", c.Path, r.Chunks[i-1].Path)
		}
	}

	// Decoding is slow: check one chunk of each stream.
	for _, stream := range []string{"hi", "lo"} {
		for _, c := range r.Chunks {
			if c.Stream == stream {
				if n := Frames(t, r.Abs(c)); n != 250 {
					t.Errorf("%s: ffprobe decodes %d frames, want 250", c.Path, n)
				}
				title, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format_tags=title", "-of", "csv=p=0", r.Abs(c)).Output()
				if want := chunkTitle(c.Camera, c.Stream, c.Start); err != nil || strings.TrimSpace(string(title)) != want {
					t.Errorf("%s: title %q (%v), want %q", c.Path, title, err, want)
				}
				break
			}
		}
	}

	// A second recording reuses the encoded chunks.
	began = time.Now()
	Record(t, t.TempDir(), RecorderOptions{})
	t.Logf("a second default recording took %v", time.Since(began))
}

func TestRecordLocalDateFolders(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	// 23:59:58 in Berlin on 21 November: the second chunk is in the next day's folder, and
	// both are an hour off the UTC folders.
	start := time.Date(2026, 11, 21, 22, 59, 58, 0, time.UTC)
	r := Record(t, t.TempDir(), RecorderOptions{
		Cameras:  []string{"3f2a9c1e-0b4d-4e6f-8a7b-1c2d3e4f5a6b"},
		Streams:  []string{"low_quality"},
		Chunk:    2 * time.Second,
		Start:    start,
		Chunks:   2,
		Location: berlin,
		Size:     "320x180",
	})
	want := []string{
		"low_quality/3f2a9c1e-0b4d-4e6f-8a7b-1c2d3e4f5a6b/2026/11/21/23/1795301998000_2000.mkv",
		"low_quality/3f2a9c1e-0b4d-4e6f-8a7b-1c2d3e4f5a6b/2026/11/22/00/1795302000000_2000.mkv",
	}
	if len(r.Chunks) != len(want) {
		t.Fatalf("%d chunks, want %d", len(r.Chunks), len(want))
	}
	for i, c := range r.Chunks {
		if c.Path != want[i] {
			t.Errorf("chunk %d is %s, want %s", i, c.Path, want[i])
		}
		checkChunk(t, r, c, berlin)
	}
	if n := Frames(t, r.Abs(r.Chunks[1])); n != 50 {
		t.Errorf("ffprobe decodes %d frames of a 2 s chunk, want 50", n)
	}
}

func TestStartWritingThenClose(t *testing.T) {
	const cam = "e0ab12340009"
	r := Record(t, t.TempDir(), RecorderOptions{
		Cameras: []string{cam},
		Streams: []string{"lo"},
		Chunk:   2 * time.Second,
		Chunks:  1,
		Size:    "320x180",
	})
	prev := r.Chunks[0]
	w := r.StartWriting(t, cam, "lo")
	if !w.Start.Equal(prev.End()) {
		t.Errorf("the next chunk starts at %v, want the end of the last one, %v", w.Start, prev.End())
	}
	wantOpen := filepath.ToSlash(filepath.Join(filepath.Dir(prev.Path), strconv.FormatInt(w.Start.UnixMilli(), 10)+".mkv"))
	if w.Path != wantOpen || r.Open == nil || r.Open.Path != wantOpen {
		t.Errorf("open chunk at %s (Open %+v), want %s", w.Path, r.Open, wantOpen)
	}
	abs := filepath.Join(r.Root, filepath.FromSlash(w.Path))
	fi, err := os.Stat(abs)
	if err != nil {
		t.Fatal(err)
	}
	first := fi.Size()
	if first == 0 || first >= prev.Size {
		t.Errorf("a chunk being written holds %d bytes, a closed one %d", first, prev.Size)
	}
	if d := time.Since(fi.ModTime()); d > 5*time.Second || d < -time.Second {
		t.Errorf("a chunk being written was modified %v ago", d)
	}
	if n := Frames(t, abs); n >= prev.Frames {
		t.Errorf("ffprobe decodes %d frames of a chunk being written, a whole one has %d", n, prev.Frames)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		fi, err = os.Stat(abs)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > first {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a chunk being written stays at %d bytes", first)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if fi.Size() >= prev.Size || w.Written() < fi.Size() {
		t.Errorf("a chunk being written holds %d bytes (written %d), a whole one %d", fi.Size(), w.Written(), prev.Size)
	}

	c := w.Close(t)
	if _, err := os.Stat(abs); !os.IsNotExist(err) {
		t.Errorf("%s is still there after Close: %v", w.Path, err)
	}
	wantPath := strings.TrimSuffix(wantOpen, ".mkv") + "_2000.mkv"
	if c.Path != wantPath || !c.Start.Equal(w.Start) || c.Duration != 2*time.Second {
		t.Errorf("closed chunk %+v, want %s", c, wantPath)
	}
	checkChunk(t, r, c, time.UTC)
	if c.SHA256 == prev.SHA256 {
		t.Errorf("two chunks have the same bytes")
	}
	if n := Frames(t, r.Abs(c)); n != 50 {
		t.Errorf("ffprobe decodes %d frames of the closed chunk, want 50", n)
	}
	if len(r.Chunks) != 2 || r.Chunks[1] != c || r.Open != nil {
		t.Errorf("after Close: chunks %v, open %v", r.Chunks, r.Open)
	}

	// The next one follows, and a chunk left open when the test ends is no trouble.
	if w2 := r.StartWriting(t, cam, "lo"); !w2.Start.Equal(c.End()) {
		t.Errorf("the chunk after starts at %v, want %v", w2.Start, c.End())
	}
}

func TestStartWritingWithoutClosedChunks(t *testing.T) {
	start := time.Now().Add(-time.Minute).Truncate(time.Second)
	r := Record(t, t.TempDir(), RecorderOptions{Chunks: -1, Start: start, Chunk: 2 * time.Second, Size: "320x180"})
	if len(r.Chunks) != 0 {
		t.Fatalf("%d chunks, want none", len(r.Chunks))
	}
	w := r.StartWriting(t, "e0ab12340001", "hi_quality")
	if !w.Start.Equal(start) || w.Stream != "hi" {
		t.Errorf("first chunk %s starts at %v, want %v", w.Path, w.Start, start)
	}
	c := w.Close(t)
	checkChunk(t, r, c, time.UTC)
}
