package catalog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"
)

func sum(doc string) string {
	s := sha256.Sum256([]byte(doc))
	return hex.EncodeToString(s[:])
}

func TestSaveAndReadSettings(t *testing.T) {
	ctx := context.Background()
	c := openTest(t, filepath.Join(t.TempDir(), "catalog.db"))

	if _, err := c.LatestSettings(ctx); !errors.Is(err, ErrNoSettings) || !errors.Is(err, ErrNotFound) {
		t.Fatalf("LatestSettings on an empty catalog = %v, want ErrNoSettings (and ErrNotFound)", err)
	}

	doc1 := "server:\n  id: nvr-01\n"
	rev1, err := c.SaveSettings(ctx, []byte(doc1), "admin", "first start", nil)
	if err != nil {
		t.Fatalf("SaveSettings: %v", err)
	}
	want1 := Revision{ID: 1, CreatedAt: fixed, Author: "admin", Comment: "first start", Document: []byte(doc1), SHA256: sum(doc1)}
	if !reflect.DeepEqual(rev1, want1) {
		t.Fatalf("SaveSettings =\n%+v\nwant\n%+v", rev1, want1)
	}

	doc2 := "server:\n  id: nvr-01\nstorages: [{name: nas, url: /mnt/nas, password: s3cr3t}]\n"
	changes := []FieldChange{{Field: "storages[nas]", New: `{"name":"nas"}`}, {Field: "storages[nas].password", Old: "", New: "[redacted]"}}
	rev2, err := c.SaveSettings(ctx, []byte(doc2), "operator", "", changes)
	if err != nil {
		t.Fatalf("SaveSettings: %v", err)
	}
	want2 := Revision{ID: 2, CreatedAt: fixed, Author: "operator", Document: []byte(doc2), SHA256: sum(doc2), Changes: changes}
	if !reflect.DeepEqual(rev2, want2) {
		t.Fatalf("SaveSettings =\n%+v\nwant\n%+v", rev2, want2)
	}

	latest, err := c.LatestSettings(ctx)
	if err != nil {
		t.Fatalf("LatestSettings: %v", err)
	}
	if !reflect.DeepEqual(latest, want2) {
		t.Fatalf("LatestSettings =\n%+v\nwant\n%+v", latest, want2)
	}

	for _, tt := range []struct {
		id   int64
		want Revision
	}{{1, want1}, {2, want2}} {
		got, err := c.SettingsRevision(ctx, tt.id)
		if err != nil {
			t.Fatalf("SettingsRevision(%d): %v", tt.id, err)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Fatalf("SettingsRevision(%d) =\n%+v\nwant\n%+v", tt.id, got, tt.want)
		}
	}
	if _, err := c.SettingsRevision(ctx, 3); !errors.Is(err, ErrNotFound) {
		t.Fatalf("SettingsRevision(3) = %v, want ErrNotFound", err)
	}
}

func TestSaveSettingsIdempotent(t *testing.T) {
	ctx := context.Background()
	c := openTest(t, filepath.Join(t.TempDir(), "catalog.db"))
	doc := []byte("server: {}\n")
	first, err := c.SaveSettings(ctx, doc, "admin", "one", nil)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.SaveSettings(ctx, doc, "someone else", "two", []FieldChange{{Field: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again, first) {
		t.Fatalf("saving the same document again =\n%+v\nwant the existing revision\n%+v", again, first)
	}
	hist, err := c.SettingsHistory(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 1 {
		t.Fatalf("history has %d revisions, want 1", len(hist))
	}

	// Only the latest counts: going back to an older document is a change.
	if _, err := c.SaveSettings(ctx, []byte("server: {id: b}\n"), "admin", "", nil); err != nil {
		t.Fatal(err)
	}
	back, err := c.SaveSettings(ctx, doc, "admin", "revert", nil)
	if err != nil {
		t.Fatal(err)
	}
	if back.ID != 3 {
		t.Fatalf("reverting to the first document gave revision %d, want a new revision 3", back.ID)
	}
}

func TestSaveSettingsInput(t *testing.T) {
	ctx := context.Background()
	c := openTest(t, filepath.Join(t.TempDir(), "catalog.db"))
	tests := []struct {
		name    string
		doc     []byte
		author  string
		wantErr bool
	}{
		{"empty author", []byte("a: 1\n"), "", true},
		{"blank author", []byte("a: 1\n"), "  \t", true},
		{"nil document is an empty one", nil, "admin", false},
		{"binary document", []byte{0, 1, 2, 0xff}, "admin", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rev, err := c.SaveSettings(ctx, tt.doc, tt.author, "", nil)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("SaveSettings succeeded, want an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("SaveSettings: %v", err)
			}
			got, err := c.SettingsRevision(ctx, rev.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Document, tt.doc) || got.Document == nil {
				t.Fatalf("Document = %v, want %v (non-nil)", got.Document, tt.doc)
			}
		})
	}
}

func TestSettingsHistory(t *testing.T) {
	ctx := context.Background()
	tick := fixed
	c, err := Open(ctx, filepath.Join(t.TempDir(), "catalog.db"), WithClock(func() time.Time {
		tick = tick.Add(time.Second)
		return tick
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	for i := 1; i <= 5; i++ {
		ch := []FieldChange{{Field: "server.id", Old: fmt.Sprint(i - 1), New: fmt.Sprint(i)}}
		if _, err := c.SaveSettings(ctx, fmt.Appendf(nil, "server: {id: s%d}\n", i), "admin", fmt.Sprint("rev ", i), ch); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		limit   int
		wantIDs []int64
	}{
		{0, []int64{5, 4, 3, 2, 1}},
		{-1, []int64{5, 4, 3, 2, 1}},
		{2, []int64{5, 4}},
		{10, []int64{5, 4, 3, 2, 1}},
	}
	for _, tt := range tests {
		hist, err := c.SettingsHistory(ctx, tt.limit)
		if err != nil {
			t.Fatalf("SettingsHistory(%d): %v", tt.limit, err)
		}
		var ids []int64
		for _, r := range hist {
			ids = append(ids, r.ID)
		}
		if !reflect.DeepEqual(ids, tt.wantIDs) {
			t.Fatalf("SettingsHistory(%d) ids = %v, want %v", tt.limit, ids, tt.wantIDs)
		}
	}

	hist, err := c.SettingsHistory(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	doc := "server: {id: s5}\n"
	// Each migration step took a tick, then each save one.
	want := Revision{
		ID: 5, CreatedAt: fixed.Add(time.Duration(len(migrations)+5) * time.Second), Author: "admin", Comment: "rev 5",
		SHA256: sum(doc), Changes: []FieldChange{{Field: "server.id", Old: "4", New: "5"}},
	}
	if !reflect.DeepEqual(hist[0], want) {
		t.Fatalf("SettingsHistory(1)[0] =\n%+v\nwant (no Document)\n%+v", hist[0], want)
	}
}

func TestSaveSettingsConcurrently(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "catalog.db")
	// Two handles on one file stand for two processes (the daemon and a CLI
	// command) as well as two goroutines: each has its own connection pool.
	cats := []*Catalog{openTest(t, path), openTest(t, path)}

	const writers, saves = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*saves)
	for w := range writers {
		wg.Go(func() {
			c := cats[w%len(cats)]
			for i := range saves {
				doc := fmt.Appendf(nil, "server: {id: w%d-%d}\n", w, i)
				if _, err := c.SaveSettings(ctx, doc, fmt.Sprint("writer", w), "", nil); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent SaveSettings: %v", err)
	}
	hist, err := cats[0].SettingsHistory(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != writers*saves {
		t.Fatalf("history has %d revisions, want %d", len(hist), writers*saves)
	}
}

func TestSaveSettingsSameDocumentConcurrently(t *testing.T) {
	ctx := context.Background()
	c := openTest(t, filepath.Join(t.TempDir(), "catalog.db"))
	doc := []byte("server: {}\n")
	var wg sync.WaitGroup
	ids := make([]int64, 8)
	for i := range ids {
		wg.Go(func() {
			rev, err := c.SaveSettings(ctx, doc, "admin", "", nil)
			if err != nil {
				t.Errorf("SaveSettings: %v", err)
			}
			ids[i] = rev.ID
		})
	}
	wg.Wait()
	for i, id := range ids {
		if id != 1 {
			t.Fatalf("save %d got revision %d, want every save to agree on revision 1", i, id)
		}
	}
}
