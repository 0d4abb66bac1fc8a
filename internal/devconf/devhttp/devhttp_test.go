package devhttp_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/internal/devconf"
	"github.com/vigil-backup/vigil/internal/devconf/devhttp"
	"github.com/vigil-backup/vigil/internal/testenv"
)

// TestHTTPLimit: an answer over the limit is an error, whether its length is announced or it
// comes chunked; one at the limit is read whole.
func TestHTTPLimit(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		if r.URL.Path == "/length" {
			w.Header().Set("Content-Length", strconv.Itoa(n))
		}
		for range n / 100 {
			w.Write([]byte(strings.Repeat("x", 100)))
			w.(http.Flusher).Flush() // chunks, where no length was set
		}
	}))
	t.Cleanup(srv.Close)
	c := devhttp.New(devhttp.NoAuth, "", "")
	for _, tc := range []struct {
		path string
		n    int
		ok   bool
	}{
		{"/length", 1000, true},
		{"/length", 1100, false},
		{"/chunked", 1000, true},
		{"/chunked", 1100, false},
	} {
		resp, err := c.Do(t.Context(), devhttp.Request{Method: http.MethodGet, URL: srv.URL + tc.path + "?n=" + strconv.Itoa(tc.n), Limit: 1000})
		switch {
		case tc.ok && (err != nil || len(resp.Body) != tc.n):
			t.Errorf("%s of %d bytes with a limit of 1000: %v", tc.path, tc.n, err)
		case !tc.ok && err == nil:
			t.Errorf("%s of %d bytes with a limit of 1000: %d bytes and no error", tc.path, tc.n, len(resp.Body))
		case !tc.ok && (strings.Contains(err.Error(), "?n=") || errors.Is(err, devconf.ErrUnreachable)):
			t.Errorf("%s of %d bytes: %v, want an error of its own that does not show the query", tc.path, tc.n, err)
		}
	}
}

func TestHTTPStatus(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		w.WriteHeader(code)
	}))
	t.Cleanup(srv.Close)
	c := devhttp.New(devhttp.Basic, "admin", "s3cret")
	for _, tc := range []struct {
		code int
		kind error // nil: none of devconf's
	}{
		{200, nil}, {204, nil}, {302, nil}, {401, devconf.ErrAuth}, {403, devconf.ErrAuth}, {404, nil},
		{500, nil}, {502, devconf.ErrUnreachable}, {503, devconf.ErrUnreachable}, {504, devconf.ErrUnreachable},
	} {
		url := srv.URL + "/" + strconv.Itoa(tc.code)
		resp, err := c.Do(t.Context(), devhttp.Request{Method: http.MethodGet, URL: url + "?token=abc"})
		if err != nil {
			t.Fatalf("GET %d: %v", tc.code, err)
		}
		err = resp.Err("detail")
		if resp.OK() != (err == nil) || resp.OK() != (tc.code < 300) {
			t.Errorf("HTTP %d: OK %v, error %v", tc.code, resp.OK(), err)
		}
		if err == nil {
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, url) || !strings.Contains(msg, strconv.Itoa(tc.code)) || !strings.Contains(msg, "detail") || strings.Contains(msg, "token") {
			t.Errorf("HTTP %d: %q, want the URL without its query, the status and the detail", tc.code, msg)
		}
		for _, kind := range []error{devconf.ErrAuth, devconf.ErrUnreachable, devconf.ErrUnsupported} {
			if errors.Is(err, kind) != (kind == tc.kind) {
				t.Errorf("HTTP %d: %v, is %v: %v", tc.code, err, kind, errors.Is(err, kind))
			}
		}
	}
}

// TestHTTPNoRedirect: a redirect is not followed, so that credentials stay with the device.
func TestHTTPNoRedirect(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the redirect was followed, with Authorization %q", r.Header.Get("Authorization"))
	}))
	t.Cleanup(other.Close)
	dev := httptest.NewServer(http.RedirectHandler(other.URL, http.StatusFound))
	t.Cleanup(dev.Close)
	resp, err := devhttp.New(devhttp.Basic, "admin", "s3cret").Do(t.Context(), devhttp.Request{Method: http.MethodGet, URL: dev.URL})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusFound || resp.Err("") == nil {
		t.Errorf("HTTP %d, error %v: want 302 reported as an error", resp.StatusCode, resp.Err(""))
	}
}

func TestHTTPUnreachable(t *testing.T) {
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	t.Cleanup(hang.Close)
	c := devhttp.New(devhttp.Digest, "admin", "s3cret")
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	for _, tc := range []struct {
		name    string
		ctx     context.Context
		url     string
		timeout time.Duration
		want    error
	}{
		{"closed port", t.Context(), "http://" + testenv.ClosedAddr(t) + "/x", 0, devconf.ErrUnreachable},
		{"no answer in time", t.Context(), hang.URL, 100 * time.Millisecond, devconf.ErrUnreachable},
		{"cancelled", cancelled, hang.URL, 0, context.Canceled},
	} {
		_, err := c.Do(tc.ctx, devhttp.Request{Method: http.MethodGet, URL: tc.url, Timeout: tc.timeout})
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if tc.want == context.Canceled && errors.Is(err, devconf.ErrUnreachable) {
			t.Errorf("%s: %v is not the device's fault", tc.name, err)
		}
	}
}

func TestHTTPCheckURL(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"http://10.0.0.5/onvif/device_service", true},
		{"https://cam.local:8443", true},
		{"ftp://10.0.0.5/", false},
		{"10.0.0.5", false},
		{"http:///path", false},
		{"http://admin:hunter2@10.0.0.5/", false},
	} {
		_, err := devhttp.CheckURL(tc.url)
		if (err == nil) != tc.ok {
			t.Errorf("CheckURL(%q): %v", tc.url, err)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("CheckURL(%q): %v shows the password", tc.url, err)
		}
	}
}
