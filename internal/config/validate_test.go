package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func valid() Settings {
	return Settings{
		Server: Server{ID: "nvr-01", Listen: DefaultListen, DataDir: DefaultDataDir},
		Storages: []Storage{
			{Name: "nas", URL: "smb://backup@nas/share/vigil", Password: SecretValue("x"), BWLimit: "20Mbit", Backup: true},
			{Name: "usb", URL: "/mnt/backup"},
		},
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Settings)
		want   []Problem
	}{
		{"valid", func(*Settings) {}, nil},
		{"no storages", func(s *Settings) { s.Storages = nil }, nil},
		{"ipv6 listen", func(s *Settings) { s.Server.Listen = "[::]:8480" }, nil},
		{"listen on all interfaces", func(s *Settings) { s.Server.Listen = ":8480" }, nil},
		{"unc path", func(s *Settings) { s.Storages[1].URL = `\\nas\share\vigil` }, nil},
		{"user in url without password", func(s *Settings) { s.Storages[1].URL = "sftp://u@h:22/srv/backup" }, nil},
		{"at sign in path is not a password", func(s *Settings) { s.Storages[1].URL = "sftp://h/srv/a:b@c" }, nil},
		{
			"listen without port",
			func(s *Settings) { s.Server.Listen = "localhost" },
			[]Problem{{"server.listen", `missing port in address "localhost"`}},
		},
		{
			"listen port zero",
			func(s *Settings) { s.Server.Listen = "127.0.0.1:0" },
			[]Problem{{"server.listen", `port "0" in "127.0.0.1:0" must be a number from 1 to 65535`}},
		},
		{
			"listen port name",
			func(s *Settings) { s.Server.Listen = "127.0.0.1:http" },
			[]Problem{{"server.listen", `port "http" in "127.0.0.1:http" must be a number from 1 to 65535`}},
		},
		{
			"bad server id",
			func(s *Settings) { s.Server.ID = "NVR 01" },
			[]Problem{{"server.id", `"NVR 01" is not a valid ID: use 1 to 63 of a-z, 0-9 and -, starting with a letter or digit`}},
		},
		{
			"empty data dir",
			func(s *Settings) { s.Server.DataDir = "" },
			[]Problem{{"server.data_dir", "missing: give the folder for the catalog and state"}},
		},
		{
			"duplicate name",
			func(s *Settings) { s.Storages = append(s.Storages, Storage{Name: "nas", URL: "/x"}) },
			[]Problem{{"storages[2].name", `"nas" is used twice`}},
		},
		{
			"missing name and url",
			func(s *Settings) { s.Storages[1] = Storage{} },
			[]Problem{
				{"storages[1].name", "missing: give each storage a unique name"},
				{"storages[1].url", "missing: give where the storage is, e.g. smb://user@nas/share/folder or /mnt/backup"},
			},
		},
		{
			"bad name",
			func(s *Settings) { s.Storages[0].Name = "-NAS" },
			[]Problem{{"storages[0].name", `"-NAS" is not a valid name: use 1 to 63 of a-z, 0-9, _ and -, starting with a letter or digit`}},
		},
		{
			"password in url",
			func(s *Settings) { s.Storages[0].URL = "smb://backup:hunter2@nas/share" },
			[]Problem{{"storages[0].url", "storage URL has a password in it: a URL shows in process lists and logs, so give the password in the settings, a file or the environment instead"}},
		},
		{
			"bad bwlimit",
			func(s *Settings) { s.Storages[0].BWLimit = "20 Mbat" },
			[]Problem{{"storages[0].bwlimit", `"20 Mbat": unknown unit "Mbat" (use kbit, Mbit, Gbit, KB, MB, GB, KiB, MiB, GiB)`}},
		},
		{
			"redacted placeholder saved back",
			func(s *Settings) { s.Storages[0].Password = SecretValue(Redacted) },
			[]Problem{{"storages[0].password", `is the "[redacted]" placeholder shown in place of a secret: give the real password, or {env: NAME} or {file: PATH}`}},
		},
		{
			"all problems at once, in document order",
			func(s *Settings) {
				s.Server.Listen = "localhost"
				s.Storages[0].BWLimit = "fast"
				s.Storages[1].Name = "nas"
			},
			[]Problem{
				{"server.listen", `missing port in address "localhost"`},
				{"storages[0].bwlimit", `"fast": a rate starts with a number, e.g. 20Mbit`},
				{"storages[1].name", `"nas" is used twice`},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := valid()
			tt.change(&s)
			err := s.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate() = %v (%T), want a *ValidationError", err, err)
			}
			if !reflect.DeepEqual(ve.Problems, tt.want) {
				t.Fatalf("Problems =\n%q\nwant\n%q", ve.Problems, tt.want)
			}
		})
	}
}

func TestValidationErrorMessage(t *testing.T) {
	one := &ValidationError{Problems: []Problem{{"server.listen", "bad"}}}
	if got, want := one.Error(), "invalid settings: server.listen: bad"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	two := &ValidationError{Problems: []Problem{{"a", "x"}, {"b", "y"}}}
	if got, want := two.Error(), "invalid settings (2 problems):\n  a: x\n  b: y"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestValidateNeverShowsURLPassword(t *testing.T) {
	s := valid()
	s.Storages[0].URL = "sftp://u:hunter2@h/srv"
	err := s.Validate()
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("Validate() = %v, want an error without the password", err)
	}
}
