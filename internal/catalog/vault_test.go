package catalog

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func vaultKey(doc, mac string) *VaultKey {
	return &VaultKey{Wrapped: []byte(doc), MACKey: []byte(mac)}
}

func loadKeys(t *testing.T, c *Catalog) VaultKeys {
	t.Helper()
	ks, err := c.VaultKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func checkKey(t *testing.T, slot string, got, want *VaultKey, updated time.Time) {
	t.Helper()
	switch {
	case want == nil && got != nil:
		t.Fatalf("%s slot = %v, want it empty", slot, *got)
	case want == nil:
	case got == nil:
		t.Fatalf("%s slot is empty, want %q", slot, want.Wrapped)
	case !sameVaultKey(got, want):
		t.Fatalf("%s slot holds %q, want %q", slot, got.Wrapped, want.Wrapped)
	case !got.Updated.Equal(updated):
		t.Fatalf("%s slot updated %s, want %s", slot, got.Updated, updated)
	}
}

func TestVaultKeysRoundTrip(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "catalog.db")
	a := openTest(t, path)
	later := fixed.Add(time.Hour)
	b, err := Open(ctx, path, WithClock(func() time.Time { return later }))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	if ks := loadKeys(t, a); ks.Current != nil || ks.Pending != nil {
		t.Fatalf("a new catalog has vault keys: %v", ks)
	}
	cur, pend, next := vaultKey(`{"k":"current"}`, "mac-1"), vaultKey(`{"k":"pending"}`, "mac-2"), vaultKey(`{"k":"next"}`, "mac-3")

	// Each step is saved by one handle on the read of the other, as the daemon and a CLI
	// command would.
	if err := a.SaveVaultKeys(ctx, VaultKeys{}, VaultKeys{Current: cur}); err != nil {
		t.Fatal(err)
	}
	ks := loadKeys(t, b)
	checkKey(t, "current", ks.Current, cur, fixed)
	checkKey(t, "pending", ks.Pending, nil, time.Time{})

	if err := b.SaveVaultKeys(ctx, ks, VaultKeys{Current: cur, Pending: pend}); err != nil {
		t.Fatal(err)
	}
	ks = loadKeys(t, a)
	// The current key was not replaced, so it keeps its time.
	checkKey(t, "current", ks.Current, cur, fixed)
	checkKey(t, "pending", ks.Pending, pend, later)

	if err := a.SaveVaultKeys(ctx, ks, VaultKeys{Current: next}); err != nil {
		t.Fatal(err)
	}
	ks = loadKeys(t, b)
	checkKey(t, "current", ks.Current, next, fixed)
	checkKey(t, "pending", ks.Pending, nil, time.Time{})

	if err := b.SaveVaultKeys(ctx, ks, VaultKeys{}); err != nil {
		t.Fatal(err)
	}
	if ks := loadKeys(t, a); ks.Current != nil || ks.Pending != nil {
		t.Fatalf("after emptying both slots: %v", ks)
	}
}

func TestSaveVaultKeysConflict(t *testing.T) {
	ctx := context.Background()
	c := openTest(t, filepath.Join(t.TempDir(), "catalog.db"))
	cur, pend := vaultKey("current", "mac-1"), vaultKey("pending", "mac-2")
	if err := c.SaveVaultKeys(ctx, VaultKeys{}, VaultKeys{Current: cur, Pending: pend}); err != nil {
		t.Fatal(err)
	}
	for _, prev := range []VaultKeys{
		{},
		{Current: cur},
		{Current: cur, Pending: vaultKey("pending", "other mac")},
		{Current: vaultKey("other", "mac-1"), Pending: pend},
	} {
		err := c.SaveVaultKeys(ctx, prev, VaultKeys{Current: vaultKey("new", "mac-3")})
		if !errors.Is(err, ErrConflict) {
			t.Fatalf("save on a stale read %v = %v, want ErrConflict", prev, err)
		}
		ks := loadKeys(t, c)
		checkKey(t, "current", ks.Current, cur, fixed)
		checkKey(t, "pending", ks.Pending, pend, fixed)
	}
}

func TestSaveVaultKeysRollsBack(t *testing.T) {
	ctx := context.Background()
	c := openTest(t, filepath.Join(t.TempDir(), "catalog.db"))
	cur := vaultKey("current", "mac-1")
	if err := c.SaveVaultKeys(ctx, VaultKeys{}, VaultKeys{Current: cur}); err != nil {
		t.Fatal(err)
	}
	// The current slot is written first; the pending one then fails.
	if _, err := c.db.ExecContext(ctx, `CREATE TRIGGER refuse_pending BEFORE INSERT ON vault_keys
		WHEN NEW.slot = 'pending' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`); err != nil {
		t.Fatal(err)
	}
	err := c.SaveVaultKeys(ctx, VaultKeys{Current: cur}, VaultKeys{Current: vaultKey("new", "mac-2"), Pending: vaultKey("pending", "mac-3")})
	if err == nil || !strings.Contains(err.Error(), "refused by the test") {
		t.Fatalf("SaveVaultKeys = %v, want the trigger's error", err)
	}
	ks := loadKeys(t, c)
	checkKey(t, "current", ks.Current, cur, fixed)
	checkKey(t, "pending", ks.Pending, nil, time.Time{})
}

func TestSaveVaultKeysInput(t *testing.T) {
	ctx := context.Background()
	c := openTest(t, filepath.Join(t.TempDir(), "catalog.db"))
	for _, next := range []VaultKeys{
		{Current: vaultKey("", "mac")},
		{Current: vaultKey("doc", "")},
		{Pending: vaultKey("doc", "mac")},
	} {
		if err := c.SaveVaultKeys(ctx, VaultKeys{}, next); err == nil {
			t.Fatalf("SaveVaultKeys(%v) succeeded", next)
		}
	}
	if ks := loadKeys(t, c); ks.Current != nil || ks.Pending != nil {
		t.Fatalf("refused saves left keys: %v", ks)
	}
}

func TestPINFailures(t *testing.T) {
	ctx := context.Background()
	c := openTest(t, filepath.Join(t.TempDir(), "catalog.db"))
	check := func(wantN int, wantLast time.Time) {
		t.Helper()
		n, last, err := c.PINFailures(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n != wantN || !last.Equal(wantLast) {
			t.Fatalf("PINFailures = %d, %s; want %d, %s", n, last, wantN, wantLast)
		}
	}
	check(0, time.Time{})
	local := time.FixedZone("CET", 3600)
	for i := 1; i <= 3; i++ {
		n, err := c.RecordPINFailure(ctx, fixed.Add(time.Duration(i)*time.Minute).In(local))
		if err != nil {
			t.Fatal(err)
		}
		if n != i {
			t.Fatalf("RecordPINFailure #%d = %d", i, n)
		}
	}
	check(3, fixed.Add(3*time.Minute))
	if err := c.ClearPINFailures(ctx); err != nil {
		t.Fatal(err)
	}
	check(0, time.Time{})
	if err := c.ClearPINFailures(ctx); err != nil {
		t.Fatalf("clearing a zero count: %v", err)
	}
}

func TestRecordPINFailureConcurrently(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "catalog.db")
	handles := []*Catalog{openTest(t, path), openTest(t, path)}
	const goroutines, each = 8, 5
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		got []int
	)
	for g := range goroutines {
		c := handles[g%len(handles)]
		wg.Go(func() {
			for range each {
				n, err := c.RecordPINFailure(ctx, fixed)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got = append(got, n)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(got)
	for i, n := range got {
		if n != i+1 {
			t.Fatalf("counts returned: %v, want each of 1..%d once", got, goroutines*each)
		}
	}
	if n, _, err := handles[0].PINFailures(ctx); err != nil || n != goroutines*each {
		t.Fatalf("PINFailures = %d, %v; want %d", n, err, goroutines*each)
	}
}

func TestVaultKeyRedacted(t *testing.T) {
	k := VaultKey{Wrapped: []byte("doc"), MACKey: []byte("the-mac-key-itself"), Updated: fixed}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("key", "k", k, "ks", VaultKeys{Current: &k})
	for _, s := range []string{
		fmt.Sprintf("%v %+v %#v %s %x %q %d", k, k, k, k, k, k, k),
		fmt.Sprintf("%v %+v %#v", &k, VaultKeys{Current: &k}, []VaultKey{k}),
		logged.String(),
	} {
		if strings.Contains(s, "the-mac-key-itself") || strings.Contains(s, fmt.Sprintf("%x", k.MACKey)) ||
			strings.Contains(s, base64.StdEncoding.EncodeToString(k.MACKey)) {
			t.Fatalf("the MAC key is printed: %s", s)
		}
	}
}
