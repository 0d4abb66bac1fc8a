//go:build !unix

package fileconf

import (
	"io/fs"
	"os"
)

// keepOwner does nothing where files have no Unix owner; Vigil's servers run on Linux.
func keepOwner(*os.File, fs.FileInfo) error { return nil }
