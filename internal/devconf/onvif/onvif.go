// Package onvif backs up cameras through ONVIF Device Management (SOAP 1.2 over HTTP):
// GetSystemBackup reads the configuration, RestoreSystem writes it back, SystemReboot
// restarts the device, and GetDeviceInformation says what it is.
package onvif

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/vigil-backup/vigil/internal/devconf"
	"github.com/vigil-backup/vigil/internal/devconf/devhttp"
)

// answerLimit bounds an answer: a configuration of devconf.MaxConfigSize in base64, which
// is how a device without MTOM sends it, and room for the envelope.
var answerLimit = int64(base64.StdEncoding.EncodedLen(devconf.MaxConfigSize)) + 1<<20

// Driver talks to one ONVIF device. Every request carries a WS-Security UsernameToken
// (with a password digest) when a user is given; a device that also asks for HTTP digest
// authentication, as ONVIF Core allows, gets it with the same user and password.
type Driver struct {
	url            string
	user, password string
	client         *devhttp.Client
	now            func() time.Time
}

var _ devconf.Driver = (*Driver)(nil)

// New returns a driver for the device service at address, e.g.
// http://10.0.0.5/onvif/device_service.
func New(address, user, password string) (*Driver, error) {
	if _, err := devhttp.CheckURL(address); err != nil {
		return nil, fmt.Errorf("onvif: %w", err)
	}
	auth := devhttp.Digest
	if user == "" {
		auth = devhttp.NoAuth
	}
	return &Driver{url: address, user: user, password: password, client: devhttp.New(auth, user, password), now: time.Now}, nil
}

// backupFile is a tt:BackupFile.
type backupFile struct {
	Name string         `xml:"Name"`
	Data attachmentData `xml:"Data"`
}

// deviceInformation is a GetDeviceInformationResponse.
type deviceInformation struct {
	Manufacturer    string `xml:"Manufacturer"`
	Model           string `xml:"Model"`
	FirmwareVersion string `xml:"FirmwareVersion"`
}

// Fetch reads the device's backup files with GetSystemBackup, and what the device is with
// GetDeviceInformation; a device that will not say what it is still has its backup.
func (d *Driver) Fetch(ctx context.Context) (devconf.Config, error) {
	var resp struct {
		Files []backupFile `xml:"BackupFiles"`
	}
	parts, err := d.call(ctx, "GetSystemBackup", "<tds:GetSystemBackup/>", nil, devhttp.TransferTimeout, &resp)
	if err != nil {
		return devconf.Config{}, err
	}
	if len(resp.Files) == 0 {
		return devconf.Config{}, errors.New("GetSystemBackup: the device answered with no backup files")
	}
	var cfg devconf.Config
	var total int64
	seen := map[string]bool{}
	for i, f := range resp.Files {
		name, err := fileName(f.Name, i)
		if err != nil {
			return devconf.Config{}, fmt.Errorf("GetSystemBackup: %w", err)
		}
		if seen[name] {
			return devconf.Config{}, fmt.Errorf("GetSystemBackup: the device names two files of its backup %q", name)
		}
		seen[name] = true
		data, err := f.Data.content(parts)
		if err != nil {
			return devconf.Config{}, fmt.Errorf("GetSystemBackup: file %q: %w", name, err)
		}
		if total += int64(len(data)); total > devconf.MaxConfigSize {
			return devconf.Config{}, fmt.Errorf("GetSystemBackup: the backup is more than the %d bytes a device may send", devconf.MaxConfigSize)
		}
		cfg.Files = append(cfg.Files, devconf.File{Name: name, Data: data})
	}
	if info, err := d.info(ctx); err == nil {
		cfg.Vendor, cfg.Model, cfg.Firmware = info.Manufacturer, info.Model, info.FirmwareVersion
	}
	return cfg, nil
}

// Push sends the files back with RestoreSystem, as MTOM attachments. The device applies
// them when it restarts, or at once; Reboot makes sure.
func (d *Driver) Push(ctx context.Context, cfg devconf.Config) error {
	if len(cfg.Files) == 0 {
		return errors.New("RestoreSystem: the configuration has no files")
	}
	var body strings.Builder
	ids := make([]string, len(cfg.Files))
	parts := make([][]byte, len(cfg.Files))
	body.WriteString("<tds:RestoreSystem>")
	for i, f := range cfg.Files {
		ids[i] = fmt.Sprintf("file%d@vigil", i+1)
		parts[i] = f.Data
		body.WriteString("<tds:BackupFiles><tt:Name>" + escape(f.Name) + "</tt:Name>" +
			`<tt:Data xmlns:xmime="http://www.w3.org/2005/05/xmlmime" xmime:contentType="application/octet-stream">` +
			`<xop:Include href="cid:` + ids[i] + `"/></tt:Data></tds:BackupFiles>`)
	}
	body.WriteString("</tds:RestoreSystem>")
	_, err := d.call(ctx, "RestoreSystem", body.String(), &attachments{ids: ids, parts: parts}, devhttp.TransferTimeout, nil)
	return err
}

// Reboot asks the device to restart with SystemReboot.
func (d *Driver) Reboot(ctx context.Context) error {
	_, err := d.call(ctx, "SystemReboot", "<tds:SystemReboot/>", nil, 0, nil)
	return err
}

// Ping asks GetDeviceInformation, which the device answers only to its users, so that a
// wrong password shows.
func (d *Driver) Ping(ctx context.Context) error {
	_, err := d.info(ctx)
	return err
}

func (d *Driver) info(ctx context.Context) (deviceInformation, error) {
	var info deviceInformation
	_, err := d.call(ctx, "GetDeviceInformation", "<tds:GetDeviceInformation/>", nil, 0, &info)
	return info, err
}

// attachments are the MTOM parts of a request, by Content-ID.
type attachments struct {
	ids   []string
	parts [][]byte
}

// call sends operation op with body inside the SOAP Body and decodes the answer's body
// into out (nil to ignore it). It returns the attachments of an MTOM answer.
func (d *Driver) call(ctx context.Context, op, body string, attach *attachments, timeout time.Duration, out any) (map[string][]byte, error) {
	action := nsDevice + "/" + op
	var security string
	if d.user != "" {
		security = usernameToken(d.user, d.password, d.now())
	}
	env := envelope(security, body)
	req := devhttp.Request{Method: http.MethodPost, URL: d.url, Body: env, Timeout: timeout, Limit: answerLimit, Header: http.Header{
		"Content-Type": {`application/soap+xml; charset=utf-8; action="` + action + `"`},
	}}
	if attach != nil {
		var ct string
		req.Body, ct = mtom(env, action, attach.ids, attach.parts)
		req.Header.Set("Content-Type", ct)
	}
	resp, err := d.client.Do(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	msg, perr := readMessage(resp.Header.Get("Content-Type"), resp.Body)
	if perr == nil {
		perr = decodeBody(msg.envelope, out)
	}
	var fault *faultError
	isFault := errors.As(perr, &fault)
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		detail := ""
		if isFault {
			detail = fault.Error()
		}
		return nil, fmt.Errorf("%s: %w", op, resp.Err(detail))
	case isFault:
		return nil, fmt.Errorf("%s: POST %s: HTTP %d: %w", op, devhttp.Shown(d.url), resp.StatusCode, fault)
	case !resp.OK():
		return nil, fmt.Errorf("%s: %w", op, resp.Err(""))
	case perr != nil:
		return nil, fmt.Errorf("%s: read the answer: %w", op, perr)
	}
	return msg.parts, nil
}
