package vault

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/internal/catalog"
)

// stores are the Store implementations, each run through testStore.
var stores = []struct {
	name string
	new  func(t *testing.T) Store
}{
	{"memory", func(t *testing.T) Store { return NewMemoryStore() }},
	{"catalog", func(t *testing.T) Store { return CatalogStore(openCatalog(t)) }},
}

func openCatalog(t *testing.T) *catalog.Catalog {
	t.Helper()
	c, err := catalog.Open(context.Background(), filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestStores(t *testing.T) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) { testStore(t, s.new(t)) })
	}
}

func slot(t *testing.T) *Slot {
	t.Helper()
	k := newKeys(t)
	w := wrapped(t, oldPIN, k)
	w.Created = t0
	return &Slot{Wrapped: w, MACKey: k.MACKey}
}

func testStore(t *testing.T, s Store) {
	ctx := context.Background()
	load := func() State {
		t.Helper()
		st, err := s.LoadVault(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	same := func(what string, got, want State) {
		t.Helper()
		if !sameSlot(got.Current, want.Current) || !sameSlot(got.Pending, want.Pending) {
			t.Fatalf("%s: state %v, want %v", what, got, want)
		}
	}
	same("a new store", load(), State{})

	a, b, c := slot(t), slot(t), slot(t)
	steps := []State{{Current: a}, {Current: a, Pending: b}, {Current: c}, {}}
	prev := State{}
	for _, next := range steps {
		if err := s.SaveVault(ctx, load(), next); err != nil {
			t.Fatal(err)
		}
		same("after SaveVault", load(), next)
		// A save on a read made before the last one changes nothing.
		wantErr(t, "SaveVault on a stale read", s.SaveVault(ctx, prev, State{Current: slot(t)}), ErrConflict)
		same("after a conflict", load(), next)
		prev = next
	}
	if err := s.SaveVault(ctx, State{}, State{Pending: a}); err == nil {
		t.Fatal("a pending key without a current one was saved")
	}

	// What was loaded is a copy: changing it changes nothing stored.
	if err := s.SaveVault(ctx, State{}, State{Current: a}); err != nil {
		t.Fatal(err)
	}
	st := load()
	st.Current.MACKey[0] ^= 1
	same("after changing a loaded copy", load(), State{Current: a})

	n, last, err := s.PINFailures(ctx)
	if err != nil || n != 0 || !last.IsZero() {
		t.Fatalf("PINFailures of a new store = %d, %s, %v", n, last, err)
	}
	const goroutines, each = 6, 5
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		got []int
	)
	for i := range goroutines {
		wg.Go(func() {
			for j := range each {
				n, err := s.RecordPINFailure(ctx, t0.Add(time.Duration(i*each+j)*time.Second))
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
			t.Fatalf("RecordPINFailure returned %v, want each of 1..%d once", got, goroutines*each)
		}
	}
	if n, _, err := s.PINFailures(ctx); err != nil || n != goroutines*each {
		t.Fatalf("PINFailures = %d, %v; want %d", n, err, goroutines*each)
	}
	at := t0.Add(time.Hour)
	if _, err := s.RecordPINFailure(ctx, at); err != nil {
		t.Fatal(err)
	}
	if _, last, err := s.PINFailures(ctx); err != nil || !last.Equal(at) {
		t.Fatalf("PINFailures' last = %s, %v; want %s", last, err, at)
	}
	if err := s.ClearPINFailures(ctx); err != nil {
		t.Fatal(err)
	}
	if n, last, err := s.PINFailures(ctx); err != nil || n != 0 || !last.IsZero() {
		t.Fatalf("PINFailures after ClearPINFailures = %d, %s, %v", n, last, err)
	}
}

// A damaged document in the catalog is refused, not guessed at.
func TestCatalogStoreCorrupt(t *testing.T) {
	ctx := context.Background()
	c := openCatalog(t)
	bad := &catalog.VaultKey{Wrapped: []byte(`{"version": 1, "params": {"memory_kib": 4294967295}}`), MACKey: make([]byte, 32)}
	if err := c.SaveVaultKeys(ctx, catalog.VaultKeys{}, catalog.VaultKeys{Current: bad}); err != nil {
		t.Fatal(err)
	}
	v := New(CatalogStore(c), WithParams(fastParams))
	_, err := v.Status(ctx)
	wantErr(t, "Status", err, ErrCorrupt)
	_, err = v.Unlock(ctx, oldPIN)
	wantErr(t, "Unlock", err, ErrCorrupt)
	_, err = v.Sealer(ctx)
	wantErr(t, "Sealer", err, ErrCorrupt)
}

// The vault's whole life on the catalog, through two handles as the CLI and the daemon
// hold it.
func TestVaultOnCatalog(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "catalog.db")
	open := func() *Vault {
		c, err := catalog.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return New(CatalogStore(c), WithParams(fastParams))
	}
	cli, daemon := open(), open()
	if err := cli.Set(ctx, oldPIN); err != nil {
		t.Fatal(err)
	}
	before, err := daemon.Sealer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Reset(ctx, newPIN); err != nil {
		t.Fatal(err)
	}
	_, err = daemon.Sealer(ctx)
	wantErr(t, "the daemon's Sealer after the CLI's Reset", err, ErrReset)
	if done, err := daemon.Reinit(ctx); err != nil || !done {
		t.Fatalf("Reinit = %v, %v", done, err)
	}
	keys, err := cli.Unlock(ctx, newPIN)
	if err != nil {
		t.Fatal(err)
	}
	if keys.Recipient().String() == before.Recipient.String() {
		t.Fatal("Reinit kept the old keys")
	}
}
