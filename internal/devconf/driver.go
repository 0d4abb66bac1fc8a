// Package devconf backs up the configuration of cameras and other devices: it fetches
// it through the device's driver, stores it encrypted to the installation's key as
// vigil/devices/<id>/<UTC time>.tar.zst.age, keeps the newest few, and pushes one back
// and reboots the device on request.
package devconf

import (
	"context"
	"errors"
)

// Driver talks to one device. Implementations live in the sub-packages, one per kind of
// device (onvif, isapi, httpconf, fileconf).
type Driver interface {
	// Fetch reads the device's current configuration.
	Fetch(ctx context.Context) (Config, error)
	// Push writes cfg, as Fetch returned it, back to the device.
	Push(ctx context.Context, cfg Config) error
	// Reboot asks the device to restart, so that a pushed configuration takes effect. It
	// returns ErrNoReboot when the device has no way to be restarted.
	Reboot(ctx context.Context) error
	// Ping succeeds when the device answers (with its credentials accepted).
	Ping(ctx context.Context) error
}

// Config is a device's configuration as its driver reads and writes it.
type Config struct {
	// Files are the configuration as the device gives it: one file for most, several
	// for an ONVIF device whose backup has several parts. Names are plain file names.
	Files []File
	// What the device says it is, when it says: shown in listings, so that an operator
	// sees which firmware a backup came from before restoring it.
	Vendor, Model, Firmware string
}

// File is one part of a device's configuration.
type File struct {
	Name string
	Data []byte
}

// MaxConfigSize bounds what a driver reads from a device: real configurations are a few
// MiB at most, and a device (or something pretending to be one) must not fill memory.
const MaxConfigSize = 64 << 20

// Errors a driver returns (wrapped) where the caller must decide.
var (
	// ErrAuth: the device refused the user and password.
	ErrAuth = errors.New("the device refused the user name or password")
	// ErrUnreachable: no answer from the device (refused, timed out, no route).
	ErrUnreachable = errors.New("the device does not answer")
	// ErrNoReboot: the device cannot be restarted by Vigil (a file without a command).
	ErrNoReboot = errors.New("the device has no way to be restarted")
	// ErrUnsupported: the device answered, but does not offer what was asked.
	ErrUnsupported = errors.New("the device does not support this")
)
