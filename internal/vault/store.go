package vault

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/vigil-backup/vigil/internal/catalog"
)

// Slot is one of the vault's two keys as stored: the wrapped key, and its MAC key in
// clear, so that backups can be labelled without the PIN. Printing or logging a Slot
// does not show the MAC key.
type Slot struct {
	Wrapped Wrapped
	MACKey  []byte
}

func (s Slot) String() string { return "vault.Slot{" + s.Wrapped.Recipient + ", MAC key redacted}" }

// Format prints s as String does, whatever the verb.
func (s Slot) Format(f fmt.State, _ rune) { fmt.Fprint(f, s.String()) }

// LogValue keeps the MAC key out of logs.
func (s Slot) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON keeps the MAC key out of JSON, where slog's JSON handler puts a Slot met
// inside another value.
func (s Slot) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

func (s *Slot) clone() *Slot {
	if s == nil {
		return nil
	}
	c := *s
	c.MACKey = slices.Clone(s.MACKey)
	c.Wrapped.Salt = slices.Clone(s.Wrapped.Salt)
	c.Wrapped.Nonce = slices.Clone(s.Wrapped.Nonce)
	c.Wrapped.Sealed = slices.Clone(s.Wrapped.Sealed)
	return &c
}

// State is what the vault stores: the current key, which backups are encrypted to, and
// the pending one, made by a reset of the Super PIN, which waits for every backup to be
// deleted to take its place. A nil slot is empty; a pending key needs a current one.
type State struct {
	Current, Pending *Slot
}

func (s State) String() string {
	slot := func(s *Slot) string {
		if s == nil {
			return "none"
		}
		return s.String()
	}
	return "vault.State{current: " + slot(s.Current) + ", pending: " + slot(s.Pending) + "}"
}

// Format prints s as String does, whatever the verb.
func (s State) Format(f fmt.State, _ rune) { fmt.Fprint(f, s.String()) }

// LogValue keeps the MAC keys out of logs.
func (s State) LogValue() slog.Value { return slog.StringValue(s.String()) }

// ErrConflict is returned (wrapped) when the vault was changed by another process between
// reading it and saving it; the operation is not done.
var ErrConflict = errors.New("the Super PIN was changed in the meantime by another vigil command; try again")

// Store keeps the vault's state and the count of wrong PINs. Implementations are safe for
// concurrent use, and the catalog's (CatalogStore) also between the processes that share
// it.
type Store interface {
	// LoadVault returns both slots.
	LoadVault(ctx context.Context) (State, error)
	// SaveVault replaces both slots with next in one transaction, if they still hold prev
	// as LoadVault returned it; otherwise it changes nothing and returns an error matching
	// ErrConflict.
	SaveVault(ctx context.Context, prev, next State) error
	// PINFailures returns the count of wrong PINs since the last right one and when the
	// last was counted; 0 and the zero time when none was.
	PINFailures(ctx context.Context) (n int, last time.Time, err error)
	// RecordPINFailure counts one more wrong PIN, at, and returns the new count. Tries
	// counted at once, by several processes too, are each counted.
	RecordPINFailure(ctx context.Context, at time.Time) (n int, err error)
	// ClearPINFailures sets the count back to zero.
	ClearPINFailures(ctx context.Context) error
}

// NewMemoryStore returns a Store kept in memory only, for tests.
func NewMemoryStore() Store { return &memoryStore{} }

type memoryStore struct {
	mu       sync.Mutex
	state    State
	failures int
	last     time.Time
}

var _ Store = (*memoryStore)(nil)

func (m *memoryStore) LoadVault(ctx context.Context) (State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return State{Current: m.state.Current.clone(), Pending: m.state.Pending.clone()}, nil
}

func (m *memoryStore) SaveVault(ctx context.Context, prev, next State) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !sameSlot(m.state.Current, prev.Current) || !sameSlot(m.state.Pending, prev.Pending) {
		return fmt.Errorf("save vault: %w", ErrConflict)
	}
	if next.Current == nil && next.Pending != nil {
		return errors.New("save vault: a pending key needs a current one")
	}
	m.state = State{Current: next.Current.clone(), Pending: next.Pending.clone()}
	return nil
}

func sameSlot(a, b *Slot) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, y := a.Wrapped, b.Wrapped
	return x.Version == y.Version && x.Recipient == y.Recipient && x.KDF == y.KDF && x.Params == y.Params &&
		bytes.Equal(x.Salt, y.Salt) && bytes.Equal(x.Nonce, y.Nonce) && bytes.Equal(x.Sealed, y.Sealed) &&
		x.Created.Equal(y.Created) && bytes.Equal(a.MACKey, b.MACKey)
}

func (m *memoryStore) PINFailures(ctx context.Context) (int, time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.failures, m.last, nil
}

func (m *memoryStore) RecordPINFailure(ctx context.Context, at time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failures++
	m.last = at
	return m.failures, nil
}

func (m *memoryStore) ClearPINFailures(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failures, m.last = 0, time.Time{}
	return nil
}

// CatalogStore returns the Store kept in the catalog c. The catalog keeps each wrapped key
// as the document Marshal writes, the same as in keys/ on the storages, and knows nothing
// of this package; this adapter is what translates.
func CatalogStore(c *catalog.Catalog) Store { return catalogStore{c} }

type catalogStore struct{ c *catalog.Catalog }

var _ Store = catalogStore{}

func (s catalogStore) LoadVault(ctx context.Context) (State, error) {
	ks, err := s.c.VaultKeys(ctx)
	if err != nil {
		return State{}, err
	}
	cur, err := fromCatalog(ks.Current)
	if err != nil {
		return State{}, fmt.Errorf("the catalog's current key: %w", err)
	}
	pend, err := fromCatalog(ks.Pending)
	if err != nil {
		return State{}, fmt.Errorf("the catalog's pending key: %w", err)
	}
	return State{Current: cur, Pending: pend}, nil
}

func (s catalogStore) SaveVault(ctx context.Context, prev, next State) error {
	p, err := toCatalog(prev)
	if err != nil {
		return fmt.Errorf("save vault: %w", err)
	}
	n, err := toCatalog(next)
	if err != nil {
		return fmt.Errorf("save vault: %w", err)
	}
	err = s.c.SaveVaultKeys(ctx, p, n)
	if errors.Is(err, catalog.ErrConflict) {
		return fmt.Errorf("save vault: %w", ErrConflict)
	}
	return err
}

func fromCatalog(k *catalog.VaultKey) (*Slot, error) {
	if k == nil {
		return nil, nil
	}
	w, err := ParseWrapped(k.Wrapped)
	if err != nil {
		return nil, err
	}
	return &Slot{Wrapped: w, MACKey: k.MACKey}, nil
}

func toCatalog(st State) (catalog.VaultKeys, error) {
	cur, err := toCatalogKey(st.Current)
	if err != nil {
		return catalog.VaultKeys{}, err
	}
	pend, err := toCatalogKey(st.Pending)
	if err != nil {
		return catalog.VaultKeys{}, err
	}
	return catalog.VaultKeys{Current: cur, Pending: pend}, nil
}

func toCatalogKey(s *Slot) (*catalog.VaultKey, error) {
	if s == nil {
		return nil, nil
	}
	doc, err := s.Wrapped.Marshal()
	if err != nil {
		return nil, err
	}
	return &catalog.VaultKey{Wrapped: doc, MACKey: s.MACKey}, nil
}

func (s catalogStore) PINFailures(ctx context.Context) (int, time.Time, error) {
	return s.c.PINFailures(ctx)
}

func (s catalogStore) RecordPINFailure(ctx context.Context, at time.Time) (int, error) {
	return s.c.RecordPINFailure(ctx, at)
}

func (s catalogStore) ClearPINFailures(ctx context.Context) error { return s.c.ClearPINFailures(ctx) }
