// Package archive reads and writes Vigil's single-file backup container: a tar stream
// (PAX format) compressed with zstd and, when encryption is on, encrypted with age.
//
// Only standard formats are used so that an operator can restore without Vigil:
//
//	zstd -d < F | tar -x                     # not encrypted
//	age -d -i key F | tar --zstd -x          # encrypted to a key
//	age -d F | tar --zstd -x                 # encrypted with a passphrase
//
// An archive holds regular files only; folders are implied by the names. Owners are not
// kept (every file belongs to uid 0 with no user name) because backups are restored on
// other machines, whose users differ.
//
// The Reader treats every archive as hostile: names that could leave the target folder,
// links, devices and sizes beyond the limits are refused with typed errors, and the zstd
// decoder's memory is bounded.
//
// Integrity: an encrypted archive is authenticated by age in 64 KiB chunks, so damaged
// content is refused before it is delivered. A plain archive carries a zstd checksum over
// the whole stream, which can only be checked at its end: damage may then surface after
// some entries were delivered (and, with Extract, written). Callers that need every file
// proven check it against the hashes of their manifest.
package archive

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"
)

// Entry is one regular file in an archive.
type Entry struct {
	Name    string      // slash-separated relative path
	Size    int64       // bytes of content
	Mode    fs.FileMode // permission bits
	ModTime time.Time
}

// Errors callers tell apart with errors.Is. Each comes wrapped in an error that says what
// was being done and, where there is one, which entry.
var (
	// ErrEncrypted: the archive is encrypted and no identity was given.
	ErrEncrypted = errors.New("the archive is encrypted: give --passphrase-file or --identity")
	// ErrWrongKey: none of the identities given opens the archive. Damage inside the
	// header's key stanzas looks the same, since age cannot tell it from another key.
	ErrWrongKey = errors.New("wrong passphrase or key: none of those given opens the archive")
	// ErrUnsafe: an entry whose name could leave the target folder or is not canonical,
	// an entry that is not a regular file (symlink, hard link, device, fifo…), or a
	// symlink met in the target folder.
	ErrUnsafe = errors.New("unsafe archive entry")
	// ErrTooLarge: an entry or all of them together are over the reader's limits, there
	// are more entries than allowed, or the zstd frame asks for more memory than allowed.
	ErrTooLarge = errors.New("archive over the size limits")
	// ErrCorrupt: the archive is truncated or damaged (zstd checksum, tar header, age
	// authentication of an encrypted payload, unexpected end), or is not an archive.
	ErrCorrupt = errors.New("damaged or truncated archive")
)

// checkName returns why name is not a safe, canonical relative path for an entry, or ""
// when it is. Canonical matters beyond safety: two spellings of one path ("a//b", "a/./b")
// would let two entries, and two manifest lines, name the same file.
func checkName(name string) string {
	switch {
	case name == "":
		return "empty name"
	case strings.HasPrefix(name, "/"):
		return "absolute path"
	case strings.ContainsRune(name, '\\'):
		return "contains a backslash"
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return "contains a control character"
		}
	}
	for part := range strings.SplitSeq(name, "/") {
		switch part {
		case "":
			return "has an empty path element"
		case ".":
			return `has a "." path element`
		case "..":
			return `has a ".." path element`
		}
	}
	return ""
}

// unsafe returns an error wrapping ErrUnsafe that names the entry and says why.
func unsafe(name, why string) error {
	return fmt.Errorf("%w %q: %s", ErrUnsafe, name, why)
}
