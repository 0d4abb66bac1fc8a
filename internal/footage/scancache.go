package footage

import (
	"encoding/gob"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// A scan cache remembers the listing of each folder of the archive, with the folder's
// modification time. A folder's time changes whenever a file is added, removed or renamed
// in it, so a folder whose time is unchanged since it was listed holds the same files:
// a re-run lists and stats only the folders the recorder touched since, instead of every
// chunk of the archive. Sizes and times of files that are written in place (the chunk
// being recorded) are not covered by that; the scan stats the newest chunk of each series
// again every time.
//
// A folder whose chunks were all backed up to every storage of a run is kept "frozen": its
// listing is replaced by a summary per series, and a re-run takes its chunks as backed up
// without listing, parsing or sorting them, as long as the folder's time is unchanged and
// each storage's status of the series is still the one that run left (Sums). That is
// what lets a re-run over an archive of months cost as much as the folders of the last
// hours.
type scanCache struct {
	Version int
	Dirs    map[string]cachedDir // by path relative to the root, "." for the root
	// Sums are the SHA-256 of each storage's status.json of each series, by storage name,
	// as the run that froze folders left them. Another writer of a status (the operator
	// skipping footage, retention, another run) changes it, and the frozen folders of that
	// series are listed again.
	Sums map[string]map[Key]string

	changed bool // since it was loaded: worth saving
}

type cachedDir struct {
	ModTime int64 // the folder's, in ns
	Files   []cachedFile
	Dirs    []string
	// Frozen, when set, replaces Files: every chunk in the folder was backed up.
	Frozen []frozenSeries
}

// frozenSeries sums up the chunks of one series in a frozen folder.
type frozenSeries struct {
	Key
	First, Last int64 // the oldest chunk's start and the newest's end, in ns
	Chunks      int
	Bytes       int64
	// Newest is the series' newest chunk in the folder, which the scan stats again when it
	// is the newest of the whole series: a recorder may still be writing to it.
	Newest      cachedFile
	NewestStart int64
}

type cachedFile struct {
	Name    string
	Size    int64
	ModTime int64
}

const scanCacheVersion = 2

// quiet is how long a folder must have been left alone before its listing is trusted
// later: within the resolution of file times, a change just after the listing could
// leave the folder's time as it was.
const quiet = 2 * time.Second

func loadScanCache(path string) *scanCache {
	c := newScanCache()
	if path == "" {
		return c
	}
	f, err := os.Open(path)
	if err != nil {
		return c
	}
	defer f.Close()
	var loaded scanCache
	// A cache that cannot be read is only a slower scan.
	if err := gob.NewDecoder(f).Decode(&loaded); err != nil || loaded.Version != scanCacheVersion || loaded.Dirs == nil {
		return c
	}
	if loaded.Sums == nil {
		loaded.Sums = map[string]map[Key]string{}
	}
	return &loaded
}

func newScanCache() *scanCache {
	return &scanCache{Version: scanCacheVersion, Dirs: map[string]cachedDir{}, Sums: map[string]map[Key]string{}}
}

// files counts the files the cache lists, to size the scan's lists ahead.
func (c *scanCache) files() int {
	n := 0
	for _, d := range c.Dirs {
		n += len(d.Files)
	}
	return n
}

// series are the series of the frozen folders.
func (c *scanCache) series() map[Key]bool {
	out := map[Key]bool{}
	for _, d := range c.Dirs {
		for _, fs := range d.Frozen {
			out[fs.Key] = true
		}
	}
	return out
}

// save writes the cache atomically; the caller may ignore a failure.
func (c *scanCache) save(path string) error {
	if path == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".scan-cache-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := gob.NewEncoder(tmp).Encode(c); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// entry is a regular file found by walkCached.
type entry struct {
	rel     string
	size    int64
	modTime time.Time
}

// walkCached calls fn for every regular file below root, and frozen for every frozen folder
// whose series are all trusted, listing only folders whose time differs from the
// cache's, and records into next what it saw.
func walkCached(root string, old, next *scanCache, now time.Time, trusted func(Key) bool, fn func(entry) error, frozen func(rel string, fs []frozenSeries)) error {
	var walk func(rel string, modTime time.Time) error
	walk = func(rel string, modTime time.Time) error {
		dir := filepath.Join(root, filepath.FromSlash(rel))
		cd, ok := old.Dirs[rel]
		fresh := ok && cd.ModTime == modTime.UnixNano() &&
			!slices.ContainsFunc(cd.Frozen, func(fs frozenSeries) bool { return !trusted(fs.Key) })
		if !fresh {
			var err error
			if cd, err = listDir(dir, modTime); err != nil {
				if errors.Is(err, fs.ErrNotExist) && rel != "." {
					return nil // removed by the recorder's retention
				}
				return err
			}
			next.changed = true
		}
		if cd.Frozen != nil {
			// fn is not called for its chunks: the caller takes them from the summary.
			frozen(rel, cd.Frozen)
		}
		if now.Sub(modTime) >= quiet {
			next.Dirs[rel] = cd
		}
		for _, f := range cd.Files {
			if err := fn(entry{rel: join(rel, f.Name), size: f.Size, modTime: time.Unix(0, f.ModTime)}); err != nil {
				return err
			}
		}
		for _, sub := range cd.Dirs {
			fi, err := os.Lstat(filepath.Join(dir, sub))
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return err
			}
			if fi.IsDir() {
				if err := walk(join(rel, sub), fi.ModTime()); err != nil {
					return err
				}
			}
		}
		return nil
	}
	fi, err := os.Stat(root)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a folder", root)
	}
	return walk(".", fi.ModTime())
}

func listDir(dir string, modTime time.Time) (cachedDir, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return cachedDir{}, err
	}
	cd := cachedDir{ModTime: modTime.UnixNano()}
	for _, e := range entries {
		switch {
		case e.IsDir():
			cd.Dirs = append(cd.Dirs, e.Name())
		case e.Type().IsRegular():
			fi, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return cachedDir{}, err
			}
			cd.Files = append(cd.Files, cachedFile{Name: e.Name(), Size: fi.Size(), ModTime: fi.ModTime().UnixNano()})
		}
	}
	return cd, nil
}

func join(rel, name string) string {
	if rel == "." {
		return name
	}
	return rel + "/" + name
}
