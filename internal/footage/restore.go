package footage

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vigil-backup/vigil/internal/storage"
)

// ErrNoFootage means the storage has no footage of the camera in the range asked for.
var ErrNoFootage = errors.New("no footage")

// RestoreOptions say which footage to restore, and where to.
type RestoreOptions struct {
	Camera  string
	Streams []Stream // nil: both
	// Since and Until bound the footage wanted, [Since, Until); a zero Since is the
	// beginning, a zero Until the end.
	Since, Until time.Time
	// Target is the local folder the chunks are written into, in the recorder's layout, so
	// that the VMS can import them. It is created when missing.
	Target   string
	Parallel int // chunks restored at once; default 4
	// Progress is called from one goroutine at a time; a "copy" is one chunk restored.
	Progress func(Progress)
}

// RestoreResult is what Restore did.
type RestoreResult struct {
	Chunks   int   // chunks in the range
	Restored int   // written into the target
	Skipped  int   // in the target already, byte for byte
	Bytes    int64 // written
	// From and To span the footage of the chunks in the range: the start of the first and
	// the end of the last, which may lie outside [Since, Until).
	From, To time.Time
}

// maxChunkLength bounds how long before Since a chunk may start and still be found: the
// index is kept by the hour a chunk starts in, and reading every earlier hour would make a
// restore of one hour from a year of footage read a year of index.
const maxChunkLength = 24 * time.Hour

// Restore copies every chunk of a camera whose footage overlaps [Since, Until) from a
// server's footage on a storage into a local folder, at the path the index records for
// it. A chunk overlaps when it starts before Until and ends after Since; one of unknown
// length when it starts within the range.
//
// Each file appears whole or not at all (written under a temporary name, flushed,
// renamed), only after its size and SHA-256 match the index, with its modification time
// at the chunk's end, as a recorder leaves it. A file already in the target with the same
// content is kept; one with other content is never replaced, and stops the restore. The
// index is not trusted: a path that would leave the target stops the restore before
// anything is written. After the first failure no new chunk is begun; the files already
// restored are complete, and restoring again skips them.
func Restore(ctx context.Context, s storage.Storage, serverID string, opts RestoreOptions) (RestoreResult, error) {
	switch {
	case opts.Camera == "":
		return RestoreResult{}, errors.New("restore footage: no camera given")
	case storage.ValidName(opts.Camera) != nil || strings.Contains(opts.Camera, "/"):
		return RestoreResult{}, fmt.Errorf("restore footage: %q is not a camera id", opts.Camera)
	case opts.Target == "":
		return RestoreResult{}, errors.New("restore footage: no target folder given")
	case !opts.Since.IsZero() && !opts.Until.IsZero() && !opts.Until.After(opts.Since):
		return RestoreResult{}, fmt.Errorf("restore footage: the range is empty: it ends (%s) no later than it starts (%s)", when(opts.Until), when(opts.Since))
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 4
	}
	if opts.Streams == nil {
		opts.Streams = []Stream{High, Low}
	}
	work, err := selectRestore(ctx, s, serverID, opts)
	if err != nil {
		return RestoreResult{}, err
	}
	for _, r := range work {
		if err := validRecordPath(r.Path); err != nil || !filepath.IsLocal(filepath.FromSlash(r.Path)) {
			return RestoreResult{}, fmt.Errorf("restore footage: the index lists %q, which is not a path inside the target folder; nothing was restored from this index", r.Path)
		}
	}
	if err := os.MkdirAll(opts.Target, 0o755); err != nil {
		return RestoreResult{}, fmt.Errorf("restore footage: %w", err)
	}
	// Every file operation goes through the root, which refuses to leave the target, also
	// by a symbolic link found there.
	root, err := os.OpenRoot(opts.Target)
	if err != nil {
		return RestoreResult{}, fmt.Errorf("restore footage: %w", err)
	}
	defer root.Close()

	res := RestoreResult{Chunks: len(work)}
	rs := &restorer{s: s, serverRoot: ServerRoot(serverID), root: root, opts: opts, res: &res}
	for i, r := range work {
		rs.progress.Copies++
		rs.progress.Bytes += r.Size
		if i == 0 || r.Start.Before(res.From) {
			res.From = r.Start
		}
		if end := recordEnd(r); end.After(res.To) {
			res.To = end
		}
	}
	rs.report()
	err = rs.restoreAll(ctx, work)
	return res, err
}

// selectRestore reads the index of the camera's streams around the range and returns the
// chunks that overlap it, oldest first.
func selectRestore(ctx context.Context, s storage.Storage, serverID string, opts RestoreOptions) ([]Record, error) {
	var work []Record
	seen := map[string]bool{}
	series := map[Key][]indexHour{}
	for _, st := range opts.Streams {
		k := Key{Camera: opts.Camera, Stream: st}
		hours, err := seriesHours(ctx, s, serverID, k)
		if err != nil {
			return nil, fmt.Errorf("restore footage: %w", err)
		}
		if len(hours) == 0 {
			continue
		}
		series[k] = hours
		var window []indexHour
		for _, h := range hours {
			if h.hour.Add(time.Hour).After(opts.Since.Add(-maxChunkLength)) && (opts.Until.IsZero() || h.hour.Before(opts.Until)) {
				window = append(window, h)
			}
		}
		recs, err := readHours(ctx, s, window)
		if err != nil {
			return nil, fmt.Errorf("restore footage: %w", err)
		}
		for _, r := range recs {
			if overlaps(r, opts.Since, opts.Until) && !seen[r.Path] {
				seen[r.Path] = true
				work = append(work, r)
			}
		}
	}
	if len(series) == 0 {
		var cams []Key
		if sts, err := ReadStatuses(ctx, s, serverID); err == nil {
			for _, st := range sts {
				cams = append(cams, Key{Camera: st.Camera, Stream: st.Stream})
			}
		}
		return nil, fmt.Errorf("restore footage: %w of camera %s from server %s on the storage (cameras there: %s)",
			ErrNoFootage, opts.Camera, serverID, cameraList(cams))
	}
	if len(work) == 0 {
		return nil, fmt.Errorf("restore footage: %w of camera %s %s; %s",
			ErrNoFootage, opts.Camera, rangeText(opts.Since, opts.Until), footageRange(ctx, s, series))
	}
	slices.SortFunc(work, func(a, b Record) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return strings.Compare(a.Path, b.Path)
	})
	return work, nil
}

// indexHour is one hour file of a series' index.
type indexHour struct {
	name string
	hour time.Time
}

// seriesHours lists the hour files of a series' index, oldest first.
func seriesHours(ctx context.Context, s storage.Storage, serverID string, k Key) ([]indexHour, error) {
	dir := seriesDir(serverID, k)
	var hours []indexHour
	err := s.List(ctx, dir, func(fi storage.FileInfo) error {
		rel := strings.TrimSuffix(strings.TrimPrefix(fi.Name, dir+"/"), ".json")
		if h, err := time.Parse("2006/01/02/15", rel); err == nil && strings.HasSuffix(fi.Name, ".json") {
			hours = append(hours, indexHour{name: fi.Name, hour: h})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list the index of %s: %w", k, err)
	}
	slices.SortFunc(hours, func(a, b indexHour) int { return a.hour.Compare(b.hour) })
	return hours, nil
}

func readHours(ctx context.Context, s storage.Storage, hours []indexHour) ([]Record, error) {
	var out []Record
	for _, h := range hours {
		var recs []Record
		if err := readJSON(ctx, s, h.name, &recs); err != nil {
			return nil, err
		}
		out = append(out, recs...)
	}
	return out, nil
}

// footageRange says what footage the series have, from the first and last hour of each
// index, for an operator who asked for a range with none.
func footageRange(ctx context.Context, s storage.Storage, series map[Key][]indexHour) string {
	var first, last time.Time
	for _, hours := range series {
		recs, err := readHours(ctx, s, []indexHour{hours[0], hours[len(hours)-1]})
		if err != nil {
			return "its index cannot be read: " + err.Error()
		}
		for _, r := range recs {
			if first.IsZero() || r.Start.Before(first) {
				first = r.Start
			}
			if end := recordEnd(r); end.After(last) {
				last = end
			}
		}
	}
	if first.IsZero() {
		return "its index lists no chunk"
	}
	return fmt.Sprintf("the storage has footage of it from %s to %s", when(first), when(last))
}

// overlaps reports whether a chunk's footage overlaps [since, until); zero bounds are open.
func overlaps(r Record, since, until time.Time) bool {
	startsBeforeUntil := until.IsZero() || r.Start.Before(until)
	if r.DurationMS <= 0 {
		return startsBeforeUntil && !r.Start.Before(since)
	}
	return startsBeforeUntil && recordEnd(r).After(since)
}

// recordEnd is when a chunk's footage ends, or its start when its length is unknown.
func recordEnd(r Record) time.Time {
	return r.Start.Add(time.Duration(max(r.DurationMS, 0)) * time.Millisecond)
}

// when formats a time for an operator's message: local, with its offset.
func when(t time.Time) string { return t.Local().Format(time.RFC3339) }

// rangeText says [since, until) in words; zero bounds are open.
func rangeText(since, until time.Time) string {
	switch {
	case since.IsZero() && until.IsZero():
		return "at all"
	case since.IsZero():
		return "before " + when(until)
	case until.IsZero():
		return "from " + when(since) + " on"
	}
	return "from " + when(since) + " to " + when(until)
}

type restorer struct {
	s          storage.Storage
	serverRoot string
	root       *os.Root
	opts       RestoreOptions

	mu       sync.Mutex // guards what follows
	res      *RestoreResult
	progress Progress
	err      error
}

// restoreAll restores the chunks, Parallel at a time, and stops at the first failure.
func (rs *restorer) restoreAll(ctx context.Context, work []Record) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	forEach(ctx, rs.opts.Parallel, work, func(r Record) {
		written, err := rs.restoreOne(ctx, r)
		rs.mu.Lock()
		switch {
		case err != nil:
			if rs.err == nil && ctx.Err() == nil {
				rs.err = err
				cancel()
			}
		case written:
			rs.res.Restored++
			rs.res.Bytes += r.Size
		default:
			rs.res.Skipped++
		}
		if err == nil {
			rs.progress.CopiesDone++
			rs.progress.BytesDone += r.Size
			rs.progress.Last = r.Path
			rs.report()
		}
		rs.mu.Unlock()
	})
	if rs.err != nil {
		return fmt.Errorf("restore footage: %w", rs.err)
	}
	return ctx.Err()
}

// restoreOne writes one chunk into the target; written is false when an identical file
// was there already.
func (rs *restorer) restoreOne(ctx context.Context, r Record) (written bool, err error) {
	rel := filepath.FromSlash(r.Path)
	if same, err := rs.existing(rel, r); err != nil || same {
		return false, err
	}
	dir := filepath.FromSlash(path.Dir(r.Path))
	if err := rs.root.MkdirAll(dir, 0o755); err != nil {
		return false, fmt.Errorf("restore %s: %w", r.Path, err)
	}
	tmp := filepath.Join(dir, storage.TempPrefix+"restore-"+rand.Text())
	f, err := rs.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return false, fmt.Errorf("restore %s: %w", r.Path, err)
	}
	renamed := false
	defer func() {
		if !renamed {
			f.Close()
			_ = rs.root.Remove(tmp)
		}
	}()
	if err := rs.download(ctx, r, f); err != nil {
		return false, fmt.Errorf("restore %s: %w", r.Path, err)
	}
	if err := f.Sync(); err != nil {
		return false, fmt.Errorf("restore %s: %w", r.Path, err)
	}
	if err := f.Close(); err != nil {
		return false, fmt.Errorf("restore %s: %w", r.Path, err)
	}
	// A VMS that imports footage may take a file's time for when its footage ends.
	end := recordEnd(r)
	if err := rs.root.Chtimes(tmp, end, end); err != nil {
		return false, fmt.Errorf("restore %s: %w", r.Path, err)
	}
	// Rename replaces silently: look again, in case a file appeared meanwhile.
	if same, err := rs.existing(rel, r); err != nil || same {
		return false, err
	}
	if err := rs.root.Rename(tmp, rel); err != nil {
		return false, fmt.Errorf("restore %s: %w", r.Path, err)
	}
	renamed = true
	if err := syncDir(rs.root, dir); err != nil {
		return true, fmt.Errorf("restore %s: %w", r.Path, err)
	}
	return true, nil
}

// existing reports whether the target holds the chunk already, byte for byte. A file with
// other content there is an error: it may be footage the operator needs.
func (rs *restorer) existing(rel string, r Record) (same bool, err error) {
	fi, err := rs.root.Lstat(rel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("restore %s: %w", r.Path, err)
	case !fi.Mode().IsRegular():
		return false, fmt.Errorf("restore %s: %s is in the target folder and is not a file", r.Path, rel)
	}
	conflict := fmt.Errorf("restore %s: %s is in the target folder with other content; move it away or restore into another folder", r.Path, rel)
	if fi.Size() != r.Size {
		return false, conflict
	}
	f, err := rs.root.Open(rel)
	if err != nil {
		return false, fmt.Errorf("restore %s: %w", r.Path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false, fmt.Errorf("restore %s: %w", r.Path, err)
	}
	if !strings.EqualFold(hex.EncodeToString(h.Sum(nil)), r.SHA256) {
		return false, conflict
	}
	return true, nil
}

// download copies the stored chunk into w and checks it against its record.
func (rs *restorer) download(ctx context.Context, r Record, w io.Writer) error {
	rc, err := rs.s.Open(ctx, rs.serverRoot+"/"+r.Path, 0, 0)
	if err != nil {
		return err
	}
	defer rc.Close()
	h := sha256.New()
	// One byte more than the record tells a longer object without reading all of it.
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(rc, max(r.Size, 0)+1))
	if err != nil {
		return err
	}
	return checkContent(n, h, r)
}

func checkContent(n int64, h hash.Hash, r Record) error {
	const damaged = "the backup of this chunk is damaged (vigil footage verify finds every such chunk)"
	if n != r.Size {
		return fmt.Errorf("the storage holds %s bytes, the index says %d: %s", sizeOf(n, r.Size), r.Size, damaged)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); !strings.EqualFold(sum, r.SHA256) {
		return fmt.Errorf("its SHA-256 is %s, the index says %s: %s", sum, r.SHA256, damaged)
	}
	return nil
}

func sizeOf(n, want int64) string {
	if n > want {
		return fmt.Sprintf("more than %d", want)
	}
	return fmt.Sprint(n)
}

// syncDir flushes a folder, so that a rename in it survives a power cut.
func syncDir(root *os.Root, dir string) error {
	d, err := root.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (rs *restorer) report() {
	if rs.opts.Progress != nil {
		rs.opts.Progress(rs.progress)
	}
}
