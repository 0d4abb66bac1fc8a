package catalog

import (
	"context"
	"fmt"
	"time"
)

// FootageComplete says up to when one stream of one camera of a server is backed up, in
// full, on one storage.
type FootageComplete struct {
	ServerID      string
	Storage       string // the storage's name in the settings
	Camera        string
	Stream        string
	CompleteUntil time.Time // UTC
	// Updated is when the row was last stored, UTC. SetFootageComplete sets it from the
	// catalog's clock and ignores what it is given.
	Updated time.Time
}

// SetFootageComplete stores each of fcs, replacing the row of the same server, storage,
// camera and stream, in one transaction: all are stored or none. ServerID, Storage and
// Camera must not be empty.
func (c *Catalog) SetFootageComplete(ctx context.Context, fcs []FootageComplete) error {
	if err := c.setFootageComplete(ctx, fcs); err != nil {
		return fmt.Errorf("set footage complete: %w", err)
	}
	return nil
}

func (c *Catalog) setFootageComplete(ctx context.Context, fcs []FootageComplete) error {
	for i, fc := range fcs {
		if fc.ServerID == "" || fc.Storage == "" || fc.Camera == "" {
			return fmt.Errorf("row %d (%s/%s/%s/%s): server, storage and camera must all be given",
				i, fc.ServerID, fc.Storage, fc.Camera, fc.Stream)
		}
	}
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO footage_complete
		(server_id, storage, camera, stream, complete_until, updated) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (server_id, storage, camera, stream)
		DO UPDATE SET complete_until = excluded.complete_until, updated = excluded.updated`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	updated := c.timestamp()
	for _, fc := range fcs {
		if _, err := stmt.ExecContext(ctx, fc.ServerID, fc.Storage, fc.Camera, fc.Stream,
			fc.CompleteUntil.UTC().Format(timeFormat), updated); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// FootageComplete returns what is stored for serverID, ordered by storage, camera and
// stream; none at all is an empty result, not an error.
func (c *Catalog) FootageComplete(ctx context.Context, serverID string) ([]FootageComplete, error) {
	fcs, err := c.footageComplete(ctx, serverID)
	if err != nil {
		return nil, fmt.Errorf("footage complete of %s: %w", serverID, err)
	}
	return fcs, nil
}

func (c *Catalog) footageComplete(ctx context.Context, serverID string) ([]FootageComplete, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT storage, camera, stream, complete_until, updated
		FROM footage_complete WHERE server_id = ? ORDER BY storage, camera, stream`, serverID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var fcs []FootageComplete
	for rows.Next() {
		fc := FootageComplete{ServerID: serverID}
		var until, updated string
		if err := rows.Scan(&fc.Storage, &fc.Camera, &fc.Stream, &until, &updated); err != nil {
			return nil, err
		}
		fc.CompleteUntil, err = parseTime(until)
		if err == nil {
			fc.Updated, err = parseTime(updated)
		}
		if err != nil {
			return nil, fmt.Errorf("%s/%s/%s: %w", fc.Storage, fc.Camera, fc.Stream, err)
		}
		fcs = append(fcs, fc)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return fcs, nil
}
