// Package devhttp is what the drivers that speak HTTP share: one client per device, with
// the timeouts a reboot-wait needs and the device's authentication, and exchanges that
// read the whole answer within a bound and sort failures into devconf's kinds of error.
package devhttp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"syscall"
	"time"

	"github.com/icholy/digest"

	"github.com/vigil-backup/vigil/internal/devconf"
)

const (
	// ConnectTimeout bounds a TCP connect: a device on the local network answers in
	// milliseconds, and a reboot-wait should learn soon that it is still down.
	ConnectTimeout = 5 * time.Second
	// RequestTimeout bounds an ordinary request, answer included.
	RequestTimeout = 30 * time.Second
	// TransferTimeout bounds a request that carries a configuration, which a device may
	// take a while to produce or to take in before it answers.
	TransferTimeout = 5 * time.Minute
)

// Auth is how a device checks who is asking.
type Auth int

const (
	// NoAuth sends no credentials over HTTP.
	NoAuth Auth = iota
	// Basic sends the user and password with every request.
	Basic
	// Digest answers the device's digest challenge (RFC 7616) when one comes.
	Digest
)

// Client sends a device's requests. It is safe for concurrent use, and keeps connections
// open between requests.
type Client struct {
	hc *http.Client
}

// New returns a client that authenticates as user with auth.
func New(auth Auth, user, password string) *Client {
	base := &http.Transport{
		// Devices sit on the installation's own network: a proxy set for Internet
		// traffic must not carry their passwords.
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: ConnectTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     30 * time.Second,
	}
	var rt http.RoundTripper = base
	switch auth {
	case Basic:
		rt = basicAuth{user: user, password: password, next: base}
	case Digest:
		rt = &digest.Transport{Username: user, Password: password, Transport: base}
	}
	return &Client{hc: &http.Client{
		Transport: rt,
		// A redirect could lead the credentials to another host; a device that
		// redirects is reported, with the status, like any other non-2xx answer.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type basicAuth struct {
	user, password string
	next           http.RoundTripper
}

func (b basicAuth) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.SetBasicAuth(b.user, b.password)
	return b.next.RoundTrip(req)
}

// Request is one request to a device.
type Request struct {
	Method string
	URL    string
	Header http.Header
	Body   []byte
	// Timeout bounds the exchange; zero means RequestTimeout.
	Timeout time.Duration
	// Limit is the largest answer read; zero means devconf.MaxConfigSize. A larger answer
	// is an error, never cut short.
	Limit int64
}

// Response is a device's whole answer.
type Response struct {
	StatusCode int
	Status     string
	Header     http.Header
	Body       []byte

	method, url string
}

// Do sends req and reads the answer, whatever its status. Failing to reach the device,
// or an answer cut off, is devconf.ErrUnreachable; an answer over the limit is an error;
// a cancelled ctx is ctx's error.
func (c *Client) Do(ctx context.Context, req Request) (*Response, error) {
	shown := Shown(req.URL)
	timeout, limit := req.Timeout, req.Limit
	if timeout == 0 {
		timeout = RequestTimeout
	}
	if limit == 0 {
		limit = devconf.MaxConfigSize
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var body io.Reader
	if req.Body != nil {
		// A bytes.Reader gives the request a GetBody, so that a digest challenge can be
		// answered by sending the body again.
		body = bytes.NewReader(req.Body)
	}
	hr, err := http.NewRequestWithContext(tctx, req.Method, req.URL, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, shown, err)
	}
	for k, v := range req.Header {
		hr.Header[k] = v
	}
	resp, err := c.hc.Do(hr)
	if err != nil {
		return nil, failed(ctx, tctx, req.Method, shown, timeout, err)
	}
	defer resp.Body.Close()
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("%s %s: the answer is %d bytes, more than the %d a device may send", req.Method, shown, resp.ContentLength, limit)
	}
	var buf bytes.Buffer
	if resp.ContentLength > 0 {
		buf.Grow(int(resp.ContentLength) + 1) // +1: reading on to EOF needs no second buffer
	}
	_, err = buf.ReadFrom(io.LimitReader(resp.Body, limit+1))
	data := buf.Bytes()
	if err != nil && resp.StatusCode == http.StatusUnauthorized {
		// digest.Transport hands back a 401 without a digest challenge (an ONVIF
		// device's, say) with its body already read and closed; the status says it all.
		data, err = nil, nil
	}
	if err != nil {
		return nil, failed(ctx, tctx, req.Method, shown, timeout, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s %s: the answer is more than the %d bytes a device may send", req.Method, shown, limit)
	}
	return &Response{
		StatusCode: resp.StatusCode, Status: resp.Status, Header: resp.Header, Body: data,
		method: req.Method, url: shown,
	}, nil
}

// failed sorts the error of an exchange: the caller's own cancellation or deadline stays
// what it is; the exchange's timeout, and a connection refused, reset or cut short, are
// the device not answering.
func failed(ctx, tctx context.Context, method, shown string, timeout time.Duration, err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err // it repeats the URL, with any query
	}
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("%s %s: %w", method, shown, context.Cause(ctx))
	case tctx.Err() != nil:
		return fmt.Errorf("%s %s: %w: no answer within %v", method, shown, devconf.ErrUnreachable, timeout)
	}
	if unreachable(err) {
		return fmt.Errorf("%s %s: %w: %w", method, shown, devconf.ErrUnreachable, err)
	}
	return fmt.Errorf("%s %s: %w", method, shown, err)
}

func unreachable(err error) bool {
	var nerr net.Error
	var operr *net.OpError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return true
	case errors.As(err, &nerr) && nerr.Timeout():
		return true
	case errors.As(err, &operr):
		return true
	}
	return false
}

// OK reports whether the status is 2xx.
func (r *Response) OK() bool { return r.StatusCode >= 200 && r.StatusCode < 300 }

// Err is nil for a 2xx answer. Otherwise it names the request and the status, followed by
// detail when not empty, and wraps devconf.ErrAuth for 401 and 403 and
// devconf.ErrUnreachable for 502 to 504 (a device still starting, or a gateway in front of
// one that is down).
func (r *Response) Err(detail string) error {
	if r.OK() {
		return nil
	}
	msg := fmt.Sprintf("%s %s: HTTP %s", r.method, r.url, r.Status)
	if r.Status == "" {
		msg = fmt.Sprintf("%s %s: HTTP %d", r.method, r.url, r.StatusCode)
	}
	if detail != "" {
		msg += " (" + detail + ")"
	}
	switch r.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("%s: %w", msg, devconf.ErrAuth)
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return fmt.Errorf("%s: %w", msg, devconf.ErrUnreachable)
	}
	return errors.New(msg)
}

// Shown is how messages name a URL: without user information or query, which could hold
// secrets.
func Shown(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(an invalid URL)"
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment = nil, "", false, ""
	return u.String()
}

// CheckURL checks that raw is an http or https URL with a host and without credentials,
// and returns it parsed.
func CheckURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return nil, fmt.Errorf("%s is not an http:// or https:// URL", strconv.Quote(Shown(raw)))
	case u.User != nil:
		return nil, fmt.Errorf("%s holds credentials: give them as user and password instead", strconv.Quote(Shown(raw)))
	}
	return u, nil
}
