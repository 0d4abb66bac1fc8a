package onvif

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/vigil-backup/vigil/internal/devconf"
)

const (
	nsSOAP   = "http://www.w3.org/2003/05/soap-envelope"
	nsDevice = "http://www.onvif.org/ver10/device/wsdl"
	nsSchema = "http://www.onvif.org/ver10/schema"
	nsXOP    = "http://www.w3.org/2004/08/xop/include"
	nsWSSE   = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
	nsWSU    = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"

	passwordDigest = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
	base64Binary   = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
)

// envelope is a SOAP 1.2 request with body inside, and the WS-Security header when
// security is not empty. The prefixes are the ones the ONVIF specifications print, which
// the simplest device parsers expect.
func envelope(security, body string) []byte {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>`)
	b.WriteString(`<s:Envelope xmlns:s="` + nsSOAP + `" xmlns:tds="` + nsDevice + `" xmlns:tt="` + nsSchema + `" xmlns:xop="` + nsXOP + `">`)
	if security != "" {
		b.WriteString(`<s:Header>` + security + `</s:Header>`)
	}
	b.WriteString(`<s:Body>` + body + `</s:Body></s:Envelope>`)
	return []byte(b.String())
}

// usernameToken is the WS-Security header that carries the user and a digest of the
// password (WS-Security UsernameToken Profile 1.0, which ONVIF Core requires): the
// password itself never travels, and the nonce and time keep a captured header from
// being sent again later.
func usernameToken(user, password string, now time.Time) string {
	nonce := make([]byte, 16)
	rand.Read(nonce) // never fails
	created := now.UTC().Format("2006-01-02T15:04:05Z")
	h := sha1.New()
	h.Write(nonce)
	h.Write([]byte(created))
	h.Write([]byte(password))
	return `<wsse:Security s:mustUnderstand="1" xmlns:wsse="` + nsWSSE + `" xmlns:wsu="` + nsWSU + `">` +
		`<wsse:UsernameToken>` +
		`<wsse:Username>` + escape(user) + `</wsse:Username>` +
		`<wsse:Password Type="` + passwordDigest + `">` + base64.StdEncoding.EncodeToString(h.Sum(nil)) + `</wsse:Password>` +
		`<wsse:Nonce EncodingType="` + base64Binary + `">` + base64.StdEncoding.EncodeToString(nonce) + `</wsse:Nonce>` +
		`<wsu:Created>` + created + `</wsu:Created>` +
		`</wsse:UsernameToken></wsse:Security>`
}

func escape(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s)) // a strings.Builder does not fail
	return b.String()
}

// mtom packs a request envelope and its attachments as an XOP package (MTOM,
// multipart/related), as RestoreSystem requires. parts are keyed by Content-ID, without
// angle brackets; the envelope refers to each as <xop:Include href="cid:ID"/>.
func mtom(env []byte, action string, ids []string, parts [][]byte) (body []byte, contentType string) {
	const root = "<envelope@vigil>"
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	// Writes to a bytes.Buffer do not fail.
	p, _ := w.CreatePart(textproto.MIMEHeader{
		"Content-Type":              {`application/xop+xml; charset=UTF-8; type="application/soap+xml"; action="` + action + `"`},
		"Content-Transfer-Encoding": {"binary"},
		"Content-Id":                {root},
	})
	p.Write(env)
	for i, data := range parts {
		p, _ := w.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {"application/octet-stream"},
			"Content-Transfer-Encoding": {"binary"},
			"Content-Id":                {"<" + ids[i] + ">"},
		})
		p.Write(data)
	}
	w.Close()
	return buf.Bytes(), mime.FormatMediaType("multipart/related", map[string]string{
		"type":       "application/xop+xml",
		"start":      root,
		"start-info": "application/soap+xml",
		"boundary":   w.Boundary(),
	})
}

// message is a SOAP answer: the envelope, and the attachments of an MTOM answer by
// Content-ID, without angle brackets.
type message struct {
	envelope []byte
	parts    map[string][]byte
}

// readMessage splits an answer into its envelope and attachments. An answer that is not
// multipart/related is the envelope alone.
func readMessage(contentType string, body []byte) (message, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "multipart/related" {
		return message{envelope: body}, nil
	}
	if params["boundary"] == "" {
		return message{}, errors.New("a multipart answer without a boundary")
	}
	start := strings.Trim(params["start"], "<>")
	msg := message{parts: map[string][]byte{}}
	found := false
	// The parts hold less than the answer: one buffer of its size takes them all.
	arena := make([]byte, 0, len(body))
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		var data []byte
		if err == nil {
			arena, data, err = readPart(arena, p)
		}
		if err != nil {
			return message{}, fmt.Errorf("read the parts of the answer: %w", err)
		}
		if strings.EqualFold(strings.TrimSpace(p.Header.Get("Content-Transfer-Encoding")), "base64") {
			if data, err = decodeBase64(string(data)); err != nil {
				return message{}, fmt.Errorf("decode a part of the answer: %w", err)
			}
		}
		id := strings.Trim(strings.TrimSpace(p.Header.Get("Content-Id")), "<>")
		// The root part is the one start names, or the first when it names none.
		if !found && (id == start || start == "") {
			msg.envelope, found = data, true
			continue
		}
		msg.parts[id] = data
	}
	if !found {
		return message{}, errors.New("the multipart answer has no SOAP envelope")
	}
	return msg, nil
}

// readPart reads r to its end onto arena, and returns arena and what it read.
func readPart(arena []byte, r io.Reader) ([]byte, []byte, error) {
	start := len(arena)
	for {
		if len(arena) == cap(arena) {
			arena = append(arena, 0)[:len(arena)]
		}
		n, err := r.Read(arena[len(arena):cap(arena)])
		arena = arena[:len(arena)+n]
		if err == io.EOF {
			return arena, arena[start:len(arena):len(arena)], nil
		}
		if err != nil {
			return arena, nil, err
		}
	}
}

// decodeBody decodes the first element of the envelope's Body into out (which may be nil).
// A Fault there is returned as a *faultError.
func decodeBody(env []byte, out any) error {
	d := xml.NewDecoder(bytes.NewReader(env))
	inBody := false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return errors.New("the answer is not a SOAP envelope with a body")
		}
		if err != nil {
			return fmt.Errorf("the answer is not valid XML: %w", err)
		}
		start, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		switch {
		case !inBody && start.Name.Local == "Body":
			inBody = true
		case !inBody:
			// Envelope and Header: their insides are not read.
			if start.Name.Local != "Envelope" {
				if err := d.Skip(); err != nil {
					return fmt.Errorf("the answer is not valid XML: %w", err)
				}
			}
		case start.Name.Local == "Fault":
			var f soapFault
			if err := d.DecodeElement(&f, &start); err != nil {
				return fmt.Errorf("read the SOAP fault: %w", err)
			}
			return f.err()
		case out == nil:
			return nil
		default:
			if err := d.DecodeElement(out, &start); err != nil {
				return fmt.Errorf("read %s: %w", start.Name.Local, err)
			}
			return nil
		}
	}
}

// soapFault is a SOAP 1.2 fault, or a SOAP 1.1 one, which some devices send whatever the
// request's version.
type soapFault struct {
	Code struct {
		Value   string   `xml:"Value"`
		Subcode *subcode `xml:"Subcode"`
	} `xml:"Code"`
	Reason      []string `xml:"Reason>Text"`
	FaultCode   string   `xml:"faultcode"`
	FaultString string   `xml:"faultstring"`
}

type subcode struct {
	Value   string   `xml:"Value"`
	Subcode *subcode `xml:"Subcode"`
}

func (f soapFault) err() *faultError {
	e := &faultError{}
	if v := strings.TrimSpace(f.Code.Value); v != "" {
		e.codes = append(e.codes, v)
	}
	for s := f.Code.Subcode; s != nil; s = s.Subcode {
		e.codes = append(e.codes, strings.TrimSpace(s.Value))
	}
	if v := strings.TrimSpace(f.FaultCode); v != "" {
		e.codes = append(e.codes, v)
	}
	if len(f.Reason) > 0 {
		e.reason = strings.TrimSpace(f.Reason[0])
	} else {
		e.reason = strings.TrimSpace(f.FaultString)
	}
	return e
}

// faultError is a fault a device answered with. Its codes are qualified names (such as
// ter:NotAuthorized); the prefixes are the device's own, so only the local part is
// compared.
type faultError struct {
	codes  []string
	reason string
}

func (e *faultError) Error() string {
	s := "SOAP fault " + strings.Join(e.codes, "/")
	if e.reason != "" {
		s += ": " + e.reason
	}
	return s
}

// Is makes errors.Is see the faults that mean a refused user or password (ONVIF's
// NotAuthorized, WS-Security's FailedAuthentication and InvalidSecurityToken) as
// devconf.ErrAuth, and an operation the device does not offer as devconf.ErrUnsupported.
func (e *faultError) Is(target error) bool {
	for _, c := range e.codes {
		if i := strings.LastIndexByte(c, ':'); i >= 0 {
			c = c[i+1:]
		}
		switch c {
		case "NotAuthorized", "FailedAuthentication", "InvalidSecurityToken":
			if target == devconf.ErrAuth {
				return true
			}
		case "ActionNotSupported":
			if target == devconf.ErrUnsupported {
				return true
			}
		}
	}
	return false
}

// attachmentData is a tt:AttachmentData: a reference to an MTOM attachment, or the
// content itself in base64, as a device that does not send MTOM puts it.
type attachmentData struct {
	Include *struct {
		Href string `xml:"href,attr"`
	} `xml:"Include"`
	Text string `xml:",chardata"`
}

// content is the data, taken from parts when it refers to an attachment.
func (a attachmentData) content(parts map[string][]byte) ([]byte, error) {
	if a.Include == nil {
		data, err := decodeBase64(a.Text)
		if err != nil {
			return nil, fmt.Errorf("decode the inline content: %w", err)
		}
		return data, nil
	}
	href := a.Include.Href
	if !strings.HasPrefix(strings.ToLower(href), "cid:") {
		return nil, fmt.Errorf("the attachment reference %q is not a cid: URL", href)
	}
	// A cid: URL is the Content-ID, URL-encoded (RFC 2392).
	id, err := url.PathUnescape(href[len("cid:"):])
	if err != nil {
		return nil, fmt.Errorf("the attachment reference %q is not a valid cid: URL", href)
	}
	data, ok := parts[id]
	if !ok {
		return nil, fmt.Errorf("the answer has no attachment %q", id)
	}
	return data, nil
}

// decodeBase64 decodes s, ignoring the line breaks and spaces that XML writers put in.
func decodeBase64(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, s)
	return base64.StdEncoding.DecodeString(s)
}

// fileName checks a name a device gave a file of its backup, which becomes a file name in
// the archive; the i-th file without a name is called backup-i.
func fileName(name string, i int) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return fmt.Sprintf("backup-%d", i+1), nil
	case name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00"):
		return "", fmt.Errorf("the device names a file of its backup %q, which is not a plain file name", name)
	}
	return name, nil
}
