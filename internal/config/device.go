package config

import (
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/vigil-backup/vigil/internal/schedule"
)

// Device drivers.
const (
	DriverONVIF = "onvif" // ONVIF Device Management: GetSystemBackup, RestoreSystem, SystemReboot
	DriverISAPI = "isapi" // Hikvision ISAPI: /ISAPI/System/configurationData, /ISAPI/System/reboot
	DriverHTTP  = "http"  // any device with a URL to read its configuration and one to write it
	DriverFile  = "file"  // a configuration file on this machine
)

// Defaults for devices.
const (
	DefaultDeviceKeep    = 5
	DefaultRebootTimeout = 5 * time.Minute
)

// Device is a camera or other device whose configuration is backed up, encrypted to the
// installation's key (see the Super PIN), and restored on request.
type Device struct {
	// ID names the device's folder on the storages: 1 to 64 of A-Z, a-z, 0-9, ., _ and -,
	// starting with a letter or digit. Unique.
	ID   string `yaml:"id" json:"id"`
	Name string `yaml:"name,omitempty" json:"name,omitempty"`
	// Driver is onvif, isapi, http or file.
	Driver string `yaml:"driver" json:"driver"`
	// Address is the device's URL (onvif: the device service, e.g.
	// http://10.0.0.5/onvif/device_service; isapi: http://10.0.0.6; http: the URL the
	// configuration is read from) or, for file, the configuration file's absolute path.
	Address  string `yaml:"address" json:"address"`
	User     string `yaml:"user,omitempty" json:"user,omitempty"`
	Password Secret `yaml:"password,omitempty" json:"password,omitzero"`
	// Keep is how many backups are kept per device; default 5.
	Keep int `yaml:"keep,omitempty" json:"keep,omitempty"`
	// Schedule is "weekly sun 04:00", "monthly 31 04:00" or "daily 02:30"; empty or
	// "manual" is on demand only.
	Schedule string `yaml:"schedule,omitempty" json:"schedule,omitempty"`
	// Storages are names of storages in the settings (or, for devices added from the
	// command line, storage URLs).
	Storages []string `yaml:"storages" json:"storages"`

	// For the http driver: where the configuration is written back (default Address) and
	// with which method (PUT, the default, or POST), the URL that reboots the device (POST;
	// none: no reboot), the URL that answers 2xx when the device is up (default Address),
	// and the authentication, basic (default) or digest.
	RestoreURL    string `yaml:"restore_url,omitempty" json:"restore_url,omitempty"`
	RestoreMethod string `yaml:"restore_method,omitempty" json:"restore_method,omitempty"`
	RebootURL     string `yaml:"reboot_url,omitempty" json:"reboot_url,omitempty"`
	HealthURL     string `yaml:"health_url,omitempty" json:"health_url,omitempty"`
	Auth          string `yaml:"auth,omitempty" json:"auth,omitempty"`

	// For the file driver: a command run after the file is written back (the program and
	// its arguments, no shell), e.g. [systemctl, restart, acs].
	RestoreCommand []string `yaml:"restore_command,omitempty" json:"restore_command,omitempty"`

	// RebootTimeout is how long a restore waits for the device to answer again after its
	// reboot, e.g. "5m" (the default).
	RebootTimeout string `yaml:"reboot_timeout,omitempty" json:"reboot_timeout,omitempty"`
}

// ApplyDefaults fills what a device's settings leave out.
func (d *Device) ApplyDefaults() {
	if d.Keep == 0 {
		d.Keep = DefaultDeviceKeep
	}
	if d.Storages == nil {
		d.Storages = []string{}
	}
	if d.Driver == DriverHTTP {
		if d.RestoreMethod == "" {
			d.RestoreMethod = "PUT"
		}
		if d.Auth == "" {
			d.Auth = "basic"
		}
	}
}

// Frequency is the device's schedule read in loc; ok is false for on demand only.
func (d Device) Frequency(loc *time.Location) (f schedule.Frequency, ok bool, err error) {
	if s := strings.TrimSpace(d.Schedule); s == "" || strings.EqualFold(s, "manual") {
		return f, false, nil
	}
	f, err = schedule.ParseSpec(d.Schedule, loc)
	return f, err == nil, err
}

// WaitTimeout is RebootTimeout as a duration.
func (d Device) WaitTimeout() time.Duration {
	t, err := time.ParseDuration(d.RebootTimeout)
	if err != nil || t <= 0 {
		return DefaultRebootTimeout
	}
	return t
}

// Label is how the device is named to an operator: "Entrance (cam-01)", or the ID.
func (d Device) Label() string {
	if d.Name == "" || d.Name == d.ID {
		return d.ID
	}
	return d.Name + " (" + d.ID + ")"
}

var deviceID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Validate checks one device on its own, with known telling whether a storage reference is
// acceptable. It returns nil or a *ValidationError whose fields start with "device".
func (d Device) Validate(known func(storage string) bool) error {
	var v validator
	d.validate("device", &v, known)
	return v.err()
}

func (s Settings) validateDevices(v *validator) {
	storages := map[string]bool{}
	for _, st := range s.Storages {
		storages[st.Name] = true
	}
	ids := map[string]bool{}
	for i, d := range s.Devices {
		f := fmt.Sprintf("devices[%d]", i)
		if ids[strings.ToLower(d.ID)] {
			v.add(f+".id", "%q is used twice", d.ID)
		}
		ids[strings.ToLower(d.ID)] = true
		d.validate(f, v, func(name string) bool { return storages[name] })
	}
}

func (d Device) validate(f string, v *validator, known func(string) bool) {
	if !deviceID.MatchString(d.ID) {
		v.add(f+".id", "%q is not a valid ID: 1 to 64 of A-Z, a-z, 0-9, ., _ and -, starting with a letter or digit", d.ID)
	}
	switch d.Driver {
	case DriverONVIF, DriverISAPI, DriverHTTP:
		checkDeviceURL(v, f+".address", d.Address, true)
	case DriverFile:
		if !filepath.IsAbs(d.Address) || filepath.Clean(d.Address) != d.Address {
			v.add(f+".address", "%q is not a clean absolute path to the configuration file", d.Address)
		}
	default:
		v.add(f+".driver", "%q is not onvif, isapi, http or file", d.Driver)
	}
	if d.Driver != DriverHTTP && (d.RestoreURL != "" || d.RebootURL != "" || d.HealthURL != "" || d.RestoreMethod != "" || d.Auth != "") {
		v.add(f, "restore_url, restore_method, reboot_url, health_url and auth are for the http driver only")
	}
	if d.Driver == DriverHTTP {
		for _, u := range []struct{ name, url string }{{"restore_url", d.RestoreURL}, {"reboot_url", d.RebootURL}, {"health_url", d.HealthURL}} {
			checkDeviceURL(v, f+"."+u.name, u.url, false)
		}
		if m := d.RestoreMethod; m != "PUT" && m != "POST" {
			v.add(f+".restore_method", "%q is not PUT or POST", m)
		}
		if d.Auth != "basic" && d.Auth != "digest" {
			v.add(f+".auth", "%q is not basic or digest", d.Auth)
		}
	}
	if len(d.RestoreCommand) > 0 && (d.Driver != DriverFile || d.RestoreCommand[0] == "") {
		v.add(f+".restore_command", "is for the file driver only, and starts with the program to run")
	}
	if d.User == "" && !d.Password.IsZero() {
		v.add(f+".user", "missing: a password is given without a user")
	}
	if d.Keep < 1 || d.Keep > 100 {
		v.add(f+".keep", "%d is not between 1 and 100", d.Keep)
	}
	if _, _, err := d.Frequency(nil); err != nil {
		v.add(f+".schedule", "%s", err)
	}
	if d.RebootTimeout != "" {
		if t, err := time.ParseDuration(d.RebootTimeout); err != nil || t < time.Second || t > 2*time.Hour {
			v.add(f+".reboot_timeout", "%q is not a duration between 1s and 2h, e.g. 5m", d.RebootTimeout)
		}
	}
	if len(d.Storages) == 0 {
		v.add(f+".storages", "missing: name at least one storage the backups go to")
	}
	for j, name := range d.Storages {
		if !known(name) {
			v.add(fmt.Sprintf("%s.storages[%d]", f, j), "%q is not a storage of the settings", name)
		}
	}
}

// checkDeviceURL checks an http(s) URL; an empty one is an error only when required.
// Credentials in a URL would be printed wherever the URL is: they go in user and password.
func checkDeviceURL(v *validator, field, raw string, required bool) {
	if raw == "" {
		if required {
			v.add(field, "missing: give the device's http:// or https:// URL")
		}
		return
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		v.add(field, "%q is not an http:// or https:// URL", redactURL(raw))
	case u.User != nil:
		v.add(field, "%q holds credentials: give them as user and password instead", redactURL(raw))
	}
}

// redactURL hides a password a URL may hold, for messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.LastIndex(raw, "@"); i >= 0 {
			return "…" + raw[i:]
		}
		return raw
	}
	return u.Redacted()
}
