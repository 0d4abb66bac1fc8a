package catalog

import (
	"context"
	"fmt"
	"time"
)

// The methods below keep, for events.OnceUntilSuccess, which event keys last delivered a
// failure, so that an operator told of a failure is not told again after a restart.
// *Catalog satisfies events.State with them.

// EventFailing reports whether the last event delivered with key was a failure. A key
// never recorded is not failing.
func (c *Catalog) EventFailing(ctx context.Context, key string) (bool, error) {
	var n int
	if err := c.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM event_state WHERE key = ?`, key).Scan(&n); err != nil {
		return false, fmt.Errorf("event state %q: %w", key, err)
	}
	return n > 0, nil
}

// SetEventFailing records that a failure with key was delivered at since. A key that is
// failing already keeps its earlier time: it says how long the failure has lasted.
func (c *Catalog) SetEventFailing(ctx context.Context, key string, since time.Time) error {
	if _, err := c.db.ExecContext(ctx, `INSERT INTO event_state (key, failing_since) VALUES (?, ?)
		ON CONFLICT (key) DO NOTHING`, key, since.UTC().Format(timeFormat)); err != nil {
		return fmt.Errorf("set event state %q: %w", key, err)
	}
	return nil
}

// ClearEventFailing records that an event with key that is not a failure was delivered.
// Clearing a key that is not failing does nothing.
func (c *Catalog) ClearEventFailing(ctx context.Context, key string) error {
	if _, err := c.db.ExecContext(ctx, `DELETE FROM event_state WHERE key = ?`, key); err != nil {
		return fmt.Errorf("clear event state %q: %w", key, err)
	}
	return nil
}
