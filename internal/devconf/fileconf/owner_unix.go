//go:build unix

package fileconf

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// keepOwner gives f the owner and group of the file orig describes. Only root may give a
// file away: anyone else gets an error rather than a configuration its program may no
// longer be allowed to read.
func keepOwner(f *os.File, orig fs.FileInfo) error {
	want, ok := orig.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if have, ok := fi.Sys().(*syscall.Stat_t); ok && have.Uid == want.Uid && have.Gid == want.Gid {
		return nil
	}
	if err := f.Chown(int(want.Uid), int(want.Gid)); err != nil {
		return fmt.Errorf("keep the owner %d:%d (run Vigil as root or as the file's owner): %w", want.Uid, want.Gid, err)
	}
	return nil
}
