package httpconf_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vigil-backup/vigil/internal/devconf"
	"github.com/vigil-backup/vigil/internal/devconf/devconftest"
	"github.com/vigil-backup/vigil/internal/devconf/httpconf"
	"github.com/vigil-backup/vigil/internal/testenv"
)

func TestHTTPDriver(t *testing.T) {
	for _, tc := range []struct{ auth, method string }{
		{"basic", http.MethodPut},
		{"digest", http.MethodPut},
		{"basic", http.MethodPost},
		{"digest", http.MethodPost},
	} {
		t.Run(tc.auth+"/"+tc.method, func(t *testing.T) {
			devconftest.Run(t, devconftest.Harness{
				Start: func(t testenv.T, opts testenv.DeviceOptions) *testenv.Device {
					opts.Auth, opts.RestoreMethod, opts.Reboot = tc.auth, tc.method, true
					return testenv.StartHTTPDevice(t, opts)
				},
				Open: func(t *testing.T, dev *testenv.Device, password string) devconf.Driver {
					return open(t, httpconf.Options{
						URL: dev.URL(), RebootURL: dev.RebootURL(), RestoreMethod: tc.method,
						Auth: tc.auth, User: dev.User, Password: password,
					})
				},
			})
		})
	}
}

func open(t *testing.T, opts httpconf.Options) *httpconf.Driver {
	t.Helper()
	d, err := httpconf.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestHTTPNoReboot: a device without a reboot URL takes a configuration at once, and
// Reboot says it cannot.
func TestHTTPNoReboot(t *testing.T) {
	dev := testenv.StartHTTPDevice(t, testenv.DeviceOptions{})
	drv := open(t, httpconf.Options{URL: dev.URL(), User: dev.User, Password: dev.Password})
	cfg := devconf.Config{Files: []devconf.File{{Name: "settings.xml", Data: []byte("<config>new</config>")}}}
	if err := drv.Push(t.Context(), cfg); err != nil {
		t.Fatalf("push: %v", err)
	}
	if got := string(dev.Active()); got != "<config>new</config>" {
		t.Errorf("the device has %q, want the pushed configuration at once", got)
	}
	if err := drv.Reboot(t.Context()); !errors.Is(err, devconf.ErrNoReboot) {
		t.Errorf("reboot without a reboot URL: %v, want ErrNoReboot", err)
	}
	if dev.Reboots() != 0 {
		t.Error("the device rebooted")
	}
}

// TestHTTPMethodRefused: a device that takes POST refuses the default PUT, and the error
// names the URL and the status.
func TestHTTPMethodRefused(t *testing.T) {
	dev := testenv.StartHTTPDevice(t, testenv.DeviceOptions{RestoreMethod: http.MethodPost})
	drv := open(t, httpconf.Options{URL: dev.URL(), User: dev.User, Password: dev.Password})
	err := drv.Push(t.Context(), devconf.Config{Files: []devconf.File{{Name: "settings.xml", Data: []byte("x")}}})
	if err == nil || !strings.Contains(err.Error(), dev.URL()) || !strings.Contains(err.Error(), "405") {
		t.Fatalf("push with PUT to a device that takes POST: %v, want an error naming %s and 405", err, dev.URL())
	}
	devconftest.NoSecret(t, err, dev.Password)
}

// TestHTTPFileName: the file is named after the URL's last path element, or "config".
func TestHTTPFileName(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("x")) }))
	t.Cleanup(srv.Close)
	for _, tc := range []struct{ path, name string }{
		{"/export/acs.json", "acs.json"},
		{"/export/acs.json?part=all", "acs.json"},
		{"/export/", "export"},
		{"/", "config"},
		{"", "config"},
	} {
		cfg, err := open(t, httpconf.Options{URL: srv.URL + tc.path}).Fetch(t.Context())
		if err != nil {
			t.Fatalf("fetch %s: %v", tc.path, err)
		}
		if cfg.Files[0].Name != tc.name {
			t.Errorf("fetch %q: file %q, want %q", tc.path, cfg.Files[0].Name, tc.name)
		}
	}
}
