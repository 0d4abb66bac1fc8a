package catalog

import (
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestFootageComplete(t *testing.T) {
	ctx := context.Background()
	tick := fixed
	c, err := Open(ctx, filepath.Join(t.TempDir(), "catalog.db"), WithClock(func() time.Time { return tick }))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	if got, err := c.FootageComplete(ctx, "nvr-01"); err != nil || len(got) != 0 {
		t.Fatalf("FootageComplete on an empty catalog = %v, %v; want nothing", got, err)
	}

	local := time.FixedZone("CET", 3600)
	until := time.Date(2026, 11, 21, 23, 59, 30, 500, local)
	tick = fixed.Add(time.Minute)
	if err := c.SetFootageComplete(ctx, []FootageComplete{
		{ServerID: "nvr-01", Storage: "nas", Camera: "cam2", Stream: "hi", CompleteUntil: until},
		{ServerID: "nvr-01", Storage: "nas", Camera: "cam1", Stream: "lo", CompleteUntil: until},
		{ServerID: "nvr-01", Storage: "nas", Camera: "cam1", Stream: "hi", CompleteUntil: until},
		{ServerID: "nvr-01", Storage: "cloud", Camera: "cam1", Stream: "hi", CompleteUntil: until.Add(-time.Hour)},
		{ServerID: "nvr-02", Storage: "nas", Camera: "cam1", Stream: "hi", CompleteUntil: until},
	}); err != nil {
		t.Fatal(err)
	}
	// An upsert replaces one row and leaves the others as they were. The Updated given is
	// not the catalog's clock, so it is not stored.
	later := until.Add(10 * time.Minute)
	tick = fixed.Add(2 * time.Minute)
	if err := c.SetFootageComplete(ctx, []FootageComplete{
		{ServerID: "nvr-01", Storage: "nas", Camera: "cam1", Stream: "hi", CompleteUntil: later, Updated: until},
	}); err != nil {
		t.Fatal(err)
	}

	first, second := fixed.Add(time.Minute), fixed.Add(2*time.Minute)
	want := []FootageComplete{
		{ServerID: "nvr-01", Storage: "cloud", Camera: "cam1", Stream: "hi", CompleteUntil: until.Add(-time.Hour).UTC(), Updated: first},
		{ServerID: "nvr-01", Storage: "nas", Camera: "cam1", Stream: "hi", CompleteUntil: later.UTC(), Updated: second},
		{ServerID: "nvr-01", Storage: "nas", Camera: "cam1", Stream: "lo", CompleteUntil: until.UTC(), Updated: first},
		{ServerID: "nvr-01", Storage: "nas", Camera: "cam2", Stream: "hi", CompleteUntil: until.UTC(), Updated: first},
	}
	got, err := c.FootageComplete(ctx, "nvr-01")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("FootageComplete =\n%+v\nwant\n%+v", got, want)
	}
}

func TestSetFootageCompleteInput(t *testing.T) {
	ctx := context.Background()
	c := openTest(t, filepath.Join(t.TempDir(), "catalog.db"))
	good := FootageComplete{ServerID: "nvr-01", Storage: "nas", Camera: "cam1", Stream: "hi", CompleteUntil: fixed}
	for _, tc := range []struct {
		name string
		edit func(*FootageComplete)
		want string // "" for success
	}{
		{"whole", func(*FootageComplete) {}, ""},
		{"no stream", func(fc *FootageComplete) { fc.Stream = "" }, ""},
		{"no complete-until yet", func(fc *FootageComplete) { fc.CompleteUntil = time.Time{} }, ""},
		{"no server", func(fc *FootageComplete) { fc.ServerID = "" }, "must all be given"},
		{"no storage", func(fc *FootageComplete) { fc.Storage = "" }, "must all be given"},
		{"no camera", func(fc *FootageComplete) { fc.Camera = "" }, "must all be given"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := good
			bad.Camera = "cam-" + tc.name
			tc.edit(&bad)
			// The good row comes first: when the second is refused, neither is stored.
			first := good
			first.Camera = "first-" + tc.name
			err := c.SetFootageComplete(ctx, []FootageComplete{first, bad})
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one with %q", err, tc.want)
			}
			rows, err := c.FootageComplete(ctx, first.ServerID)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				if r.Camera == first.Camera {
					t.Fatalf("%s was stored although the call failed", first.Camera)
				}
			}
		})
	}
}

func TestSetFootageCompleteRollsBack(t *testing.T) {
	ctx := context.Background()
	c := openTest(t, filepath.Join(t.TempDir(), "catalog.db"))
	// A trigger makes the database itself refuse the second row, after the first was
	// written inside the transaction.
	if _, err := c.db.ExecContext(ctx, `CREATE TRIGGER refuse BEFORE INSERT ON footage_complete
		WHEN NEW.camera = 'refused' BEGIN SELECT RAISE(ABORT, 'refused'); END`); err != nil {
		t.Fatal(err)
	}
	err := c.SetFootageComplete(ctx, []FootageComplete{
		{ServerID: "nvr-01", Storage: "nas", Camera: "cam1", Stream: "hi", CompleteUntil: fixed},
		{ServerID: "nvr-01", Storage: "nas", Camera: "refused", Stream: "hi", CompleteUntil: fixed},
	})
	if err == nil {
		t.Fatal("SetFootageComplete succeeded past the trigger")
	}
	if got, err := c.FootageComplete(ctx, "nvr-01"); err != nil || len(got) != 0 {
		t.Fatalf("after a failed call FootageComplete = %+v, %v; want nothing stored", got, err)
	}
}
