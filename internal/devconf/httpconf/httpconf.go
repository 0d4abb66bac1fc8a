// Package httpconf backs up any device whose configuration is one file behind a URL:
// read with GET, written back with PUT or POST, optionally restarted with a POST.
package httpconf

import (
	"context"
	"fmt"
	"net/http"
	"path"
	"time"

	"github.com/vigil-backup/vigil/internal/devconf"
	"github.com/vigil-backup/vigil/internal/devconf/devhttp"
)

// Options say where a device's configuration is and how to reach it.
type Options struct {
	// URL is where the configuration is read from. Required.
	URL string
	// RestoreURL is where it is written back; default URL.
	RestoreURL string
	// RestoreMethod is PUT (the default) or POST.
	RestoreMethod string
	// RebootURL restarts the device when POSTed to; none: the device has no reboot.
	RebootURL string
	// HealthURL answers 2xx when the device is up; default URL.
	HealthURL string
	// Auth is basic (the default) or digest; without a user, nothing is sent.
	Auth           string
	User, Password string
}

// Driver talks to one device over HTTP.
type Driver struct {
	url, restoreURL, method, rebootURL, healthURL string
	name                                          string // of the configuration file
	client                                        *devhttp.Client
}

var _ devconf.Driver = (*Driver)(nil)

// New checks opts and returns a driver.
func New(opts Options) (*Driver, error) {
	u, err := devhttp.CheckURL(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("http: url: %w", err)
	}
	d := &Driver{url: opts.URL, restoreURL: opts.URL, method: http.MethodPut, rebootURL: opts.RebootURL, healthURL: opts.URL}
	for _, o := range []struct {
		field string
		value string
		dst   *string
	}{{"restore_url", opts.RestoreURL, &d.restoreURL}, {"reboot_url", opts.RebootURL, &d.rebootURL}, {"health_url", opts.HealthURL, &d.healthURL}} {
		if o.value == "" {
			continue
		}
		if _, err := devhttp.CheckURL(o.value); err != nil {
			return nil, fmt.Errorf("http: %s: %w", o.field, err)
		}
		*o.dst = o.value
	}
	switch opts.RestoreMethod {
	case "", http.MethodPut:
	case http.MethodPost:
		d.method = http.MethodPost
	default:
		return nil, fmt.Errorf("http: restore_method %q is not PUT or POST", opts.RestoreMethod)
	}
	auth := devhttp.Basic
	switch opts.Auth {
	case "", "basic":
	case "digest":
		auth = devhttp.Digest
	default:
		return nil, fmt.Errorf("http: auth %q is not basic or digest", opts.Auth)
	}
	if opts.User == "" {
		auth = devhttp.NoAuth
	}
	d.client = devhttp.New(auth, opts.User, opts.Password)
	d.name = path.Base(u.Path)
	if d.name == "." || d.name == "/" || d.name == ".." {
		d.name = "config"
	}
	return d, nil
}

// Fetch reads the configuration: one file, named after the last element of the URL's
// path, or "config".
func (d *Driver) Fetch(ctx context.Context) (devconf.Config, error) {
	data, err := d.do(ctx, http.MethodGet, d.url, nil, devhttp.TransferTimeout)
	if err != nil {
		return devconf.Config{}, fmt.Errorf("fetch the configuration: %w", err)
	}
	return devconf.Config{Files: []devconf.File{{Name: d.name, Data: data}}}, nil
}

// Push writes the configuration back. It first checks that the device is up and takes
// the credentials, so that the configuration is sent once, with them (a digest challenge
// is then known), rather than first to be refused.
func (d *Driver) Push(ctx context.Context, cfg devconf.Config) error {
	if len(cfg.Files) != 1 {
		return fmt.Errorf("restore the configuration: it must be one file, not %d", len(cfg.Files))
	}
	if err := d.Ping(ctx); err != nil {
		return fmt.Errorf("restore the configuration: %w", err)
	}
	if _, err := d.do(ctx, d.method, d.restoreURL, cfg.Files[0].Data, devhttp.TransferTimeout); err != nil {
		return fmt.Errorf("restore the configuration: %w", err)
	}
	return nil
}

// Reboot POSTs to the reboot URL, or returns devconf.ErrNoReboot when there is none.
func (d *Driver) Reboot(ctx context.Context) error {
	if d.rebootURL == "" {
		return fmt.Errorf("reboot: %w: no reboot_url is set", devconf.ErrNoReboot)
	}
	if _, err := d.do(ctx, http.MethodPost, d.rebootURL, nil, 0); err != nil {
		return fmt.Errorf("reboot: %w", err)
	}
	return nil
}

// Ping GETs the health URL and expects a 2xx answer.
func (d *Driver) Ping(ctx context.Context) error {
	if _, err := d.do(ctx, http.MethodGet, d.healthURL, nil, 0); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	return nil
}

func (d *Driver) do(ctx context.Context, method, url string, body []byte, timeout time.Duration) ([]byte, error) {
	req := devhttp.Request{Method: method, URL: url, Body: body, Timeout: timeout}
	if body != nil {
		req.Header = http.Header{"Content-Type": {"application/octet-stream"}}
	}
	resp, err := d.client.Do(ctx, req)
	if err != nil {
		return nil, err
	}
	return resp.Body, resp.Err("")
}
