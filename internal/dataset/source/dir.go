package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// dirSource is a folder whose files are read where they are, while the application may
// change them: a file that changes while it is read fails with ErrChanged instead of
// giving a torn copy.
//
// Symbolic links are never followed (a link could lead out of the folder, or in a
// circle) and, like devices, pipes and sockets, are left out and told to Warn. Empty
// folders are not part of a snapshot.
//
// Globs. include and exclude are globs matched against a file's slash-separated path
// relative to the folder, element by element with path.Match ('*', '?', '[…]'; none
// of them matches '/'), where an element "**" matches any number of path elements,
// none included. A glob that matches a folder matches everything below it. So:
//
//	*.db           the .db files at the top only       **/*.db   .db files at any depth
//	cameras        the folder cameras and all of it    **/tmp    every folder named tmp
//
// A file is taken when no include is given or one matches, and no exclude matches.
// Excluded folders are not walked.
type dirSource struct {
	named
	root    string
	include [][]string
	exclude [][]string
	raw     []string // include= and exclude= options as given, for String
	warn    func(string)
}

var _ Source = (*dirSource)(nil)

// maxGlobLen bounds a glob, so that hostile input stays cheap to match.
const maxGlobLen = 1024

func parseDir(raw string, opts Options) (*dirSource, error) {
	p, q, err := parseLocalURL("dir", raw, "include", "exclude")
	if err != nil {
		return nil, err
	}
	s := &dirSource{root: p, warn: opts.Warn}
	base := filepath.Base(p)
	if p == "/" {
		base = "root"
	}
	s.name = folderName("dir", base)
	for _, key := range []string{"include", "exclude"} {
		for _, g := range q[key] {
			elems, err := parseGlob(g)
			if err != nil {
				return nil, fmt.Errorf("source %q: %s=%s: %w", redact(raw), key, g, err)
			}
			if key == "include" {
				s.include = append(s.include, elems)
			} else {
				s.exclude = append(s.exclude, elems)
			}
			s.raw = append(s.raw, key+"="+url.QueryEscape(g))
		}
	}
	return s, nil
}

// parseGlob splits a glob into its path elements and checks each.
func parseGlob(g string) ([]string, error) {
	switch {
	case g == "":
		return nil, errors.New("empty glob")
	case len(g) > maxGlobLen:
		return nil, fmt.Errorf("glob longer than %d bytes", maxGlobLen)
	case strings.HasPrefix(g, "/"):
		return nil, errors.New("globs are relative to the folder: leave out the leading '/'")
	case strings.ContainsRune(g, '\\'):
		// path.Match reads '\' as an escape, which a Windows habit would trip over.
		return nil, errors.New("'\\' is not allowed: separate folders with '/'")
	}
	var elems []string
	for _, e := range strings.Split(strings.TrimSuffix(g, "/"), "/") {
		switch e {
		case "":
			return nil, errors.New("empty path element ('//')")
		case ".", "..":
			return nil, fmt.Errorf("path element %q is not allowed", e)
		case "**":
			// "**/**" matches what "**" does.
			if len(elems) > 0 && elems[len(elems)-1] == "**" {
				continue
			}
		default:
			if _, err := path.Match(e, ""); err != nil {
				return nil, fmt.Errorf("bad glob element %q: %w", e, err)
			}
		}
		elems = append(elems, e)
	}
	return elems, nil
}

// globMatch reports whether the glob matches the path elements name, or a folder above
// them.
func globMatch(glob, name []string) bool {
	// at[j]: the glob elements seen so far can match name[:j].
	at := make([]bool, len(name)+1)
	at[0] = true
	for _, g := range glob {
		next := make([]bool, len(name)+1)
		for j, ok := range at {
			switch {
			case !ok:
			case g == "**":
				for k := j; k <= len(name); k++ {
					next[k] = true
				}
			case j < len(name):
				if m, _ := path.Match(g, name[j]); m {
					next[j+1] = true
				}
			}
		}
		at = next
	}
	return slices.Contains(at, true)
}

func anyMatch(globs [][]string, name []string) bool {
	for _, g := range globs {
		if globMatch(g, name) {
			return true
		}
	}
	return false
}

func (s *dirSource) String() string {
	out := "dir://" + (&url.URL{Path: s.root}).EscapedPath()
	if len(s.raw) > 0 {
		out += "?" + strings.Join(s.raw, "&")
	}
	return out
}

// Snapshot lists the folder and hands over its files as they are; their content is read
// when the caller opens them. tmp is not used.
func (s *dirSource) Snapshot(ctx context.Context, tmp string, fn func(File) error) error {
	fi, err := os.Stat(s.root)
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", s, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("snapshot %s: not a folder", s)
	}
	if err := s.walk(ctx, s.root, nil, fn); err != nil {
		return fmt.Errorf("snapshot %s: %w", s, err)
	}
	return nil
}

// walk hands over the files below abs, whose path elements below the root are rel, in
// byte-wise order of their slash-separated paths. That is the order of each folder's
// entries when a folder's name counts with a '/' after it: all of "a/…" sorts after
// "a.txt" and before "a0".
func (s *dirSource) walk(ctx context.Context, abs string, rel []string, fn func(File) error) error {
	entries, err := os.ReadDir(abs)
	if err != nil {
		if len(rel) > 0 && errors.Is(err, fs.ErrNotExist) {
			s.warnf("skipped %s/: removed while the folder was read", strings.Join(rel, "/"))
			return nil
		}
		return fmt.Errorf("read folder %s: %w", abs, err)
	}
	key := func(e fs.DirEntry) string {
		if e.IsDir() {
			return e.Name() + "/"
		}
		return e.Name()
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(key(a), key(b)) })
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		elems := append(slices.Clip(rel), e.Name())
		name := strings.Join(elems, "/")
		childAbs := filepath.Join(abs, e.Name())
		t := e.Type()
		if t.IsDir() {
			if anyMatch(s.exclude, elems) {
				continue
			}
			if err := s.walk(ctx, childAbs, elems, fn); err != nil {
				return err
			}
			continue
		}
		if len(s.include) > 0 && !anyMatch(s.include, elems) || anyMatch(s.exclude, elems) {
			continue
		}
		if !t.IsRegular() {
			s.warnf("skipped %s: a %s (only regular files are backed up; links are not followed)", name, kindOf(t))
			continue
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			s.warnf("skipped %s: removed while the folder was read", name)
			continue
		}
		if err != nil {
			return fmt.Errorf("stat %s: %w", name, err)
		}
		if !info.Mode().IsRegular() {
			s.warnf("skipped %s: replaced by a %s while the folder was read", name, kindOf(info.Mode().Type()))
			continue
		}
		size, modTime := info.Size(), info.ModTime()
		err = fn(File{
			Path:    name,
			Size:    size,
			Mode:    info.Mode().Perm(),
			ModTime: modTime,
			Open:    func() (io.ReadCloser, error) { return openChecked(childAbs, name, size, modTime) },
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func kindOf(t fs.FileMode) string {
	switch {
	case t&fs.ModeSymlink != 0:
		return "symbolic link"
	case t.IsDir():
		return "folder"
	case t&fs.ModeNamedPipe != 0:
		return "named pipe"
	case t&fs.ModeSocket != 0:
		return "socket"
	case t&fs.ModeDevice != 0:
		return "device"
	default:
		return "special file"
	}
}

func (s *dirSource) warnf(format string, args ...any) {
	if s.warn != nil {
		s.warn(fmt.Sprintf("%s: ", s) + fmt.Sprintf(format, args...))
	}
}
