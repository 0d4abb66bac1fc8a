package catalog

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations are the schema steps, in order: migrations[i] takes the catalog
// to version i+1. Steps are only ever appended; a released step is never
// edited, since catalogs in the field have already run it.
var migrations = []string{
	// 1: settings revisions.
	`CREATE TABLE settings_revisions (
		id         INTEGER PRIMARY KEY AUTOINCREMENT,
		created_at TEXT NOT NULL,
		author     TEXT NOT NULL,
		comment    TEXT NOT NULL DEFAULT '',
		document   BLOB NOT NULL,
		sha256     TEXT NOT NULL,
		changes    TEXT NOT NULL DEFAULT '[]'
	)`,
	// 2: which event keys last delivered a failure, and up to when each camera's footage
	// is complete on each storage.
	`CREATE TABLE event_state (
		key           TEXT PRIMARY KEY,
		failing_since TEXT NOT NULL
	);
	CREATE TABLE footage_complete (
		server_id      TEXT NOT NULL,
		storage        TEXT NOT NULL,
		camera         TEXT NOT NULL,
		stream         TEXT NOT NULL,
		complete_until TEXT NOT NULL,
		updated        TEXT NOT NULL,
		PRIMARY KEY (server_id, storage, camera, stream)
	)`,
	// 3: the due time each scheduled job last dealt with.
	`CREATE TABLE job_state (
		job      TEXT PRIMARY KEY,
		last_due TEXT NOT NULL
	)`,
	// 4: devices added from the command line (their settings as JSON, the password apart),
	// the Super PIN vault's wrapped keys (the current one, and the one a reset waits to
	// put in its place), and the count of wrong PINs since the last right one.
	`CREATE TABLE devices (
		id       TEXT PRIMARY KEY,
		document TEXT NOT NULL,
		password TEXT NOT NULL DEFAULT '',
		added_at TEXT NOT NULL
	);
	CREATE TABLE vault_keys (
		slot       TEXT PRIMARY KEY CHECK (slot IN ('current', 'pending')),
		wrapped    BLOB NOT NULL,
		mac_key    BLOB NOT NULL,
		updated_at TEXT NOT NULL
	);
	CREATE TABLE pin_failures (
		id      INTEGER PRIMARY KEY CHECK (id = 1),
		count   INTEGER NOT NULL,
		last_at TEXT NOT NULL
	)`,
}

// SchemaTooNewError is returned by Open for a catalog written by a newer Vigil,
// whose tables this one cannot be trusted to read or write.
type SchemaTooNewError struct {
	Version int // the catalog's schema version
	Known   int // the newest version this binary knows
}

func (e *SchemaTooNewError) Error() string {
	return fmt.Sprintf("catalog is at schema version %d, this vigil knows up to %d: upgrade vigil", e.Version, e.Known)
}

// SchemaVersion returns the catalog's schema version.
func (c *Catalog) SchemaVersion(ctx context.Context) (int, error) {
	v, err := schemaVersion(ctx, c.db)
	if err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	return v, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func schemaVersion(ctx context.Context, q querier) (int, error) {
	var v int
	err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

// migrate applies the steps the catalog has not run yet, each in its own
// transaction together with its schema_migrations row, so that a failed step
// leaves the catalog at the previous version and the next Open retries it.
func (c *Catalog) migrate(ctx context.Context, steps []string) error {
	if _, err := c.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at TEXT NOT NULL
	)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	v, err := schemaVersion(ctx, c.db)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if v > len(steps) {
		return &SchemaTooNewError{Version: v, Known: len(steps)}
	}
	for i := v; i < len(steps); i++ {
		if err := c.migrateStep(ctx, i+1, steps[i]); err != nil {
			return fmt.Errorf("migrate to schema version %d: %w", i+1, err)
		}
	}
	return nil
}

func (c *Catalog) migrateStep(ctx context.Context, version int, step string) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// Another process may have migrated while this one waited for the lock.
	v, err := schemaVersion(ctx, tx)
	if err != nil {
		return err
	}
	if v >= version {
		return nil
	}
	if _, err := tx.ExecContext(ctx, step); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
		version, c.timestamp()); err != nil {
		return err
	}
	return tx.Commit()
}
