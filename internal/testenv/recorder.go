package testenv

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// RecorderOptions describe the archive Record writes. The zero value gives two cameras, both
// streams, three closed 10-second chunks each, starting about an hour ago.
type RecorderOptions struct {
	// Cameras are the camera ids, which name the camera folders (e.g. "e0ab12340001");
	// default two cameras.
	Cameras []string
	// Streams are "hi_quality" and/or "low_quality" ("hi" and "lo" work too); default both.
	Streams []string
	// Chunk is the length of the video in each chunk, in whole milliseconds; default 10 s.
	Chunk time.Duration
	// Start is the start of the first chunk, cut to the millisecond as in the file names;
	// default an hour ago, truncated to the chunk length.
	Start time.Time
	// Chunks is the number of closed chunks per camera and stream; default 3, negative for
	// none (an archive whose first chunk is still being written, see StartWriting).
	Chunks int
	// Location is the recording server's time zone, which names the date folders; default
	// time.UTC.
	Location *time.Location
	// Size is the picture size of every stream, as "WxH" with even numbers; default
	// "1280x720" for hi and "640x360" for lo. Smaller pictures encode faster.
	Size string
}

// Recording is an archive written by Record, as a VMS recorder leaves it. It is not safe for
// concurrent use.
type Recording struct {
	// Root is the archive folder.
	Root string
	// Chunks are the closed chunks, oldest first (ordered as footage.Chunk.Before orders
	// them), including those closed by OpenChunk.Close.
	Chunks []RecordedChunk
	// Open describes the chunk StartWriting began most recently, while it is being written;
	// its Size, SHA256 and Frames are unknown (zero) until it is closed.
	Open *RecordedChunk

	ffmpeg, ffprobe string
	chunk           time.Duration
	start           time.Time
	loc             *time.Location
	sizes           map[string]string
	open            map[[2]string]*OpenChunk
}

// RecordedChunk is one chunk file of a Recording.
type RecordedChunk struct {
	// Path is relative to the Recording's Root, slash-separated, in the Nx Witness layout.
	Path   string
	Camera string
	// Stream is "hi" or "lo".
	Stream   string
	Start    time.Time
	Duration time.Duration
	Size     int64
	SHA256   [32]byte
	// Frames is the number of video frames a decoder reads from the file.
	Frames int
}

// End is when the chunk's video ends.
func (c RecordedChunk) End() time.Time { return c.Start.Add(c.Duration) }

// Abs is where chunk c is on disk.
func (r *Recording) Abs(c RecordedChunk) string {
	return filepath.Join(r.Root, filepath.FromSlash(c.Path))
}

// defaultCameras are recorded when RecorderOptions.Cameras is empty.
var defaultCameras = []string{"e0ab12340001", "e0ab12340002"}

// nxFolders are the Nx Witness folders of the streams.
var nxFolders = map[string]string{"hi": "hi_quality", "lo": "low_quality"}

var defaultSizes = map[string]string{"hi": "1280x720", "lo": "640x360"}

// Record writes an archive of real H.264 footage in Matroska files under root, in the
// Nx Witness / DW Spectrum layout
//
//	{hi_quality,low_quality}/<camera>/YYYY/MM/DD/HH/<start unix ms>_<duration ms>.mkv
//
// with the date folders in opts.Location and each file's modification time at the end of
// its chunk, as a recorder leaves a closed chunk. Chunks of the same size and length hold
// the same video, but each carries its camera, stream and start as its title, so no two
// chunks have the same bytes and a mix-up shows in the hashes.
//
// When ffmpeg or ffprobe is missing, the test is Unavailable.
func Record(t T, root string, opts RecorderOptions) *Recording {
	t.Helper()
	r := &Recording{
		Root:    root,
		ffmpeg:  Binary(t, "ffmpeg"),
		ffprobe: Binary(t, "ffprobe"),
		chunk:   opts.Chunk,
		loc:     opts.Location,
		sizes:   map[string]string{},
		open:    map[[2]string]*OpenChunk{},
	}
	if r.chunk == 0 {
		r.chunk = 10 * time.Second
	}
	if r.chunk <= 0 || r.chunk%time.Millisecond != 0 {
		t.Fatalf("record: chunk length %v is not a positive number of milliseconds", r.chunk)
	}
	if r.loc == nil {
		r.loc = time.UTC
	}
	r.start = opts.Start
	if r.start.IsZero() {
		r.start = time.Now().Add(-time.Hour).Truncate(r.chunk)
	}
	r.start = r.start.Truncate(time.Millisecond).UTC()
	for s, size := range defaultSizes {
		if opts.Size != "" {
			size = opts.Size
		}
		if !sizePattern.MatchString(size) {
			t.Fatalf("record: picture size %q is not WxH", size)
		}
		r.sizes[s] = size
	}
	cameras := opts.Cameras
	if len(cameras) == 0 {
		cameras = defaultCameras
	}
	for _, c := range cameras {
		if err := checkCamera(c); err != nil {
			t.Fatalf("record: %v", err)
		}
	}
	var streams []string
	for _, s := range opts.Streams {
		st, ok := parseStream(s)
		if !ok {
			t.Fatalf("record: stream %q: use hi_quality or low_quality", s)
		}
		streams = append(streams, st)
	}
	if len(streams) == 0 {
		streams = []string{"hi", "lo"}
	}
	n := opts.Chunks
	if n == 0 {
		n = 3
	}

	encs := map[string]*encoding{}
	if n > 0 {
		var wg sync.WaitGroup
		for _, s := range streams {
			if encs[s] != nil {
				continue
			}
			e := cachedEncoding(encodingKey{size: r.sizes[s], length: r.chunk})
			encs[s] = e
			wg.Add(1)
			go func() { defer wg.Done(); e.make(r.ffmpeg, r.ffprobe) }()
		}
		wg.Wait()
		for _, e := range encs {
			if e.err != nil {
				t.Fatalf("record: %v", e.err)
			}
		}
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatalf("record: %v", err)
	}
	for _, cam := range cameras {
		for _, s := range streams {
			for i := range max(n, 0) {
				c, err := r.write(encs[s], cam, s, r.start.Add(time.Duration(i)*r.chunk))
				if err != nil {
					t.Fatalf("record: %v", err)
				}
				r.Chunks = append(r.Chunks, c)
			}
		}
	}
	r.sortChunks()
	return r
}

var sizePattern = regexp.MustCompile(`^[1-9][0-9]*x[1-9][0-9]*$`)

func parseStream(s string) (string, bool) {
	switch s {
	case "hi", "hi_quality":
		return "hi", true
	case "lo", "low_quality":
		return "lo", true
	}
	return "", false
}

func checkCamera(c string) error {
	if c == "" || c == "." || c == ".." || strings.ContainsAny(c, `/\`+"\x00") {
		return fmt.Errorf("camera id %q cannot name a folder", c)
	}
	if len(chunkTitle(c, "hi", time.Time{})) > len(titlePlaceholder) {
		return fmt.Errorf("camera id %q is longer than a chunk's title can hold", c)
	}
	return nil
}

// nxPath is where the Nx layout keeps a chunk; a duration of 0 gives the name of a chunk
// still being recorded, whose length the recorder does not know yet.
func nxPath(camera, stream string, start time.Time, d time.Duration, loc *time.Location) string {
	name := strconv.FormatInt(start.UnixMilli(), 10)
	if d > 0 {
		name += "_" + strconv.FormatInt(d.Milliseconds(), 10)
	}
	return path.Join(nxFolders[stream], camera, start.In(loc).Format("2006/01/02/15"), name+".mkv")
}

func (r *Recording) write(e *encoding, camera, stream string, start time.Time) (RecordedChunk, error) {
	c := RecordedChunk{
		Path:     nxPath(camera, stream, start, r.chunk, r.loc),
		Camera:   camera,
		Stream:   stream,
		Start:    start,
		Duration: r.chunk,
		Frames:   e.frames,
	}
	data := e.chunk(chunkTitle(camera, stream, start))
	abs := r.Abs(c)
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return c, err
	}
	if err := os.WriteFile(abs, data, 0o644); err != nil {
		return c, err
	}
	if err := os.Chtimes(abs, c.End(), c.End()); err != nil {
		return c, err
	}
	c.Size, c.SHA256 = int64(len(data)), sha256.Sum256(data)
	return c, nil
}

func (r *Recording) sortChunks() {
	slices.SortFunc(r.Chunks, func(a, b RecordedChunk) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return cmpStrings(a.Camera, b.Camera, a.Stream, b.Stream, a.Path, b.Path)
	})
}

func cmpStrings(pairs ...string) int {
	for i := 0; i+1 < len(pairs); i += 2 {
		if c := strings.Compare(pairs[i], pairs[i+1]); c != 0 {
			return c
		}
	}
	return 0
}

// StartWriting begins the next chunk of camera and stream ("hi"/"lo" or the folder names),
// right after its newest closed chunk (for a camera without chunks, after the newest chunk
// of the recording), and keeps writing it in the background until Close. Like an Nx
// recorder, it writes the chunk under the name <start ms>.mkv, without a duration, and its
// modification time stays current; what it holds is the beginning of a real Matroska file,
// growing at about the pace of real time, never complete before Close. The writing stops
// when the test ends, leaving the file as a recorder that crashed would.
func (r *Recording) StartWriting(t T, camera, stream string) *OpenChunk {
	t.Helper()
	s, ok := parseStream(stream)
	if !ok {
		t.Fatalf("start writing: stream %q: use hi or lo", stream)
	}
	if err := checkCamera(camera); err != nil {
		t.Fatalf("start writing: %v", err)
	}
	key := [2]string{camera, s}
	if r.open[key] != nil {
		t.Fatalf("start writing: %s %s already has a chunk being written", camera, s)
	}
	e := cachedEncoding(encodingKey{size: r.sizes[s], length: r.chunk})
	e.make(r.ffmpeg, r.ffprobe)
	if e.err != nil {
		t.Fatalf("start writing: %v", e.err)
	}
	start, found := r.start, false
	for _, c := range r.Chunks {
		if c.Camera == camera && c.Stream == s {
			if !found || c.End().After(start) {
				start = c.End()
			}
			found = true
		}
	}
	if !found {
		for _, c := range r.Chunks {
			if c.End().After(start) {
				start = c.End()
			}
		}
	}
	o := &OpenChunk{
		Path:   nxPath(camera, s, start, 0, r.loc),
		Camera: camera,
		Stream: s,
		Start:  start,
		rec:    r,
		enc:    e,
		data:   e.chunk(chunkTitle(camera, s, start)),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	o.abs = filepath.Join(r.Root, filepath.FromSlash(o.Path))
	if err := os.MkdirAll(filepath.Dir(o.abs), 0o755); err != nil {
		t.Fatalf("start writing: %v", err)
	}
	f, err := os.OpenFile(o.abs, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatalf("start writing: %v", err)
	}
	o.f = f
	// A recorder writes the Matroska header and the first frames at once; the rest follows.
	o.head, o.hold = len(o.data)/8, len(o.data)/8
	if err := o.writeTo(o.head); err != nil {
		f.Close()
		t.Fatalf("start writing: %v", err)
	}
	r.open[key] = o
	r.Open = &RecordedChunk{Path: o.Path, Camera: camera, Stream: s, Start: start}
	t.Cleanup(func() { o.halt(); o.f.Close() })
	go o.grow(time.Now())
	return o
}

// OpenChunk is a chunk a Recording is writing; see StartWriting.
type OpenChunk struct {
	// Path is the chunk's name while it is written, relative to the Root:
	// .../<start ms>.mkv.
	Path   string
	Camera string
	// Stream is "hi" or "lo".
	Stream string
	Start  time.Time

	rec        *Recording
	enc        *encoding
	data       []byte // the whole chunk, as it will be once closed
	abs        string
	f          *os.File
	head, hold int
	stop, done chan struct{}
	haltOnce   sync.Once
	closed     bool

	mu      sync.Mutex
	written int
	err     error
}

// growTick is how often an open chunk is written to; a recorder writes several times a
// second, far more often than a backup waits for a chunk to settle.
const growTick = 100 * time.Millisecond

func (o *OpenChunk) grow(began time.Time) {
	defer close(o.done)
	tick := time.NewTicker(growTick)
	defer tick.Stop()
	body := len(o.data) - o.head - o.hold
	for {
		select {
		case <-o.stop:
			return
		case now := <-tick.C:
			target := o.head + int(float64(body)*min(1, float64(now.Sub(began))/float64(o.rec.chunk)))
			var err error
			if o.Written() < int64(target) {
				err = o.writeTo(target)
			} else {
				// Past the chunk's length a real recorder would have closed it; this one
				// keeps looking busy until the test closes it.
				err = os.Chtimes(o.abs, now, now)
			}
			if err != nil {
				o.mu.Lock()
				o.err = err
				o.mu.Unlock()
				return
			}
		}
	}
}

func (o *OpenChunk) writeTo(n int) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if n <= o.written {
		return nil
	}
	k, err := o.f.Write(o.data[o.written:n])
	o.written += k
	return err
}

// Written is how many bytes of the chunk are in its file so far.
func (o *OpenChunk) Written() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return int64(o.written)
}

func (o *OpenChunk) halt() {
	o.haltOnce.Do(func() { close(o.stop); <-o.done })
}

// Close finishes the chunk as the recorder does when it closes one: it writes the rest of
// the file, closes it, sets its modification time to the end of the chunk and renames it
// from <start ms>.mkv to <start ms>_<duration ms>.mkv. Tests that a chunk being recorded is
// not copied until it is closed rely on this: until Close the file is incomplete, keeps
// changing and has no duration in its name; after it, it is whole and as Record writes them.
// The chunk joins the Recording's Chunks.
func (o *OpenChunk) Close(t T) RecordedChunk {
	t.Helper()
	if o.closed {
		t.Fatalf("close chunk %s: already closed", o.Path)
	}
	o.closed = true
	o.halt()
	r := o.rec
	delete(r.open, [2]string{o.Camera, o.Stream})
	if r.Open != nil && r.Open.Path == o.Path {
		r.Open = nil
	}
	o.mu.Lock()
	err := o.err
	o.mu.Unlock()
	if err == nil {
		err = o.writeTo(len(o.data))
	}
	if cerr := o.f.Close(); err == nil {
		err = cerr
	}
	c := RecordedChunk{
		Path:     nxPath(o.Camera, o.Stream, o.Start, r.chunk, r.loc),
		Camera:   o.Camera,
		Stream:   o.Stream,
		Start:    o.Start,
		Duration: r.chunk,
		Size:     int64(len(o.data)),
		SHA256:   sha256.Sum256(o.data),
		Frames:   o.enc.frames,
	}
	if err == nil {
		err = os.Chtimes(o.abs, c.End(), c.End())
	}
	if err == nil {
		err = os.Rename(o.abs, r.Abs(c))
	}
	if err != nil {
		t.Fatalf("close chunk %s: %v", o.Path, err)
	}
	r.Chunks = append(r.Chunks, c)
	r.sortChunks()
	return c
}

// Frames is the number of video frames ffprobe decodes from the file at path. A truncated
// chunk still passes ffprobe, so tests prove footage plays by comparing frame counts.
func Frames(t T, path string) int {
	t.Helper()
	n, err := countFrames(Binary(t, "ffprobe"), path)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return n
}

func countFrames(ffprobe, path string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ffprobe, "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("count frames of %s: %v: %s", path, err, strings.TrimSpace(stderr.String()))
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	n, err := strconv.Atoi(strings.TrimRight(strings.TrimSpace(line), ","))
	if err != nil {
		return 0, fmt.Errorf("count frames of %s: ffprobe said %q", path, out)
	}
	return n, nil
}

// titlePlaceholder is the title every encoding is made with. Each chunk's own title is
// written over it, padded with zero bytes, which Matroska allows at the end of a string, so
// one ffmpeg run serves every chunk of a size and length.
var titlePlaceholder = []byte("vigil-recorder-title" + strings.Repeat("#", 108))

func chunkTitle(camera, stream string, start time.Time) string {
	return camera + " " + stream + " " + start.UTC().Format("2006-01-02T15:04:05.000Z")
}

type encodingKey struct {
	size   string
	length time.Duration
}

// encoding is one chunk of video as ffmpeg encoded it, kept for the life of the process
// because encoding is the slow part of recording.
type encoding struct {
	key    encodingKey
	once   sync.Once
	data   []byte
	title  int // offset of titlePlaceholder in data
	frames int
	err    error
}

var encodings = struct {
	sync.Mutex
	m map[encodingKey]*encoding
}{m: map[encodingKey]*encoding{}}

func cachedEncoding(k encodingKey) *encoding {
	encodings.Lock()
	defer encodings.Unlock()
	e := encodings.m[k]
	if e == nil {
		e = &encoding{key: k}
		encodings.m[k] = e
	}
	return e
}

// make encodes the chunk once; e.err tells how it went.
func (e *encoding) make(ffmpeg, ffprobe string) {
	e.once.Do(func() { e.err = e.encode(ffmpeg, ffprobe) })
}

func (e *encoding) encode(ffmpeg, ffprobe string) error {
	dir, err := os.MkdirTemp("", "vigil-recorder-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "chunk.mkv")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	args := []string{"-nostdin", "-v", "error",
		"-f", "lavfi", "-i", "testsrc2=size=" + e.key.size + ":rate=25",
		"-t", strconv.FormatFloat(e.key.length.Seconds(), 'f', 3, 64),
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-pix_fmt", "yuv420p",
		"-metadata", "title=" + string(titlePlaceholder),
		// CRC-32 elements would cover the title, which is overwritten per chunk; bitexact
		// leaves out the random segment id and the version, so runs give the same bytes.
		"-write_crc32", "0", "-fflags", "+bitexact",
		"-y", out}
	if b, err := exec.CommandContext(ctx, ffmpeg, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("encode a %v %s chunk: %s %s: %v\n%s", e.key.length, e.key.size, ffmpeg, strings.Join(args, " "), err, b)
	}
	if e.data, err = os.ReadFile(out); err != nil {
		return err
	}
	e.title = bytes.Index(e.data, titlePlaceholder)
	if e.title < 0 || bytes.LastIndex(e.data, titlePlaceholder) != e.title {
		return errors.New("encode a chunk: ffmpeg did not write the title exactly once")
	}
	e.frames, err = countFrames(ffprobe, out)
	return err
}

// chunk returns a copy of the encoded chunk titled title.
func (e *encoding) chunk(title string) []byte {
	b := slices.Clone(e.data)
	field := b[e.title : e.title+len(titlePlaceholder)]
	clear(field)
	copy(field, title)
	return b
}
