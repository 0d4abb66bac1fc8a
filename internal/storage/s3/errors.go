package s3

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"

	"github.com/minio/minio-go/v7"

	"github.com/vigil-backup/vigil/internal/storage"
)

// S3 error codes by the kind of storage error they are. Codes not listed fall back to
// their HTTP status (see kindOfStatus).
var kindOfCode = map[string]error{
	"AccessDenied":                   storage.ErrPermission,
	"InvalidAccessKeyId":             storage.ErrPermission,
	"SignatureDoesNotMatch":          storage.ErrPermission,
	"InvalidToken":                   storage.ErrPermission,
	"ExpiredToken":                   storage.ErrPermission,
	"AccountProblem":                 storage.ErrPermission,
	"AllAccessDisabled":              storage.ErrPermission,
	"NoSuchBucket":                   storage.ErrNotFound,
	"InvalidBucketName":              storage.ErrNotFound,
	"NoSuchKey":                      storage.ErrNotFound,
	"NotFound":                       storage.ErrNotFound,
	"PreconditionFailed":             storage.ErrExists,
	"XMinioStorageFull":              storage.ErrNoSpace,
	"XMinioAdminBucketQuotaExceeded": storage.ErrNoSpace,
	"QuotaExceeded":                  storage.ErrNoSpace,
	"SlowDown":                       storage.ErrUnreachable,
	"SlowDownRead":                   storage.ErrUnreachable,
	"SlowDownWrite":                  storage.ErrUnreachable,
	"RequestTimeout":                 storage.ErrUnreachable,
	"InternalError":                  storage.ErrUnreachable,
	"ServiceUnavailable":             storage.ErrUnreachable,
	"XMinioServerNotInitialized":     storage.ErrUnreachable,
	// Two writers raced on one name with If-None-Match; trying again says which won.
	"ConditionalRequestConflict": storage.ErrUnreachable,
}

func kindOfStatus(status int) error {
	switch {
	case status == http.StatusInsufficientStorage:
		return storage.ErrNoSpace
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		return storage.ErrPermission
	case status == http.StatusNotFound:
		return storage.ErrNotFound
	case status == http.StatusPreconditionFailed:
		return storage.ErrExists
	case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests, status >= 500:
		return storage.ErrUnreachable
	}
	return nil
}

// classify gives err the kind callers act on, on one line and without the secret key. It
// returns nil for nil. When ctx has ended, that is the cause, whatever the client made of it.
func (s *Storage) classify(ctx context.Context, op, name string, err error) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%s %s: %w", op, name, ctxErr)
	}
	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		kind, ok := kindOfCode[resp.Code]
		if !ok {
			kind = kindOfStatus(resp.StatusCode)
		}
		return storage.NewError(op, name, kind, oneLine(serverError{resp}, s.secret))
	}
	kind, note := kindOfTransport(err)
	cause := unwrapURL(err)
	if note != "" {
		cause = &lineError{msg: cause.Error() + " (" + note + ")", err: err}
	}
	return storage.NewError(op, name, kind, oneLine(cause, s.secret))
}

// serverError shows an S3 error with its code, which says more than the message alone.
type serverError struct{ resp minio.ErrorResponse }

func (e serverError) Error() string {
	msg := strings.TrimSuffix(e.resp.Error(), ".")
	if e.resp.Code == "" || strings.Contains(msg, e.resp.Code) {
		return msg
	}
	return e.resp.Code + ": " + msg
}

func (e serverError) Unwrap() error { return e.resp }

// kindOfTransport sorts the errors of the connection itself: a certificate the client does
// not trust, or TLS against a plain HTTP server, is a setting to fix, and note says which;
// anything else that broke the exchange (refused, reset, timed out, name not resolved,
// cut short) may pass.
func kindOfTransport(err error) (kind error, note string) {
	var (
		unknownAuthority x509.UnknownAuthorityError
		hostname         x509.HostnameError
		invalid          x509.CertificateInvalidError
		verify           *tls.CertificateVerificationError
		header           tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &header), strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return nil, "the server speaks plain HTTP: add ?tls=false to the URL"
	case errors.As(err, &unknownAuthority),
		errors.As(err, &hostname), errors.As(err, &invalid), errors.As(err, &verify):
		return nil, "the server's certificate is not trusted: add its CA to the system's or to SSL_CERT_FILE"
	}
	var netErr net.Error
	var urlErr *url.Error
	switch {
	case errors.As(err, &netErr), errors.As(err, &urlErr),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ETIMEDOUT),
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return storage.ErrUnreachable, ""
	}
	return nil, ""
}

// unwrapURL drops the request URL that *url.Error repeats: long, and not what went wrong.
func unwrapURL(err error) error {
	var urlErr *url.Error
	if errors.As(err, &urlErr) && urlErr.Err != nil {
		return &lineError{msg: urlErr.Err.Error(), err: err}
	}
	return err
}

// lineError is an error with its message rewritten, still wrapping the original.
type lineError struct {
	msg string
	err error
}

func (e *lineError) Error() string { return e.msg }
func (e *lineError) Unwrap() error { return e.err }

// oneLine puts err's message on one line and blanks out secret, so that it fits in a log
// line and an operator's screen without leaking the key.
func oneLine(err error, secret string) error {
	msg := strings.Join(strings.Fields(err.Error()), " ")
	if secret != "" {
		msg = strings.ReplaceAll(msg, secret, "[secret]")
	}
	if msg == err.Error() {
		return err
	}
	return &lineError{msg: msg, err: err}
}
