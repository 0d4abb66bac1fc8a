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
	// whose file changed within the settle time. They are copied once closed.
	Recording []File
	// Unmatched are files that fit no chunk of the layout. They are never copied or
	// deleted, only reported.
	Unmatched []string
}

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

// ScanArchive walks the archive at root.
func ScanArchive(ctx context.Context, root string, opts ScanOptions) (Scan, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Settle <= 0 {
		opts.Settle = DefaultSettle
	}
	var scan Scan
	now := opts.Now()
	old, next := loadScanCache(opts.Cache), &scanCache{Version: scanCacheVersion, Dirs: map[string]cachedDir{}}
	files := make([]File, 0, old.files())
	err := walkCached(root, old, next, now, func(e entry) error {
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
	})
	if err != nil {
		return Scan{}, fmt.Errorf("scan archive %s: %w", root, err)
	}
	files = sortFiles(files)
	// The newest chunk of each camera and stream is open while the recorder writes to it.
	// Writing to a file leaves its folder's time alone, so its size and time are read
	// afresh rather than from the cache.
	newest := map[[2]string]int{}
	for i, f := range files {
		newest[[2]string{f.Camera, string(f.Stream)}] = i
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
	// Only a scan that got through is kept; a cache that cannot be written costs speed only.
	_ = next.save(opts.Cache)
	scan.Closed = make([]File, 0, len(files))
	for i, f := range files {
		if newest[[2]string{f.Camera, string(f.Stream)}] == i && now.Sub(f.ModTime) < opts.Settle {
			scan.Recording = append(scan.Recording, f)
			continue
		}
		scan.Closed = append(scan.Closed, f)
	}
	scan.All = files
	return scan, nil
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
