package catalog

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// The methods below keep the Super PIN vault's state: its wrapped keys and the count of
// wrong PINs. The catalog does not read the wrapped keys; internal/vault gives and takes
// them as documents, and adapts these methods to its vault.Store.

// ErrConflict is returned (wrapped) by SaveVaultKeys when the keys are no longer the ones
// the caller read: another process changed them in the meantime.
var ErrConflict = errors.New("changed in the meantime by another process")

// VaultKey is one of the vault's keys as the catalog keeps it.
type VaultKey struct {
	Wrapped []byte // the vault's document: the private key under the Super PIN
	// MACKey authenticates backup labels. It is a secret, kept in clear so that backups
	// need no PIN; it is never printed.
	MACKey []byte
	// Updated is when the key was saved (UTC). SaveVaultKeys ignores it and sets it.
	Updated time.Time
}

// Format prints k without its MAC key, whatever the verb.
func (k VaultKey) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "catalog.VaultKey{Wrapped: %d bytes, MACKey: redacted, Updated: %s}", len(k.Wrapped), k.Updated.Format(timeFormat))
}

// LogValue keeps the MAC key out of logs.
func (k VaultKey) LogValue() slog.Value { return slog.StringValue(fmt.Sprint(k)) }

// MarshalJSON keeps the MAC key out of JSON, where slog's JSON handler puts a VaultKey
// met inside another value.
func (k VaultKey) MarshalJSON() ([]byte, error) { return json.Marshal(fmt.Sprint(k)) }

// VaultKeys are the vault's two slots: the current key, and the one a reset of the Super
// PIN waits to put in its place. A nil slot is empty.
type VaultKeys struct {
	Current, Pending *VaultKey
}

const (
	slotCurrent = "current"
	slotPending = "pending"
)

// VaultKeys returns the vault's keys; both slots are nil before a Super PIN is set.
func (c *Catalog) VaultKeys(ctx context.Context) (VaultKeys, error) {
	cur, pend, err := loadVaultKeys(ctx, c.db)
	if err != nil {
		return VaultKeys{}, fmt.Errorf("vault keys: %w", err)
	}
	return VaultKeys{Current: cur, Pending: pend}, nil
}

// SaveVaultKeys replaces both slots with next in one transaction, if they still hold prev,
// as VaultKeys returned them (Updated aside). Otherwise nothing is written and the error
// matches ErrConflict: two PIN commands at once, from the CLI and the daemon say, must not
// silently undo each other. A nil slot in next is emptied.
func (c *Catalog) SaveVaultKeys(ctx context.Context, prev, next VaultKeys) error {
	if err := c.saveVaultKeys(ctx, prev, next); err != nil {
		return fmt.Errorf("save vault keys: %w", err)
	}
	return nil
}

func (c *Catalog) saveVaultKeys(ctx context.Context, prev, next VaultKeys) error {
	for _, k := range []*VaultKey{next.Current, next.Pending} {
		if k != nil && (len(k.Wrapped) == 0 || len(k.MACKey) == 0) {
			return errors.New("a vault key needs its wrapped key and its MAC key")
		}
	}
	if next.Current == nil && next.Pending != nil {
		return errors.New("a pending vault key needs a current one")
	}
	// The transaction takes the write lock at BEGIN (see dsn), so no other process can
	// write between the check and the writes.
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	cur, pend, err := loadVaultKeys(ctx, tx)
	if err != nil {
		return err
	}
	if !sameVaultKey(cur, prev.Current) || !sameVaultKey(pend, prev.Pending) {
		return ErrConflict
	}
	updated := c.timestamp()
	for _, s := range []struct {
		slot       string
		prev, next *VaultKey
	}{{slotCurrent, cur, next.Current}, {slotPending, pend, next.Pending}} {
		var err error
		switch {
		case sameVaultKey(s.prev, s.next):
			// Unchanged: its updated_at keeps telling when it was last replaced.
		case s.next == nil:
			_, err = tx.ExecContext(ctx, `DELETE FROM vault_keys WHERE slot = ?`, s.slot)
		default:
			_, err = tx.ExecContext(ctx, `INSERT INTO vault_keys (slot, wrapped, mac_key, updated_at) VALUES (?, ?, ?, ?)
				ON CONFLICT (slot) DO UPDATE SET wrapped = excluded.wrapped, mac_key = excluded.mac_key,
				updated_at = excluded.updated_at`, s.slot, s.next.Wrapped, s.next.MACKey, updated)
		}
		if err != nil {
			return fmt.Errorf("%s slot: %w", s.slot, err)
		}
	}
	return tx.Commit()
}

func loadVaultKeys(ctx context.Context, q querier) (cur, pend *VaultKey, err error) {
	if cur, err = loadVaultKey(ctx, q, slotCurrent); err != nil {
		return nil, nil, err
	}
	if pend, err = loadVaultKey(ctx, q, slotPending); err != nil {
		return nil, nil, err
	}
	return cur, pend, nil
}

func loadVaultKey(ctx context.Context, q querier, slot string) (*VaultKey, error) {
	var (
		k       VaultKey
		updated string
	)
	err := q.QueryRowContext(ctx, `SELECT wrapped, mac_key, updated_at FROM vault_keys WHERE slot = ?`, slot).
		Scan(&k.Wrapped, &k.MACKey, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s slot: %w", slot, err)
	}
	if k.Updated, err = parseTime(updated); err != nil {
		return nil, fmt.Errorf("%s slot: %w", slot, err)
	}
	return &k, nil
}

func sameVaultKey(a, b *VaultKey) bool {
	if a == nil || b == nil {
		return a == b
	}
	return bytes.Equal(a.Wrapped, b.Wrapped) && bytes.Equal(a.MACKey, b.MACKey)
}

// PINFailures returns how many wrong Super PINs were counted since the last right one, and
// when the last was counted: 0 and the zero time when none was.
func (c *Catalog) PINFailures(ctx context.Context) (int, time.Time, error) {
	var (
		n    int
		last string
	)
	err := c.db.QueryRowContext(ctx, `SELECT count, last_at FROM pin_failures WHERE id = 1`).Scan(&n, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, time.Time{}, nil
	}
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("wrong PIN count: %w", err)
	}
	t, err := parseTime(last)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("wrong PIN count: %w", err)
	}
	return n, t, nil
}

// RecordPINFailure counts one more wrong Super PIN, at, and returns the new count. It is
// one statement, so that tries from several processes at once are each counted.
func (c *Catalog) RecordPINFailure(ctx context.Context, at time.Time) (int, error) {
	var n int
	err := c.db.QueryRowContext(ctx, `INSERT INTO pin_failures (id, count, last_at) VALUES (1, 1, ?)
		ON CONFLICT (id) DO UPDATE SET count = count + 1, last_at = excluded.last_at
		RETURNING count`, at.UTC().Format(timeFormat)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count a wrong PIN: %w", err)
	}
	return n, nil
}

// ClearPINFailures sets the count of wrong Super PINs back to zero.
func (c *Catalog) ClearPINFailures(ctx context.Context) error {
	if _, err := c.db.ExecContext(ctx, `DELETE FROM pin_failures`); err != nil {
		return fmt.Errorf("clear wrong PIN count: %w", err)
	}
	return nil
}
