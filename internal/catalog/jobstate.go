package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// LastDue returns the due time the scheduled job last dealt with; ok is false for a job
// never recorded. *Catalog satisfies jobs.Store with it and SetLastDue.
func (c *Catalog) LastDue(ctx context.Context, job string) (time.Time, bool, error) {
	var s string
	err := c.db.QueryRowContext(ctx, `SELECT last_due FROM job_state WHERE job = ?`, job).Scan(&s)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("job state %q: %w", job, err)
	}
	t, err := parseTime(s)
	return t, err == nil, err
}

// SetLastDue records that the job dealt with its run due at t.
func (c *Catalog) SetLastDue(ctx context.Context, job string, t time.Time) error {
	if _, err := c.db.ExecContext(ctx, `INSERT INTO job_state (job, last_due) VALUES (?, ?)
		ON CONFLICT (job) DO UPDATE SET last_due = excluded.last_due`, job, t.UTC().Format(timeFormat)); err != nil {
		return fmt.Errorf("set job state %q: %w", job, err)
	}
	return nil
}
