package catalog

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// ErrExists is returned (wrapped) when a record to be added is there already.
var ErrExists = errors.New("already exists")

// Device is a device added from the command line: its settings as a JSON document, and its
// password apart, so that the document can be shown. The catalog file is readable by its
// owner only (see Open), which is what keeps the password.
type Device struct {
	ID       string
	Document []byte
	Password string
}

// String never shows the password.
func (d Device) String() string { return "device " + d.ID }

// GoString keeps %#v from showing the password.
func (d Device) GoString() string { return "catalog.Device{ID: " + fmt.Sprintf("%q", d.ID) + "}" }

// AddDevice records a device. An ID already recorded, in any letter case, is ErrExists.
func (c *Catalog) AddDevice(ctx context.Context, d Device) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("add device %s: %w", d.ID, err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM devices WHERE lower(id) = ?`, strings.ToLower(d.ID)).Scan(&n); err != nil {
		return fmt.Errorf("add device %s: %w", d.ID, err)
	}
	if n > 0 {
		return fmt.Errorf("add device %s: %w", d.ID, ErrExists)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO devices (id, document, password, added_at) VALUES (?, ?, ?, ?)`,
		d.ID, string(d.Document), d.Password, c.timestamp()); err != nil {
		return fmt.Errorf("add device %s: %w", d.ID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("add device %s: %w", d.ID, err)
	}
	return nil
}

// RemoveDevice forgets a device; one not recorded is ErrNotFound.
func (c *Catalog) RemoveDevice(ctx context.Context, id string) error {
	r, err := c.db.ExecContext(ctx, `DELETE FROM devices WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("remove device %s: %w", id, err)
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return fmt.Errorf("remove device %s: %w", id, ErrNotFound)
	}
	return nil
}

// Devices returns the recorded devices, by ID.
func (c *Catalog) Devices(ctx context.Context) ([]Device, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT id, document, password FROM devices ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	defer rows.Close()
	var out []Device
	for rows.Next() {
		var d Device
		var doc string
		if err := rows.Scan(&d.ID, &doc, &d.Password); err != nil {
			return nil, fmt.Errorf("list devices: %w", err)
		}
		d.Document = []byte(doc)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	return out, nil
}
