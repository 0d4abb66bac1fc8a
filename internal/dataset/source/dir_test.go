package source

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeFiles makes the files named (slash-separated) under root, each holding its name.
func writeFiles(t *testing.T, root string, names ...string) {
	t.Helper()
	for _, n := range names {
		p := filepath.Join(root, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(n), 0o640); err != nil {
			t.Fatal(err)
		}
	}
}

func parseOne(t *testing.T, raw string, opts Options) Source {
	t.Helper()
	srcs, err := Parse(raw, opts)
	if err != nil {
		t.Fatalf("Parse(%q): %v", raw, err)
	}
	if len(srcs) != 1 {
		t.Fatalf("Parse(%q): %d sources, want 1", raw, len(srcs))
	}
	return srcs[0]
}

// snapshotAll runs a snapshot and reads every file, returning path → content.
func snapshotAll(t *testing.T, s Source) ([]string, map[string]string) {
	t.Helper()
	var paths []string
	content := map[string]string{}
	err := s.Snapshot(context.Background(), t.TempDir(), func(f File) error {
		paths = append(paths, f.Path)
		r, err := f.Open()
		if err != nil {
			return err
		}
		defer r.Close()
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		if int64(len(b)) != f.Size {
			t.Fatalf("%s: read %d bytes, Size says %d", f.Path, len(b), f.Size)
		}
		content[f.Path] = string(b)
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot %s: %v", s, err)
	}
	return paths, content
}

func TestDirSnapshot(t *testing.T) {
	root := filepath.Join(t.TempDir(), "config")
	writeFiles(t, root, "a.txt", "a/b.txt", "a0", "a-b", "cameras/1.json", "cameras/x/2.json",
		"tmp/t.json", "deep/1/tmp/z.json", "deep/1/y.json", "notes.md")
	if err := os.Symlink("/etc/passwd", filepath.Join(root, "link.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "cameras"), filepath.Join(root, "cameras-link")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(root, "pipe.json"), 0o600); err != nil {
		t.Fatal(err)
	}

	var warnings []string
	all := parseOne(t, "dir://"+root, Options{Warn: func(m string) { warnings = append(warnings, m) }})
	paths, content := snapshotAll(t, all)
	want := []string{"a-b", "a.txt", "a/b.txt", "a0", "cameras/1.json", "cameras/x/2.json", "deep/1/tmp/z.json", "deep/1/y.json", "notes.md", "tmp/t.json"}
	if !slices.Equal(paths, want) {
		t.Fatalf("paths %v\nwant  %v", paths, want)
	}
	if !slices.IsSorted(paths) {
		t.Fatalf("paths are not in byte order: %v", paths)
	}
	for _, p := range paths {
		if content[p] != p {
			t.Fatalf("%s holds %q", p, content[p])
		}
	}
	if len(warnings) != 3 || !strings.Contains(strings.Join(warnings, "\n"), "cameras-link: a symbolic link") ||
		!strings.Contains(strings.Join(warnings, "\n"), "pipe.json: a named pipe") {
		t.Fatalf("warnings: %q, want the two links and the pipe", warnings)
	}

	warnings = nil
	some := parseOne(t, "dir://"+root+"?include=**/*.json&exclude=**/tmp&exclude=cameras/x", Options{Warn: func(m string) { warnings = append(warnings, m) }})
	paths, _ = snapshotAll(t, some)
	if want := []string{"cameras/1.json", "deep/1/y.json"}; !slices.Equal(paths, want) {
		t.Fatalf("with globs: paths %v, want %v", paths, want)
	}
	// The link and the pipe match the include: they are told about.
	if len(warnings) != 2 {
		t.Fatalf("with globs: warnings %q, want the link and the pipe", warnings)
	}

	var f File
	err := parseOne(t, "dir://"+root+"?include=notes.md", Options{}).Snapshot(context.Background(), "", func(got File) error { f = got; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if f.Mode != 0o640 || f.Size != int64(len("notes.md")) || f.ModTime.IsZero() {
		t.Fatalf("notes.md: mode %v size %d time %v", f.Mode, f.Size, f.ModTime)
	}

	stop := errors.New("enough")
	if err := all.Snapshot(context.Background(), "", func(File) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("fn's error: got %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := all.Snapshot(ctx, "", func(File) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: got %v", err)
	}
	if err := parseOne(t, "dir://"+root+"/nothing", Options{}).Snapshot(context.Background(), "", func(File) error { return nil }); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a missing folder: got %v", err)
	}
}

// TestDirChanged checks that a live file that changes while it is read fails with
// ErrChanged rather than giving a torn copy.
func TestDirChanged(t *testing.T) {
	root := t.TempDir()
	big := make([]byte, 1<<20)
	for _, n := range []string{"grows", "shrinks", "rewritten", "vanishes", "becomes-link"} {
		if err := os.WriteFile(filepath.Join(root, n), big, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Some file systems keep coarse times: make sure a rewrite shows in the time.
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(filepath.Join(root, "rewritten"), old, old); err != nil {
		t.Fatal(err)
	}
	files := map[string]File{}
	err := parseOne(t, "dir://"+root, Options{}).Snapshot(context.Background(), "", func(f File) error {
		files[f.Path] = f
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// readWhile reads the first 64 KiB of the file, calls change, then reads the rest.
	readWhile := func(name string, change func(p string)) error {
		r, err := files[name].Open()
		if err != nil {
			return err
		}
		defer r.Close()
		if _, err := io.ReadFull(r, make([]byte, 64<<10)); err != nil {
			t.Fatalf("%s: first read: %v", name, err)
		}
		change(filepath.Join(root, name))
		n, err := io.Copy(io.Discard, r)
		if n+64<<10 > files[name].Size {
			t.Fatalf("%s: read %d bytes, more than its Size %d", name, n+64<<10, files[name].Size)
		}
		return err
	}
	appendTo := func(p string) {
		f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.Write([]byte("more")); err != nil {
			t.Fatal(err)
		}
	}
	for name, change := range map[string]func(string){
		"grows":     appendTo,
		"shrinks":   func(p string) { os.Truncate(p, 100<<10) },
		"rewritten": func(p string) { os.WriteFile(p, big, 0o644) },
	} {
		if err := readWhile(name, change); !errors.Is(err, ErrChanged) {
			t.Fatalf("%s while read: got %v, want ErrChanged", name, err)
		}
	}
	os.Remove(filepath.Join(root, "vanishes"))
	if _, err := files["vanishes"].Open(); !errors.Is(err, ErrChanged) {
		t.Fatalf("open a removed file: got %v, want ErrChanged", err)
	}
	os.Remove(filepath.Join(root, "becomes-link"))
	os.Symlink("/etc/passwd", filepath.Join(root, "becomes-link"))
	if _, err := files["becomes-link"].Open(); !errors.Is(err, ErrChanged) {
		t.Fatalf("open a file replaced by a link: got %v, want ErrChanged", err)
	}
}
