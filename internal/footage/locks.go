package footage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/vigil-backup/vigil/internal/storage"
)

// Lock is an evidence lock: footage of a camera over a time range that retention never
// removes, for instance because an incident was recorded there. Locks live on the storage
// beside the footage they protect (LocksName), so that every machine that prunes the
// storage honours them.
type Lock struct {
	ID     string `json:"id"`
	Camera string `json:"camera"`           // AllCameras for every camera
	Stream Stream `json:"stream,omitempty"` // "" for both
	// From and To bound the footage locked, [From, To): a chunk is locked when its footage
	// overlaps the range at all.
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Reason  string    `json:"reason"`
	Created time.Time `json:"created"`
	By      string    `json:"by,omitempty"`
}

// AllCameras as a lock's camera locks the range on every camera.
const AllCameras = "*"

// ErrBadLock means a lock was refused as given: it says what is wrong with it.
var ErrBadLock = errors.New("invalid evidence lock")

// ErrNoLock means there is no lock with the id given.
var ErrNoLock = errors.New("no such evidence lock")

// Bounds on what a lock may hold: the file is read by every prune, and its text is shown
// to operators, so neither may be made to blow up.
const (
	maxReason = 1000 // bytes
	maxBy     = 200
	maxLocks  = 10000
)

// LocksName is where a server's evidence locks are kept on a storage.
func LocksName(serverID string) string { return ServerRoot(serverID) + "/.vigil/locks.json" }

// locksFile is what LocksName holds.
type locksFile struct {
	Locks []Lock `json:"locks"`
}

// covers reports whether l protects the chunk of record r in series k.
func (l Lock) covers(k Key, r Record) bool {
	return (l.Camera == AllCameras || l.Camera == k.Camera) && (l.Stream == "" || l.Stream == k.Stream) &&
		overlaps(r, l.From, l.To)
}

// check says what is wrong with l, if anything. It is applied to what is read from the
// storage too: anyone with access to it may have written the file.
func (l Lock) check() error {
	switch {
	case l.Camera == "":
		return errors.New("no camera given (use * for every camera)")
	case l.Camera != AllCameras && (storage.ValidName(l.Camera) != nil || strings.Contains(l.Camera, "/")):
		return fmt.Errorf("%q is not a camera id", l.Camera)
	case l.Stream != "" && l.Stream != High && l.Stream != Low:
		return fmt.Errorf("stream %q: use hi, lo or none for both", l.Stream)
	case l.From.IsZero() || l.To.IsZero():
		return errors.New("the range needs a start and an end")
	case !l.To.After(l.From):
		return fmt.Errorf("the range is empty: it ends (%s) no later than it starts (%s)", when(l.To), when(l.From))
	case strings.TrimSpace(l.Reason) == "":
		return errors.New("a reason is required: say why this footage must be kept")
	}
	if err := checkText("the reason", l.Reason, maxReason); err != nil {
		return err
	}
	return checkText("the name of who set it", l.By, maxBy)
}

// checkText refuses text that would garble a listing or a terminal: control and format
// characters (such as escape sequences, or right-to-left overrides that make text read
// otherwise than it is), invalid UTF-8, and more than max bytes.
func checkText(what, s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%s is %d bytes long; at most %d are allowed", what, len(s), max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not valid UTF-8", what)
	}
	for i, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return fmt.Errorf("%s holds the control character %U at byte %d: give plain text on one line", what, r, i)
		}
	}
	return nil
}

// ReadLocks reads a server's evidence locks on a storage; none when there is no file. A
// file that cannot be read, or holds a lock that is not valid, is an error: retention must
// not go on without the locks.
func ReadLocks(ctx context.Context, s storage.Storage, serverID string) ([]Lock, error) {
	locks, err := readLocksFile(ctx, s, serverID)
	if err != nil {
		return nil, err
	}
	for i, l := range locks {
		if err := l.check(); err != nil {
			return nil, fmt.Errorf("read the evidence locks: lock %d (%q) in %s: %w: %v", i+1, l.ID, LocksName(serverID), ErrBadLock, err)
		}
	}
	return locks, nil
}

// readLocksFile reads the locks without checking them, so that a bad one can be removed.
func readLocksFile(ctx context.Context, s storage.Storage, serverID string) ([]Lock, error) {
	var f locksFile
	switch err := readJSON(ctx, s, LocksName(serverID), &f); {
	case errors.Is(err, storage.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read the evidence locks: %w", err)
	}
	return f.Locks, nil
}

// AddLock checks l and adds it to a server's locks on a storage, with a new ID (the one
// given is not kept), and Created set to now when it is zero; it returns the lock as
// stored.
//
// The locks are one file, replaced whole (Put is atomic): two machines changing the locks
// of a server at the same moment could each write over the other's change. AddLock reads
// the file again after writing it to catch that, and tries once more when its lock is
// gone.
func AddLock(ctx context.Context, s storage.Storage, serverID string, l Lock) (Lock, error) {
	l.ID, l.From, l.To = "", l.From.UTC(), l.To.UTC()
	if l.Created.IsZero() {
		l.Created = time.Now()
	}
	l.Created = l.Created.UTC()
	if err := l.check(); err != nil {
		return Lock{}, fmt.Errorf("%w: %v", ErrBadLock, err)
	}
	for range 2 {
		locks, err := ReadLocks(ctx, s, serverID)
		if err != nil {
			return Lock{}, err
		}
		if len(locks) >= maxLocks {
			return Lock{}, fmt.Errorf("add an evidence lock: %w: there are %d already, the most a server may have; remove some first", ErrBadLock, len(locks))
		}
		if l.ID == "" || slices.ContainsFunc(locks, l.sameID) {
			l.ID = newLockID(locks)
		}
		if err := writeLocks(ctx, s, serverID, append(locks, l)); err != nil {
			return Lock{}, err
		}
		locks, err = ReadLocks(ctx, s, serverID)
		if err != nil {
			return Lock{}, err
		}
		if slices.ContainsFunc(locks, l.sameID) {
			return l, nil
		}
	}
	return Lock{}, fmt.Errorf("add an evidence lock: another machine changed the locks at the same time, twice: try again")
}

// RemoveLock removes the lock with the given id and returns it; ErrNoLock when there is
// none. Like AddLock, it confirms its change by reading the file again.
func RemoveLock(ctx context.Context, s storage.Storage, serverID, id string) (Lock, error) {
	for range 2 {
		locks, err := readLocksFile(ctx, s, serverID)
		if err != nil {
			return Lock{}, err
		}
		i := slices.IndexFunc(locks, Lock{ID: id}.sameID)
		if i < 0 {
			return Lock{}, fmt.Errorf("remove evidence lock %q: %w on %s", id, ErrNoLock, LocksName(serverID))
		}
		gone := locks[i]
		if err := writeLocks(ctx, s, serverID, slices.Delete(locks, i, i+1)); err != nil {
			return Lock{}, err
		}
		locks, err = readLocksFile(ctx, s, serverID)
		if err != nil {
			return Lock{}, err
		}
		if !slices.ContainsFunc(locks, gone.sameID) {
			return gone, nil
		}
	}
	return Lock{}, fmt.Errorf("remove evidence lock %q: another machine changed the locks at the same time, twice: try again", id)
}

func writeLocks(ctx context.Context, s storage.Storage, serverID string, locks []Lock) error {
	if locks == nil {
		locks = []Lock{}
	}
	slices.SortStableFunc(locks, func(a, b Lock) int { return a.From.Compare(b.From) })
	if err := writeJSON(ctx, s, LocksName(serverID), locksFile{Locks: locks}); err != nil {
		return fmt.Errorf("write the evidence locks: %w", err)
	}
	return nil
}

func (l Lock) sameID(m Lock) bool { return l.ID == m.ID }

// newLockID returns a short id, unlike any of locks', that an operator can type.
func newLockID(locks []Lock) string {
	for {
		b := make([]byte, 4)
		_, _ = rand.Read(b) // never fails (crypto/rand)
		id := hex.EncodeToString(b)
		if !slices.ContainsFunc(locks, Lock{ID: id}.sameID) {
			return id
		}
	}
}

// locked reports whether any of locks protects the chunk of record r in series k.
func locked(locks []Lock, k Key, r Record) bool {
	return slices.ContainsFunc(locks, func(l Lock) bool { return l.covers(k, r) })
}
