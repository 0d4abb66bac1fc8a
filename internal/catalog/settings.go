package catalog

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrNoSettings is returned by LatestSettings before any settings are saved.
// It matches ErrNotFound with errors.Is.
var ErrNoSettings = fmt.Errorf("no settings saved yet: %w", ErrNotFound)

// Revision is one saved version of the settings document.
type Revision struct {
	ID        int64
	CreatedAt time.Time // UTC
	Author    string    // who saved it
	Comment   string
	Document  []byte // the document as the operator wrote it; nil in SettingsHistory
	SHA256    string // hex SHA-256 of Document
	Changes   []FieldChange
}

// FieldChange is one difference from the previous revision, as computed by the
// caller (config.Diff). It never holds a secret's value.
type FieldChange struct {
	Field string `json:"field"`
	Old   string `json:"old"`
	New   string `json:"new"`
}

// SaveSettings stores doc as a new revision and returns it. author must not be
// empty. If doc is byte for byte the latest revision's document, nothing is
// written and the latest revision is returned, so saving twice is harmless.
// Changes is nil in the result when none were given.
func (c *Catalog) SaveSettings(ctx context.Context, doc []byte, author, comment string, changes []FieldChange) (Revision, error) {
	rev, err := c.saveSettings(ctx, doc, author, comment, changes)
	if err != nil {
		return Revision{}, fmt.Errorf("save settings: %w", err)
	}
	return rev, nil
}

func (c *Catalog) saveSettings(ctx context.Context, doc []byte, author, comment string, changes []FieldChange) (Revision, error) {
	if strings.TrimSpace(author) == "" {
		return Revision{}, errors.New("author is empty: say who changed the settings")
	}
	if len(changes) == 0 {
		changes = nil
	}
	changesJSON := []byte("[]")
	if changes != nil {
		var err error
		if changesJSON, err = json.Marshal(changes); err != nil {
			return Revision{}, err
		}
	}
	sum := sha256.Sum256(doc)
	rev := Revision{
		Author:   author,
		Comment:  comment,
		Document: append([]byte{}, doc...), // non-nil: the column is NOT NULL
		SHA256:   hex.EncodeToString(sum[:]),
		Changes:  changes,
	}

	// The transaction takes the write lock at BEGIN (see dsn), so the check
	// and the insert cannot interleave with another save.
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return Revision{}, err
	}
	defer tx.Rollback()

	latest, err := scanRevision(tx.QueryRowContext(ctx, selectRevision+` ORDER BY id DESC LIMIT 1`), true)
	switch {
	case err == nil && latest.SHA256 == rev.SHA256:
		return latest, nil
	case err != nil && !errors.Is(err, sql.ErrNoRows):
		return Revision{}, err
	}

	createdAt := c.timestamp()
	res, err := tx.ExecContext(ctx, `INSERT INTO settings_revisions
		(created_at, author, comment, document, sha256, changes) VALUES (?, ?, ?, ?, ?, ?)`,
		createdAt, author, comment, rev.Document, rev.SHA256, string(changesJSON))
	if err != nil {
		return Revision{}, err
	}
	if rev.ID, err = res.LastInsertId(); err != nil {
		return Revision{}, err
	}
	if rev.CreatedAt, err = parseTime(createdAt); err != nil {
		return Revision{}, err
	}
	if err := tx.Commit(); err != nil {
		return Revision{}, err
	}
	return rev, nil
}

// LatestSettings returns the newest revision, or ErrNoSettings if there is none.
func (c *Catalog) LatestSettings(ctx context.Context) (Revision, error) {
	rev, err := scanRevision(c.db.QueryRowContext(ctx, selectRevision+` ORDER BY id DESC LIMIT 1`), true)
	if errors.Is(err, sql.ErrNoRows) {
		return Revision{}, ErrNoSettings
	}
	if err != nil {
		return Revision{}, fmt.Errorf("latest settings: %w", err)
	}
	return rev, nil
}

// SettingsRevision returns the revision with the given id, or an error
// matching ErrNotFound.
func (c *Catalog) SettingsRevision(ctx context.Context, id int64) (Revision, error) {
	rev, err := scanRevision(c.db.QueryRowContext(ctx, selectRevision+` WHERE id = ?`, id), true)
	if errors.Is(err, sql.ErrNoRows) {
		return Revision{}, fmt.Errorf("settings revision %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Revision{}, fmt.Errorf("settings revision %d: %w", id, err)
	}
	return rev, nil
}

// SettingsHistory returns up to limit revisions, newest first, without their
// documents (Document is nil) to keep a long history light. A limit of 0 or
// less returns them all.
func (c *Catalog) SettingsHistory(ctx context.Context, limit int) ([]Revision, error) {
	if limit <= 0 {
		limit = -1 // SQLite's "no limit"
	}
	rows, err := c.db.QueryContext(ctx, selectRevisionMeta+` ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("settings history: %w", err)
	}
	defer rows.Close()
	var revs []Revision
	for rows.Next() {
		rev, err := scanRevision(rows, false)
		if err != nil {
			return nil, fmt.Errorf("settings history: %w", err)
		}
		revs = append(revs, rev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("settings history: %w", err)
	}
	return revs, nil
}

const (
	selectRevisionMeta = `SELECT id, created_at, author, comment, sha256, changes FROM settings_revisions`
	selectRevision     = `SELECT id, created_at, author, comment, sha256, changes, document FROM settings_revisions`
)

type scanner interface{ Scan(dest ...any) error }

func scanRevision(row scanner, withDocument bool) (Revision, error) {
	var (
		rev       Revision
		createdAt string
		changes   string
	)
	dest := []any{&rev.ID, &createdAt, &rev.Author, &rev.Comment, &rev.SHA256, &changes}
	if withDocument {
		dest = append(dest, &rev.Document)
	}
	if err := row.Scan(dest...); err != nil {
		return Revision{}, err
	}
	if withDocument && rev.Document == nil {
		rev.Document = []byte{}
	}
	var err error
	if rev.CreatedAt, err = parseTime(createdAt); err != nil {
		return Revision{}, fmt.Errorf("revision %d: %w", rev.ID, err)
	}
	if err := json.Unmarshal([]byte(changes), &rev.Changes); err != nil {
		return Revision{}, fmt.Errorf("revision %d: changes: %w", rev.ID, err)
	}
	if len(rev.Changes) == 0 {
		rev.Changes = nil
	}
	return rev, nil
}
