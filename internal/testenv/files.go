package testenv

import (
	"io/fs"
	"path/filepath"
	"slices"
)

// Files lists what is below dir other than folders (files, links…), as sorted,
// slash-separated paths relative to dir.
func Files(t T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		out = append(out, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		t.Fatalf("list the files below %s: %v", dir, err)
	}
	slices.Sort(out)
	return out
}
