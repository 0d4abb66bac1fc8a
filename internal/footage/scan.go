package footage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
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
	var files []File
	var scan Scan
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p != root {
				return nil // removed by the recorder's retention while we walked
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		c, ok := opts.Layout.Parse(rel)
		if !ok {
			scan.Unmatched = append(scan.Unmatched, rel)
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		files = append(files, File{Chunk: c, Size: fi.Size(), ModTime: fi.ModTime()})
		return nil
	})
	if err != nil {
		return Scan{}, fmt.Errorf("scan archive %s: %w", root, err)
	}
	slices.SortFunc(files, func(a, b File) int {
		switch {
		case a.Before(b.Chunk):
			return -1
		case b.Before(a.Chunk):
			return 1
		}
		return 0
	})
	// The newest chunk of each camera and stream is open while the recorder writes to it.
	newest := map[[2]string]int{}
	for i, f := range files {
		newest[[2]string{f.Camera, string(f.Stream)}] = i
	}
	now := opts.Now()
	for i, f := range files {
		if newest[[2]string{f.Camera, string(f.Stream)}] == i && now.Sub(f.ModTime) < opts.Settle {
			scan.Recording = append(scan.Recording, f)
			continue
		}
		scan.Closed = append(scan.Closed, f)
	}
	return scan, nil
}
