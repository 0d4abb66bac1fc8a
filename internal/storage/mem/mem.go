// Package mem is a storage in memory, for unit tests of code built on storages. It keeps
// the Storage contract (it passes the conformance suite), so a test that passes against it
// fails only for reasons a real storage would add: the network, the server, the disk.
package mem

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/vigil-backup/vigil/internal/storage"
)

// Storage is a map of names to contents, with an optional capacity.
type Storage struct {
	mu       sync.Mutex
	objects  map[string]object
	capacity int64 // 0: unlimited
	used     int64
	readOnly bool
	now      func() time.Time
}

type object struct {
	data    []byte
	modTime time.Time
}

var (
	_ storage.Storage       = (*Storage)(nil)
	_ storage.UsageReporter = (*Storage)(nil)
)

// Option configures a Storage.
type Option func(*Storage)

// WithCapacity makes Put fail with ErrNoSpace past bytes in all.
func WithCapacity(bytes int64) Option { return func(s *Storage) { s.capacity = bytes } }

// ReadOnly makes writes fail with ErrPermission.
func ReadOnly() Option { return func(s *Storage) { s.readOnly = true } }

// WithClock sets the clock that stamps modification times.
func WithClock(now func() time.Time) Option { return func(s *Storage) { s.now = now } }

// New returns an empty storage.
func New(opts ...Option) *Storage {
	s := &Storage{objects: map[string]object{}, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Put reads src whole before it takes the lock, so the object appears at once.
func (s *Storage) Put(ctx context.Context, name string, src storage.Source, opts storage.PutOptions) error {
	if err := storage.ValidName(name); err != nil {
		return err
	}
	if s.readOnly {
		return storage.NewError("put", name, storage.ErrPermission, errors.New("read-only storage"))
	}
	var buf bytes.Buffer
	n, err := io.Copy(&buf, storage.ContextReader(ctx, src))
	if err != nil {
		return storage.NewError("put", name, nil, err)
	}
	if err := storage.CheckLength(src, n); err != nil {
		return storage.NewError("put", name, nil, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, exists := s.objects[name]
	if exists && opts.NoOverwrite {
		return storage.NewError("put", name, storage.ErrExists, nil)
	}
	if s.capacity > 0 && s.used-int64(len(old.data))+n > s.capacity {
		return storage.NewError("put", name, storage.ErrNoSpace, nil)
	}
	s.used += n - int64(len(old.data))
	s.objects[name] = object{data: buf.Bytes(), modTime: s.now()}
	return nil
}

// Open reads part of an object as it was when opened.
func (s *Storage) Open(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	if err := storage.ValidName(name); err != nil {
		return nil, err
	}
	s.mu.Lock()
	o, ok := s.objects[name]
	s.mu.Unlock()
	if !ok {
		return nil, storage.NewError("open", name, storage.ErrNotFound, nil)
	}
	data := o.data[min(offset, int64(len(o.data))):]
	if length > 0 && length < int64(len(data)) {
		data = data[:length]
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

// Stat describes an object.
func (s *Storage) Stat(ctx context.Context, name string) (storage.FileInfo, error) {
	if err := storage.ValidName(name); err != nil {
		return storage.FileInfo{}, err
	}
	s.mu.Lock()
	o, ok := s.objects[name]
	s.mu.Unlock()
	if !ok {
		return storage.FileInfo{}, storage.NewError("stat", name, storage.ErrNotFound, nil)
	}
	return storage.FileInfo{Name: name, Size: int64(len(o.data)), ModTime: o.modTime}, nil
}

// List calls fn on a snapshot, so that fn may call the storage.
func (s *Storage) List(ctx context.Context, prefix string, fn func(storage.FileInfo) error) error {
	if err := storage.ValidPrefix(prefix); err != nil {
		return err
	}
	folder := strings.TrimSuffix(prefix, "/") + "/"
	var infos []storage.FileInfo
	s.mu.Lock()
	for name, o := range s.objects {
		if prefix == "" || strings.HasPrefix(name, folder) {
			infos = append(infos, storage.FileInfo{Name: name, Size: int64(len(o.data)), ModTime: o.modTime})
		}
	}
	s.mu.Unlock()
	for _, fi := range infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(fi); err != nil {
			return err
		}
	}
	return nil
}

// Remove deletes an object.
func (s *Storage) Remove(ctx context.Context, name string) error {
	if err := storage.ValidName(name); err != nil {
		return err
	}
	if s.readOnly {
		return storage.NewError("remove", name, storage.ErrPermission, errors.New("read-only storage"))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objects[name]
	if !ok {
		return storage.NewError("remove", name, storage.ErrNotFound, nil)
	}
	s.used -= int64(len(o.data))
	delete(s.objects, name)
	return nil
}

// Usage reports the capacity given to New (or a large one when unlimited) and what is left.
func (s *Storage) Usage(ctx context.Context) (storage.Usage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	total := s.capacity
	if total == 0 {
		total = 1 << 50
	}
	return storage.Usage{Total: total, Free: total - s.used}, nil
}

// Close does nothing.
func (s *Storage) Close() error { return nil }
