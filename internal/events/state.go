package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vigil-backup/vigil/internal/atomicfile"
)

// State remembers, for OnceUntilSuccess, which keys last delivered a failure. Keys are
// opaque strings; a key never set is not failing. Implementations are safe for concurrent
// use. *catalog.Catalog is one, which keeps the state in the catalog.
type State interface {
	// EventFailing reports whether the last event delivered with key was a failure.
	EventFailing(ctx context.Context, key string) (bool, error)
	// SetEventFailing records that a failure with key was delivered at since. A key that
	// is failing already keeps its earlier time.
	SetEventFailing(ctx context.Context, key string, since time.Time) error
	// ClearEventFailing records that an event with key that is not a failure was
	// delivered. Clearing a key that is not failing does nothing.
	ClearEventFailing(ctx context.Context, key string) error
}

// NewMemoryState returns a State kept in memory only: a new process starts afresh.
func NewMemoryState() State { return &memoryState{failing: map[string]time.Time{}} }

type memoryState struct {
	mu      sync.Mutex
	failing map[string]time.Time
}

var _ State = (*memoryState)(nil)

func (m *memoryState) EventFailing(ctx context.Context, key string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.failing[key]
	return ok, nil
}

func (m *memoryState) SetEventFailing(ctx context.Context, key string, since time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.failing[key]; !ok {
		m.failing[key] = since
	}
	return nil
}

func (m *memoryState) ClearEventFailing(ctx context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.failing, key)
	return nil
}

// FileState is a State kept in a small JSON file, for a process that has no catalog. The
// file is read at every call, so that sinks of other FileStates on the same path, in this
// process or the next, see what this one recorded; it is replaced whole (temporary file,
// fsync, rename), so that a crash leaves the old state or the new one. Two processes that
// change it at the same moment may lose one change: at worst a failure is told twice.
//
// A file that cannot be decoded is reported by EventFailing and otherwise treated as
// empty: the next change replaces it.
type FileState struct {
	path string
	mu   sync.Mutex // orders this value's read-change-write cycles
}

var _ State = (*FileState)(nil)

// NewFileState returns a FileState kept at path. Nothing is read or written until the
// first call; the file and its folder are made on the first change.
func NewFileState(path string) *FileState { return &FileState{path: path} }

// stateFile is what a FileState's file holds.
type stateFile struct {
	// Failing maps the keys whose last delivered event was a failure to the time of the
	// first failure in a row.
	Failing map[string]time.Time `json:"failing"`
}

// errCorruptState is wrapped by the errors of a state file that cannot be decoded.
var errCorruptState = errors.New("corrupt")

func (f *FileState) EventFailing(ctx context.Context, key string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, err := f.load()
	if err != nil {
		return false, err
	}
	_, ok := st.Failing[key]
	return ok, nil
}

func (f *FileState) SetEventFailing(ctx context.Context, key string, since time.Time) error {
	return f.change(func(st *stateFile) bool {
		if _, ok := st.Failing[key]; ok {
			return false
		}
		st.Failing[key] = since.UTC()
		return true
	})
}

func (f *FileState) ClearEventFailing(ctx context.Context, key string) error {
	return f.change(func(st *stateFile) bool {
		if _, ok := st.Failing[key]; !ok {
			return false
		}
		delete(st.Failing, key)
		return true
	})
}

// change loads the state, lets edit change it, and writes it back when edit says it did.
func (f *FileState) change(edit func(*stateFile) bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, err := f.load()
	// EventFailing has told of a corrupt file already; writing replaces it.
	if err != nil && !errors.Is(err, errCorruptState) {
		return err
	}
	if !edit(&st) {
		return nil
	}
	return f.write(st)
}

// load reads the file. A missing file is an empty state; a corrupt one is an empty state
// and an error that wraps errCorruptState.
func (f *FileState) load() (stateFile, error) {
	st := stateFile{Failing: map[string]time.Time{}}
	b, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("read event state: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return stateFile{Failing: map[string]time.Time{}},
			fmt.Errorf("event state %s is %w, so it is treated as empty: %v", f.path, errCorruptState, err)
	}
	if st.Failing == nil {
		st.Failing = map[string]time.Time{}
	}
	return st, nil
}

func (f *FileState) write(st stateFile) error {
	b, err := json.MarshalIndent(st, "", "\t")
	if err != nil {
		return fmt.Errorf("encode event state: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(f.path), 0o700); err != nil {
		return fmt.Errorf("write event state: %w", err)
	}
	if err := atomicfile.Write(f.path, append(b, '\n'), nil); err != nil {
		return fmt.Errorf("write event state: %w", err)
	}
	return nil
}
