// Package catalog is Vigil's local state, kept in one SQLite file: settings
// revisions, which events last failed, and how far each camera's footage is
// complete now, and runs, the backup index and users as they come. Backups on a storage never depend on it: they describe
// themselves, so a lost catalog costs history, not data.
//
// The catalog knows nothing of the settings' types; callers hand it documents
// and already-computed changes.
package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	// The pure-Go driver keeps the binary free of cgo, so it cross-compiles
	// for the recorders' platforms.
	_ "modernc.org/sqlite"
)

// ErrNotFound is returned (wrapped) when a requested record does not exist.
var ErrNotFound = errors.New("not found")

// Catalog is an open catalog database. It is safe for concurrent use, and
// several processes may open the same file: writers wait for each other up to
// the busy timeout.
type Catalog struct {
	db  *sql.DB
	now func() time.Time
}

// Option configures Open.
type Option func(*Catalog)

// WithClock makes the catalog read the time from now instead of time.Now,
// so that tests get stable timestamps.
func WithClock(now func() time.Time) Option {
	return func(c *Catalog) { c.now = now }
}

// Open opens the catalog at path, creating it and its folder if needed, and
// brings its schema up to date. The folder is created 0700 and the file is
// kept 0600, since settings documents may hold passwords. A catalog written
// by a newer Vigil is refused with a *SchemaTooNewError rather than used.
func Open(ctx context.Context, path string, opts ...Option) (*Catalog, error) {
	c := &Catalog{now: time.Now}
	for _, o := range opts {
		o(c)
	}
	if err := c.open(ctx, path); err != nil {
		return nil, fmt.Errorf("open catalog %s: %w", path, err)
	}
	return c, nil
}

func (c *Catalog) open(ctx context.Context, path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return err
	}
	// SQLite would create the file 0644; creating it first fixes the mode, and
	// SQLite gives the -wal and -shm files the database file's mode.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	f.Close()
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(abs, 0o600); err != nil {
			return err
		}
	}

	db, err := sql.Open("sqlite", dsn(abs))
	if err != nil {
		return err
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return err
	}
	c.db = db
	if err := c.migrate(ctx, migrations); err != nil {
		db.Close()
		return err
	}
	return nil
}

// dsn builds the driver's connection string. A file: URI lets any path work,
// "?" and "#" included.
func dsn(abs string) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(FULL)")
	// Transactions that read and then write would otherwise fail at once with
	// SQLITE_BUSY when two of them overlap, whatever the busy timeout;
	// taking the write lock at BEGIN makes them wait their turn instead.
	q.Set("_txlock", "immediate")
	u := url.URL{Path: filepath.ToSlash(abs)}
	return "file:" + u.EscapedPath() + "?" + q.Encode()
}

// Close closes the database. The Catalog must not be used afterwards.
func (c *Catalog) Close() error {
	if err := c.db.Close(); err != nil {
		return fmt.Errorf("close catalog: %w", err)
	}
	return nil
}

// timeFormat is how every timestamp is stored, in UTC: text that reads well in
// the sqlite3 shell. Order rows by id, not by this text: it drops trailing
// zeros from the fraction, so it does not sort lexically.
const timeFormat = time.RFC3339Nano

func (c *Catalog) timestamp() string { return c.now().UTC().Format(timeFormat) }

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(timeFormat, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("stored time %q: %w", s, err)
	}
	return t.UTC(), nil
}
