package vault

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/vigil-backup/vigil/internal/events"
)

func TestSet(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	if s := f.status(t); s != (Status{State: StateNone}) {
		t.Fatalf("Status of a new vault = %+v", s)
	}
	if err := f.v.Set(ctx, "123456"); !errors.Is(err, ErrPINPolicy) {
		t.Fatalf("Set with a straight run = %v, want ErrPINPolicy", err)
	}
	if err := f.v.Set(ctx, oldPIN); err != nil {
		t.Fatal(err)
	}
	s := f.status(t)
	if s.State != StateReady || !strings.HasPrefix(s.Recipient, "age1") || s.PendingRecipient != "" || s.Failures != 0 {
		t.Fatalf("Status after Set = %+v", s)
	}
	wantErr(t, "Set again", f.v.Set(ctx, newPIN), ErrPINSet)

	sealer, err := f.v.Sealer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := f.v.Unlock(ctx, oldPIN)
	if err != nil {
		t.Fatal(err)
	}
	if sealer.Recipient.String() != s.Recipient || keys.Recipient().String() != s.Recipient {
		t.Fatalf("Sealer %v and Unlock %v do not give the recipient %s", sealer, keys, s.Recipient)
	}
	if !bytes.Equal(sealer.MACKey, keys.MACKey) || len(keys.MACKey) != MACKeySize {
		t.Fatal("Sealer and Unlock give different MAC keys")
	}
	w, err := f.v.Current(ctx)
	if err != nil || w.Recipient != s.Recipient || w.Params != fastParams || !w.Created.Equal(t0) {
		t.Fatalf("Current = %+v, %v", w, err)
	}
}

// encrypt makes an age file to r, as a backup would.
func encrypt(t *testing.T, r age.Recipient, text string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, r)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, text)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func decrypt(t *testing.T, id age.Identity, file []byte) string {
	t.Helper()
	r, err := age.Decrypt(bytes.NewReader(file), id)
	if err != nil {
		t.Fatalf("decrypt: %v", err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestChange(t *testing.T) {
	ctx := context.Background()
	f := withPIN(t)
	sealer, err := f.v.Sealer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	backup := encrypt(t, sealer.Recipient, "device configuration")

	wantErr(t, "Change with a wrong old PIN", f.v.Change(ctx, newPIN, "another-pin"), ErrWrongPIN)
	if n := f.status(t).Failures; n != 1 {
		t.Fatalf("a wrong old PIN counts %d failures, want 1", n)
	}
	wantErr(t, "Change to a weak PIN", f.v.Change(ctx, oldPIN, "000000"), ErrPINPolicy)
	if err := f.v.Change(ctx, oldPIN, newPIN); err != nil {
		t.Fatal(err)
	}
	if n := f.status(t).Failures; n != 0 {
		t.Fatalf("the right old PIN leaves %d failures, want 0", n)
	}
	_, err = f.v.Unlock(ctx, oldPIN)
	wantErr(t, "Unlock with the old PIN after Change", err, ErrWrongPIN)
	keys, err := f.v.Unlock(ctx, newPIN)
	if err != nil {
		t.Fatal(err)
	}
	if got := decrypt(t, keys.Identity, backup); got != "device configuration" {
		t.Fatalf("a backup made before the change reads %q", got)
	}
	after, err := f.v.Sealer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.Recipient.String() != sealer.Recipient.String() || !bytes.Equal(after.MACKey, sealer.MACKey) {
		t.Fatal("Change changed the keys, not only the PIN")
	}
	if got := types(f.sink.take()); !slices.Equal(got, []string{EventWrong, EventChanged, EventWrong}) {
		t.Fatalf("events %v", got)
	}
}

func TestReset(t *testing.T) {
	ctx := context.Background()
	// Each way of entering the old PIN again ends the reset.
	for _, tc := range []struct {
		name  string
		event string
		enter func(v *Vault) error
	}{
		{"unlock", EventRestored, func(v *Vault) error { _, err := v.Unlock(ctx, oldPIN); return err }},
		{"reset", EventRestored, func(v *Vault) error {
			restored, err := v.Reset(ctx, oldPIN)
			if err == nil && !restored {
				return errors.New("Reset with the old PIN did not restore")
			}
			return err
		}},
		{"change", EventChanged, func(v *Vault) error { return v.Change(ctx, oldPIN, "a-third-pin") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := withPIN(t)
			before := f.status(t)
			restored, err := f.v.Reset(ctx, newPIN)
			if err != nil || restored {
				t.Fatalf("Reset with a new PIN = %v, %v; want false, nil", restored, err)
			}
			s := f.status(t)
			if s.State != StateReset || s.Recipient != before.Recipient || s.PendingRecipient == "" || s.PendingRecipient == s.Recipient {
				t.Fatalf("Status after Reset = %+v", s)
			}
			_, err = f.v.Sealer(ctx)
			wantErr(t, "Sealer after Reset", err, ErrReset)
			for _, hint := range []string{"vigil pin reset", "vigil device delete-all --yes"} {
				if !strings.Contains(err.Error(), hint) {
					t.Errorf("Sealer's error %q does not say %q", err, hint)
				}
			}
			_, err = f.v.Unlock(ctx, newPIN)
			wantErr(t, "Unlock with the reset's PIN", err, ErrWrongPIN)
			f.sink.take()

			if err := tc.enter(f.v); err != nil {
				t.Fatal(err)
			}
			s = f.status(t)
			if s.State != StateReady || s.Recipient != before.Recipient || s.PendingRecipient != "" || s.Failures != 0 {
				t.Fatalf("Status after the old PIN = %+v", s)
			}
			if _, err := f.v.Sealer(ctx); err != nil {
				t.Fatal(err)
			}
			if got := types(f.sink.take()); !slices.Equal(got, []string{tc.event}) {
				t.Fatalf("events %v, want %s", got, tc.event)
			}
		})
	}
}

func TestResetThenReinit(t *testing.T) {
	ctx := context.Background()
	f := withPIN(t)
	if done, err := f.v.Reinit(ctx); err != nil || done {
		t.Fatalf("Reinit in the ready state = %v, %v; want false, nil", done, err)
	}
	if _, err := f.v.Reset(ctx, newPIN); err != nil {
		t.Fatal(err)
	}
	pending := f.status(t).PendingRecipient
	if done, err := f.v.Reinit(ctx); err != nil || !done {
		t.Fatalf("Reinit after Reset = %v, %v; want true, nil", done, err)
	}
	s := f.status(t)
	if s.State != StateReady || s.Recipient != pending || s.Failures != 0 {
		t.Fatalf("Status after Reinit = %+v, want ready with %s and no failures", s, pending)
	}
	_, err := f.v.Unlock(ctx, oldPIN)
	wantErr(t, "Unlock with the old PIN after Reinit", err, ErrWrongPIN)
	if _, err := f.v.Unlock(ctx, newPIN); err != nil {
		t.Fatal(err)
	}
	sealer, err := f.v.Sealer(ctx)
	if err != nil || sealer.Recipient.String() != pending {
		t.Fatalf("Sealer after Reinit = %v, %v; want %s", sealer, err, pending)
	}
	if got := types(f.sink.take()); !slices.Equal(got, []string{EventReset, EventResetFinished, EventWrong}) {
		t.Fatalf("events %v", got)
	}
}

func TestNoPIN(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	_, err := f.v.Unlock(ctx, oldPIN)
	wantErr(t, "Unlock", err, ErrNoPIN)
	wantErr(t, "Change", f.v.Change(ctx, oldPIN, newPIN), ErrNoPIN)
	_, err = f.v.Reset(ctx, newPIN)
	wantErr(t, "Reset", err, ErrNoPIN)
	_, err = f.v.Sealer(ctx)
	wantErr(t, "Sealer", err, ErrNoPIN)
	if !strings.Contains(err.Error(), "vigil pin set") {
		t.Errorf("Sealer's error %q does not say how to set a PIN", err)
	}
	_, err = f.v.Current(ctx)
	wantErr(t, "Current", err, ErrNoPIN)
	if done, err := f.v.Reinit(ctx); err != nil || done {
		t.Fatalf("Reinit = %v, %v; want false, nil", done, err)
	}
	if s := f.status(t); s != (Status{State: StateNone}) {
		t.Fatalf("Status = %+v, want nothing counted", s)
	}
}

func TestLockOut(t *testing.T) {
	ctx := context.Background()
	f := withPIN(t)
	unlock := func(pin string) error {
		_, err := f.v.Unlock(ctx, pin)
		return err
	}
	for i := 1; i <= freeTries; i++ {
		wantErr(t, "a free wrong try", unlock(newPIN), ErrWrongPIN)
	}
	wantEvents := []string{EventWrong, EventWrong, EventWrong, EventWrong, EventWrong, EventLockedOut}
	if got := types(f.sink.take()); !slices.Equal(got, wantEvents) {
		t.Fatalf("events after %d wrong PINs: %v", freeTries, got)
	}

	// Each wait doubles from 30 s up to the hour, counted from the last wrong try; a try
	// during it is refused, even with the right PIN, and not counted.
	wait := 30 * time.Second
	for failures := freeTries; failures < freeTries+10; failures++ {
		last := f.clock.now()
		err := unlock(oldPIN)
		var locked *LockedError
		if !errors.As(err, &locked) || !errors.Is(err, ErrLockedOut) {
			t.Fatalf("after %d wrong PINs: Unlock = %v, want a *LockedError", failures, err)
		}
		if !locked.Until.Equal(last.Add(wait)) || !strings.Contains(err.Error(), "try again in "+wait.String()) {
			t.Fatalf("after %d wrong PINs: %v until %s, want a wait of %s", failures, err, locked.Until, wait)
		}
		s := f.status(t)
		if s.Failures != failures || !s.LockedUntil.Equal(locked.Until) {
			t.Fatalf("Status while locked out = %+v, want %d failures until %s", s, failures, locked.Until)
		}
		f.clock.add(wait - time.Second)
		wantErr(t, "a try a second before the wait ends", unlock(newPIN), ErrLockedOut)
		_, err = f.v.Reset(ctx, newPIN)
		wantErr(t, "a reset during the wait", err, ErrLockedOut)
		f.clock.add(time.Second)
		wantErr(t, "a wrong try after the wait", unlock(newPIN), ErrWrongPIN)
		es := f.sink.take()
		if got := types(es); !slices.Equal(got, []string{EventWrong, EventLockedOut}) {
			t.Fatalf("events %v", got)
		}
		if es[0].Fields["failures"] != failures+1 || es[1].Fields["until"] != f.clock.now().Add(min(2*wait, time.Hour)).Format(time.RFC3339) {
			t.Fatalf("events' fields %v, %v", es[0].Fields, es[1].Fields)
		}
		wait = min(2*wait, time.Hour)
	}
	if wait != time.Hour {
		t.Fatalf("the wait grew to %s only", wait)
	}
	f.clock.add(time.Hour)
	if err := unlock(oldPIN); err != nil {
		t.Fatal(err)
	}
	if s := f.status(t); s.Failures != 0 || !s.LockedUntil.IsZero() {
		t.Fatalf("Status after the right PIN = %+v", s)
	}
}

// A reset's new PIN is a guess at the current one too: resets count and wait, so they
// are no way around the lock-out.
func TestResetCounts(t *testing.T) {
	ctx := context.Background()
	f := withPIN(t)
	for i := 1; i <= freeTries; i++ {
		if restored, err := f.v.Reset(ctx, newPIN); err != nil || restored {
			t.Fatalf("Reset #%d = %v, %v", i, restored, err)
		}
	}
	if s := f.status(t); s.State != StateReset || s.Failures != freeTries {
		t.Fatalf("Status after %d resets = %+v", freeTries, s)
	}
	for _, e := range f.sink.take() {
		if e.Type == EventWrong {
			t.Fatalf("a reset sent %s", e.Type)
		}
	}
	_, err := f.v.Reset(ctx, oldPIN)
	wantErr(t, "Reset with the old PIN during the wait", err, ErrLockedOut)
	f.clock.add(firstWait)
	if restored, err := f.v.Reset(ctx, oldPIN); err != nil || !restored {
		t.Fatalf("Reset with the old PIN after the wait = %v, %v", restored, err)
	}
	if s := f.status(t); s.State != StateReady || s.Failures != 0 {
		t.Fatalf("Status after restoring = %+v", s)
	}
}

// racingStore counts another process's wrong try just before each of this one's.
type racingStore struct{ Store }

func (r racingStore) RecordPINFailure(ctx context.Context, at time.Time) (int, error) {
	if _, err := r.Store.RecordPINFailure(ctx, at); err != nil {
		return 0, err
	}
	return r.Store.RecordPINFailure(ctx, at)
}

func TestLockOutRace(t *testing.T) {
	ctx := context.Background()
	f := withPIN(t)
	for range freeTries - 1 {
		if _, err := f.store.RecordPINFailure(ctx, t0); err != nil {
			t.Fatal(err)
		}
	}
	// The other process's try is the fifth: this one, read at four, must wait all the
	// same, and is not tried.
	v := New(racingStore{f.store}, WithParams(fastParams), WithClock(f.clock.now))
	_, err := v.Unlock(ctx, oldPIN)
	wantErr(t, "Unlock racing the fifth wrong try", err, ErrLockedOut)
}

// hookStore runs before once, just before the next SaveVault.
type hookStore struct {
	Store
	before func()
}

func (h *hookStore) SaveVault(ctx context.Context, prev, next State) error {
	if h.before != nil {
		h.before()
		h.before = nil
	}
	return h.Store.SaveVault(ctx, prev, next)
}

func TestConflict(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	var other Status
	h := &hookStore{Store: f.store, before: func() {
		if err := f.v.Set(ctx, newPIN); err != nil {
			t.Error(err)
		}
		other = f.status(t)
	}}
	v := New(h, WithParams(fastParams))
	wantErr(t, "Set while another process sets", v.Set(ctx, oldPIN), ErrConflict)
	if s := f.status(t); s != other {
		t.Fatalf("Status = %+v, want the other process's %+v", s, other)
	}
}

func TestImport(t *testing.T) {
	ctx := context.Background()
	old := withPIN(t)
	w, err := old.v.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := w.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	fromStorage, err := ParseWrapped(doc)
	if err != nil {
		t.Fatal(err)
	}
	oldSealer, err := old.v.Sealer(ctx)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name    string
		params  Params
		rewraps bool
	}{
		{"same params", fastParams, false},
		{"costlier params", Params{Time: 2, MemoryKiB: 2048, Threads: 1}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.v = New(f.store, WithParams(tc.params), WithClock(f.clock.now), WithEvents(f.sink))
			wantErr(t, "Import with a wrong PIN", f.v.Import(ctx, fromStorage, newPIN), ErrWrongPIN)
			if s := f.status(t); s != (Status{State: StateNone}) {
				t.Fatalf("Status after a wrong PIN = %+v, want nothing counted", s)
			}
			if err := f.v.Import(ctx, fromStorage, oldPIN); err != nil {
				t.Fatal(err)
			}
			sealer, err := f.v.Sealer(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if sealer.Recipient.String() != w.Recipient || !bytes.Equal(sealer.MACKey, oldSealer.MACKey) {
				t.Fatal("the imported keys are not the storage's")
			}
			cur, err := f.v.Current(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if rewrapped := !bytes.Equal(cur.Nonce, w.Nonce); rewrapped != tc.rewraps || cur.Params != tc.params {
				t.Fatalf("imported key has params %+v (wrapped again: %v)", cur.Params, rewrapped)
			}
			if _, err := f.v.Unlock(ctx, oldPIN); err != nil {
				t.Fatal(err)
			}
			wantErr(t, "Import again", f.v.Import(ctx, fromStorage, oldPIN), ErrPINSet)
			if got := types(f.sink.take()); !slices.Equal(got, []string{EventImported}) {
				t.Fatalf("events %v", got)
			}
		})
	}
}

// A MAC key changed in the catalog is found out as soon as the PIN is given.
func TestClearMACKeyChecked(t *testing.T) {
	ctx := context.Background()
	f := withPIN(t)
	st, err := f.store.LoadVault(ctx)
	if err != nil {
		t.Fatal(err)
	}
	next := State{Current: st.Current.clone()}
	next.Current.MACKey[0] ^= 1
	if err := f.store.SaveVault(ctx, st, next); err != nil {
		t.Fatal(err)
	}
	_, err = f.v.Unlock(ctx, oldPIN)
	wantErr(t, "Unlock with a changed MAC key", err, ErrCorrupt)
}

func TestEvents(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	steps := []func() error{
		func() error { return f.v.Set(ctx, oldPIN) },
		func() error { _, err := f.v.Unlock(ctx, "not-the-pin"); return err },
		func() error { return f.v.Change(ctx, oldPIN, newPIN) },
		func() error { _, err := f.v.Reset(ctx, oldPIN); return err },
		func() error { _, err := f.v.Unlock(ctx, newPIN); return err },
		func() error { _, err := f.v.Reset(ctx, oldPIN); return err },
		func() error { _, err := f.v.Reinit(ctx); return err },
	}
	var errs []string
	for _, step := range steps {
		if err := step(); err != nil {
			errs = append(errs, err.Error())
		}
	}
	es := f.sink.take()
	want := []string{EventSet, EventWrong, EventChanged, EventReset, EventRestored, EventReset, EventResetFinished}
	if got := types(es); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	for _, e := range es {
		if e.Source != "vault" || !e.Time.Equal(t0) || e.Message == "" {
			t.Errorf("event %+v", e)
		}
		if failed := events.Failed(e.Reason); failed != (e.Type == EventWrong) || !failed && e.Reason != events.ReasonDone {
			t.Errorf("event %s has reason %q", e.Type, e.Reason)
		}
	}
	if es[1].Reason != ReasonFailedWrongPIN || es[1].Fields["failures"] != 1 {
		t.Errorf("wrong PIN event %+v", es[1])
	}
	text, err := json.Marshal(es)
	if err != nil {
		t.Fatal(err)
	}
	for _, pin := range []string{oldPIN, newPIN, "not-the-pin"} {
		if bytes.Contains(text, []byte(pin)) || strings.Contains(strings.Join(errs, "\n"), pin) {
			t.Fatalf("a PIN shows in the events or errors:\n%s\n%s", text, errs)
		}
	}
}

// The full cost, once: the rest of the tests use fastParams.
func TestDefaultParams(t *testing.T) {
	ctx := context.Background()
	v := New(NewMemoryStore())
	if err := v.Set(ctx, oldPIN); err != nil {
		t.Fatal(err)
	}
	w, err := v.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if w.Params != DefaultParams || DefaultParams != (Params{Time: 3, MemoryKiB: 64 << 10, Threads: 4}) {
		t.Fatalf("params %+v, want RFC 9106's second recommended option", w.Params)
	}
	start := time.Now()
	if _, err := v.Unlock(ctx, oldPIN); err != nil {
		t.Fatal(err)
	}
	t.Logf("one unwrap at DefaultParams: %s", time.Since(start))
}
