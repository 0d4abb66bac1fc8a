// Package dataset backs up the databases of a security system (Data, Archive, In/Out,
// Video events, or any named set) as full or incremental backups on storages, and restores
// any of them, chain and all, on this or another computer from the storage alone.
//
// On a storage a dataset's folder holds its backups, each named X_YYYY_MM_DD_HH_MM_SS from
// its letter and start time:
//
//	D_2026_11_22_04_00_00/            separate files: the files as they are, MANIFEST.json last
//	D_2026_11_29_04_00_00.tar.zst     compressed (".age" appended when encrypted), MANIFEST.json
//	D_2026_11_29_04_00_00.json        as its last entry, and this label, written after it
//
// A backup exists once its MANIFEST.json (separate) or label (compressed) does: both are
// written last, so an interrupted backup never looks complete.
package dataset

import (
	"fmt"
	"strings"
	"time"
)

// idLayout is the time part of a backup's name.
const idLayout = "2006_01_02_15_04_05"

// ID names one backup: the dataset's letter and the start time, in the server's local time
// as operators read it.
type ID string

// NewID returns the ID of a backup of the dataset with letter started at t (read in t's
// location).
func NewID(letter byte, t time.Time) ID {
	return ID(string(letter) + "_" + t.Format(idLayout))
}

// ParseID checks that s is a backup name, X_YYYY_MM_DD_HH_MM_SS.
func ParseID(s string) (ID, error) {
	if len(s) != len("X_")+len(idLayout) || s[1] != '_' || !ValidLetter(s[0]) {
		return "", fmt.Errorf("backup name %q is not X_YYYY_MM_DD_HH_MM_SS (X a letter A-Z)", s)
	}
	if _, err := time.Parse(idLayout, s[2:]); err != nil {
		return "", fmt.Errorf("backup name %q: the time is not a date and time: %w", s, err)
	}
	return ID(s), nil
}

// ValidLetter reports whether c can be a dataset's letter: A to Z.
func ValidLetter(c byte) bool { return c >= 'A' && c <= 'Z' }

// ParseLetter reads a dataset letter, accepting lower case.
func ParseLetter(s string) (byte, error) {
	s = strings.ToUpper(strings.TrimSpace(s))
	if len(s) != 1 || !ValidLetter(s[0]) {
		return 0, fmt.Errorf("letter %q is not one letter A-Z (D Data, A Archive, T In/Out, V Video events)", s)
	}
	return s[0], nil
}

// ValidName reports whether name can name a dataset, and so a folder on the storages:
// 1 to 64 letters, digits, spaces, '-' or '_', not starting or ending with a space.
func ValidName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("dataset name %q must be 1 to 64 characters", name)
	}
	if strings.TrimSpace(name) != name {
		return fmt.Errorf("dataset name %q starts or ends with a space", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == ' ' || r == '-' || r == '_') {
			return fmt.Errorf("dataset name %q: only letters, digits, spaces, '-' and '_' are allowed", name)
		}
	}
	return nil
}

// DefaultFolder is where a dataset's backups go unless its settings name another folder.
func DefaultFolder(name string) string { return "vigil/datasets/" + name }
