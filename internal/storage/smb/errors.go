package smb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"syscall"

	smb2 "github.com/cloudsoda/go-smb2"

	"github.com/vigil-backup/vigil/internal/storage"
)

// NTSTATUS codes ([MS-ERREF] 2.3.1) the server answers with. The client library keeps
// its table internal, and maps only a few of them to fs errors itself.
const (
	statusNoSuchFile             = 0xC000000F
	statusAccessDenied           = 0xC0000022
	statusObjectNameInvalid      = 0xC0000033
	statusObjectNameNotFound     = 0xC0000034
	statusObjectNameCollision    = 0xC0000035
	statusObjectPathNotFound     = 0xC000003A
	statusSharingViolation       = 0xC0000043
	statusQuotaExceeded          = 0xC0000044
	statusDeletePending          = 0xC0000056
	statusNoSuchUser             = 0xC0000064
	statusWrongPassword          = 0xC000006A
	statusLogonFailure           = 0xC000006D
	statusAccountRestriction     = 0xC000006E
	statusInvalidLogonHours      = 0xC000006F
	statusInvalidWorkstation     = 0xC0000070
	statusPasswordExpired        = 0xC0000071
	statusAccountDisabled        = 0xC0000072
	statusDiskFull               = 0xC000007F
	statusInsufficientResources  = 0xC000009A
	statusMediaWriteProtected    = 0xC00000A2
	statusIOTimeout              = 0xC00000B5
	statusBadNetworkPath         = 0xC00000BE
	statusNetworkNameDeleted     = 0xC00000C9
	statusNetworkAccessDenied    = 0xC00000CA
	statusBadNetworkName         = 0xC00000CC
	statusRequestNotAccepted     = 0xC00000D0
	statusVirtualCircuitClosed   = 0xC00000D6
	statusNotADirectory          = 0xC0000103
	statusTooManyOpenedFiles     = 0xC000011F
	statusCannotDelete           = 0xC0000121
	statusAccountExpired         = 0xC0000193
	statusUserSessionDeleted     = 0xC0000203
	statusConnectionDisconnected = 0xC000020C
	statusConnectionReset        = 0xC000020D
	statusPasswordMustChange     = 0xC0000224
	statusNotFound               = 0xC0000225
	statusAccountLockedOut       = 0xC0000234
	statusNetworkSessionExpired  = 0xC000035C
	statusServerUnavailable      = 0xC0000466
	statusDiskQuotaExceeded      = 0xC0000802
)

// statusKinds gives the storage error kind of each status a caller can act on.
var statusKinds = map[uint32]error{
	statusNoSuchFile:            storage.ErrNotFound,
	statusObjectNameNotFound:    storage.ErrNotFound,
	statusObjectPathNotFound:    storage.ErrNotFound,
	statusNotFound:              storage.ErrNotFound,
	statusDeletePending:         storage.ErrNotFound,
	statusNotADirectory:         storage.ErrNotFound,
	statusBadNetworkName:        storage.ErrNotFound,
	statusBadNetworkPath:        storage.ErrNotFound,
	statusObjectNameCollision:   storage.ErrExists,
	statusDiskFull:              storage.ErrNoSpace,
	statusQuotaExceeded:         storage.ErrNoSpace,
	statusDiskQuotaExceeded:     storage.ErrNoSpace,
	statusAccessDenied:          storage.ErrPermission,
	statusNetworkAccessDenied:   storage.ErrPermission,
	statusMediaWriteProtected:   storage.ErrPermission,
	statusCannotDelete:          storage.ErrPermission,
	statusObjectNameInvalid:     storage.ErrInvalidName,
	statusInsufficientResources: storage.ErrUnreachable,
	statusIOTimeout:             storage.ErrUnreachable,
	statusRequestNotAccepted:    storage.ErrUnreachable,
	statusServerUnavailable:     storage.ErrUnreachable,
	statusTooManyOpenedFiles:    storage.ErrUnreachable,
}

// sessionGone are the statuses that end the session or tree connection on the server's
// side: the connection is useless afterwards and is replaced.
var sessionGone = map[uint32]bool{
	statusNetworkNameDeleted:     true,
	statusUserSessionDeleted:     true,
	statusNetworkSessionExpired:  true,
	statusVirtualCircuitClosed:   true,
	statusConnectionDisconnected: true,
	statusConnectionReset:        true,
}

// loginRefusals say why the server refused to log a user in, in an operator's words.
var loginRefusals = map[uint32]string{
	statusLogonFailure:        "wrong user name or password",
	statusWrongPassword:       "wrong user name or password",
	statusNoSuchUser:          "wrong user name or password",
	statusAccountDisabled:     "the account is disabled",
	statusAccountLockedOut:    "the account is locked out",
	statusAccountExpired:      "the account has expired",
	statusAccountRestriction:  "the account may not log in here",
	statusInvalidLogonHours:   "the account may not log in at this time of day",
	statusInvalidWorkstation:  "the account may not log in from this computer",
	statusPasswordExpired:     "the password has expired",
	statusPasswordMustChange:  "the password must be changed first",
	statusNetworkAccessDenied: "the account may not log in over the network",
	statusAccessDenied:        "access denied",
}

// status returns the NTSTATUS in err, or 0.
func status(err error) uint32 {
	var re *smb2.ResponseError
	if errors.As(err, &re) {
		return re.Code
	}
	return 0
}

// classify says which kind err is, and whether it means the connection is broken, in
// which case the session is dropped so that the next call dials again.
func classify(err error) (kind error, broken bool) {
	code := status(err)
	switch {
	case code != 0 && sessionGone[code]:
		return storage.ErrUnreachable, true
	case code != 0 && statusKinds[code] != nil:
		return statusKinds[code], false
	case code != 0 && loginRefusals[code] != "":
		return storage.ErrPermission, false
	case errors.Is(err, fs.ErrNotExist):
		return storage.ErrNotFound, false
	case errors.Is(err, fs.ErrExist):
		return storage.ErrExists, false
	case errors.Is(err, fs.ErrPermission):
		return storage.ErrPermission, false
	case errors.Is(err, smb2.ErrRequestNotAccepted):
		return storage.ErrUnreachable, false
	case connectionError(err):
		return storage.ErrUnreachable, true
	}
	return nil, false
}

// connectionError reports whether err comes from the transport: the server went away,
// reset the connection, or sent something the client cannot follow.
func connectionError(err error) bool {
	var (
		te  *smb2.TransportError
		ire *smb2.InvalidResponseError
		ne  net.Error
	)
	return errors.As(err, &te) || errors.As(err, &ire) || errors.As(err, &ne) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNABORTED) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ETIMEDOUT) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH)
}

// isCancel reports whether err is the end of the caller's context rather than a failure.
func isCancel(ctx context.Context, err error) bool {
	return ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
}

// cancelled is the error of a call whose context ended.
func cancelled(ctx context.Context, op, name string) error {
	return fmt.Errorf("%s %s: %w", op, name, context.Cause(ctx))
}

// kindOf is the kind of an error this package made before, so that an error from dialing
// keeps its kind when a call reports it.
func kindOf(err error) error {
	var e *storage.Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return nil
}

// dialError explains why the TCP connection to addr failed.
func dialError(addr string, err error) error {
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return fmt.Errorf("host %q not found", dnsErr.Name)
	case errors.As(err, &dnsErr):
		return fmt.Errorf("look up host %q: %s", dnsErr.Name, dnsErr.Err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("nothing listens on %s (connection refused)", addr)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, syscall.ETIMEDOUT), isTimeout(err):
		return fmt.Errorf("no answer from %s in time", addr)
	}
	return fmt.Errorf("connect to %s: %w", addr, err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
