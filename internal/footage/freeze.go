package footage

import (
	"maps"
	"path"
)

// freeze replaces, in the scan cache, the listing of each folder whose chunks are all on
// every storage (when spread: on one of them) by a summary, and notes the storages'
// statuses it rests on. A run where a storage failed freezes nothing new.
func (r *run) freeze() {
	sums := map[string]map[Key]string{}
	failed := false
	for _, ts := range r.targets {
		if ts.err != nil || !ts.ready {
			failed = true
			continue
		}
		m := map[Key]string{}
		for k, si := range ts.indexes {
			if si.sum != "" && !si.foreign {
				m[k] = si.sum
			}
		}
		sums[r.sumKey(ts)] = m
	}
	if !maps.EqualFunc(sums, r.oldSums, maps.Equal) {
		r.cache.Sums, r.cache.changed = sums, true
	}
	if failed {
		return
	}
	byDir := map[string][]int{}
	for i, f := range r.files {
		dir := path.Dir(f.Path)
		byDir[dir] = append(byDir[dir], i)
	}
	for dir, files := range byDir {
		cd, ok := r.cache.Dirs[dir]
		if !ok || cd.Frozen != nil || len(cd.Files) != len(files) {
			continue // not quiet yet, or holding what is not a selected chunk
		}
		if fss, ok := r.summarize(files, sums); ok {
			cd.Files, cd.Frozen = nil, fss
			r.cache.Dirs[dir], r.cache.changed = cd, true
		}
	}
}

// summarize sums up the chunks files of one folder by series, if every one is on every
// storage, and no storage's status of their series was changed by another writer.
func (r *run) summarize(files []int, sums map[string]map[Key]string) ([]frozenSeries, bool) {
	var out []frozenSeries
	at := map[Key]int{}
	for _, i := range files {
		f := r.files[i]
		k := KeyOf(f.Chunk)
		if r.recording[f.Path] {
			return nil, false
		}
		for _, ts := range r.targets {
			if sums[r.sumKey(ts)][k] == "" || (r.spread == nil && !r.done(ts, item{file: i})) {
				return nil, false
			}
		}
		if r.spread != nil && !r.onSet(item{file: i}) {
			return nil, false
		}
		j, ok := at[k]
		if !ok {
			j = len(out)
			at[k] = j
			out = append(out, frozenSeries{Key: k, First: f.Start.UnixNano()})
		}
		fs := &out[j]
		fs.Chunks++
		fs.Bytes += f.Size
		fs.Last = max(fs.Last, f.end().UnixNano())
		// Files are oldest first.
		fs.Newest = cachedFile{Name: path.Base(f.Path), Size: f.Size, ModTime: f.ModTime.UnixNano()}
		fs.NewestStart = f.Start.UnixNano()
	}
	return out, true
}
