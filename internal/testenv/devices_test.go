package testenv_test

import (
	"errors"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/internal/testenv"
)

// TestDeviceReboot: a reboot answers, refuses connections at once, and listens again on
// the same port after RebootDownFor, with the pushed configuration in effect.
func TestDeviceReboot(t *testing.T) {
	dev := testenv.StartHTTPDevice(t, testenv.DeviceOptions{Reboot: true, RebootDownFor: 100 * time.Millisecond})
	do := func(method, url, body string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth(dev.User, dev.Password)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return resp, err
	}
	if resp, err := do(http.MethodPut, dev.URL(), "<config>new</config>"); err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("push: %v %v", resp, err)
	}
	if string(dev.Active()) == "<config>new</config>" {
		t.Fatal("the pushed configuration is in effect before the reboot")
	}
	if resp, err := do(http.MethodPost, dev.RebootURL(), ""); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("reboot: %v %v", resp, err)
	}
	if _, err := do(http.MethodGet, dev.URL(), ""); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("get while rebooting: %v, want the connection refused", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := do(http.MethodGet, dev.URL(), "")
		if err == nil && resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still down after 10s: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if string(dev.Active()) != "<config>new</config>" || dev.Reboots() != 1 {
		t.Errorf("after the reboot: %q in effect, %d reboots", dev.Active(), dev.Reboots())
	}
}
