// Package storage defines where backups live: the Storage interface that every kind of
// storage (local folder, SMB share, SFTP server, S3 bucket) implements, the errors they
// return, and how a storage is named by a URL.
//
// The implementations live in sub-packages, one per kind; cross-cutting behaviour (retry,
// bandwidth limits) are decorators in their own sub-packages, and storage/all assembles them.
// Nothing under storage imports a higher layer.
package storage

import (
	"context"
	"io"
	"log/slog"
	"os"
	"time"
)

// Storage is a place backups live.
//
// Names are slash-separated paths relative to the storage root, such as
// "vigil/footage/srv1/hi_quality/cam/2026/11/22/04/1763784000000_10000.mkv". ValidName says
// which names are allowed; an invalid name fails with ErrInvalidName.
//
// All methods are safe for concurrent use. Errors that a caller must act on are classified
// by kind (ErrNotFound, ErrExists, ErrNoSpace, ErrUnreachable, ErrPermission,
// ErrInvalidName) and are tested with errors.Is. Only ErrUnreachable is transient: the same
// call may succeed later, and the retry decorator retries it; every other error is final.
type Storage interface {
	// Put stores the content of src under name. It reads src from its current position to
	// its end, which must be exactly src.Size() bytes; a source that yields a different
	// length fails the Put.
	//
	// Put is atomic: the object becomes visible, to Open, Stat and List, whole and at once
	// when Put returns nil, and not at all when it fails or ctx is cancelled. A failed Put
	// leaves no partial object and no debris that List would show. When name exists, Put
	// replaces it, also atomically, unless opts.NoOverwrite is set, in which case it fails
	// with ErrExists and the old object is kept. On success the data has been flushed to the
	// server's stable storage where the protocol offers a flush.
	Put(ctx context.Context, name string, src Source, opts PutOptions) error

	// Open returns a reader of length bytes of the object, starting at offset. A length of 0
	// reads to the end. Reading past the end yields io.EOF early; an offset beyond the end
	// is not an error and reads nothing. A missing object is ErrNotFound (from Open, not
	// from the first Read). The caller must close the reader.
	Open(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error)

	// Stat describes the object. A missing object, or a name that is a folder, is ErrNotFound.
	Stat(ctx context.Context, name string) (FileInfo, error)

	// List calls fn for every object below the folder prefix ("" for the whole storage),
	// at any depth, in no particular order. A prefix that does not exist lists nothing and
	// is not an error. Objects being written by a Put in progress are not listed. When fn
	// returns an error, List stops and returns that error. fn is called from one goroutine
	// at a time and at most once per object.
	List(ctx context.Context, prefix string, fn func(FileInfo) error) error

	// Remove deletes the object. A missing object is ErrNotFound.
	Remove(ctx context.Context, name string) error

	// Close releases the connections the storage holds. The storage is unusable afterwards;
	// closing it again does nothing.
	Close() error
}

// PutOptions changes how Put treats an existing object.
type PutOptions struct {
	// NoOverwrite makes Put fail with ErrExists instead of replacing an existing object.
	// The check and the write are one atomic step on local folders, S3, and SFTP servers
	// that rename with link(2) as OpenSSH does. On SMB the client in use offers only
	// replacing renames, so the check comes just before the rename, as it does on SFTP
	// servers without hard links: two writers racing on one name may both succeed there.
	NoOverwrite bool
}

// FileInfo describes one stored object.
type FileInfo struct {
	Name    string    // the full name, relative to the storage root
	Size    int64     // bytes
	ModTime time.Time // when the object was last written, as the server reports it
}

// Usage is how much room a storage has, in bytes.
type Usage struct {
	Total int64 // capacity of the volume or quota
	Free  int64 // what this user may still write
}

// UsageReporter is the optional ability to report free space. Local folders, SMB shares
// and SFTP servers (with the statvfs extension) have it; S3 has no such call.
type UsageReporter interface {
	Usage(ctx context.Context) (Usage, error)
}

// Wrapper is implemented by decorators, so optional abilities of the storage they wrap
// can still be found.
type Wrapper interface {
	Unwrap() Storage
}

// UsageOf reports the free space of s, looking through decorators. ok is false when the
// storage cannot tell.
func UsageOf(ctx context.Context, s Storage) (u Usage, ok bool, err error) {
	for s != nil {
		if r, isReporter := s.(UsageReporter); isReporter {
			u, err = r.Usage(ctx)
			return u, err == nil, err
		}
		w, isWrapper := s.(Wrapper)
		if !isWrapper {
			break
		}
		s = w.Unwrap()
	}
	return Usage{}, false, nil
}

// Sweeper removes what interrupted Puts left below prefix: temporary files and
// incomplete uploads older than olderThan (so that Puts in progress, also by other
// processes, are left alone). It returns how many it removed.
//
// A Put removes its own temporary object when it fails; a process that is killed, or a
// machine that loses power, cannot, and the object stays, hidden from List but taking
// space, until a sweep. Age is taken from the server: the last modification of a
// temporary file, which a Put in progress keeps fresh with every write, or the start of
// an incomplete upload and the last part it received. It is measured against this machine's clock, so olderThan must be
// well above the clock skew between the two, and above the longest pause of a Put's
// source. A Put whose temporary object is swept fails.
//
// prefix is a folder as for List ("" for the whole storage). Only temporary objects are
// ever removed, never an object; one that vanishes during the sweep is not an error.
type Sweeper interface {
	Sweep(ctx context.Context, prefix string, olderThan time.Duration) (int, error)
}

// SweepOf sweeps s (see Sweeper), looking through decorators. ok is false when the
// storage cannot sweep; n is then 0 and err nil. The sweep is not retried: it runs again
// the next time, and whatever it missed does no harm meanwhile.
func SweepOf(ctx context.Context, s Storage, prefix string, olderThan time.Duration) (n int, ok bool, err error) {
	for s != nil {
		if sw, isSweeper := s.(Sweeper); isSweeper {
			n, err = sw.Sweep(ctx, prefix, olderThan)
			return n, true, err
		}
		w, isWrapper := s.(Wrapper)
		if !isWrapper {
			break
		}
		s = w.Unwrap()
	}
	return 0, false, nil
}

// Credentials are the secrets a storage logs in with, kept apart from Location so that a
// location can be shown anywhere and credentials nowhere.
type Credentials struct {
	User     string // when set, replaces the location's user (a UNC path has none)
	Password string // SMB or SFTP password, or the S3 secret access key
}

// String never shows the password.
func (c Credentials) String() string {
	if c.Password == "" {
		return "user " + c.User
	}
	return "user " + c.User + " with a password"
}

// GoString keeps %#v from showing the password.
func (c Credentials) GoString() string { return "storage.Credentials{" + c.String() + "}" }

// LogValue keeps log/slog from showing the password.
func (c Credentials) LogValue() slog.Value { return slog.StringValue(c.String()) }

// Spooler is the optional ability to take an object written in place, whose size is not
// known beforehand: a local folder hands out a temporary file on its own disk and renames
// it into place, where writing the object elsewhere first and then Put would write every
// byte twice.
type Spooler interface {
	// Spool returns a new, empty temporary file for the object name, hidden from List
	// and removed by a sweep if it is left behind. To give up, close and remove it.
	Spool(ctx context.Context, name string) (*os.File, error)
	// Commit flushes f to stable storage and makes it the object name, atomically and
	// with opts as Put would; it closes f, and removes it when it fails.
	Commit(ctx context.Context, f *os.File, name string, opts PutOptions) error
}

// writeLimiter is a decorator that acts on writes (a throttle): writing in place beneath
// it would bypass it.
type writeLimiter interface{ LimitsWrites() }

// SpoolerOf returns the Spooler of s, looking through decorators that leave writes as
// they are. ok is false when s cannot spool.
func SpoolerOf(s Storage) (sp Spooler, ok bool) {
	for s != nil {
		if sp, ok := s.(Spooler); ok {
			return sp, true
		}
		if _, limits := s.(writeLimiter); limits {
			return nil, false
		}
		w, isWrapper := s.(Wrapper)
		if !isWrapper {
			break
		}
		s = w.Unwrap()
	}
	return nil, false
}
