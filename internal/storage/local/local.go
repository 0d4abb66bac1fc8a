// Package local stores backups in a folder of a local file system (a second disk, a USB
// drive, a SAN volume).
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/vigil-backup/vigil/internal/storage"
)

// Storage is a local folder.
type Storage struct {
	root string
}

var (
	_ storage.Storage       = (*Storage)(nil)
	_ storage.UsageReporter = (*Storage)(nil)
	_ storage.Sweeper       = (*Storage)(nil)
	_ storage.Spooler       = (*Storage)(nil)
)

// Open returns the storage in folder root, which must exist: when a backup disk is not
// mounted, writing into the empty mount point would fill the system disk instead.
func Open(ctx context.Context, root string) (*Storage, error) {
	fi, err := os.Stat(root)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, storage.NewError("open", root, storage.ErrNotFound,
			errors.New("the folder does not exist: create it, or check that the disk is mounted"))
	case err != nil:
		return nil, classify("open", root, err)
	case !fi.IsDir():
		return nil, storage.NewError("open", root, nil, errors.New("not a folder"))
	}
	return &Storage{root: root}, nil
}

// Root is the folder the storage keeps its objects in.
func (s *Storage) Root() string { return s.root }

func (s *Storage) path(name string) string { return filepath.Join(s.root, filepath.FromSlash(name)) }

// Put writes src to a temporary file next to name, flushes it to disk, renames it into
// place and flushes the folder, so that a crash leaves either the old object or the new one.
func (s *Storage) Put(ctx context.Context, name string, src storage.Source, opts storage.PutOptions) error {
	tmp, err := s.Spool(ctx, name)
	if err != nil {
		return err
	}
	n, err := copyInto(ctx, tmp, storage.Unwrapped(src))
	if err == nil {
		if lerr := storage.CheckLength(src, n); lerr != nil {
			err = storage.NewError("put", name, nil, lerr)
		}
	}
	if err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return classify("put", name, err)
	}
	return s.Commit(ctx, tmp, name, opts)
}

// Spool returns a temporary file next to name (storage.Spooler).
func (s *Storage) Spool(ctx context.Context, name string) (*os.File, error) {
	if err := storage.ValidName(name); err != nil {
		return nil, err
	}
	dir := filepath.Dir(s.path(name))
	if err := s.mkdirAll(dir); err != nil {
		return nil, classify("put", name, err)
	}
	tmp, err := os.CreateTemp(dir, storage.TempPrefix+"*")
	if err != nil {
		return nil, classify("put", name, err)
	}
	return tmp, nil
}

// Commit flushes tmp, a file from Spool, and renames it to name (storage.Spooler).
func (s *Storage) Commit(ctx context.Context, tmp *os.File, name string, opts storage.PutOptions) (err error) {
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := storage.ValidName(name); err != nil {
		return err
	}
	full := s.path(name)
	if filepath.Dir(tmp.Name()) != filepath.Dir(full) || !storage.IsTemp(filepath.Base(tmp.Name())) {
		return storage.NewError("put", name, nil, fmt.Errorf("%s is not a file spooled for it", tmp.Name()))
	}
	if err := ctx.Err(); err != nil {
		return classify("put", name, err)
	}
	if err := tmp.Sync(); err != nil {
		return classify("put", name, err)
	}
	if err := tmp.Close(); err != nil {
		return classify("put", name, err)
	}
	if opts.NoOverwrite {
		// link fails when name exists, where rename would replace it: one atomic step.
		if err := os.Link(tmp.Name(), full); err != nil {
			return classify("put", name, err)
		}
		os.Remove(tmp.Name())
	} else if err := os.Rename(tmp.Name(), full); err != nil {
		return classify("put", name, err)
	}
	return classify("put", name, syncDir(filepath.Dir(full)))
}

// copyChunk bounds one copy_file_range call, so that a cancelled context is noticed.
const copyChunk = 8 << 20

var bufPool = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// copyInto copies r to f. A reader over an *os.File (see storage.Unwrapped) is copied by
// the kernel with copy_file_range; anything else through a large buffer.
func copyInto(ctx context.Context, f *os.File, r io.Reader) (int64, error) {
	if lr, ok := r.(*io.LimitedReader); ok {
		if _, isFile := lr.R.(*os.File); isFile {
			var total int64
			for lr.N > 0 {
				if err := ctx.Err(); err != nil {
					return total, err
				}
				chunk := &io.LimitedReader{R: lr.R, N: min(lr.N, copyChunk)}
				n, err := f.ReadFrom(chunk)
				lr.N -= n
				total += n
				if err != nil {
					return total, err
				}
				if n == 0 {
					break // the file is shorter than it was
				}
			}
			return total, nil
		}
	}
	buf := bufPool.Get().(*[]byte)
	defer bufPool.Put(buf)
	// writerOnly hides f's ReadFrom, which would copy through a small buffer.
	return io.CopyBuffer(writerOnly{f}, storage.ContextReader(ctx, r), *buf)
}

type writerOnly struct{ io.Writer }

// mkdirAll makes dir and its missing parents below the root, and flushes each parent it
// added an entry to, so that a new object's folder survives a crash along with the object.
func (s *Storage) mkdirAll(dir string) error {
	var missing []string
	for d := dir; d != s.root && len(d) > len(s.root); d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		missing = append(missing, d)
	}
	if len(missing) == 0 {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, d := range missing {
		if err := syncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Open reads part of an object.
func (s *Storage) Open(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	if err := storage.ValidName(name); err != nil {
		return nil, err
	}
	f, err := os.Open(s.path(name))
	if err != nil {
		return nil, classify("open", name, err)
	}
	fi, err := f.Stat()
	if err == nil && fi.IsDir() {
		err = fs.ErrNotExist
	}
	if err == nil && offset > 0 {
		_, err = f.Seek(offset, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, classify("open", name, err)
	}
	if length <= 0 {
		return f, nil
	}
	return &limitedFile{Reader: io.LimitReader(f, length), f: f}, nil
}

type limitedFile struct {
	io.Reader
	f *os.File
}

func (l *limitedFile) Close() error { return l.f.Close() }

// Stat describes an object.
func (s *Storage) Stat(ctx context.Context, name string) (storage.FileInfo, error) {
	if err := storage.ValidName(name); err != nil {
		return storage.FileInfo{}, err
	}
	fi, err := os.Stat(s.path(name))
	if err == nil && !fi.Mode().IsRegular() {
		err = fs.ErrNotExist
	}
	if err != nil {
		return storage.FileInfo{}, classify("stat", name, err)
	}
	return storage.FileInfo{Name: name, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// List walks the folder prefix. Files being written (temporary names) and anything that
// is not a regular file are left out.
func (s *Storage) List(ctx context.Context, prefix string, fn func(storage.FileInfo) error) error {
	if err := storage.ValidPrefix(prefix); err != nil {
		return err
	}
	start := s.path(prefix)
	if fi, err := os.Stat(start); errors.Is(err, fs.ErrNotExist) || (err == nil && !fi.IsDir()) {
		return nil
	} else if err != nil {
		return classify("list", prefix, err)
	}
	return filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while we walked
			}
			return classify("list", prefix, err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.Type().IsRegular() || storage.IsTemp(d.Name()) {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return classify("list", prefix, err)
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		return fn(storage.FileInfo{Name: filepath.ToSlash(rel), Size: fi.Size(), ModTime: fi.ModTime()})
	})
}

// Remove deletes an object.
func (s *Storage) Remove(ctx context.Context, name string) error {
	if err := storage.ValidName(name); err != nil {
		return err
	}
	full := s.path(name)
	if fi, err := os.Lstat(full); err == nil && fi.IsDir() {
		return storage.NewError("remove", name, storage.ErrNotFound, errors.New("is a folder"))
	}
	if err := os.Remove(full); err != nil {
		return classify("remove", name, err)
	}
	return classify("remove", name, syncDir(filepath.Dir(full)))
}

// Sweep removes the temporary files below the folder prefix that were last written more
// than olderThan ago: those of Puts whose process died. Only regular files with a
// temporary name are removed; a folder of that name is walked like any other.
func (s *Storage) Sweep(ctx context.Context, prefix string, olderThan time.Duration) (int, error) {
	if err := storage.ValidPrefix(prefix); err != nil {
		return 0, err
	}
	start := s.path(prefix)
	if fi, err := os.Stat(start); errors.Is(err, fs.ErrNotExist) || (err == nil && !fi.IsDir()) {
		return 0, nil
	} else if err != nil {
		return 0, classify("sweep", prefix, err)
	}
	cutoff := time.Now().Add(-olderThan)
	removed := 0
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while we walked
			}
			return classify("sweep", prefix, err)
		}
		if err := ctx.Err(); err != nil {
			return classify("sweep", prefix, err)
		}
		if !d.Type().IsRegular() || !storage.IsTemp(d.Name()) {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return classify("sweep", prefix, err)
		}
		if fi.ModTime().After(cutoff) {
			return nil
		}
		// No flush of the folder: a removal that a crash undoes is redone by the next sweep.
		switch err := os.Remove(p); {
		case errors.Is(err, fs.ErrNotExist):
			// Another sweep was first.
		case err != nil:
			rel, _ := filepath.Rel(s.root, p)
			return classify("sweep", filepath.ToSlash(rel), err)
		default:
			removed++
		}
		return nil
	})
	return removed, err
}

// Usage reports the space of the file system the folder is on.
func (s *Storage) Usage(ctx context.Context) (storage.Usage, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(s.root, &st); err != nil {
		return storage.Usage{}, classify("usage", "", err)
	}
	return storage.Usage{Total: int64(st.Blocks) * st.Bsize, Free: int64(st.Bavail) * st.Bsize}, nil
}

// Close does nothing: a folder holds no connection.
func (s *Storage) Close() error { return nil }

// classify gives err the kind callers act on. It returns nil for nil.
func classify(op, name string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s %s: %w", op, name, err)
	}
	var kind error
	switch {
	case errors.Is(err, fs.ErrNotExist):
		kind = storage.ErrNotFound
	case errors.Is(err, fs.ErrExist):
		kind = storage.ErrExists
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		kind = storage.ErrNoSpace
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
		kind = storage.ErrPermission
	}
	return storage.NewError(op, name, kind, err)
}
