//go:build unix

package source

import (
	"errors"
	"os"
	"syscall"
)

// openNoFollow opens a file for reading unless it is a symbolic link. O_NONBLOCK keeps
// the open from hanging on a named pipe that replaced a file since it was listed; it
// changes nothing for regular files.
func openNoFollow(p string) (*os.File, error) {
	return os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
}

// isLoop reports whether err is what opening a symbolic link with O_NOFOLLOW gives.
func isLoop(err error) bool { return errors.Is(err, syscall.ELOOP) }
