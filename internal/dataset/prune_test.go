package dataset_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/internal/dataset"
	"github.com/vigil-backup/vigil/internal/storage"
	"github.com/vigil-backup/vigil/internal/testenv"
)

// TestPrune keeps the newest backups and every backup a kept incremental needs.
func TestPrune(t *testing.T) {
	ctx := context.Background()
	st, _ := openLocal(t)
	src := t.TempDir()
	clk := newClock()
	stateDir := t.TempDir()
	// F1 I2 I3 F4 I5 I6: keeping 2 keeps I5, I6 and the full F4 they need.
	kinds := []dataset.Kind{dataset.Full, dataset.Incremental, dataset.Incremental, dataset.Full, dataset.Incremental, dataset.Incremental}
	var ids []dataset.ID
	for i, k := range kinds {
		testenv.WriteTree(t, src, map[string]string{"f": string(rune('a' + i))})
		res, err := dataset.Backup(ctx, dataset.Options{Name: "Data", Letter: 'D', Sources: dirSource(t, src),
			Format: dataset.Compressed, Kind: k, Targets: []dataset.Target{{Name: "l", Storage: st}},
			StateDir: stateDir, Now: clk.now, Location: time.UTC})
		if err != nil || res.Kind != k {
			t.Fatalf("backup %d: %s, %v", i, res.Kind, err)
		}
		ids = append(ids, res.ID)
	}
	// Leftovers of an interrupted backup: removed once a day old, not before.
	left := "vigil/datasets/Data/D_2026_11_22_05_00_00.tar.zst"
	if err := st.Put(ctx, left, storage.BytesSource([]byte("partial")), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		r    dataset.Retention
		now  time.Time
		keep []dataset.ID
	}{
		{"no limit", dataset.Retention{}, clk.t, ids},
		{"keep 5", dataset.Retention{Keep: 5}, clk.t, ids},
		{"keep 2", dataset.Retention{Keep: 2}, clk.t, ids[3:]},
		// The newest is kept even when it is too old.
		{"max age", dataset.Retention{MaxAge: time.Hour}, clk.t.Add(48 * time.Hour), ids[3:]},
		{"keep 1", dataset.Retention{Keep: 1}, time.Now().Add(48 * time.Hour), ids[3:]},
	} {
		if _, err := dataset.Prune(ctx, st, "vigil/datasets/Data", tc.r, tc.now); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		l, err := dataset.List(ctx, st, "vigil/datasets/Data")
		if err != nil {
			t.Fatal(err)
		}
		var got []dataset.ID
		for _, b := range l.Backups {
			got = append(got, b.ID)
		}
		if !slices.Equal(got, tc.keep) {
			t.Errorf("%s: kept %v, want %v", tc.name, got, tc.keep)
		}
		_, err = st.Stat(ctx, left)
		if gone := err != nil; gone != (tc.name == "keep 1") {
			t.Errorf("%s: leftover removed %v", tc.name, gone)
		}
	}
}
