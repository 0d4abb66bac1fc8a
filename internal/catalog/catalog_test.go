package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var fixed = time.Date(2026, 11, 22, 4, 0, 0, 123456789, time.UTC)

func fixedClock() time.Time { return fixed }

func openTest(t *testing.T, path string) *Catalog {
	t.Helper()
	c, err := Open(context.Background(), path, WithClock(fixedClock))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestOpenMigratesFromEmpty(t *testing.T) {
	ctx := context.Background()
	c := openTest(t, filepath.Join(t.TempDir(), "catalog.db"))

	v, err := c.SchemaVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v != len(migrations) {
		t.Fatalf("SchemaVersion = %d, want %d", v, len(migrations))
	}
	var appliedAt string
	if err := c.db.QueryRowContext(ctx, `SELECT applied_at FROM schema_migrations WHERE version = 1`).Scan(&appliedAt); err != nil {
		t.Fatal(err)
	}
	if want := fixed.Format(time.RFC3339Nano); appliedAt != want {
		t.Fatalf("applied_at = %q, want %q", appliedAt, want)
	}
	var n int
	if err := c.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM settings_revisions`).Scan(&n); err != nil {
		t.Fatalf("settings_revisions: %v", err)
	}
}

func TestReopenIsNoOp(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "catalog.db")
	c := openTest(t, path)
	if _, err := c.SaveSettings(ctx, []byte("server: {}\n"), "admin", "", nil); err != nil {
		t.Fatal(err)
	}
	c.Close()

	later := func() time.Time { return fixed.Add(time.Hour) }
	c2, err := Open(ctx, path, WithClock(later))
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer c2.Close()
	rows, err := c2.db.QueryContext(ctx, `SELECT version, applied_at FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []int
	for rows.Next() {
		var v int
		var at string
		if err := rows.Scan(&v, &at); err != nil {
			t.Fatal(err)
		}
		if want := fixed.Format(time.RFC3339Nano); at != want {
			t.Fatalf("version %d applied_at = %q, want %q (reapplied?)", v, at, want)
		}
		got = append(got, v)
	}
	if len(got) != len(migrations) {
		t.Fatalf("schema_migrations has versions %v, want 1..%d once each", got, len(migrations))
	}
	if _, err := c2.LatestSettings(ctx); err != nil {
		t.Fatalf("data lost on reopen: %v", err)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "catalog.db")
	c := openTest(t, path)
	newer := len(migrations) + 1
	if _, err := c.db.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, 'x')`, newer); err != nil {
		t.Fatal(err)
	}
	c.Close()

	_, err := Open(ctx, path)
	var tooNew *SchemaTooNewError
	if !errors.As(err, &tooNew) {
		t.Fatalf("Open = %v, want a *SchemaTooNewError", err)
	}
	if tooNew.Version != newer || tooNew.Known != len(migrations) {
		t.Fatalf("SchemaTooNewError = %+v, want Version %d, Known %d", tooNew, newer, len(migrations))
	}
	want := fmt.Sprintf("catalog is at schema version %d, this vigil knows up to %d: upgrade vigil", newer, len(migrations))
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("Open error = %q, want it to contain %q", err, want)
	}
}

// openAtVersion makes a catalog at path that has run only the first version steps, as an
// older vigil left it.
func openAtVersion(t *testing.T, path string, version int) *Catalog {
	t.Helper()
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		t.Fatal(err)
	}
	c := &Catalog{db: db, now: fixedClock}
	t.Cleanup(func() { c.Close() })
	if err := c.migrate(context.Background(), migrations[:version]); err != nil {
		t.Fatalf("migrate to version %d: %v", version, err)
	}
	return c
}

func TestMigrateFromVersion1(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "catalog.db")
	old := openAtVersion(t, path, 1)
	saved, err := old.SaveSettings(ctx, []byte("server: {id: nvr-01}\n"), "admin", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	old.Close()

	c := openTest(t, path)
	if v, err := c.SchemaVersion(ctx); err != nil || v != len(migrations) {
		t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, len(migrations))
	}
	if latest, err := c.LatestSettings(ctx); err != nil || latest.SHA256 != saved.SHA256 {
		t.Fatalf("LatestSettings after the migration = %+v, %v; want the revision saved before", latest, err)
	}
	if err := c.SetEventFailing(ctx, "k", fixed); err != nil {
		t.Fatal(err)
	}
	fc := []FootageComplete{{ServerID: "nvr-01", Storage: "nas", Camera: "cam1", Stream: "hi", CompleteUntil: fixed}}
	if err := c.SetFootageComplete(ctx, fc); err != nil {
		t.Fatal(err)
	}
}

func TestFailedMigrationStepRollsBack(t *testing.T) {
	ctx := context.Background()
	c := openTest(t, filepath.Join(t.TempDir(), "catalog.db"))
	steps := append(append([]string{}, migrations...),
		`CREATE TABLE good (id INTEGER)`,
		// A valid statement before the broken one shows that the whole
		// step, not just the failing statement, is undone.
		`CREATE TABLE partial (id INTEGER); THIS IS NOT SQL`,
	)

	if err := c.migrate(ctx, steps); err == nil {
		t.Fatal("migrate with a broken step succeeded")
	}
	v, err := c.SchemaVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := len(migrations) + 1; v != want {
		t.Fatalf("SchemaVersion = %d, want %d (the last good step)", v, want)
	}
	var n int
	if err := c.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE name = 'partial'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatal("the failed step left its table behind")
	}
}

func TestFileModes(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "state", "vigil")
	path := filepath.Join(dir, "catalog.db")
	c := openTest(t, path)
	if _, err := c.SaveSettings(ctx, []byte("x: 1\n"), "admin", "", nil); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		path string
		want os.FileMode
	}{
		{dir, 0o700},
		{path, 0o600},
		{path + "-wal", 0o600},
	} {
		fi, err := os.Stat(tt.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != tt.want {
			t.Errorf("%s mode = %o, want %o", tt.path, got, tt.want)
		}
	}
}

func TestOpenTightensLooseFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	openTest(t, path)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Fatalf("mode = %o, want 600", got)
	}
}

func TestOpenAwkwardPath(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a dir?#%", "cat alog.db")
	c := openTest(t, path)
	if _, err := c.SaveSettings(ctx, []byte("x: 1\n"), "admin", "", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("catalog not at the path given: %v", err)
	}
}

func TestPragmas(t *testing.T) {
	ctx := context.Background()
	c := openTest(t, filepath.Join(t.TempDir(), "catalog.db"))
	for _, tt := range []struct {
		pragma, want string
	}{
		{"journal_mode", "wal"},
		{"foreign_keys", "1"},
		{"synchronous", "2"}, // FULL
		{"busy_timeout", "5000"},
	} {
		var got string
		if err := c.db.QueryRowContext(ctx, "PRAGMA "+tt.pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("PRAGMA %s = %q, want %q", tt.pragma, got, tt.want)
		}
	}
}
