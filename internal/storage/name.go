package storage

import (
	"fmt"
	"path"
	"strings"
	"unicode/utf8"
)

// TempPrefix starts the base name of the temporary file an atomic Put writes before it
// renames it into place. List hides such files and Put refuses names that use it, so a
// half-written object is never taken for a finished one.
const TempPrefix = ".vigil-tmp-"

// maxNameLen bounds a whole name; each part is further bounded by what file systems accept.
const (
	maxNameLen = 1024
	maxPartLen = 255
)

// ValidName reports whether name may name an object: a relative, slash-separated path of
// non-empty parts, none of them "." or "..", without backslashes, control characters or
// invalid UTF-8, and whose last part is not a temporary name. The error wraps
// ErrInvalidName and says what is wrong.
func ValidName(name string) error {
	if err := validPath(name); err != nil {
		return err
	}
	if strings.HasPrefix(path.Base(name), TempPrefix) {
		return invalidName(name, "names starting with "+TempPrefix+" are reserved for writes in progress")
	}
	return nil
}

// ValidPrefix is ValidName for a folder given to List: the empty prefix, meaning the whole
// storage, is valid too, and a trailing slash is allowed.
func ValidPrefix(prefix string) error {
	prefix = strings.TrimSuffix(prefix, "/")
	if prefix == "" {
		return nil
	}
	return validPath(prefix)
}

func validPath(name string) error {
	switch {
	case name == "":
		return invalidName(name, "empty name")
	case len(name) > maxNameLen:
		return invalidName(name, fmt.Sprintf("longer than %d bytes", maxNameLen))
	case !utf8.ValidString(name):
		return invalidName(name, "not valid UTF-8")
	case strings.HasPrefix(name, "/"):
		return invalidName(name, "must be relative to the storage root")
	case strings.ContainsRune(name, '\\'):
		return invalidName(name, `contains a backslash`)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return invalidName(name, "contains a control character")
		}
	}
	for _, part := range strings.Split(name, "/") {
		switch {
		case part == "":
			return invalidName(name, "has an empty part")
		case part == "." || part == "..":
			return invalidName(name, `has a "." or ".." part`)
		case len(part) > maxPartLen:
			return invalidName(name, fmt.Sprintf("has a part longer than %d bytes", maxPartLen))
		}
	}
	return nil
}

func invalidName(name, why string) error {
	return &Error{Op: "check name", Name: fmt.Sprintf("%q", name), Kind: ErrInvalidName, Err: fmt.Errorf("%s", why)}
}

// IsTemp reports whether a base name is that of a write in progress.
func IsTemp(base string) bool { return strings.HasPrefix(base, TempPrefix) }

// JoinPrefix returns the name of object rel below the folder prefix.
func JoinPrefix(prefix, rel string) string {
	if prefix == "" {
		return rel
	}
	return strings.TrimSuffix(prefix, "/") + "/" + rel
}
