package catalog

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

func TestEventFailing(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "catalog.db")
	// Two handles on one file stand for a restarted process, or the daemon and a CLI
	// command: each sees what the other recorded.
	a, b := openTest(t, path), openTest(t, path)
	failing := func(c *Catalog, key string) bool {
		t.Helper()
		f, err := c.EventFailing(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	since := func(key string) string {
		t.Helper()
		var s string
		if err := a.db.QueryRowContext(ctx, `SELECT failing_since FROM event_state WHERE key = ?`, key).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}

	key := "backup.finished\x00footage"
	if failing(a, key) {
		t.Fatal("a key never recorded is failing")
	}
	local := time.FixedZone("CET", 3600)
	if err := a.SetEventFailing(ctx, key, fixed.In(local)); err != nil {
		t.Fatal(err)
	}
	if !failing(b, key) {
		t.Fatal("the other handle does not see the failure")
	}
	if failing(b, "backup.finished\x00datasets") {
		t.Fatal("a key that shares a prefix is failing too")
	}
	if err := b.SetEventFailing(ctx, key, fixed.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, want := since(key), fixed.Format(time.RFC3339Nano); got != want {
		t.Fatalf("failing_since = %q, want the first failure's %q in UTC", got, want)
	}
	if err := b.ClearEventFailing(ctx, key); err != nil {
		t.Fatal(err)
	}
	if failing(a, key) {
		t.Fatal("still failing after ClearEventFailing")
	}
	if err := a.ClearEventFailing(ctx, key); err != nil {
		t.Fatalf("clearing a key that is not failing: %v", err)
	}
}
