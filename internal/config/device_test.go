package config

import (
	"errors"
	"strings"
	"testing"
)

func TestDeviceValidation(t *testing.T) {
	known := func(name string) bool { return name == "nas" }
	good := func() Device {
		return Device{ID: "cam-01", Driver: DriverONVIF, Address: "http://10.0.0.5/onvif/device_service", Storages: []string{"nas"}}
	}
	tests := []struct {
		name  string
		edit  func(*Device)
		field string
		says  string
	}{
		{"good", func(*Device) {}, "", ""},
		{"bad id", func(d *Device) { d.ID = "../x" }, "device.id", "not a valid ID"},
		{"unknown driver", func(d *Device) { d.Driver = "telnet" }, "device.driver", "not onvif, isapi, http or file"},
		{"not a URL", func(d *Device) { d.Address = "10.0.0.5" }, "device.address", "not an http:// or https:// URL"},
		{"credentials in the URL", func(d *Device) { d.Address = "http://admin:hunter22@10.0.0.5/" }, "device.address", "holds credentials"},
		{"file needs an absolute path", func(d *Device) { d.Driver = DriverFile; d.Address = "etc/acs.conf" }, "device.address", "absolute path"},
		{"file with a command", func(d *Device) {
			d.Driver, d.Address, d.RestoreCommand = DriverFile, "/etc/acs.conf", []string{"systemctl", "restart", "acs"}
		}, "", ""},
		{"command for onvif", func(d *Device) { d.RestoreCommand = []string{"reboot"} }, "device.restore_command", "file driver only"},
		{"http fields for isapi", func(d *Device) { d.Driver = DriverISAPI; d.RebootURL = "http://x/reboot" }, "device", "http driver only"},
		{"http with bad method", func(d *Device) { d.Driver = DriverHTTP; d.RestoreMethod = "GET" }, "device.restore_method", "not PUT or POST"},
		{"http with bad auth", func(d *Device) { d.Driver = DriverHTTP; d.Auth = "ntlm" }, "device.auth", "not basic or digest"},
		{"password without user", func(d *Device) { d.Password = SecretValue("hunter22") }, "device.user", "without a user"},
		{"keep too many", func(d *Device) { d.Keep = 1000 }, "device.keep", "between 1 and 100"},
		{"bad schedule", func(d *Device) { d.Schedule = "hourly" }, "device.schedule", ""},
		{"manual schedule", func(d *Device) { d.Schedule = "manual" }, "", ""},
		{"bad timeout", func(d *Device) { d.RebootTimeout = "forever" }, "device.reboot_timeout", "duration"},
		{"no storage", func(d *Device) { d.Storages = nil }, "device.storages", "at least one storage"},
		{"unknown storage", func(d *Device) { d.Storages = []string{"usb"} }, "device.storages[0]", "not a storage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := good()
			tt.edit(&d)
			d.ApplyDefaults()
			err := d.Validate(known)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate = %v, want a *ValidationError", err)
			}
			for _, p := range ve.Problems {
				if p.Field == tt.field && strings.Contains(p.Message, tt.says) {
					if strings.Contains(p.Message, "hunter22") {
						t.Fatalf("the message shows the password: %s", p)
					}
					return
				}
			}
			t.Fatalf("Validate = %v, want %s: …%s…", err, tt.field, tt.says)
		})
	}
}

func TestDeviceIDsUnique(t *testing.T) {
	_, err := Parse([]byte(`
storages: [{name: nas, url: /mnt/backup}]
devices:
  - {id: cam-01, driver: isapi, address: "http://10.0.0.6", storages: [nas]}
  - {id: CAM-01, driver: isapi, address: "http://10.0.0.7", storages: [nas]}
`))
	if err == nil || !strings.Contains(err.Error(), `devices[1].id: "CAM-01" is used twice`) {
		t.Fatalf("Parse = %v, want the second ID refused", err)
	}
}
