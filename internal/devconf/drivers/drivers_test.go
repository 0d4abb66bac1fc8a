package drivers_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-backup/vigil/internal/config"
	"github.com/vigil-backup/vigil/internal/devconf"
	"github.com/vigil-backup/vigil/internal/devconf/drivers"
	"github.com/vigil-backup/vigil/internal/testenv"
)

// TestDeviceOpen: each kind of device is opened from its settings, with its password, and
// answers.
func TestDeviceOpen(t *testing.T) {
	onvif := testenv.StartONVIFDevice(t, testenv.DeviceOptions{})
	isapi := testenv.StartISAPIDevice(t, testenv.DeviceOptions{})
	basic := testenv.StartHTTPDevice(t, testenv.DeviceOptions{Reboot: true, RestoreMethod: "POST"})
	digest := testenv.StartHTTPDevice(t, testenv.DeviceOptions{Auth: "digest"})
	file := filepath.Join(t.TempDir(), "acs.conf")
	t.Setenv("VIGIL_TEST_DEVICE_PASSWORD", isapi.Password)
	for _, d := range []config.Device{
		{ID: "onvif", Driver: config.DriverONVIF, Address: onvif.URL(), User: onvif.User, Password: config.SecretValue(onvif.Password)},
		{ID: "isapi", Driver: config.DriverISAPI, Address: isapi.URL(), User: isapi.User, Password: config.SecretFromEnv("VIGIL_TEST_DEVICE_PASSWORD")},
		{ID: "http-basic", Driver: config.DriverHTTP, Address: basic.URL(), User: basic.User, Password: config.SecretValue(basic.Password),
			RebootURL: basic.RebootURL(), RestoreMethod: "POST"},
		{ID: "http-digest", Driver: config.DriverHTTP, Address: digest.URL(), User: digest.User, Password: config.SecretValue(digest.Password), Auth: "digest"},
		{ID: "file", Driver: config.DriverFile, Address: file, RestoreCommand: []string{"true"}},
	} {
		d.ApplyDefaults()
		drv, err := drivers.Open(d)
		if err != nil {
			t.Fatalf("open %s: %v", d.ID, err)
		}
		if d.Driver == config.DriverFile {
			if err := drv.Push(t.Context(), devconf.Config{Files: []devconf.File{{Name: "acs.conf", Data: []byte("x")}}}); err != nil {
				t.Errorf("%s: push: %v", d.ID, err)
			}
		}
		if err := drv.Ping(t.Context()); err != nil {
			t.Errorf("%s: ping: %v", d.ID, err)
		}
		if _, err := drv.Fetch(t.Context()); err != nil {
			t.Errorf("%s: fetch: %v", d.ID, err)
		}
	}
}

func TestDeviceOpenFails(t *testing.T) {
	for _, tc := range []struct {
		name string
		dev  config.Device
	}{
		{"unknown driver", config.Device{ID: "x", Driver: "snmp", Address: "http://10.0.0.5/"}},
		{"password variable not set", config.Device{ID: "x", Driver: config.DriverONVIF, Address: "http://10.0.0.5/",
			User: "admin", Password: config.SecretFromEnv("VIGIL_TEST_NOT_SET")}},
		{"credentials in the URL", config.Device{ID: "x", Driver: config.DriverISAPI, Address: "http://admin:hunter2@10.0.0.5/"}},
		{"not a URL", config.Device{ID: "x", Driver: config.DriverHTTP, Address: "10.0.0.5/config"}},
		{"relative file", config.Device{ID: "x", Driver: config.DriverFile, Address: "acs.conf"}},
		{"restore method", config.Device{ID: "x", Driver: config.DriverHTTP, Address: "http://10.0.0.5/", RestoreMethod: "PATCH"}},
	} {
		_, err := drivers.Open(tc.dev)
		if err == nil || !strings.Contains(err.Error(), "device x") || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: %v, want an error naming the device and no password", tc.name, err)
		}
		if errors.Is(err, devconf.ErrAuth) {
			t.Errorf("%s: %v is not the device's refusal", tc.name, err)
		}
	}
}
