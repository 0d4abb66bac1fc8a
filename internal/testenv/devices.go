package testenv

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/icholy/digest"
)

// DeviceFile is one file of an emulated device's configuration.
type DeviceFile struct {
	Name string
	Data []byte
}

// DeviceOptions describe an emulated device (see StartONVIFDevice, StartISAPIDevice and
// StartHTTPDevice).
type DeviceOptions struct {
	// User and Password are the device's one account; default "admin" and a random
	// password.
	User, Password string
	// Config is the configuration the device starts with; default a few lines of XML.
	// The device keeps it (and Files) as it is: it must not be changed afterwards.
	Config []byte
	// Files, for an ONVIF device, is a configuration of several files, in place of Config.
	Files []DeviceFile
	// Model and Firmware are what the device says it is; default "EMU-1" and "1.0.0".
	Model, Firmware string
	// RebootDownFor is how long a reboot keeps the device down, its port closed and
	// connections refused; default 1s.
	RebootDownFor time.Duration
	// NeverComesBack keeps the device down after a reboot.
	NeverComesBack bool
	// Inline makes an ONVIF device put its files into the GetSystemBackup answer in
	// base64, as devices without MTOM do, rather than as MTOM attachments.
	Inline bool
	// NoBackup makes the device refuse to give its configuration the way devices without
	// the feature do: ONVIF answers the fault ActionNotSupported, ISAPI 403 notSupport,
	// HTTP 404.
	NoBackup bool
	// Auth is how an HTTP device checks its user: basic (the default) or digest.
	Auth string
	// Reboot gives an HTTP device a reboot URL (see RebootURL). Without one, a pushed
	// configuration is active at once.
	Reboot bool
	// RestoreMethod is the method an HTTP device takes a configuration with: PUT (the
	// default) or POST. The other is refused with 405.
	RestoreMethod string
}

// Device is an emulated camera or other device: a real HTTP server on a loopback port,
// which checks credentials on every request, keeps a pushed configuration aside until it
// reboots, and on a reboot closes its port for a while and opens the same port again. It
// stops when the test ends.
type Device struct {
	User, Password string

	t      T
	opts   DeviceOptions
	addr   string // 127.0.0.1:port, the same across reboots
	path   string // of URL
	handle func(w http.ResponseWriter, r *http.Request)
	realm  string // of digest authentication

	mu           sync.Mutex
	active       []DeviceFile
	staged       []DeviceFile // nil: nothing pushed since the last reboot
	reboots      int
	authFailures int
	failFetch    bool
	down, closed bool
	hold         chan struct{} // non-nil: a reboot stays down until it is closed
	ln           net.Listener
	srv          *http.Server
	conns        map[net.Conn]bool
	nonces       map[string]bool // digest nonces given out since the last reboot
	stop         chan struct{}
	wg           sync.WaitGroup
}

type connKey struct{}

// startDevice fills in the defaults, makes the device and starts it on a free port.
func startDevice(t T, opts DeviceOptions, path, defaultName string, handle func(*Device, http.ResponseWriter, *http.Request)) *Device {
	t.Helper()
	if opts.User == "" {
		opts.User = "admin"
	}
	if opts.Password == "" {
		opts.Password = randomPassword(t)
	}
	if opts.Model == "" {
		opts.Model = "EMU-1"
	}
	if opts.Firmware == "" {
		opts.Firmware = "1.0.0"
	}
	if opts.RebootDownFor == 0 {
		opts.RebootDownFor = time.Second
	}
	files := opts.Files
	if files == nil {
		cfg := opts.Config
		if cfg == nil {
			cfg = []byte("<config>\n  <name>" + t.Name() + "</name>\n</config>\n")
		}
		files = []DeviceFile{{Name: defaultName, Data: cfg}}
	}
	d := &Device{
		User: opts.User, Password: opts.Password,
		t: t, opts: opts, path: path, realm: "Emulated device " + randomHex(t, 4),
		active: slices.Clone(files), conns: map[net.Conn]bool{}, nonces: map[string]bool{}, stop: make(chan struct{}),
	}
	d.handle = func(w http.ResponseWriter, r *http.Request) { handle(d, w, r) }
	d.mu.Lock()
	err := d.listen("127.0.0.1:0")
	d.mu.Unlock()
	if err != nil {
		t.Fatalf("start the emulated device: %v", err)
	}
	d.addr = d.ln.Addr().String()
	t.Cleanup(d.close)
	return d
}

// URL is what a device's address is set to: the base URL with the path its driver
// expects.
func (d *Device) URL() string { return "http://" + d.addr + d.path }

// Addr is the host:port the device listens on.
func (d *Device) Addr() string { return d.addr }

// Active is the content of the configuration's first (for most devices, only) file.
func (d *Device) Active() []byte { return slices.Clone(d.current()[0].Data) }

// ActiveFiles is the configuration in effect: the one the device started with, or the
// last one pushed before a reboot.
func (d *Device) ActiveFiles() []DeviceFile {
	d.mu.Lock()
	defer d.mu.Unlock()
	return cloneFiles(d.active)
}

// SetConfig changes the configuration in effect, as an operator editing the device would;
// its file keeps its name.
func (d *Device) SetConfig(data []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.active = []DeviceFile{{Name: d.active[0].Name, Data: slices.Clone(data)}}
}

// Reboots counts the reboots asked for.
func (d *Device) Reboots() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.reboots
}

// AuthFailures counts the requests refused for wrong credentials, and for missing ones
// where the protocol has no challenge to ask for them (ONVIF).
func (d *Device) AuthFailures() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.authFailures
}

// FailFetch makes reading the configuration fail (HTTP 500) while fail is true.
func (d *Device) FailFetch(fail bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.failFetch = fail
}

// HoldDown, called before a reboot, keeps the device down after it, however long
// RebootDownFor has passed, until release is called: a test can then see the device down
// without racing its return.
func (d *Device) HoldDown() (release func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.hold == nil {
		d.hold = make(chan struct{})
	}
	h := d.hold
	var once sync.Once
	return func() {
		once.Do(func() {
			d.mu.Lock()
			defer d.mu.Unlock()
			close(h)
			if d.hold == h {
				d.hold = nil
			}
		})
	}
}

// current is the configuration in effect, not to be changed: a push replaces the slice.
func (d *Device) current() []DeviceFile {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.active
}

func cloneFiles(files []DeviceFile) []DeviceFile {
	out := make([]DeviceFile, len(files))
	for i, f := range files {
		out[i] = DeviceFile{Name: f.Name, Data: slices.Clone(f.Data)}
	}
	return out
}

// listen opens addr and serves it. d.mu is held.
func (d *Device) listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(d.serve),
		ReadHeaderTimeout: 10 * time.Second,
		ConnContext:       func(ctx context.Context, c net.Conn) context.Context { return context.WithValue(ctx, connKey{}, c) },
		ConnState:         d.track,
	}
	d.ln, d.srv = ln, srv
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		_ = srv.Serve(ln)
	}()
	return nil
}

func (d *Device) track(c net.Conn, state http.ConnState) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch state {
	case http.StateNew:
		d.conns[c] = true
	case http.StateClosed, http.StateHijacked:
		delete(d.conns, c)
	}
}

func (d *Device) serve(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	down := d.down
	d.mu.Unlock()
	if down {
		drop(w) // a connection made before the reboot
		return
	}
	d.handle(w, r)
}

// drop closes the connection without an answer, as a rebooting device does.
func drop(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			c.Close()
		}
	}
}

// reboot takes the device down: it stops accepting connections and drops the open ones
// before answer writes the reply (on r's connection, which closes after it), so that
// nothing reaches the device once the reply is read. It comes back after RebootDownFor
// with the staged configuration in effect.
func (d *Device) reboot(w http.ResponseWriter, r *http.Request, answer func()) {
	d.mu.Lock()
	if d.closed || d.down {
		d.mu.Unlock()
		drop(w)
		return
	}
	d.reboots++
	d.down = true
	d.ln.Close()
	self, _ := r.Context().Value(connKey{}).(net.Conn)
	for c := range d.conns {
		if c != self {
			c.Close()
		}
	}
	old := d.srv
	d.wg.Add(1)
	d.mu.Unlock()
	go d.comeBack(old)
	w.Header().Set("Connection", "close")
	answer()
}

func (d *Device) comeBack(old *http.Server) {
	defer d.wg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_ = old.Shutdown(ctx) // waits for the reboot's reply to go out
	cancel()
	if d.opts.NeverComesBack {
		return
	}
	select {
	case <-time.After(d.opts.RebootDownFor):
	case <-d.stop:
		return
	}
	d.mu.Lock()
	h := d.hold
	d.mu.Unlock()
	if h != nil {
		select {
		case <-h:
		case <-d.stop:
			return
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.staged != nil {
		d.active, d.staged = d.staged, nil
	}
	d.nonces = map[string]bool{}
	// The port was free a moment ago; something else may take it meanwhile, but it is
	// only ever briefly.
	for range 100 {
		if d.closed {
			return
		}
		err := d.listen(d.addr)
		if err == nil {
			d.down = false
			return
		}
		d.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
		d.mu.Lock()
	}
	d.t.Logf("emulated device: listen on %s again after the reboot: it stays down", d.addr)
}

func (d *Device) close() {
	d.mu.Lock()
	d.closed = true
	close(d.stop)
	srv := d.srv
	d.mu.Unlock()
	srv.Close()
	d.wg.Wait()
	// A reboot may have started listening again since srv was read.
	d.mu.Lock()
	srv = d.srv
	d.mu.Unlock()
	srv.Close()
}

// stage keeps a pushed configuration for the next reboot, or puts it in effect at once.
func (d *Device) stage(files []DeviceFile, now bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if now {
		d.active = files
		return
	}
	d.staged = files
}

func (d *Device) fetchFails() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.failFetch
}

func (d *Device) authFailed() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.authFailures++
}

// maxPush bounds what a device reads of a pushed configuration.
const maxPush = 256 << 20

func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxPush+1))
	if err == nil && len(b) > maxPush {
		err = fmt.Errorf("more than %d bytes", maxPush)
	}
	return b, err
}

// checkBasic checks the request's basic credentials, and asks for them when it has none.
func (d *Device) checkBasic(w http.ResponseWriter, r *http.Request) bool {
	user, password, ok := r.BasicAuth()
	if ok && equal(user, d.User) && equal(password, d.Password) {
		return true
	}
	if ok {
		d.authFailed()
	}
	w.Header().Set("WWW-Authenticate", `Basic realm="`+d.realm+`"`)
	http.Error(w, "unauthorized", http.StatusUnauthorized)
	return false
}

// checkDigest checks the request's digest credentials (RFC 7616, qop auth), and answers
// 401 with a challenge when they are missing, wrong, or for a nonce from before a reboot
// (stale).
func (d *Device) checkDigest(w http.ResponseWriter, r *http.Request) bool {
	stale := false
	if h := r.Header.Get("Authorization"); digest.IsDigest(h) {
		cred, err := digest.ParseCredentials(h)
		d.mu.Lock()
		known := err == nil && d.nonces[cred.Nonce]
		d.mu.Unlock()
		switch {
		case err != nil || cred.Username != d.User || cred.Realm != d.realm || cred.URI != r.URL.RequestURI() || cred.QOP != "auth":
			d.authFailed()
		case !known:
			stale = true
		default:
			want, err := digest.Digest(&digest.Challenge{Realm: d.realm, Nonce: cred.Nonce, Algorithm: cred.Algorithm, QOP: []string{"auth"}},
				digest.Options{Method: r.Method, URI: cred.URI, Username: d.User, Password: d.Password, Cnonce: cred.Cnonce, Count: cred.Nc})
			if err == nil && equal(want.Response, cred.Response) {
				return true
			}
			d.authFailed()
		}
	}
	nonce := rand.Text()
	d.mu.Lock()
	d.nonces[nonce] = true
	d.mu.Unlock()
	chal := digest.Challenge{Realm: d.realm, Nonce: nonce, Algorithm: "MD5", QOP: []string{"auth"}, Stale: stale}
	w.Header().Set("WWW-Authenticate", chal.String())
	http.Error(w, "unauthorized", http.StatusUnauthorized)
	return false
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// StartISAPIDevice starts an emulated Hikvision device, with digest authentication:
// GET /ISAPI/System/deviceInfo, GET and PUT /ISAPI/System/configurationData (the
// configuration, one file named configurationData), PUT /ISAPI/System/reboot. Its URL is
// the base URL.
func StartISAPIDevice(t T, opts DeviceOptions) *Device {
	t.Helper()
	return startDevice(t, opts, "", "configurationData", (*Device).serveISAPI)
}

func (d *Device) serveISAPI(w http.ResponseWriter, r *http.Request) {
	if !d.checkDigest(w, r) {
		return
	}
	route := r.Method + " " + r.URL.Path
	switch route {
	case "GET /ISAPI/System/deviceInfo":
		w.Header().Set("Content-Type", "application/xml")
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<DeviceInfo version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">
<deviceName>Emulated</deviceName>
<deviceID>%s</deviceID>
<model>%s</model>
<serialNumber>EMU0000000001</serialNumber>
<firmwareVersion>%s</firmwareVersion>
<firmwareReleasedDate>build 250101</firmwareReleasedDate>
<deviceType>IPCamera</deviceType>
</DeviceInfo>
`, xmlText(d.realm), xmlText(d.opts.Model), xmlText(d.opts.Firmware))
	case "GET /ISAPI/System/configurationData":
		switch {
		case d.opts.NoBackup:
			isapiStatus(w, r, http.StatusForbidden, 4, "Invalid Operation", "notSupport")
		case d.fetchFails():
			isapiStatus(w, r, http.StatusInternalServerError, 6, "Invalid Content", "exportFailed")
		default:
			sendFile(w, d.current()[0].Data)
		}
	case "PUT /ISAPI/System/configurationData":
		body, err := readBody(r)
		if err != nil {
			isapiStatus(w, r, http.StatusBadRequest, 6, "Invalid Content", "badFormat")
			return
		}
		d.stage([]DeviceFile{{Name: "configurationData", Data: body}}, false)
		isapiStatus(w, r, http.StatusOK, 7, "Reboot Required", "rebootRequired")
	case "PUT /ISAPI/System/reboot":
		d.reboot(w, r, func() { isapiStatus(w, r, http.StatusOK, 1, "OK", "ok") })
	default:
		isapiStatus(w, r, http.StatusNotFound, 4, "Invalid Operation", "notSupport")
	}
}

// sendFile answers with data, with its length, as devices do.
func sendFile(w http.ResponseWriter, data []byte) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.Write(data)
}

// isapiStatus answers with an ISAPI ResponseStatus.
func isapiStatus(w http.ResponseWriter, r *http.Request, status, code int, text, sub string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<ResponseStatus version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">
<requestURL>%s</requestURL>
<statusCode>%d</statusCode>
<statusString>%s</statusString>
<subStatusCode>%s</subStatusCode>
</ResponseStatus>
`, xmlText(r.URL.Path), code, text, sub)
}

func xmlText(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s)) // a strings.Builder does not fail
	return b.String()
}

// StartHTTPDevice starts an emulated device with its configuration at
// /config/settings.xml (the URL), read with GET and written with the RestoreMethod, a
// reboot at /reboot (POST) when Reboot is set, and basic or digest authentication.
func StartHTTPDevice(t T, opts DeviceOptions) *Device {
	t.Helper()
	if opts.RestoreMethod == "" {
		opts.RestoreMethod = http.MethodPut
	}
	return startDevice(t, opts, "/config/settings.xml", "settings.xml", (*Device).serveHTTP)
}

// RebootURL is the URL that reboots an HTTP device, or "" when it has none.
func (d *Device) RebootURL() string {
	if !d.opts.Reboot {
		return ""
	}
	return "http://" + d.addr + "/reboot"
}

func (d *Device) serveHTTP(w http.ResponseWriter, r *http.Request) {
	ok := false
	if d.opts.Auth == "digest" {
		ok = d.checkDigest(w, r)
	} else {
		ok = d.checkBasic(w, r)
	}
	if !ok {
		return
	}
	switch {
	case r.URL.Path == d.path && r.Method == http.MethodGet:
		switch {
		case d.opts.NoBackup:
			http.NotFound(w, r)
		case d.fetchFails():
			http.Error(w, "the configuration cannot be read", http.StatusInternalServerError)
		default:
			sendFile(w, d.current()[0].Data)
		}
	case r.URL.Path == d.path && r.Method == d.opts.RestoreMethod:
		body, err := readBody(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		d.stage([]DeviceFile{{Name: "settings.xml", Data: body}}, !d.opts.Reboot)
		w.WriteHeader(http.StatusNoContent)
	case r.URL.Path == d.path:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	case r.URL.Path == "/reboot" && d.opts.Reboot && r.Method == http.MethodPost:
		d.reboot(w, r, func() { w.Write([]byte("rebooting\n")) })
	default:
		http.NotFound(w, r)
	}
}
