// Package vault keeps the Super PIN's keys. Device configuration backups are encrypted to
// an age X25519 public key, so scheduled backups need no PIN; the private key, which
// restores need, is kept wrapped under the operator's Super PIN: argon2id derives a key
// from the PIN and a random salt, and XChaCha20-Poly1305 seals the private key with it,
// bound to its public key. Each key set also has a MAC key that authenticates backup
// labels; it is kept in clear beside the wrapped key, so that backups can be labelled
// without the PIN, and inside it, so that a new machine that has only a storage's keys/
// can check labels once given the PIN.
//
// A Vault enforces the PIN's rules on this machine: the first 5 wrong PINs in a row are
// free, then each try waits 30 s, doubling up to an hour. That limit binds only those who
// go through Vigil.
//
// Someone who steals a wrapped key (a storage's keys/, or the catalog) cannot decrypt a
// backup, learn the MAC key or plant a key of their own (Import opens only a file sealed
// under the operator's PIN) without the PIN; but they can guess it offline, as fast as
// their hardware computes argon2id. Measured on this project's 2-core development
// machine, one argon2id at DefaultParams costs 0.12 to 0.18 s of one core: some 7 guesses
// a second per core. A GPU was not measured; the 64 MiB each guess must fill is meant to
// hold one to the work of dozens of cores, not thousands. A 6-digit PIN (10^6 of them)
// then falls within some 40 core-hours: under an hour on one 64-core server. The PIN
// policy only takes away the first guesses; it cannot make 6 digits strong. A random
// 10-character PIN of letters and digits (62^10, about 8·10^17) would take some 4·10^9
// core-years. Only a long PIN protects against a thief of the files, so an operator whose
// storages others can reach should choose one. A thief of the catalog has the MAC keys
// too, in clear, so can forge backup labels, but still not decrypt.
package vault

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"filippo.io/age"

	"github.com/vigil-backup/vigil/internal/events"
)

// Errors that callers decide on; match them with errors.Is.
var (
	ErrNoPIN    = errors.New("no Super PIN is set: set one first (vigil pin set)")
	ErrPINSet   = errors.New("a Super PIN is set already: change it (vigil pin change), or reset it if it is lost (vigil pin reset)")
	ErrReset    = errors.New("the Super PIN was reset: backups are refused until the old PIN is entered again (vigil pin reset with the old PIN) or every device backup is deleted (vigil device delete-all --yes)")
	ErrWrongPIN = errors.New("wrong Super PIN")
	ErrCorrupt  = errors.New("the wrapped key is damaged or was not written by vigil")
	// ErrLockedOut is matched by a *LockedError.
	ErrLockedOut = errors.New("too many wrong Super PINs")
)

// LockedError refuses a try at the PIN while the wait after too many wrong ones runs. The
// PIN was not tried, nor the refusal counted.
type LockedError struct {
	Until time.Time     // when a PIN may be tried again
	Wait  time.Duration // how long that was from the refusal
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("too many wrong Super PINs: try again in %s", e.Wait.Round(time.Second))
}

// Is makes a *LockedError match ErrLockedOut.
func (e *LockedError) Is(target error) bool { return target == ErrLockedOut }

// The rate limit on wrong PINs.
const (
	freeTries = 5
	firstWait = 30 * time.Second
	maxWait   = time.Hour
)

// lockedUntil tells until when no PIN may be tried after failures wrong ones in a row,
// the last at last; the zero time when one may be tried at once.
func lockedUntil(failures int, last time.Time) time.Time {
	if failures < freeTries {
		return time.Time{}
	}
	wait := maxWait
	if doublings := failures - freeTries; doublings < 8 {
		wait = min(firstWait<<doublings, maxWait)
	}
	return last.Add(wait)
}

// States, as Status tells them.
const (
	StateNone  = "none"  // no Super PIN is set
	StateReady = "ready" // backups are encrypted to the current key
	StateReset = "reset" // the PIN was reset: backups wait for the old PIN or for all of them to be deleted
)

// Event types, sent from Source "vault". Wrong PINs and lock-outs have a failed reason,
// so the log sink logs them at Warn; the rest have events.ReasonDone.
const (
	EventSet           = "pin.set"
	EventChanged       = "pin.changed"
	EventReset         = "pin.reset"
	EventRestored      = "pin.restored" // the old PIN was entered in the reset state
	EventResetFinished = "pin.reset_finished"
	EventImported      = "pin.imported"
	EventWrong         = "pin.wrong"
	EventLockedOut     = "pin.locked_out"

	ReasonFailedWrongPIN  = "failed_wrong_pin"
	ReasonFailedLockedOut = "failed_locked_out"
)

// Vault is the Super PIN's keys in a Store. It is safe for concurrent use; processes that
// share a store (the CLI and the daemon, through the catalog) may use it at once: a
// change made meanwhile by the other is refused with ErrConflict rather than undone.
type Vault struct {
	store  Store
	now    func() time.Time
	params Params
	sink   events.Sink
	log    *slog.Logger

	// mu makes this process try one PIN at a time: each argon2id takes 64 MiB.
	mu sync.Mutex
}

// Option configures New.
type Option func(*Vault)

// WithClock makes the vault read the time from now instead of time.Now.
func WithClock(now func() time.Time) Option { return func(v *Vault) { v.now = now } }

// WithParams sets the argon2id costs for keys wrapped from now on; DefaultParams
// otherwise. Keys already wrapped keep theirs until their PIN is changed.
func WithParams(p Params) Option { return func(v *Vault) { v.params = p } }

// WithEvents sends the PIN's events to s. A sink that fails is logged and does not fail
// the operation.
func WithEvents(s events.Sink) Option { return func(v *Vault) { v.sink = s } }

// WithLogger logs to l the events that could not be sent; slog.Default() otherwise.
func WithLogger(l *slog.Logger) Option { return func(v *Vault) { v.log = l } }

// New returns the vault kept in store.
func New(store Store, opts ...Option) *Vault {
	v := &Vault{store: store, now: time.Now, params: DefaultParams, log: slog.Default()}
	for _, o := range opts {
		o(v)
	}
	return v
}

// Status is the vault's state, as shown to operators. It holds no secret.
type Status struct {
	State            string // StateNone, StateReady or StateReset
	Recipient        string // the current public key, age1…; "" in StateNone
	PendingRecipient string // the public key a reset waits to make current; "" unless StateReset
	Failures         int    // wrong PINs since the last right one
	LockedUntil      time.Time
}

// Status returns the vault's state. LockedUntil is the zero time when a PIN may be tried
// now.
func (v *Vault) Status(ctx context.Context) (Status, error) {
	st, state, err := v.load(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("read Super PIN status: %w", err)
	}
	n, last, err := v.store.PINFailures(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("read Super PIN status: %w", err)
	}
	s := Status{State: state, Failures: n}
	if st.Current != nil {
		s.Recipient = st.Current.Wrapped.Recipient
	}
	if st.Pending != nil {
		s.PendingRecipient = st.Pending.Wrapped.Recipient
	}
	if until := lockedUntil(n, last); v.now().Before(until) {
		s.LockedUntil = until
	}
	return s, nil
}

// Set sets the first Super PIN: a new key set, wrapped under pin. Once one is set, it is
// ErrPINSet.
func (v *Vault) Set(ctx context.Context, pin string) error {
	if err := v.set(ctx, pin); err != nil {
		return fmt.Errorf("set Super PIN: %w", err)
	}
	return nil
}

func (v *Vault) set(ctx context.Context, pin string) error {
	if err := CheckPIN(pin); err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	st, state, err := v.load(ctx)
	if err != nil {
		return err
	}
	if state != StateNone {
		return ErrPINSet
	}
	keys, err := NewKeys()
	if err != nil {
		return err
	}
	slot, err := v.wrap(pin, keys)
	if err != nil {
		return err
	}
	return v.adopt(ctx, st, slot, EventSet, "Super PIN set")
}

// adopt makes slot the first current key; st is the state read, with no key.
func (v *Vault) adopt(ctx context.Context, st State, slot *Slot, event, msg string) error {
	// Wrong PINs tried before there was a PIN count for nothing.
	if err := v.store.ClearPINFailures(ctx); err != nil {
		return err
	}
	if err := v.store.SaveVault(ctx, st, State{Current: slot}); err != nil {
		return err
	}
	v.emit(ctx, event, events.ReasonDone, msg, map[string]any{"recipient": slot.Wrapped.Recipient})
	return nil
}

// Change wraps the current keys under newPIN, given the current PIN as oldPIN; a wrong
// oldPIN counts as a wrong try. The keys stay the same, so backups made before remain
// readable. In StateReset the current PIN ends the reset: the pending key is dropped.
func (v *Vault) Change(ctx context.Context, oldPIN, newPIN string) error {
	if err := v.change(ctx, oldPIN, newPIN); err != nil {
		return fmt.Errorf("change Super PIN: %w", err)
	}
	return nil
}

func (v *Vault) change(ctx context.Context, oldPIN, newPIN string) error {
	if err := CheckPIN(newPIN); err != nil {
		return fmt.Errorf("new PIN: %w", err)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	st, state, err := v.load(ctx)
	if err != nil {
		return err
	}
	if state == StateNone {
		return ErrNoPIN
	}
	keys, err := v.tryPIN(ctx, st.Current, oldPIN, "change")
	if err != nil {
		return err
	}
	slot, err := v.wrap(newPIN, keys)
	if err != nil {
		return err
	}
	if err := v.store.SaveVault(ctx, st, State{Current: slot}); err != nil {
		return err
	}
	fields := map[string]any{"recipient": slot.Wrapped.Recipient}
	if state == StateReset {
		fields["reset_cancelled"] = true
	}
	v.emit(ctx, EventChanged, events.ReasonDone, "Super PIN changed", fields)
	return nil
}

// Reset is for an operator who lost the Super PIN. If pin is the current PIN after all,
// nothing is reset: the pending key, if any, is dropped and restored is true. Otherwise a
// new key set is wrapped under pin, as the new PIN, and waits as the pending key
// (StateReset): backups are refused until the current PIN is entered again, which ends
// the reset, or every backup is deleted and Reinit makes the pending key current. In
// StateNone it is ErrNoPIN.
//
// Every Reset tries pin against the current key, so it is a guess like any other: it
// waits out the lock-out as Unlock does, and one that does not restore counts as a wrong
// try, though it is no mistake and sends EventReset rather than EventWrong. Were resets
// not counted, a thief could guess the current PIN through them without limit; counting
// them costs an operator who resets a few times in a row a wait at most, and a right PIN
// clears the count. A new PIN that the policy refuses (CheckPIN) is refused after the
// try, so that an old PIN set under laxer rules can still restore.
func (v *Vault) Reset(ctx context.Context, pin string) (restored bool, err error) {
	restored, err = v.reset(ctx, pin)
	if err != nil {
		return false, fmt.Errorf("reset Super PIN: %w", err)
	}
	return restored, nil
}

func (v *Vault) reset(ctx context.Context, pin string) (bool, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	st, _, err := v.load(ctx)
	if err != nil {
		return false, err
	}
	if st.Current == nil {
		return false, ErrNoPIN
	}
	failures, at, err := v.countTry(ctx)
	if err != nil {
		return false, err
	}
	keys, err := st.Current.Wrapped.Unwrap(pin)
	switch {
	case err == nil:
		if err := v.rightPIN(ctx, st.Current, keys); err != nil {
			return false, err
		}
		if err := v.endReset(ctx, st); err != nil {
			return false, err
		}
		return true, nil
	case !errors.Is(err, ErrWrongPIN):
		return false, err
	}
	v.lockedOut(ctx, failures, at)
	if err := CheckPIN(pin); err != nil {
		return false, fmt.Errorf("new PIN: %w", err)
	}
	keys, err = NewKeys()
	if err != nil {
		return false, err
	}
	slot, err := v.wrap(pin, keys)
	if err != nil {
		return false, err
	}
	if err := v.store.SaveVault(ctx, st, State{Current: st.Current, Pending: slot}); err != nil {
		return false, err
	}
	v.emit(ctx, EventReset, events.ReasonDone, "Super PIN reset: backups wait for the old PIN, or for every backup to be deleted",
		map[string]any{"recipient": st.Current.Wrapped.Recipient, "pending_recipient": slot.Wrapped.Recipient})
	return false, nil
}

// Unlock returns the current keys, for restores and exports, given the current PIN. A
// wrong one is ErrWrongPIN and counts; while the lock-out lasts, it is a *LockedError. In
// StateReset the current PIN ends the reset: the pending key is dropped.
func (v *Vault) Unlock(ctx context.Context, pin string) (Keys, error) {
	keys, err := v.unlock(ctx, pin)
	if err != nil {
		return Keys{}, fmt.Errorf("unlock Super PIN: %w", err)
	}
	return keys, nil
}

func (v *Vault) unlock(ctx context.Context, pin string) (Keys, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	st, state, err := v.load(ctx)
	if err != nil {
		return Keys{}, err
	}
	if state == StateNone {
		return Keys{}, ErrNoPIN
	}
	keys, err := v.tryPIN(ctx, st.Current, pin, "unlock")
	if err != nil {
		return Keys{}, err
	}
	if err := v.endReset(ctx, st); err != nil {
		return Keys{}, err
	}
	return keys, nil
}

// Sealer is what a backup needs, without the PIN: the public key to encrypt to and the
// key that authenticates its label. Printing or logging it does not show the MAC key.
type Sealer struct {
	Recipient *age.X25519Recipient
	MACKey    []byte
}

func (s Sealer) String() string {
	if s.Recipient == nil {
		return "vault.Sealer{}"
	}
	return "vault.Sealer{" + s.Recipient.String() + ", MAC key redacted}"
}

// Format prints s as String does, whatever the verb.
func (s Sealer) Format(f fmt.State, _ rune) { fmt.Fprint(f, s.String()) }

// LogValue keeps the MAC key out of logs.
func (s Sealer) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON keeps the MAC key out of JSON, where slog's JSON handler puts a Sealer met
// inside another value.
func (s Sealer) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// Sealer returns the current public key and MAC key. Backups are refused with ErrNoPIN
// before a Super PIN is set, and with ErrReset after a reset: encrypting to the current
// key, whose PIN is lost, would make backups nobody can restore, and encrypting to the
// pending one would mix keys on the storages.
func (v *Vault) Sealer(ctx context.Context) (Sealer, error) {
	s, err := v.sealer(ctx)
	if err != nil {
		return Sealer{}, fmt.Errorf("backup keys: %w", err)
	}
	return s, nil
}

func (v *Vault) sealer(ctx context.Context) (Sealer, error) {
	st, state, err := v.load(ctx)
	if err != nil {
		return Sealer{}, err
	}
	switch state {
	case StateNone:
		return Sealer{}, ErrNoPIN
	case StateReset:
		return Sealer{}, ErrReset
	}
	r, err := age.ParseX25519Recipient(st.Current.Wrapped.Recipient)
	if err != nil {
		return Sealer{}, fmt.Errorf("%w: the current public key does not parse", ErrCorrupt)
	}
	if len(st.Current.MACKey) != MACKeySize {
		return Sealer{}, fmt.Errorf("%w: the current MAC key has %d bytes, not %d", ErrCorrupt, len(st.Current.MACKey), MACKeySize)
	}
	return Sealer{Recipient: r, MACKey: st.Current.MACKey}, nil
}

// Reinit is called once every backup was deleted. In StateReset it makes the pending key
// current, under the PIN given to Reset, and reports true; in any other state it does
// nothing.
func (v *Vault) Reinit(ctx context.Context) (bool, error) {
	done, err := v.reinit(ctx)
	if err != nil {
		return false, fmt.Errorf("finish Super PIN reset: %w", err)
	}
	return done, nil
}

func (v *Vault) reinit(ctx context.Context) (bool, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	st, state, err := v.load(ctx)
	if err != nil || state != StateReset {
		return false, err
	}
	// The wrong tries were at the key that goes.
	if err := v.store.ClearPINFailures(ctx); err != nil {
		return false, err
	}
	if err := v.store.SaveVault(ctx, st, State{Current: st.Pending}); err != nil {
		return false, err
	}
	v.emit(ctx, EventResetFinished, events.ReasonDone, "Super PIN reset finished: the new PIN is in force",
		map[string]any{"recipient": st.Pending.Wrapped.Recipient})
	return true, nil
}

// Import adopts a storage's wrapped key on a machine that has no Super PIN yet (else
// ErrPINSet), given its PIN: the PIN proves the operator's right to it, and opens the MAC
// key, which the machine needs in clear. A wrong PIN is ErrWrongPIN but not counted: whoever
// has w can guess offline anyway, so the count would guard nothing. A key wrapped more
// cheaply than this vault's Params is wrapped again at them.
func (v *Vault) Import(ctx context.Context, w Wrapped, pin string) error {
	if err := v.importKey(ctx, w, pin); err != nil {
		return fmt.Errorf("import Super PIN key: %w", err)
	}
	return nil
}

func (v *Vault) importKey(ctx context.Context, w Wrapped, pin string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	st, state, err := v.load(ctx)
	if err != nil {
		return err
	}
	if state != StateNone {
		return ErrPINSet
	}
	keys, err := w.Unwrap(pin)
	if err != nil {
		return err
	}
	slot := &Slot{Wrapped: w, MACKey: keys.MACKey}
	if w.Params.weaker(v.params) {
		if slot, err = v.wrap(pin, keys); err != nil {
			return err
		}
	}
	return v.adopt(ctx, st, slot, EventImported, "Super PIN key imported")
}

// Current returns the current wrapped key, to be published to keys/ on the storages; in
// StateNone it is ErrNoPIN. In StateReset it is still the current key: it is the one the
// backups on the storages are encrypted to.
func (v *Vault) Current(ctx context.Context) (*Wrapped, error) {
	st, state, err := v.load(ctx)
	if err != nil {
		return nil, fmt.Errorf("current Super PIN key: %w", err)
	}
	if state == StateNone {
		return nil, fmt.Errorf("current Super PIN key: %w", ErrNoPIN)
	}
	return &st.Current.Wrapped, nil
}

// load reads the state and tells which it is.
func (v *Vault) load(ctx context.Context) (State, string, error) {
	st, err := v.store.LoadVault(ctx)
	switch {
	case err != nil:
		return State{}, "", err
	case st.Current == nil && st.Pending != nil:
		return State{}, "", fmt.Errorf("%w: there is a pending key but no current one", ErrCorrupt)
	case st.Current == nil:
		return st, StateNone, nil
	case st.Pending == nil:
		return st, StateReady, nil
	}
	return st, StateReset, nil
}

func (v *Vault) wrap(pin string, keys Keys) (*Slot, error) {
	w, err := wrap(pin, keys, v.params, v.now())
	if err != nil {
		return nil, fmt.Errorf("wrap keys: %w", err)
	}
	return &Slot{Wrapped: w, MACKey: keys.MACKey}, nil
}

// tryPIN opens cur with pin under the lock-out rules; action names the operation in
// events.
func (v *Vault) tryPIN(ctx context.Context, cur *Slot, pin, action string) (Keys, error) {
	failures, at, err := v.countTry(ctx)
	if err != nil {
		return Keys{}, err
	}
	keys, err := cur.Wrapped.Unwrap(pin)
	if errors.Is(err, ErrWrongPIN) {
		v.emit(ctx, EventWrong, ReasonFailedWrongPIN, "Wrong Super PIN", map[string]any{"failures": failures, "action": action})
		v.lockedOut(ctx, failures, at)
		if failures < freeTries {
			return Keys{}, fmt.Errorf("%w (%d wrong in a row; after %d, each try must wait)", ErrWrongPIN, failures, freeTries)
		}
		return Keys{}, fmt.Errorf("%w (%d wrong in a row; the next try must wait %s)", ErrWrongPIN, failures, lockedUntil(failures, at).Sub(at))
	}
	if err != nil {
		return Keys{}, err
	}
	return keys, v.rightPIN(ctx, cur, keys)
}

// countTry counts a try at the PIN as wrong before it is made, or refuses it with a
// *LockedError while the lock-out lasts, without counting it. Counting first keeps
// tries made at once (many processes started together, say) from all passing the check
// before any is counted; a right PIN then clears the count. A try that cannot finish
// (a damaged key, a crash) stays counted: the lock-out errs on the side of waiting.
func (v *Vault) countTry(ctx context.Context) (failures int, at time.Time, err error) {
	at = v.now()
	before, last, err := v.store.PINFailures(ctx)
	if err != nil {
		return 0, at, fmt.Errorf("read the wrong PIN count: %w", err)
	}
	if until := lockedUntil(before, last); at.Before(until) {
		return 0, at, &LockedError{Until: until, Wait: until.Sub(at)}
	}
	failures, err = v.store.RecordPINFailure(ctx, at)
	if err != nil {
		return 0, at, fmt.Errorf("count a try of the PIN: %w", err)
	}
	// Tries counted between the read and this count may have brought the lock-out; then
	// this one waits too (and stays counted: it cannot be taken back).
	if failures-1 > before && failures-1 >= freeTries {
		until := lockedUntil(failures, at)
		return 0, at, &LockedError{Until: until, Wait: until.Sub(at)}
	}
	return failures, at, nil
}

// rightPIN clears the count once the PIN opened cur, and checks that the MAC key kept in
// clear is the one sealed with the private key.
func (v *Vault) rightPIN(ctx context.Context, cur *Slot, keys Keys) error {
	if err := v.store.ClearPINFailures(ctx); err != nil {
		return fmt.Errorf("clear the wrong PIN count: %w", err)
	}
	if subtle.ConstantTimeCompare(cur.MACKey, keys.MACKey) != 1 {
		return fmt.Errorf("%w: the MAC key kept in clear is not the sealed one", ErrCorrupt)
	}
	return nil
}

// lockedOut tells that the failures-th wrong try, counted at at, started a wait.
func (v *Vault) lockedOut(ctx context.Context, failures int, at time.Time) {
	if failures < freeTries {
		return
	}
	until := lockedUntil(failures, at)
	v.emit(ctx, EventLockedOut, ReasonFailedLockedOut, "Too many wrong Super PINs: tries must wait",
		map[string]any{"failures": failures, "until": until.UTC().Format(time.RFC3339)})
}

// endReset drops the pending key, if any, once the current PIN was entered.
func (v *Vault) endReset(ctx context.Context, st State) error {
	if st.Pending == nil {
		return nil
	}
	if err := v.store.SaveVault(ctx, st, State{Current: st.Current}); err != nil {
		return err
	}
	v.emit(ctx, EventRestored, events.ReasonDone, "Super PIN entered again: the reset is cancelled, backups resume",
		map[string]any{"recipient": st.Current.Wrapped.Recipient})
	return nil
}

// emit sends an event. One that cannot be sent is logged, never the operation's failure.
func (v *Vault) emit(ctx context.Context, typ, reason, msg string, fields map[string]any) {
	if v.sink == nil {
		return
	}
	e := events.Event{Type: typ, Time: v.now(), Source: "vault", Reason: reason, Message: msg, Fields: fields}
	if err := v.sink.Send(ctx, e); err != nil {
		v.log.Warn("could not send an event", "event", typ, "err", err)
	}
}
