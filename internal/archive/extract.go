package archive

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/vigil-backup/vigil/internal/storage"
)

// Extract writes every entry of r under dir, creating dir and the folders the names imply
// with mode 0700 where they are missing. Each file is written under a temporary name in
// its folder, synced, given its mode and time, and renamed into place, so that a file that
// appears is complete; a regular file already there is replaced.
//
// Extract never writes outside dir: every operation goes through an os.Root on dir, and a
// name whose path under dir meets a symlink already there is refused with ErrUnsafe
// rather than followed, even when the link points inside dir.
//
// fn, when not nil, is called after each file is in place; an error from it stops the
// extraction. On any error Extract returns it naming the entry; files already written
// stay, and no temporary file is left behind.
func Extract(ctx context.Context, r *Reader, dir string, fn func(Entry) error) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("extract: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("extract: %w", err)
	}
	defer root.Close()
	buf := make([]byte, copyBufferSize)
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("extract into %s: %w", dir, err)
		}
		e, err := r.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("extract into %s: %w", dir, err)
		}
		if err := extractFile(ctx, root, e, r, buf); err != nil {
			return fmt.Errorf("extract %s: %w", e.Name, err)
		}
		if fn != nil {
			if err := fn(e); err != nil {
				return fmt.Errorf("extract %s: %w", e.Name, err)
			}
		}
	}
}

// WriteFile writes one file under root as Extract writes each entry: through a temporary
// name, synced, with e's mode and time, renamed into place, never through a symlink. r
// must yield exactly e.Size bytes. It serves callers that read files from elsewhere than
// a Reader, or check each one as it is written.
func WriteFile(ctx context.Context, root *os.Root, e Entry, r io.Reader) error {
	if why := checkName(e.Name); why != "" {
		return unsafe(e.Name, why)
	}
	return extractFile(ctx, root, e, r, make([]byte, copyBufferSize))
}

// extractFile writes one entry's content from r into place under root.
func extractFile(ctx context.Context, root *os.Root, e Entry, r io.Reader, buf []byte) (err error) {
	dir := path.Dir(e.Name)
	if err := makeFolders(root, e.Name, dir); err != nil {
		return err
	}
	if err := checkTarget(root, e.Name); err != nil {
		return err
	}
	tmp := path.Join(dir, storage.TempPrefix+"extract-"+rand.Text())
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	renamed := false
	defer func() {
		if !renamed {
			f.Close()
			_ = root.Remove(tmp)
		}
	}()
	n, err := io.CopyBuffer(f, &ctxReader{ctx: ctx, r: r}, buf)
	if err != nil {
		return err
	}
	if n != e.Size {
		// The tar reader holds an entry to its size, so this is a bug, not damage.
		return fmt.Errorf("read %d bytes of %d", n, e.Size)
	}
	if err := f.Chmod(e.Mode.Perm()); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := root.Chtimes(tmp, e.ModTime, e.ModTime); err != nil {
		return err
	}
	if err := root.Rename(tmp, e.Name); err != nil {
		return err
	}
	renamed = true
	// The rename is durable only once its folder is synced.
	return syncFolder(root, dir)
}

// makeFolders makes the folders above name, refusing a symlink met on the way: os.Root
// would follow one that stays inside the root, but an archive must not be steered by what
// the target folder holds.
func makeFolders(root *os.Root, name, dir string) error {
	if dir == "." {
		return nil
	}
	parts := strings.Split(dir, "/")
	for i := range parts {
		p := strings.Join(parts[:i+1], "/")
		fi, err := root.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			err = root.Mkdir(p, 0o700)
			if errors.Is(err, fs.ErrExist) {
				// Made meanwhile by someone else: look at what it is.
				fi, err = root.Lstat(p)
			} else if err == nil {
				continue
			}
		}
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			return unsafe(name, fmt.Sprintf("%s is a symbolic link in the target folder", filepath.FromSlash(p)))
		case !fi.IsDir():
			return fmt.Errorf("%s is in the target folder and is not a folder", filepath.FromSlash(p))
		}
	}
	return nil
}

// checkTarget refuses to replace what is not a regular file.
func checkTarget(root *os.Root, name string) error {
	fi, err := root.Lstat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case fi.Mode()&fs.ModeSymlink != 0:
		return unsafe(name, "a symbolic link of that name is in the target folder")
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s is in the target folder and is not a file", filepath.FromSlash(name))
	}
	return nil
}

// syncFolder flushes a folder, so that a rename in it survives a power cut.
func syncFolder(root *os.Root, dir string) error {
	d, err := root.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ctxReader stops a long copy when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
