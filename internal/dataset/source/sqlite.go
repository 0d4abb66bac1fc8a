package source

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// sqliteSource is one SQLite database file. It is copied with SQLite's online backup API
// inside a read transaction, never as raw bytes: a raw copy of a live database (and of
// its -wal file, which may be checkpointed meanwhile) can be torn.
type sqliteSource struct {
	named
	path string
	busy time.Duration
}

var (
	_ Source  = (*sqliteSource)(nil)
	_ InPlace = (*sqliteSource)(nil)
)

// backupPagesPerStep is how many pages one step of the backup API copies before the
// context is checked again.
const backupPagesPerStep = 1024

func parseSQLite(raw string, opts Options) (*sqliteSource, error) {
	p, _, err := parseLocalURL("sqlite", raw)
	if err != nil {
		return nil, err
	}
	if p == "/" || strings.HasSuffix(strings.SplitN(raw, "?", 2)[0], "/") {
		return nil, fmt.Errorf("source %q: names a folder; a SQLite source is a database file", redact(raw))
	}
	busy := opts.BusyTimeout
	if busy <= 0 {
		busy = 30 * time.Second
	}
	return &sqliteSource{named: named{folderName("sqlite", filepath.Base(p))}, path: p, busy: busy}, nil
}

func (s *sqliteSource) String() string { return "sqlite://" + (&url.URL{Path: s.path}).EscapedPath() }

// Snapshot copies the database into one file, <base>, in a folder of its own under tmp.
// The copy is what one read transaction saw: the application goes on writing in WAL
// mode; in rollback-journal mode its commits wait (up to its own busy timeout) while
// the pages are copied, as they would for any reader. The copy is switched to
// rollback-journal mode so that it is a single self-contained file.
func (s *sqliteSource) Snapshot(ctx context.Context, tmp string, fn func(File) error) error {
	live, err := os.Stat(s.path)
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", s, err)
	}
	if !live.Mode().IsRegular() {
		return fmt.Errorf("snapshot %s: not a regular file", s)
	}
	// In WAL mode the newest writes are in the -wal file, and the database file's time
	// may be far older.
	modTime := live.ModTime()
	if wal, err := os.Stat(s.path + "-wal"); err == nil && wal.ModTime().After(modTime) {
		modTime = wal.ModTime()
	}
	dir, err := os.MkdirTemp(tmp, s.Name()+"-")
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", s, err)
	}
	base := filepath.Base(s.path)
	dst := filepath.Join(dir, base)
	if err := s.copyLive(ctx, dst); err != nil {
		return fmt.Errorf("snapshot %s: %w", s, err)
	}
	fi, err := os.Stat(dst)
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", s, err)
	}
	return fn(File{
		Path:    base,
		Size:    fi.Size(),
		Mode:    live.Mode().Perm(),
		ModTime: modTime,
		Open:    func() (io.ReadCloser, error) { return openChecked(dst, base, fi.Size(), time.Time{}) },
	})
}

// copyLive writes a consistent copy of the live database to dst, a new file.
func (s *sqliteSource) copyLive(ctx context.Context, dst string) error {
	db, conn, err := s.openLive(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	defer conn.Close()
	if err := backupTo(ctx, conn, dst); err != nil {
		return err
	}
	return selfContained(ctx, dst)
}

// openLive opens the live database, which must exist, with the busy timeout, on one
// connection.
func (s *sqliteSource) openLive(ctx context.Context) (*sql.DB, *sql.Conn, error) {
	db, err := sql.Open("sqlite", sqliteDSN(s.path, "rw", "busy_timeout("+strconv.FormatInt(s.busy.Milliseconds(), 10)+")"))
	if err != nil {
		return nil, nil, fmt.Errorf("open database: %w", err)
	}
	conn, err := db.Conn(ctx)
	if err == nil {
		err = conn.PingContext(ctx)
		if err != nil {
			conn.Close()
		}
	}
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("open database: %w", err)
	}
	return db, conn, nil
}

// backuper is what modernc's connection offers for the online backup API.
type backuper interface {
	NewBackup(dstURI string) (*sqlite.Backup, error)
	NewRestore(srcURI string) (*sqlite.Backup, error)
}

// backupTo copies the database of conn to the new file dst. It holds a read transaction
// for the whole copy: the copy is then what that transaction saw, and the backup never
// starts over because another connection wrote in between two steps.
func backupTo(ctx context.Context, conn *sql.Conn, dst string) (err error) {
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		return fmt.Errorf("begin read transaction: %w", err)
	}
	defer func() {
		if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil && err == nil {
			err = fmt.Errorf("end read transaction: %w", rerr)
		}
	}()
	// BEGIN takes no lock yet; the first read does, waiting out the busy timeout.
	var n int
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&n); err != nil {
		return fmt.Errorf("begin read transaction: %w", err)
	}
	return conn.Raw(func(dc any) error {
		b, ok := dc.(backuper)
		if !ok {
			return fmt.Errorf("the SQLite driver (%T) has no online backup", dc)
		}
		bk, err := b.NewBackup(sqliteDSN(dst, "rwc"))
		if err != nil {
			return fmt.Errorf("start backup to %s: %w", dst, err)
		}
		return step(ctx, bk, "back up")
	})
}

// step runs a backup or restore to its end, checking ctx between steps, and releases
// it. A lock another connection holds is waited out until ctx ends; stopping early
// leaves the destination as it was.
func step(ctx context.Context, bk *sqlite.Backup, what string) error {
	delay := 10 * time.Millisecond
	for {
		if err := ctx.Err(); err != nil {
			bk.Finish()
			return fmt.Errorf("%s: %w", what, err)
		}
		more, err := bk.Step(backupPagesPerStep)
		if err != nil && isBusy(err) {
			select {
			case <-ctx.Done():
			case <-time.After(delay):
			}
			delay = min(2*delay, time.Second)
			continue
		}
		if err != nil {
			bk.Finish()
			return fmt.Errorf("%s: %w", what, err)
		}
		if !more {
			break
		}
	}
	if err := bk.Finish(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

func isBusy(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	code := se.Code() & 0xff
	return code == sqlite3.SQLITE_BUSY || code == sqlite3.SQLITE_LOCKED
}

// selfContained switches a copy made by the backup API to rollback-journal mode. The
// backup API copies the source's header, so the copy of a WAL database would otherwise
// be in WAL mode too, and reading it would make -wal and -shm files beside it (or fail
// in a read-only folder).
func selfContained(ctx context.Context, p string) error {
	db, err := sql.Open("sqlite", sqliteDSN(p, "rw"))
	if err != nil {
		return fmt.Errorf("open copy: %w", err)
	}
	defer db.Close()
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode=DELETE").Scan(&mode); err != nil {
		return fmt.Errorf("set the copy's journal mode: %w", err)
	}
	if mode != "delete" {
		return fmt.Errorf("set the copy's journal mode: still %s", mode)
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("close copy: %w", err)
	}
	return nil
}

// RestoreInPlace writes a safety copy of the live database into safetyDir with the
// backup API, then copies the restored file into the live database with the backup API
// too. The application may keep its connections open: the restore is one write
// transaction of the live database, which its connections see as any other commit (a
// file swap under a live WAL would corrupt it). Writes the application makes between the
// safety copy and the restore are in neither. The live database is checked with PRAGMA
// integrity_check afterwards. It must exist: on a new machine, copy the backup's file
// into place instead, before the application starts.
func (s *sqliteSource) RestoreInPlace(ctx context.Context, dir, safetyDir string) (string, error) {
	src, err := restoredFile(dir, filepath.Base(s.path), "")
	if err != nil {
		return "", fmt.Errorf("restore %s: %w", s, err)
	}
	// A damaged backup must not replace a good database.
	if err := checkIntegrity(ctx, src, "quick_check"); err != nil {
		return "", fmt.Errorf("restore %s: restored file %s: %w", s, src, err)
	}
	safety, err := uniquePath(safetyDir, filepath.Base(s.path))
	if err != nil {
		return "", fmt.Errorf("restore %s: %w", s, err)
	}
	db, conn, err := s.openLive(ctx)
	if err != nil {
		return "", fmt.Errorf("restore %s: %w", s, err)
	}
	defer db.Close()
	defer conn.Close()
	if err := backupTo(ctx, conn, safety); err != nil {
		os.Remove(safety)
		return "", fmt.Errorf("restore %s: safety copy: %w", s, err)
	}
	if err := selfContained(ctx, safety); err != nil {
		return safety, fmt.Errorf("restore %s: safety copy: %w", s, err)
	}
	err = conn.Raw(func(dc any) error {
		b, ok := dc.(backuper)
		if !ok {
			return fmt.Errorf("the SQLite driver (%T) has no online backup", dc)
		}
		bk, err := b.NewRestore(sqliteDSN(src, "ro"))
		if err != nil {
			return fmt.Errorf("start restore from %s: %w", src, err)
		}
		return step(ctx, bk, "restore")
	})
	if err != nil {
		return safety, fmt.Errorf("restore %s (the live database is unchanged): %w", s, err)
	}
	if err := integrityCheck(ctx, conn, "integrity_check"); err != nil {
		return safety, fmt.Errorf("restore %s: the restored database: %w (the content before is in %s)", s, err, safety)
	}
	return safety, nil
}

// checkIntegrity runs PRAGMA check (integrity_check or quick_check) on the database file
// p, read-only.
func checkIntegrity(ctx context.Context, p, check string) error {
	db, err := sql.Open("sqlite", sqliteDSN(p, "ro"))
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer conn.Close()
	return integrityCheck(ctx, conn, check)
}

func integrityCheck(ctx context.Context, conn *sql.Conn, check string) error {
	rows, err := conn.QueryContext(ctx, "PRAGMA "+check)
	if err != nil {
		return fmt.Errorf("%s: %w", check, err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return fmt.Errorf("%s: %w", check, err)
		}
		if line != "ok" && len(problems) < 5 {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: %w", check, err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s found damage: %v", check, problems)
	}
	return nil
}

// sqliteDSN is the driver's name for the file p: a file: URI, so that any path works
// ("?" and "#" included), opened in mode (ro, rw: must exist, rwc: may be made), with
// pragmas run on each new connection.
func sqliteDSN(p, mode string, pragmas ...string) string {
	q := url.Values{}
	q.Set("mode", mode)
	for _, pr := range pragmas {
		q.Add("_pragma", pr)
	}
	return "file:" + (&url.URL{Path: filepath.ToSlash(p)}).EscapedPath() + "?" + q.Encode()
}

// parseError is the error for a source URL that url.Parse refused. Its reason is left
// out when the URL seems to hold a password, since the reason may quote part of it.
func parseError(raw string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if shown := redact(raw); shown != raw {
		return fmt.Errorf("source %q: not a valid URL", shown)
	}
	return fmt.Errorf("source %q: %v", raw, err)
}

// urlUnescape decodes %XX escapes and nothing else.
func urlUnescape(s string) (string, error) { return url.PathUnescape(s) }
