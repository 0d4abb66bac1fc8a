package footage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// File is a chunk found in the recorder's archive.
type File struct {
	Chunk
	Size    int64
	ModTime time.Time
}

// end is when the file's footage ends: from its duration when the layout gives it, else
// from its modification time, which a recorder sets as it writes the last frame.
func (f File) end() time.Time {
	if f.Duration > 0 {
		return f.End()
	}
	if f.ModTime.After(f.Start) {
		return f.ModTime
	}
	return f.Start
}

// Scan is what a walk of the archive found.
type Scan struct {
	// All are the chunks, closed and still recording, oldest first.
	All []File
	// Closed are the chunks the recorder has finished, oldest first.
	Closed []File
	// Recording are chunks still being written: the newest chunk of a camera and stream
	// whose file changed within the settle time, unless the layout names it as closed
	// (NamedOnClose). They are copied once closed.
	Recording []File
	// Unmatched are files that fit no chunk of the layout. They are never copied or
	// deleted, only reported.
	Unmatched []string

	// blocks are the chunks of frozen folders, backed up to every storage already (see
	// scanCache); they are in none of the lists above.
	blocks []block
	// cache is what the scan saw, to be saved once the run knows what it can freeze.
	cache *scanCache
}

// block is a frozen folder's series.
type block struct {
	dir string
	frozenSeries
}

func (b block) newestStart() time.Time { return time.Unix(0, b.NewestStart) }

// ScanOptions say what to look for.
type ScanOptions struct {
	Layout Layout
	// Settle is how long a newest chunk must stay unchanged to count as closed (a camera
	// that stopped recording leaves its last chunk closed but never followed).
	Settle time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Cache is a file where the scan keeps the archive's folder listings between runs, so
	// that a re-run reads only the folders that changed; "" for none.
	Cache string
}

// DefaultSettle is longer than a recorder takes between two writes to an open chunk.
const DefaultSettle = 30 * time.Second

// ScanArchive walks the archive at root and lists every chunk; folders a backup run froze
// are listed again.
func ScanArchive(ctx context.Context, root string, opts ScanOptions) (Scan, error) {
	scan, err := scanArchive(ctx, root, opts, loadScanCache(opts.Cache), func(Key) bool { return false })
	if err != nil {
		return Scan{}, err
	}
	// A cache that cannot be written costs speed only.
	_ = scan.cache.save(opts.Cache)
	return scan, nil
}

// scanArchive walks the archive with the listings of old, taking the frozen folders whose
// series are all trusted as they are.
func scanArchive(ctx context.Context, root string, opts ScanOptions, old *scanCache, trusted func(Key) bool) (Scan, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Settle <= 0 {
		opts.Settle = DefaultSettle
	}
	scan := Scan{cache: newScanCache()}
	now := opts.Now()
	files := make([]File, 0, old.files())
	add := func(e entry) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		c, ok := opts.Layout.Parse(e.rel)
		if !ok {
			scan.Unmatched = append(scan.Unmatched, e.rel)
			return nil
		}
		files = append(files, File{Chunk: c, Size: e.size, ModTime: e.modTime})
		return nil
	}
	freeze := func(rel string, fss []frozenSeries) {
		for _, fs := range fss {
			scan.blocks = append(scan.blocks, block{dir: rel, frozenSeries: fs})
		}
	}
	if err := walkCached(root, old, scan.cache, now, trusted, add, freeze); err != nil {
		return Scan{}, fmt.Errorf("scan archive %s: %w", root, err)
	}
	// A frozen folder that holds the newest chunk of its series may hold the chunk being
	// recorded after all (a camera that paused longer than the settle time, then went on
	// writing it): when that chunk changed, the folder is listed again.
	for {
		thaw, err := scan.changedBlocks(root, files)
		if err != nil {
			return Scan{}, fmt.Errorf("scan archive %s: %w", root, err)
		}
		if len(thaw) == 0 {
			break
		}
		for dir := range thaw {
			scan.blocks = slices.DeleteFunc(scan.blocks, func(b block) bool { return b.dir == dir })
			if err := relist(root, dir, scan.cache, now, add); err != nil {
				return Scan{}, fmt.Errorf("scan archive %s: %w", root, err)
			}
		}
	}
	files = sortFiles(files)
	// The newest chunk of each camera and stream is open while the recorder writes to it.
	// Writing to a file leaves its folder's time alone, so its size and time are read
	// afresh rather than from the cache.
	newest := map[Key]int{}
	for i, f := range files {
		newest[KeyOf(f.Chunk)] = i
	}
	for _, b := range scan.blocks {
		if i, ok := newest[b.Key]; ok && b.newestStart().After(files[i].Start) {
			delete(newest, b.Key) // that block's chunk is newer, and closed
		}
	}
	for _, i := range newest {
		fi, err := os.Stat(filepath.Join(root, filepath.FromSlash(files[i].Path)))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return Scan{}, fmt.Errorf("scan archive %s: %w", root, err)
		}
		if err == nil {
			files[i].Size, files[i].ModTime = fi.Size(), fi.ModTime()
		}
	}
	scan.Closed = make([]File, 0, len(files))
	for i, f := range files {
		if j, ok := newest[KeyOf(f.Chunk)]; ok && j == i && now.Sub(f.ModTime) < opts.Settle && !closedByName(opts.Layout, f.Chunk) {
			scan.Recording = append(scan.Recording, f)
			continue
		}
		scan.Closed = append(scan.Closed, f)
	}
	scan.All = files
	return scan, nil
}

// changedBlocks returns the folders of blocks that hold the newest chunk of their series
// when that chunk is no longer as it was frozen.
func (s *Scan) changedBlocks(root string, files []File) (map[string]bool, error) {
	newest := map[Key]time.Time{}
	for _, f := range files {
		if k := KeyOf(f.Chunk); f.Start.After(newest[k]) {
			newest[k] = f.Start
		}
	}
	latest := map[Key]block{}
	for _, b := range s.blocks {
		if l, ok := latest[b.Key]; !ok || b.NewestStart > l.NewestStart {
			latest[b.Key] = b
		}
	}
	thaw := map[string]bool{}
	for k, b := range latest {
		if !b.newestStart().After(newest[k]) {
			continue
		}
		fi, err := os.Stat(filepath.Join(root, filepath.FromSlash(join(b.dir, b.Newest.Name))))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			thaw[b.dir] = true
		case err != nil:
			return nil, err
		case fi.Size() != b.Newest.Size || fi.ModTime().UnixNano() != b.Newest.ModTime:
			thaw[b.dir] = true
		}
	}
	return thaw, nil
}

// relist lists the folder rel again, from the disk.
func relist(root, rel string, next *scanCache, now time.Time, fn func(entry) error) error {
	dir := filepath.Join(root, filepath.FromSlash(rel))
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		delete(next.Dirs, rel)
		return nil
	}
	if err != nil {
		return err
	}
	cd, err := listDir(dir, fi.ModTime())
	if err != nil {
		return err
	}
	next.changed = true
	delete(next.Dirs, rel)
	if now.Sub(fi.ModTime()) >= quiet {
		next.Dirs[rel] = cd
	}
	for _, f := range cd.Files {
		if err := fn(entry{rel: join(rel, f.Name), size: f.Size, modTime: time.Unix(0, f.ModTime)}); err != nil {
			return err
		}
	}
	return nil
}

// sortFiles puts files oldest first. It sorts positions rather than the files themselves,
// which are large to move about: a re-run sorts every chunk of the archive.
func sortFiles(files []File) []File {
	order := make([]int32, len(files))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int {
		switch {
		case files[a].Before(files[b].Chunk):
			return -1
		case files[b].Before(files[a].Chunk):
			return 1
		}
		return 0
	})
	sorted := make([]File, len(files))
	for i, j := range order {
		sorted[i] = files[j]
	}
	return sorted
}
