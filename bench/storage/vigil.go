package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/vigil-backup/vigil/internal/storage"
	"github.com/vigil-backup/vigil/internal/storage/all"
)

// vigilTool moves the workload through Vigil's own code path, as the backup engine does:
// a storage opened from its URL by storage/all (with the retry decorator, without a
// bandwidth limit), one FileSource per Put, jobs files in flight at a time. Opening and
// closing the storage are timed, as starting and logging in are for the other tools.
func vigilTool(t *target, jobs int) tool {
	return tool{
		name:     vigilName(jobs),
		parallel: jobs,
		vigil:    true,
		put:      func(ctx context.Context, src string) error { return vigilPut(ctx, t, src, jobs) },
		get:      func(ctx context.Context, dst string) error { return vigilGet(ctx, t, dst, jobs) },
	}
}

func vigilName(jobs int) string { return fmt.Sprintf("vigil-j%d", jobs) }

func (t *target) open(ctx context.Context) (storage.Storage, error) {
	loc, err := storage.ParseLocation(t.url)
	if err != nil {
		return nil, err
	}
	return all.Open(ctx, all.Config{Location: loc, Credentials: t.cred})
}

func vigilPut(ctx context.Context, t *target, src string, jobs int) (err error) {
	names, err := listTree(src)
	if err != nil {
		return err
	}
	s, err := t.open(ctx)
	if err != nil {
		return err
	}
	defer closeStorage(s, &err)
	return forEach(ctx, names, jobs, func(ctx context.Context, name string) error {
		return putFile(ctx, s, filepath.Join(src, filepath.FromSlash(name)), path.Join(putDir, name))
	})
}

func putFile(ctx context.Context, s storage.Storage, file, name string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	src, err := storage.FileSource(f)
	if err != nil {
		return err
	}
	return s.Put(ctx, name, src, storage.PutOptions{})
}

// vigilGet lists the seed folder, as a restore of a folder would, and downloads every
// object in it into dst.
func vigilGet(ctx context.Context, t *target, dst string, jobs int) (err error) {
	s, err := t.open(ctx)
	if err != nil {
		return err
	}
	defer closeStorage(s, &err)
	var names []string
	err = s.List(ctx, seedDir, func(fi storage.FileInfo) error {
		names = append(names, fi.Name)
		return nil
	})
	if err != nil {
		return err
	}
	return forEach(ctx, names, jobs, func(ctx context.Context, name string) error {
		rel := strings.TrimPrefix(name, seedDir+"/")
		return getFile(ctx, s, name, filepath.Join(dst, filepath.FromSlash(rel)))
	})
}

func getFile(ctx context.Context, s storage.Storage, name, file string) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	rc, err := s.Open(ctx, name, 0, 0)
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		return fmt.Errorf("get %s: %w", name, err)
	}
	return f.Close()
}

// closeStorage closes s and makes its error the transfer's when the transfer had none.
func closeStorage(s storage.Storage, err *error) {
	if cerr := s.Close(); cerr != nil && *err == nil {
		*err = fmt.Errorf("close storage: %w", cerr)
	}
}

// forEach calls fn for every name, jobs calls at a time, and returns the first error;
// after it the remaining names are not started.
func forEach(ctx context.Context, names []string, jobs int, fn func(context.Context, string) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan string)
	var wg sync.WaitGroup
	for range jobs {
		wg.Go(func() {
			for name := range work {
				if err := fn(ctx, name); err != nil {
					cancel(err)
				}
			}
		})
	}
feed:
	for _, name := range names {
		select {
		case work <- name:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	return context.Cause(ctx)
}

// listTree returns the slash-separated paths of the files below dir.
func listTree(dir string) ([]string, error) {
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		names = append(names, filepath.ToSlash(rel))
		return err
	})
	return names, err
}
