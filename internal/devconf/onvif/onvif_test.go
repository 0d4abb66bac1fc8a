package onvif_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/internal/devconf"
	"github.com/vigil-backup/vigil/internal/devconf/devconftest"
	"github.com/vigil-backup/vigil/internal/devconf/onvif"
	"github.com/vigil-backup/vigil/internal/testenv"
)

func open(t *testing.T, url, user, password string) *onvif.Driver {
	t.Helper()
	d, err := onvif.New(url, user, password)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestONVIFDriver runs the suite against a device that sends MTOM, as most do;
// TestONVIFSeveralFiles covers the inline form.
func TestONVIFDriver(t *testing.T) {
	devconftest.Run(t, devconftest.Harness{
		Start: testenv.StartONVIFDevice,
		Open: func(t *testing.T, dev *testenv.Device, password string) devconf.Driver {
			return open(t, dev.URL(), dev.User, password)
		},
		Vendor:       testenv.ONVIFManufacturer,
		ReportsModel: true,
		Unsupported:  true,
	})
}

// TestONVIFSeveralFiles: a backup of several files comes back whole, in its order, in
// both forms a device may answer in, and goes back as MTOM attachments that the device
// takes after its reboot.
func TestONVIFSeveralFiles(t *testing.T) {
	files := []testenv.DeviceFile{
		{Name: "system.xml", Data: []byte("<system>\n  <hostname>entrance</hostname>\n</system>\n")},
		{Name: "users.dat", Data: []byte{0, 1, 2, 0xff, '\r', '\n', '<', '&'}},
		{Name: "empty.cfg", Data: []byte{}},
	}
	for _, inline := range []bool{false, true} {
		t.Run(fmt.Sprintf("inline=%v", inline), func(t *testing.T) {
			dev := testenv.StartONVIFDevice(t, testenv.DeviceOptions{Files: files, Inline: inline, RebootDownFor: 50 * time.Millisecond})
			drv := open(t, dev.URL(), dev.User, dev.Password)
			cfg, err := drv.Fetch(t.Context())
			if err != nil {
				t.Fatalf("fetch: %v", err)
			}
			devconftest.SameFiles(t, cfg.Files, devconftest.Files(files))

			cfg.Files[0].Data = []byte("<system>\n  <hostname>exit</hostname>\n</system>\n")
			cfg.Files[2].Data = []byte("not empty")
			if err := drv.Push(t.Context(), cfg); err != nil {
				t.Fatalf("push: %v", err)
			}
			if err := drv.Reboot(t.Context()); err != nil {
				t.Fatalf("reboot: %v", err)
			}
			devconftest.WaitUp(t, drv)
			devconftest.SameFiles(t, devconftest.Files(dev.ActiveFiles()), cfg.Files)
		})
	}
}

// TestONVIFAnswers: how the driver reads what devices answer, faults included.
func TestONVIFAnswers(t *testing.T) {
	const env = `<?xml version="1.0"?><env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" ` +
		`xmlns:ter="http://www.onvif.org/ver10/error" xmlns:tds="http://www.onvif.org/ver10/device/wsdl"><env:Body>%s</env:Body></env:Envelope>`
	fault := func(code, sub string) string {
		return fmt.Sprintf(env, `<env:Fault><env:Code><env:Value>env:`+code+`</env:Value><env:Subcode><env:Value>`+sub+
			`</env:Value></env:Subcode></env:Code><env:Reason><env:Text xml:lang="en">reason</env:Text></env:Reason></env:Fault>`)
	}
	info := fmt.Sprintf(env, `<tds:GetDeviceInformationResponse><tds:Manufacturer>M</tds:Manufacturer></tds:GetDeviceInformationResponse>`)
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   error // nil: no error; errAny: some other error
	}{
		{"ok", 200, info, nil},
		{"not authorized", 400, fault("Sender", "ter:NotAuthorized"), devconf.ErrAuth},
		{"not authorized, other prefix", 400, fault("Sender", "err:NotAuthorized"), devconf.ErrAuth},
		{"WS-Security failed authentication", 500, fault("Sender", "wsse:FailedAuthentication"), devconf.ErrAuth},
		{"401 without a body", 401, "", devconf.ErrAuth},
		{"401 with a fault", 401, fault("Sender", "ter:NotAuthorized"), devconf.ErrAuth},
		{"action not supported", 500, fault("Receiver", "ter:ActionNotSupported"), devconf.ErrUnsupported},
		{"fault with HTTP 200", 200, fault("Receiver", "ter:Action"), errAny},
		{"SOAP 1.1 fault", 500, `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault>` +
			`<faultcode>ter:NotAuthorized</faultcode><faultstring>no</faultstring></s:Fault></s:Body></s:Envelope>`, devconf.ErrAuth},
		{"503 while starting", 503, "", devconf.ErrUnreachable},
		{"500 without a fault", 500, "oops", errAny},
		{"not XML", 200, "<html>", errAny},
		{"no body element", 200, fmt.Sprintf(env, ""), errAny},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/soap+xml")
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			}))
			t.Cleanup(srv.Close)
			err := open(t, srv.URL+"/onvif/device_service", "admin", "s3cret-pass").Ping(t.Context())
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("ping: %v", err)
			case tc.want == errAny && (err == nil || errors.Is(err, devconf.ErrAuth) || errors.Is(err, devconf.ErrUnsupported)):
				t.Fatalf("ping: %v, want an error of no particular kind", err)
			case tc.want != nil && tc.want != errAny && !errors.Is(err, tc.want):
				t.Fatalf("ping: %v, want %v", err, tc.want)
			}
			devconftest.NoSecret(t, err, "s3cret-pass")
		})
	}
}

var errAny = errors.New("any error")

// TestONVIFBackupAnswers: the GetSystemBackup answers the driver refuses.
func TestONVIFBackupAnswers(t *testing.T) {
	const env = `<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" ` +
		`xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema" ` +
		`xmlns:xop="http://www.w3.org/2004/08/xop/include"><s:Body><tds:GetSystemBackupResponse>%s</tds:GetSystemBackupResponse></s:Body></s:Envelope>`
	file := func(name, data string) string {
		return `<tds:BackupFiles><tt:Name>` + name + `</tt:Name><tt:Data>` + data + `</tt:Data></tds:BackupFiles>`
	}
	for _, tc := range []struct{ name, files string }{
		{"no files", ""},
		{"a path for a name", file("../../etc/passwd", "eA==")},
		{"two files of one name", file("a", "eA==") + file("a", "eQ==")},
		{"bad base64", file("a", "!!!")},
		{"a missing attachment", file("a", `<xop:Include href="cid:nothere@x"/>`)},
		{"a reference that is not cid:", file("a", `<xop:Include href="http://example.com/a"/>`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/soap+xml")
				fmt.Fprintf(w, env, tc.files)
			}))
			t.Cleanup(srv.Close)
			if cfg, err := open(t, srv.URL, "", "").Fetch(t.Context()); err == nil {
				t.Fatalf("fetch gave %d files and no error", len(cfg.Files))
			}
		})
	}
}
