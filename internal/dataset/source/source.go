// Package source reads the things a dataset backs up (SQLite databases, PostgreSQL
// databases, folders) as consistent snapshots while the application that owns them keeps
// writing, and puts restored databases back in place.
//
// A source is given as a URL (see Parse):
//
//	sqlite:///srv/acs/data.db                                  one SQLite database file
//	postgres://vigil@127.0.0.1:5432/acs                        one PostgreSQL database
//	postgres://vigil@127.0.0.1:5432/?db=acs&db=archive         several, one Source each
//	dir:///srv/acs/config?include=**/*.json&exclude=tmp        a folder, read live
//
// Passwords never come in the URL: a URL shows in process lists, shell histories and
// logs. They come in Options.
package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// File is one file of a snapshot.
type File struct {
	Path    string      // slash-separated, relative to the source's folder in a backup
	Size    int64       // bytes
	Mode    fs.FileMode // permission bits
	ModTime time.Time
	// Open reads the snapshot's content. For live folders the file may change meanwhile:
	// the reader yields at most Size bytes, and returns an error wrapping ErrChanged if it
	// ends early, or if the file is no longer Size bytes long or has a new modification
	// time once Size bytes were read. Open itself fails with an error wrapping ErrChanged
	// when the file is gone.
	Open func() (io.ReadCloser, error)
}

// ErrChanged is wrapped by the errors of File.Open and of its reader when a live file
// changed while it was read: its copy would be torn, so the caller must read it again or
// report it.
var ErrChanged = errors.New("the file changed while it was read")

// Source is one thing a dataset backs up, giving a consistent snapshot while the
// application keeps writing.
type Source interface {
	// Name is the source's folder in a backup, unique within a dataset once Dedupe ran:
	// "sqlite-<file base>", "postgres-<db>" (one Source per database), "dir-<folder base>".
	// Characters other than ASCII letters, digits, '.', '_' and '-' become '_', so that the
	// name is a valid folder on every storage.
	Name() string
	// String describes it for manifests and logs, never with a secret
	// (e.g. "sqlite:///srv/acs/data.db").
	String() string
	// Snapshot makes the consistent copy (into tmp, a folder the caller owns and removes,
	// when the source needs one) and calls fn for each file in Path order (byte-wise
	// order of the slash-separated paths). fn's error stops it and is returned. The files
	// a snapshot made in tmp stay there until the caller removes tmp, so Open may be
	// called after Snapshot returned; several sources may share one tmp.
	Snapshot(ctx context.Context, tmp string, fn func(File) error) error
}

// InPlace is implemented by sources that can put restored content back into the live
// database.
type InPlace interface {
	// RestoreInPlace replaces the live content with the files under dir (this source's
	// folder of a restored backup, as Snapshot produced it) after writing a safety copy
	// of the live content into safetyDir; it returns the safety copy's path. Once the
	// safety copy is written its path is returned even with an error, so that the
	// operator can be told where it is. An existing file in safetyDir is never
	// overwritten: the copy gets a new name.
	RestoreInPlace(ctx context.Context, dir, safetyDir string) (safety string, err error)
}

// Options are the settings that do not belong in a source URL.
type Options struct {
	// Password is for postgres; from --source-password-file / PGPASSWORD / settings;
	// never in a URL (a password in the URL is refused with a clear message).
	Password string
	// PGBin is the folder of pg_dump and pg_restore; "" finds the newest
	// /usr/lib/postgresql/*/bin, or else PATH. pg_dump must be at least as new as the
	// server.
	PGBin string
	// Warn, when set, is told about what a dir source leaves out on purpose: symbolic
	// links (never followed), devices, pipes and sockets, and files that vanished while
	// the folder was walked.
	Warn func(msg string)
	// BusyTimeout is how long a SQLite source waits for a lock the application holds;
	// 0 means 30 s.
	BusyTimeout time.Duration
}

// Parse reads one --source: sqlite:///abs/path/db.sqlite, postgres://user@host:port/dbname
// (several databases: postgres://user@host:port/?db=Data&db=Archive, one Source each),
// dir:///abs/path?include=GLOB&include=…&exclude=GLOB (see the dir source for the globs).
// Its errors say what is wrong in words an operator can act on, and never repeat a
// password.
func Parse(raw string, opts Options) ([]Source, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, errors.New("empty source: use sqlite:///path/db.sqlite, postgres://user@host:port/db or dir:///path")
	}
	if i := strings.IndexFunc(raw, isControl); i >= 0 {
		return nil, fmt.Errorf("source %q: control character at byte %d", redact(raw), i)
	}
	scheme, _, ok := strings.Cut(raw, ":")
	if !ok || scheme == "" || strings.ContainsAny(scheme, "/\\") {
		return nil, fmt.Errorf("source %q: not a URL (use sqlite:///path/db.sqlite, postgres://user@host:port/db or dir:///path)", redact(raw))
	}
	switch strings.ToLower(scheme) {
	case "sqlite", "sqlite3":
		s, err := parseSQLite(raw, opts)
		if err != nil {
			return nil, err
		}
		return []Source{s}, nil
	case "postgres", "postgresql":
		return parsePostgres(raw, opts)
	case "dir":
		s, err := parseDir(raw, opts)
		if err != nil {
			return nil, err
		}
		return []Source{s}, nil
	case "file":
		return nil, fmt.Errorf("source %q: say what the file is: sqlite:///path for a SQLite database, dir:///path for a folder", redact(raw))
	default:
		return nil, fmt.Errorf("source %q: unknown kind %q (use sqlite://, postgres:// or dir://)", redact(raw), scheme)
	}
}

// Dedupe makes Names unique by appending "-2", "-3"… in order. Names are compared without
// regard to case, because two folders that differ only in case are one folder on SMB
// shares and Windows disks.
func Dedupe(srcs []Source) {
	taken := map[string]bool{}
	for _, s := range srcs {
		name := s.Name()
		if taken[strings.ToLower(name)] {
			r, ok := s.(renamable)
			if !ok {
				continue
			}
			base := name
			for n := 2; taken[strings.ToLower(name)]; n++ {
				name = base + "-" + strconv.Itoa(n)
			}
			r.setName(name)
		}
		taken[strings.ToLower(name)] = true
	}
}

// renamable is what Dedupe needs to give a source another name.
type renamable interface{ setName(string) }

// named holds a source's Name, which Dedupe may change.
type named struct{ name string }

func (n *named) Name() string        { return n.name }
func (n *named) setName(name string) { n.name = name }

// folderName makes prefix-s a valid folder name on every storage.
func folderName(prefix, s string) string {
	var b strings.Builder
	b.WriteString(prefix)
	b.WriteByte('-')
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// redact hides the password of a URL's user part, and the values of query options whose
// name says "pass", so that an error about a URL that has one (which Parse refuses) does
// not spread it into logs. A password may hold any character, so it masks from the
// first ':' after the user name to the last '@', and hides too much rather than too
// little.
func redact(raw string) string {
	if _, rest, ok := strings.Cut(raw, "://"); ok {
		start := len(raw) - len(rest)
		at := strings.LastIndex(rest, "@")
		colon := strings.Index(rest, ":")
		if at > 0 && colon >= 0 && colon < at && !strings.Contains(rest[:colon], "/") {
			raw = raw[:start+colon+1] + "xxxxx" + raw[start+at:]
		}
	}
	base, query, ok := strings.Cut(raw, "?")
	if !ok {
		return raw
	}
	parts := strings.Split(query, "&")
	for i, kv := range parts {
		if k, _, ok := strings.Cut(kv, "="); ok && strings.Contains(strings.ToLower(k), "pass") {
			parts[i] = k + "=xxxxx"
		}
	}
	return base + "?" + strings.Join(parts, "&")
}

// parseQuery splits a raw query into its keys' values. Unlike url.ParseQuery it keeps
// '+' as it is, since globs and file names use it, and it refuses nothing but bad
// escapes.
func parseQuery(raw string) (map[string][]string, error) {
	q := map[string][]string{}
	if raw == "" {
		return q, nil
	}
	for _, kv := range strings.Split(raw, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		key, err := urlUnescape(k)
		if err != nil {
			return nil, err
		}
		val, err := urlUnescape(v)
		if err != nil {
			return nil, err
		}
		q[key] = append(q[key], val)
	}
	return q, nil
}

// checkOptions refuses query keys that kind does not know.
func checkOptions(q map[string][]string, known ...string) error {
	for k := range q {
		found := false
		for _, kk := range known {
			found = found || k == kk
		}
		if !found {
			if len(known) == 0 {
				return fmt.Errorf("unknown option %q (this kind takes none)", k)
			}
			return fmt.Errorf("unknown option %q (known: %s)", k, strings.Join(known, ", "))
		}
	}
	return nil
}

// parseLocalURL reads a sqlite:// or dir:// URL: an absolute path on this machine, clean
// of control characters, and the options known to its kind.
func parseLocalURL(kind, raw string, known ...string) (string, map[string][]string, error) {
	shown := redact(raw)
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "", nil, parseError(raw, err)
	case u.User != nil:
		return "", nil, fmt.Errorf("source %q: a %s source has no user; use %s:///path", shown, kind, kind)
	case u.Fragment != "" || u.RawFragment != "" || strings.HasSuffix(raw, "#"):
		return "", nil, fmt.Errorf("source %q: '#' starts a fragment; write it as %%23", shown)
	case u.Host != "" && u.Host != "localhost":
		return "", nil, fmt.Errorf("source %q: the path must be absolute, after three slashes (%s:///srv/…); %q reads as a host", shown, kind, u.Host)
	case u.Opaque != "" || !strings.HasPrefix(u.Path, "/"):
		return "", nil, fmt.Errorf("source %q: the path must be absolute (%s:///srv/…)", shown, kind)
	case strings.IndexFunc(u.Path, isControl) >= 0:
		return "", nil, fmt.Errorf("source %q: the path has a control character in it", shown)
	}
	q, err := parseQuery(u.RawQuery)
	if err == nil {
		err = checkOptions(q, known...)
	}
	if err != nil {
		return "", nil, fmt.Errorf("source %q: %w", shown, err)
	}
	return filepath.Clean(u.Path), q, nil
}

// checkedReader reads at most size bytes of a file and fails with ErrChanged when the file
// turns out shorter, or (for live files) when its size or modification time changed by
// the time size bytes were read.
type checkedReader struct {
	f       *os.File
	name    string
	size    int64
	read    int64
	modTime time.Time // zero: the file is a private copy, only its length is checked
}

// openChecked opens a file of a snapshot for reading. A live file is opened without
// following a symbolic link that replaced it since it was listed, and must still be a
// regular file.
func openChecked(abs, name string, size int64, modTime time.Time) (io.ReadCloser, error) {
	f, err := openNoFollow(abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || isLoop(err) {
			return nil, fmt.Errorf("open %s: %w: %w", name, ErrChanged, err)
		}
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("open %s: %w: it is no longer a regular file", name, ErrChanged)
	}
	return &checkedReader{f: f, name: name, size: size, modTime: modTime}, nil
}

func (r *checkedReader) Read(p []byte) (int, error) {
	if r.read >= r.size {
		return 0, r.atEnd()
	}
	if rest := r.size - r.read; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := r.f.Read(p)
	r.read += int64(n)
	if err == io.EOF {
		if r.read < r.size {
			return n, fmt.Errorf("read %s: %w: it ended after %d of %d bytes", r.name, ErrChanged, r.read, r.size)
		}
		err = nil
	}
	if err != nil {
		return n, fmt.Errorf("read %s: %w", r.name, err)
	}
	return n, nil
}

// atEnd checks, once size bytes were read, that they were the whole file as it was
// listed.
func (r *checkedReader) atEnd() error {
	fi, err := r.f.Stat()
	if err != nil {
		return fmt.Errorf("read %s: %w", r.name, err)
	}
	if fi.Size() != r.size {
		return fmt.Errorf("read %s: %w: it is now %d bytes, not %d", r.name, ErrChanged, fi.Size(), r.size)
	}
	if !r.modTime.IsZero() && !fi.ModTime().Equal(r.modTime) {
		return fmt.Errorf("read %s: %w: it was modified at %s", r.name, ErrChanged, fi.ModTime().Format(time.RFC3339Nano))
	}
	return io.EOF
}

func (r *checkedReader) Close() error { return r.f.Close() }

// uniquePath is a path in dir for a file named like name that does not exist yet:
// name, or name with "-2", "-3"… before its extension.
func uniquePath(dir, name string) (string, error) {
	ext := filepath.Ext(name)
	stem := strings.TrimSuffix(name, ext)
	for n := 1; n < 10000; n++ {
		p := filepath.Join(dir, name)
		if n > 1 {
			p = filepath.Join(dir, stem+"-"+strconv.Itoa(n)+ext)
		}
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			return p, nil
		} else if err != nil {
			return "", fmt.Errorf("choose a safety copy name in %s: %w", dir, err)
		}
	}
	return "", fmt.Errorf("choose a safety copy name in %s: too many copies of %s", dir, name)
}

// restoredFile finds the file to restore in dir: want, or else the only file ending in
// ext (a backup made under another name, say on another machine).
func restoredFile(dir, want, ext string) (string, error) {
	p := filepath.Join(dir, want)
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
		return p, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("read restored folder: %w", err)
	}
	var found []string
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ext) {
			found = append(found, e.Name())
		}
	}
	switch len(found) {
	case 1:
		return filepath.Join(dir, found[0]), nil
	case 0:
		return "", fmt.Errorf("restored folder %s has no %s and no other *%s file", dir, want, ext)
	default:
		return "", fmt.Errorf("restored folder %s has no %s but several *%s files (%s): which one is meant is unclear", dir, want, ext, strings.Join(found, ", "))
	}
}
