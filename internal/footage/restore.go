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
	return RestoreFrom(ctx, []Target{{Name: "the storage", Storage: s}}, serverID, opts)
}

// RestoreFrom is Restore from several storages read together, such as those a backup
// spread the chunks over: each chunk comes from the first storage whose index lists it,
// or, when its copy there cannot be read or does not match, from the next that lists it.
// A storage whose index cannot be read stops the restore before anything is written, since
// the chunks only it has would be missing.
func RestoreFrom(ctx context.Context, from []Target, serverID string, opts RestoreOptions) (RestoreResult, error) {
	switch {
	case len(from) == 0:
		return RestoreResult{}, errors.New("restore footage: no storage given")
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
	work, err := selectRestore(ctx, from, serverID, opts)
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
	rs := &restorer{serverRoot: ServerRoot(serverID), root: root, opts: opts, res: &res}
	for i, r := range work {
		rs.progress.Copies++
		rs.progress.Bytes += r.Size
		if i == 0 || r.Start.Before(res.From) {
			res.From = r.Start
		}
		if end := recordEnd(r.Record); end.After(res.To) {
			res.To = end
		}
	}
	rs.report()
	err = rs.restoreAll(ctx, work)
	return res, err
}

// restoreChunk is a chunk to restore: its record on the first storage that lists it, and
// its copies on each storage that does.
type restoreChunk struct {
	Record
	copies []chunkCopy
}

// chunkCopy is a chunk on one storage, as that storage's index lists it.
type chunkCopy struct {
	from Target
	rec  Record
}

// seriesOn is the hour files of the camera's series on one storage.
type seriesOn struct {
	s      storage.Storage
	series map[Key][]indexHour
}

// selectRestore reads the index of the camera's streams around the range on each storage
// and returns the chunks that overlap it, oldest first.
func selectRestore(ctx context.Context, from []Target, serverID string, opts RestoreOptions) ([]restoreChunk, error) {
	var work []restoreChunk
	at := map[string]int{} // in work, by path
	var found []seriesOn
	failed := func(t Target, err error) error {
		if len(from) > 1 {
			err = fmt.Errorf("%s: %w", t.Name, err)
		}
		return fmt.Errorf("restore footage: %w", err)
	}
	for _, t := range from {
		on := seriesOn{s: t.Storage, series: map[Key][]indexHour{}}
		for _, st := range opts.Streams {
			k := Key{Camera: opts.Camera, Stream: st}
			hours, err := seriesHours(ctx, t.Storage, serverID, k)
			if err != nil {
				return nil, failed(t, err)
			}
			if len(hours) == 0 {
				continue
			}
			on.series[k] = hours
			var window []indexHour
			for _, h := range hours {
				if h.hour.Add(time.Hour).After(opts.Since.Add(-maxChunkLength)) && (opts.Until.IsZero() || h.hour.Before(opts.Until)) {
					window = append(window, h)
				}
			}
			recs, err := readHours(ctx, t.Storage, window)
			if err != nil {
				return nil, failed(t, err)
			}
			for _, r := range recs {
				if !overlaps(r, opts.Since, opts.Until) {
					continue
				}
				if i, ok := at[r.Path]; ok {
					work[i].copies = append(work[i].copies, chunkCopy{t, r})
					continue
				}
				at[r.Path] = len(work)
				work = append(work, restoreChunk{Record: r, copies: []chunkCopy{{t, r}}})
			}
		}
		if len(on.series) > 0 {
			found = append(found, on)
		}
	}
	where := "the storage"
	if len(from) > 1 {
		where = "the storages"
	}
	if len(found) == 0 {
		var cams []Key
		for _, t := range from {
			if sts, err := ReadStatuses(ctx, t.Storage, serverID); err == nil {
				for _, st := range sts {
					cams = append(cams, Key{Camera: st.Camera, Stream: st.Stream})
				}
			}
		}
		return nil, fmt.Errorf("restore footage: %w of camera %s from server %s on %s (cameras there: %s)",
			ErrNoFootage, opts.Camera, serverID, where, cameraList(cams))
	}
	if len(work) == 0 {
		return nil, fmt.Errorf("restore footage: %w of camera %s %s; %s",
			ErrNoFootage, opts.Camera, rangeText(opts.Since, opts.Until), footageRange(ctx, found, where))
	}
	slices.SortFunc(work, func(a, b restoreChunk) int {
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

// footageRange says what footage the series on the storages (where) have, from the first
// and last hour of each index, for an operator who asked for a range with none.
func footageRange(ctx context.Context, found []seriesOn, where string) string {
	var first, last time.Time
	for _, on := range found {
		for _, hours := range on.series {
			recs, err := readHours(ctx, on.s, []indexHour{hours[0], hours[len(hours)-1]})
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
	}
	if first.IsZero() {
		return "its index lists no chunk"
	}
	has := "has"
	if len(found) > 1 {
		has = "have"
	}
	return fmt.Sprintf("%s %s footage of it from %s to %s", where, has, when(first), when(last))
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
	serverRoot string
	root       *os.Root
	opts       RestoreOptions

	mu       sync.Mutex // guards what follows
	res      *RestoreResult
	progress Progress
	err      error
}

// restoreAll restores the chunks, Parallel at a time, and stops at the first failure.
func (rs *restorer) restoreAll(ctx context.Context, work []restoreChunk) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	forEach(ctx, rs.opts.Parallel, work, func(r restoreChunk) {
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
func (rs *restorer) restoreOne(ctx context.Context, c restoreChunk) (written bool, err error) {
	r := c.Record
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
	if err := rs.download(ctx, c, f); err != nil {
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

// download copies the chunk into f from the first storage whose copy matches its record
// there, starting again with the next when one's does not.
func (rs *restorer) download(ctx context.Context, c restoreChunk, f *os.File) error {
	var errs []error
	for i, cp := range c.copies {
		if i > 0 {
			if err := f.Truncate(0); err != nil {
				return err
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return err
			}
		}
		err := rs.downloadFrom(ctx, cp.from.Storage, cp.rec, f)
		if err == nil || ctx.Err() != nil {
			return err
		}
		if len(c.copies) > 1 {
			err = fmt.Errorf("%s: %w", cp.from.Name, err)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// downloadFrom copies the chunk stored on s into w and checks it against its record.
func (rs *restorer) downloadFrom(ctx context.Context, s storage.Storage, r Record, w io.Writer) error {
	rc, err := s.Open(ctx, rs.serverRoot+"/"+r.Path, 0, 0)
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
