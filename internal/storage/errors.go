package storage

import (
	"context"
	"errors"
	"fmt"
)

// The kinds of error a Storage reports. Test for them with errors.Is.
var (
	// ErrNotFound: the object, folder, share or bucket does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: the object exists and the operation would not replace it.
	ErrExists = errors.New("already exists")
	// ErrNoSpace: the volume or quota is full.
	ErrNoSpace = errors.New("no space left")
	// ErrUnreachable: the server could not be reached, refused or dropped the connection,
	// or answered that it is busy. The only transient kind: trying again later may succeed.
	ErrUnreachable = errors.New("unreachable")
	// ErrPermission: the credentials were refused, or this user may not do this.
	ErrPermission = errors.New("permission denied")
	// ErrInvalidName: the name is not one a storage accepts (see ValidName).
	ErrInvalidName = errors.New("invalid name")
)

// hints tell an operator what to do next about each kind of error.
var hints = map[error]string{
	ErrNotFound:    "check the path, share or bucket name",
	ErrExists:      "the object is already there; remove it first to replace it",
	ErrNoSpace:     "free space on the storage, lower retention, or add a storage",
	ErrUnreachable: "check the host, the port, the network and that the server is running",
	ErrPermission:  "check the user name, the password or key, and the user's rights on the storage",
	ErrInvalidName: "names are slash-separated, relative, without '.', '..' or empty parts",
}

// Error is an error from a storage operation. Kind is one of the Err* values above, or nil
// when the failure fits none of them; Err is the cause as the server or system reported it.
type Error struct {
	Op   string // what was being done: "put", "open", "connect", ...
	Name string // the object, when there is one
	Kind error
	Err  error
}

// NewError returns an *Error, or err itself when it is already one for the same operation.
func NewError(op, name string, kind, err error) error {
	var e *Error
	if errors.As(err, &e) && e.Op == op && e.Name == name && (kind == nil || e.Kind == kind) {
		return err
	}
	return &Error{Op: op, Name: name, Kind: kind, Err: err}
}

func (e *Error) Error() string {
	s := e.Op
	if e.Name != "" {
		s += " " + e.Name
	}
	switch {
	case e.Err == nil && e.Kind != nil:
		return s + ": " + e.Kind.Error()
	case e.Err == nil:
		return s + ": failed"
	case e.Kind != nil && !errors.Is(e.Err, e.Kind):
		return fmt.Sprintf("%s: %v: %v", s, e.Kind, e.Err)
	default:
		return fmt.Sprintf("%s: %v", s, e.Err)
	}
}

// Unwrap returns the cause, so errors.Is and errors.As see through to it.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is this error's kind.
func (e *Error) Is(target error) bool { return e.Kind != nil && target == e.Kind }

// Hint says what an operator can do about the error, or "" when there is nothing useful to say.
func Hint(err error) string {
	for kind, hint := range hints {
		if errors.Is(err, kind) {
			return hint
		}
	}
	return ""
}

// IsTransient reports whether trying the same call again later may succeed: the server was
// unreachable or busy. Cancellation is not transient.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	return errors.Is(err, ErrUnreachable)
}
