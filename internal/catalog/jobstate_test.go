package catalog

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

func TestLastDue(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "catalog.db")
	a := openTest(t, path)
	if _, ok, err := a.LastDue(ctx, "dataset Data"); ok || err != nil {
		t.Fatalf("a job never recorded: %v %v", ok, err)
	}
	berlin := time.FixedZone("CET", 3600)
	for _, due := range []time.Time{time.Date(2026, 11, 22, 4, 0, 0, 0, berlin), time.Date(2026, 11, 29, 4, 0, 0, 0, berlin)} {
		if err := a.SetLastDue(ctx, "dataset Data", due); err != nil {
			t.Fatal(err)
		}
		// Another handle stands for the restarted daemon.
		got, ok, err := openTest(t, path).LastDue(ctx, "dataset Data")
		if !ok || err != nil || !got.Equal(due) {
			t.Fatalf("LastDue = %v %v %v, want %v", got, ok, err, due)
		}
	}
	if _, ok, _ := a.LastDue(ctx, "dataset Archive"); ok {
		t.Error("another job shares the state")
	}
}
