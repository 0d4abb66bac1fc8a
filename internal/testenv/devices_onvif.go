package testenv

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
)

// ONVIFManufacturer is the manufacturer an emulated ONVIF device gives.
const ONVIFManufacturer = "Vigil Emulated Devices"

const (
	onvifSOAP   = "http://www.w3.org/2003/05/soap-envelope"
	onvifDevice = "http://www.onvif.org/ver10/device/wsdl"
)

// StartONVIFDevice starts an emulated ONVIF device whose device service (the URL) answers
// GetDeviceInformation, GetSystemBackup (MTOM, or inline base64 with Inline),
// RestoreSystem (MTOM only, as the specification requires) and SystemReboot, to SOAP 1.2
// requests with a WS-Security UsernameToken with a password digest. A request without
// one is refused with HTTP 401, one with a wrong one with HTTP 400, both with the fault
// ter:NotAuthorized, as cameras do. Its configuration is Files, or Config as one file
// named backup.bin.
func StartONVIFDevice(t T, opts DeviceOptions) *Device {
	t.Helper()
	return startDevice(t, opts, "/onvif/device_service", "backup.bin", (*Device).serveONVIF)
}

// onvifRequest is what the device reads of a request. Only local names are matched in
// the header, as cameras do; the operation's namespace is checked.
type onvifRequest struct {
	XMLName xml.Name
	Token   *struct {
		Username string `xml:"Username"`
		Password struct {
			Type  string `xml:"Type,attr"`
			Value string `xml:",chardata"`
		} `xml:"Password"`
		Nonce   string `xml:"Nonce"`
		Created string `xml:"Created"`
	} `xml:"Header>Security>UsernameToken"`
	Body struct {
		Ops []struct {
			XMLName xml.Name
			Files   []struct {
				Name string `xml:"Name"`
				Data struct {
					Include struct {
						Href string `xml:"href,attr"`
					} `xml:"Include"`
				} `xml:"Data"`
			} `xml:"BackupFiles"`
		} `xml:",any"`
	} `xml:"Body"`
}

func (d *Device) serveONVIF(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != d.path {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	env, parts, err := readONVIFRequest(r)
	if err != nil {
		onvifFault(w, http.StatusBadRequest, "Sender", "ter:InvalidArgVal", err.Error())
		return
	}
	var req onvifRequest
	if err := xml.Unmarshal(env, &req); err != nil || req.XMLName.Space != onvifSOAP || req.XMLName.Local != "Envelope" || len(req.Body.Ops) != 1 {
		onvifFault(w, http.StatusBadRequest, "Sender", "ter:InvalidArgVal", "not a SOAP 1.2 envelope with one operation")
		return
	}
	switch tok := req.Token; {
	case tok == nil:
		d.authFailed()
		onvifFault(w, http.StatusUnauthorized, "Sender", "ter:NotAuthorized", "Sender not Authorized")
		return
	case !d.tokenValid(tok.Username, tok.Password.Type, tok.Password.Value, tok.Nonce, tok.Created):
		d.authFailed()
		onvifFault(w, http.StatusBadRequest, "Sender", "ter:NotAuthorized", "Sender not Authorized")
		return
	}
	op := req.Body.Ops[0]
	if op.XMLName.Space != onvifDevice {
		onvifFault(w, http.StatusInternalServerError, "Receiver", "ter:ActionNotSupported", "Optional Action Not Implemented")
		return
	}
	switch op.XMLName.Local {
	case "GetDeviceInformation":
		onvifAnswer(w, fmt.Sprintf(`<tds:GetDeviceInformationResponse><tds:Manufacturer>%s</tds:Manufacturer><tds:Model>%s</tds:Model>`+
			`<tds:FirmwareVersion>%s</tds:FirmwareVersion><tds:SerialNumber>EMU0000000001</tds:SerialNumber><tds:HardwareId>1.0</tds:HardwareId>`+
			`</tds:GetDeviceInformationResponse>`, xmlText(ONVIFManufacturer), xmlText(d.opts.Model), xmlText(d.opts.Firmware)))
	case "GetSystemBackup":
		switch {
		case d.opts.NoBackup:
			onvifFault(w, http.StatusInternalServerError, "Receiver", "ter:ActionNotSupported", "Optional Action Not Implemented")
		case d.fetchFails():
			onvifFault(w, http.StatusInternalServerError, "Receiver", "ter:Action", "The backup could not be made")
		default:
			d.sendBackup(w)
		}
	case "RestoreSystem":
		var files []DeviceFile
		for _, f := range op.Files {
			// cid: URLs are URL-encoded Content-IDs (RFC 2392).
			href := f.Data.Include.Href
			id, err := url.PathUnescape(strings.TrimPrefix(href, "cid:"))
			data, ok := parts[id]
			if href == "" || err != nil || !ok {
				onvifFault(w, http.StatusBadRequest, "Sender", "ter:InvalidBackupFile", "backup file "+f.Name+" is not an MTOM attachment of the request")
				return
			}
			files = append(files, DeviceFile{Name: f.Name, Data: data})
		}
		if len(files) == 0 {
			onvifFault(w, http.StatusBadRequest, "Sender", "ter:InvalidBackupFile", "no backup files")
			return
		}
		d.stage(files, false)
		onvifAnswer(w, `<tds:RestoreSystemResponse/>`)
	case "SystemReboot":
		d.reboot(w, r, func() {
			onvifAnswer(w, `<tds:SystemRebootResponse><tds:Message>Rebooting</tds:Message></tds:SystemRebootResponse>`)
		})
	default:
		onvifFault(w, http.StatusInternalServerError, "Receiver", "ter:ActionNotSupported", "Optional Action Not Implemented")
	}
}

// tokenValid checks a UsernameToken: Base64(SHA-1(nonce + created + password)).
func (d *Device) tokenValid(user, typ, digest, nonce, created string) bool {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(nonce))
	if err != nil || len(raw) == 0 || !strings.HasSuffix(typ, "#PasswordDigest") || !equal(strings.TrimSpace(user), d.User) {
		return false
	}
	h := sha1.New()
	h.Write(raw)
	h.Write([]byte(strings.TrimSpace(created)))
	h.Write([]byte(d.Password))
	return equal(strings.TrimSpace(digest), base64.StdEncoding.EncodeToString(h.Sum(nil)))
}

// readONVIFRequest returns the envelope of a request, and its attachments by Content-ID
// when it is MTOM.
func readONVIFRequest(r *http.Request) ([]byte, map[string][]byte, error) {
	body, err := readBody(r)
	if err != nil {
		return nil, nil, err
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case err != nil:
		return nil, nil, fmt.Errorf("content type: %v", err)
	case mt == "application/soap+xml":
		return body, nil, nil
	case mt != "multipart/related" || params["type"] != "application/xop+xml":
		return nil, nil, fmt.Errorf("content type %s is neither application/soap+xml nor MTOM", mt)
	}
	start := strings.Trim(params["start"], "<>")
	var env []byte
	parts := map[string][]byte{}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("MTOM parts: %v", err)
		}
		data, err := io.ReadAll(p)
		if err != nil {
			return nil, nil, fmt.Errorf("MTOM parts: %v", err)
		}
		id := strings.Trim(p.Header.Get("Content-Id"), "<>")
		if env == nil && (id == start || start == "") {
			env = data
		} else {
			parts[id] = data
		}
	}
	if env == nil {
		return nil, nil, fmt.Errorf("the MTOM request has no root part %q", start)
	}
	return env, parts, nil
}

// sendBackup answers GetSystemBackup, with the files as MTOM attachments or inline.
func (d *Device) sendBackup(w http.ResponseWriter) {
	files := d.current()
	var body strings.Builder
	body.WriteString(`<tds:GetSystemBackupResponse>`)
	for i, f := range files {
		body.WriteString(`<tds:BackupFiles><tt:Name>` + xmlText(f.Name) + `</tt:Name><tt:Data xmime:contentType="application/octet-stream">`)
		if d.opts.Inline {
			body.WriteString(base64.StdEncoding.EncodeToString(f.Data))
		} else {
			// Encoded as RFC 2392 allows, so that a client must decode it.
			fmt.Fprintf(&body, `<xop:Include href="cid:backup-%d%%40camera.local"/>`, i+1)
		}
		body.WriteString(`</tt:Data></tds:BackupFiles>`)
	}
	body.WriteString(`</tds:GetSystemBackupResponse>`)
	if d.opts.Inline {
		onvifAnswer(w, body.String())
		return
	}
	const root = "<root@camera.local>"
	env := onvifEnvelope(body.String())
	boundary := multipart.NewWriter(io.Discard).Boundary()
	// Written twice, once to count it, so that the answer has a length without a copy
	// of the configuration being made.
	write := func(out io.Writer) {
		mw := multipart.NewWriter(out)
		mw.SetBoundary(boundary)
		p, _ := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {`application/xop+xml; charset=UTF-8; type="application/soap+xml"`},
			"Content-Transfer-Encoding": {"binary"},
			"Content-Id":                {root},
		})
		p.Write(env)
		for i, f := range files {
			p, err := mw.CreatePart(textproto.MIMEHeader{
				"Content-Type":              {"application/octet-stream"},
				"Content-Transfer-Encoding": {"binary"},
				"Content-Id":                {fmt.Sprintf("<backup-%d@camera.local>", i+1)},
			})
			if err != nil {
				return // the client went away
			}
			p.Write(f.Data)
		}
		mw.Close()
	}
	var n byteCount
	write(&n)
	w.Header().Set("Content-Type", mime.FormatMediaType("multipart/related", map[string]string{
		"type": "application/xop+xml", "start": root, "start-info": "application/soap+xml", "boundary": boundary,
	}))
	w.Header().Set("Content-Length", strconv.FormatInt(int64(n), 10))
	write(w)
}

type byteCount int64

func (c *byteCount) Write(p []byte) (int, error) { *c += byteCount(len(p)); return len(p), nil }

func onvifEnvelope(body string) []byte {
	return []byte(`<?xml version="1.0" encoding="UTF-8"?>` +
		`<SOAP-ENV:Envelope xmlns:SOAP-ENV="` + onvifSOAP + `" xmlns:tds="` + onvifDevice + `" xmlns:tt="http://www.onvif.org/ver10/schema"` +
		` xmlns:ter="http://www.onvif.org/ver10/error" xmlns:xop="http://www.w3.org/2004/08/xop/include" xmlns:xmime="http://www.w3.org/2005/05/xmlmime">` +
		`<SOAP-ENV:Body>` + body + `</SOAP-ENV:Body></SOAP-ENV:Envelope>`)
}

func onvifAnswer(w http.ResponseWriter, body string) {
	env := onvifEnvelope(body)
	w.Header().Set("Content-Type", "application/soap+xml; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(env)))
	w.Write(env)
}

// onvifFault answers with a SOAP 1.2 fault: code is Sender or Receiver, subcode ONVIF's.
func onvifFault(w http.ResponseWriter, status int, code, subcode, reason string) {
	w.Header().Set("Content-Type", "application/soap+xml; charset=utf-8")
	w.WriteHeader(status)
	w.Write(onvifEnvelope(`<SOAP-ENV:Fault><SOAP-ENV:Code><SOAP-ENV:Value>SOAP-ENV:` + code + `</SOAP-ENV:Value>` +
		`<SOAP-ENV:Subcode><SOAP-ENV:Value>` + subcode + `</SOAP-ENV:Value></SOAP-ENV:Subcode></SOAP-ENV:Code>` +
		`<SOAP-ENV:Reason><SOAP-ENV:Text xml:lang="en">` + xmlText(reason) + `</SOAP-ENV:Text></SOAP-ENV:Reason></SOAP-ENV:Fault>`))
}
