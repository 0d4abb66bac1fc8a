// Package drivers opens the driver a device's settings name: the one place that knows
// every kind of device.
package drivers

import (
	"fmt"

	"github.com/vigil-backup/vigil/internal/config"
	"github.com/vigil-backup/vigil/internal/devconf"
	"github.com/vigil-backup/vigil/internal/devconf/fileconf"
	"github.com/vigil-backup/vigil/internal/devconf/httpconf"
	"github.com/vigil-backup/vigil/internal/devconf/isapi"
	"github.com/vigil-backup/vigil/internal/devconf/onvif"
)

// Open reveals the device's password and returns its driver. It does not contact the
// device. Each driver keeps one HTTP client, so that the many Pings of a reboot-wait
// reuse its connections.
func Open(d config.Device) (devconf.Driver, error) {
	password, err := d.Password.Reveal()
	if err != nil {
		return nil, fmt.Errorf("open device %s: %w", d.ID, err)
	}
	var drv devconf.Driver
	switch d.Driver {
	case config.DriverONVIF:
		drv, err = onvif.New(d.Address, d.User, password)
	case config.DriverISAPI:
		drv, err = isapi.New(d.Address, d.User, password)
	case config.DriverHTTP:
		drv, err = httpconf.New(httpconf.Options{
			URL:           d.Address,
			RestoreURL:    d.RestoreURL,
			RestoreMethod: d.RestoreMethod,
			RebootURL:     d.RebootURL,
			HealthURL:     d.HealthURL,
			Auth:          d.Auth,
			User:          d.User,
			Password:      password,
		})
	case config.DriverFile:
		drv, err = fileconf.New(d.Address, d.RestoreCommand)
	default:
		err = fmt.Errorf("%q is not onvif, isapi, http or file", d.Driver)
	}
	if err != nil {
		return nil, fmt.Errorf("open device %s: %w", d.ID, err)
	}
	return drv, nil
}
