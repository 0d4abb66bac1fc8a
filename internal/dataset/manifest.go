package dataset

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"
)

// ManifestName is the manifest's name in a backup: the last file of a separate-files
// folder, and the last entry of a compressed archive.
const ManifestName = "MANIFEST.json"

// manifestVersion is the version of the manifest format this Vigil writes; it reads this
// one and older.
const manifestVersion = 1

// maxManifestSize bounds a manifest read from a storage: a hostile or damaged one must not
// take all memory. A million files take about 250 MB; datasets are databases, with few.
const maxManifestSize = 256 << 20

// Kind is a backup's type.
type Kind string

const (
	Full        Kind = "full"
	Incremental Kind = "incremental"
)

// Format is how a backup's files are stored.
type Format string

const (
	Separate   Format = "separate"   // a folder with the files as they are
	Compressed Format = "compressed" // one .tar.zst, .tar.zst.age when encrypted
)

// ParseKind reads --type.
func ParseKind(s string) (Kind, error) {
	switch k := Kind(strings.ToLower(s)); k {
	case Full, Incremental:
		return k, nil
	}
	return "", fmt.Errorf("type %q is not full or incremental", s)
}

// ParseFormat reads --format.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(s)); f {
	case Separate, Compressed:
		return f, nil
	}
	return "", fmt.Errorf("format %q is not separate or compressed", s)
}

// Manifest describes one backup. It is all a restore needs besides the files, so a backup
// can be restored where the catalog that made it is gone.
type Manifest struct {
	Version   int         `json:"version"`
	ID        ID          `json:"id"`
	Dataset   string      `json:"dataset"`
	Created   time.Time   `json:"created"` // when the backup started, UTC
	Kind      Kind        `json:"type"`
	Parent    ID          `json:"parent,omitempty"` // incremental: the backup this one changes
	Format    Format      `json:"format"`
	Encrypted bool        `json:"encrypted,omitempty"`
	Sources   []SourceRef `json:"sources"`
	// Files are the files this backup holds: all of them in a full backup, those whose
	// content changed since the parent in an incremental.
	Files []FileRecord `json:"files"`
	// Deleted are the files of the parent's state that are gone (incremental).
	Deleted []string `json:"deleted,omitempty"`
	// StateFiles and StateBytes are the size of the state this backup restores to.
	StateFiles int   `json:"state_files"`
	StateBytes int64 `json:"state_bytes"`
}

// SourceRef is one source of a backup: its folder in the backup and what it was.
type SourceRef struct {
	Name string `json:"name"` // folder in the backup
	Ref  string `json:"ref"`  // e.g. sqlite:///srv/acs/data.db, without secrets
}

// FileRecord is one file of a backup.
type FileRecord struct {
	Path    string      `json:"path"` // slash-separated: <source name>/<path in the source>
	Size    int64       `json:"size"`
	Mode    fs.FileMode `json:"mode"`
	ModTime time.Time   `json:"mtime"`
	SHA256  string      `json:"sha256"`
}

// Label is what a compressed backup says of itself beside its archive, in the clear even
// when the archive is encrypted: enough to list backups, follow chains, apply retention
// and check the archive's integrity without a key, and nothing of the files.
type Label struct {
	Version   int       `json:"version"`
	ID        ID        `json:"id"`
	Dataset   string    `json:"dataset"`
	Created   time.Time `json:"created"`
	Kind      Kind      `json:"type"`
	Parent    ID        `json:"parent,omitempty"`
	Format    Format    `json:"format"`
	Encrypted bool      `json:"encrypted,omitempty"`
	Archive   string    `json:"archive"` // the archive's name beside the label
	Size      int64     `json:"size"`    // the archive's bytes
	SHA256    string    `json:"sha256"`  // of the archive as stored
	Files     int       `json:"files"`
	Bytes     int64     `json:"bytes"`    // of the files, uncompressed
	Manifest  int64     `json:"manifest"` // bytes of MANIFEST.json in the archive
}

// label is the part of a manifest a Label repeats.
func (m *Manifest) label() Label {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return Label{
		Version: manifestVersion, ID: m.ID, Dataset: m.Dataset, Created: m.Created, Kind: m.Kind,
		Parent: m.Parent, Format: m.Format, Encrypted: m.Encrypted, Files: len(m.Files), Bytes: n,
	}
}

func (m *Manifest) encode() []byte {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		panic(err) // only plain types
	}
	return append(b, '\n')
}

// decodeJSON reads one JSON document of at most maxManifestSize bytes into v, refusing
// unknown fields only in the sense of ignoring them: a newer Vigil may add some.
func decodeJSON(r io.Reader, v any, what string) error {
	data, err := io.ReadAll(io.LimitReader(r, maxManifestSize+1))
	if err != nil {
		return fmt.Errorf("read %s: %w", what, err)
	}
	if len(data) > maxManifestSize {
		return fmt.Errorf("%s is larger than %d bytes: refused", what, maxManifestSize)
	}
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(v); err != nil {
		return fmt.Errorf("%s is not valid JSON: %w", what, err)
	}
	return nil
}

// readManifest decodes and checks a manifest: every path it names must be safe to write
// below a restore's target, since it may come from a damaged or hostile storage.
func readManifest(r io.Reader, want ID) (*Manifest, error) {
	var m Manifest
	if err := decodeJSON(r, &m, ManifestName); err != nil {
		return nil, err
	}
	if err := m.check(want); err != nil {
		return nil, fmt.Errorf("%s of %s: %w", ManifestName, want, err)
	}
	return &m, nil
}

func (m *Manifest) check(want ID) error {
	var errs []error
	if m.Version < 1 || m.Version > manifestVersion {
		errs = append(errs, fmt.Errorf("version %d is not one this Vigil reads (1 to %d): upgrade Vigil", m.Version, manifestVersion))
	}
	if want != "" && m.ID != want {
		errs = append(errs, fmt.Errorf("it names backup %q", m.ID))
	}
	if _, err := ParseID(string(m.ID)); err != nil {
		errs = append(errs, err)
	}
	switch m.Kind {
	case Full:
		if m.Parent != "" || len(m.Deleted) > 0 {
			errs = append(errs, errors.New("a full backup has a parent or deleted files"))
		}
	case Incremental:
		if _, err := ParseID(string(m.Parent)); err != nil {
			errs = append(errs, fmt.Errorf("parent: %w", err))
		} else if m.Parent >= m.ID {
			errs = append(errs, fmt.Errorf("parent %s is not older", m.Parent))
		}
	default:
		errs = append(errs, fmt.Errorf("type %q is not full or incremental", m.Kind))
	}
	seen := make(map[string]bool, len(m.Files))
	for _, f := range m.Files {
		if err := CheckPath(f.Path); err != nil {
			errs = append(errs, err)
		} else if seen[f.Path] {
			errs = append(errs, fmt.Errorf("%s is listed twice", f.Path))
		}
		seen[f.Path] = true
		if f.Size < 0 || len(f.SHA256) != 64 {
			errs = append(errs, fmt.Errorf("%s: bad size or hash", f.Path))
		}
	}
	for _, d := range m.Deleted {
		if err := CheckPath(d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// CheckPath refuses a file path of a backup that could write outside a restore's target:
// absolute, with "..", ".", or empty elements, backslashes or control characters. The
// manifest's own name is reserved.
func CheckPath(p string) error {
	if p == "" || p == ManifestName || strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\\\x00") {
		return fmt.Errorf("file path %q is not allowed in a backup", p)
	}
	for _, el := range strings.Split(p, "/") {
		if el == "" || el == "." || el == ".." {
			return fmt.Errorf("file path %q is not allowed in a backup", p)
		}
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("file path %q has a control character", p)
		}
	}
	if path.Clean(p) != p {
		return fmt.Errorf("file path %q is not clean", p)
	}
	return nil
}

// state is the files a backup restores to, with the backup each comes from.
type state map[string]stateFile

type stateFile struct {
	FileRecord
	From ID
}

// apply returns the state after m, given the state of its parent.
func (s state) apply(m *Manifest) state {
	next := make(state, len(s)+len(m.Files))
	if m.Kind == Incremental {
		for p, f := range s {
			next[p] = f
		}
		for _, d := range m.Deleted {
			delete(next, d)
		}
	}
	for _, f := range m.Files {
		next[f.Path] = stateFile{FileRecord: f, From: m.ID}
	}
	return next
}

// paths returns the state's paths in order.
func (s state) paths() []string {
	ps := make([]string, 0, len(s))
	for p := range s {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}
