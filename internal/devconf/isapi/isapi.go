// Package isapi backs up Hikvision cameras and recorders through ISAPI, their HTTP
// interface: /ISAPI/System/configurationData is the whole configuration as one binary
// file, read with GET and written with PUT, and /ISAPI/System/reboot restarts the device.
package isapi

import (
	"context"
	"encoding/xml"
	"fmt"
	"net/http"
	"strings"

	"github.com/vigil-backup/vigil/internal/devconf"
	"github.com/vigil-backup/vigil/internal/devconf/devhttp"
)

const (
	configPath = "ISAPI/System/configurationData"
	infoPath   = "ISAPI/System/deviceInfo"
	rebootPath = "ISAPI/System/reboot"
)

// FileName is the name of the one file of an ISAPI device's configuration.
const FileName = "configurationData"

// Driver talks to one ISAPI device, with HTTP digest authentication.
type Driver struct {
	config, info, reboot string // URLs
	client               *devhttp.Client
}

var _ devconf.Driver = (*Driver)(nil)

// New returns a driver for the device at address, e.g. http://10.0.0.6.
func New(address, user, password string) (*Driver, error) {
	u, err := devhttp.CheckURL(address)
	if err != nil {
		return nil, fmt.Errorf("isapi: %w", err)
	}
	return &Driver{
		config: u.JoinPath(configPath).String(),
		info:   u.JoinPath(infoPath).String(),
		reboot: u.JoinPath(rebootPath).String(),
		client: devhttp.New(devhttp.Digest, user, password),
	}, nil
}

// Fetch reads the configuration, and the model and firmware from deviceInfo; a device
// that will not say what it is still has its configuration read.
func (d *Driver) Fetch(ctx context.Context) (devconf.Config, error) {
	resp, err := d.do(ctx, devhttp.Request{Method: http.MethodGet, URL: d.config, Timeout: devhttp.TransferTimeout})
	if err != nil {
		return devconf.Config{}, fmt.Errorf("export the configuration: %w", err)
	}
	cfg := devconf.Config{Files: []devconf.File{{Name: FileName, Data: resp.Body}}, Vendor: "Hikvision"}
	if info, err := d.deviceInfo(ctx); err == nil {
		cfg.Model, cfg.Firmware = info.Model, info.FirmwareVersion
	}
	return cfg, nil
}

// Push writes the configuration back. It first asks deviceInfo, so that the digest
// challenge is known and the configuration is sent once, with credentials, rather than
// first to be refused.
func (d *Driver) Push(ctx context.Context, cfg devconf.Config) error {
	if len(cfg.Files) != 1 {
		return fmt.Errorf("import the configuration: an ISAPI configuration is one file, not %d", len(cfg.Files))
	}
	if err := d.Ping(ctx); err != nil {
		return fmt.Errorf("import the configuration: %w", err)
	}
	_, err := d.do(ctx, devhttp.Request{
		Method: http.MethodPut, URL: d.config, Body: cfg.Files[0].Data, Timeout: devhttp.TransferTimeout,
		Header: http.Header{"Content-Type": {"application/octet-stream"}},
	})
	if err != nil {
		return fmt.Errorf("import the configuration: %w", err)
	}
	return nil
}

// Reboot asks the device to restart.
func (d *Driver) Reboot(ctx context.Context) error {
	if _, err := d.do(ctx, devhttp.Request{Method: http.MethodPut, URL: d.reboot}); err != nil {
		return fmt.Errorf("reboot: %w", err)
	}
	return nil
}

// Ping asks deviceInfo, which the device answers only to its users.
func (d *Driver) Ping(ctx context.Context) error {
	if _, err := d.deviceInfo(ctx); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	return nil
}

type deviceInfo struct {
	Model           string `xml:"model"`
	FirmwareVersion string `xml:"firmwareVersion"`
}

func (d *Driver) deviceInfo(ctx context.Context) (deviceInfo, error) {
	var info deviceInfo
	resp, err := d.do(ctx, devhttp.Request{Method: http.MethodGet, URL: d.info, Limit: 1 << 20})
	if err != nil {
		return info, err
	}
	if err := xml.Unmarshal(resp.Body, &info); err != nil {
		return info, fmt.Errorf("read the device information: %w", err)
	}
	return info, nil
}

// responseStatus is the XML an ISAPI device answers a write, or a failure, with.
type responseStatus struct {
	StatusString  string `xml:"statusString"`
	SubStatusCode string `xml:"subStatusCode"`
}

// do sends req and checks the status of the answer.
func (d *Driver) do(ctx context.Context, req devhttp.Request) (*devhttp.Response, error) {
	resp, err := d.client.Do(ctx, req)
	if err != nil {
		return nil, err
	}
	return resp, check(resp)
}

// check turns a non-2xx answer into an error that carries what the device said of it; a
// device that does not offer what was asked says notSupport, which is
// devconf.ErrUnsupported, as is a 404.
func check(resp *devhttp.Response) error {
	if resp.OK() {
		return nil
	}
	var rs responseStatus
	var said []string
	if xml.Unmarshal(resp.Body, &rs) == nil {
		for _, s := range []string{rs.StatusString, rs.SubStatusCode} {
			if s = strings.TrimSpace(s); s != "" {
				said = append(said, s)
			}
		}
	}
	err := resp.Err(strings.Join(said, ", "))
	if resp.StatusCode == http.StatusNotFound || strings.EqualFold(rs.SubStatusCode, "notSupport") {
		return fmt.Errorf("%w: %w", err, devconf.ErrUnsupported)
	}
	return err
}
