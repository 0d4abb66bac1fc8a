//go:build !unix

package source

import "os"

// openNoFollow opens a file for reading. Without O_NOFOLLOW here, a symbolic link that
// replaced the file since it was listed is followed; Vigil's servers run on Linux.
func openNoFollow(p string) (*os.File, error) { return os.Open(p) }

func isLoop(error) bool { return false }
