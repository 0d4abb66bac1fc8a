package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestDiff(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Settings)
		want   []Change
	}{
		{"nothing", func(*Settings) {}, nil},
		{
			"reordered storages are no change",
			func(s *Settings) { s.Storages[0], s.Storages[1] = s.Storages[1], s.Storages[0] },
			nil,
		},
		{
			"server fields",
			func(s *Settings) { s.Server.Listen = "0.0.0.0:8480"; s.Server.DataDir = "/srv/vigil" },
			[]Change{
				{"server.listen", "127.0.0.1:8480", "0.0.0.0:8480"},
				{"server.data_dir", "/var/lib/vigil", "/srv/vigil"},
			},
		},
		{
			"storage field, keyed by name",
			func(s *Settings) {
				s.Storages[0], s.Storages[1] = s.Storages[1], s.Storages[0]
				s.Storages[1].BWLimit = "50Mbit"
				s.Storages[0].Backup = true
			},
			[]Change{
				{"storages[nas].bwlimit", "20Mbit", "50Mbit"},
				{"storages[usb].backup", "false", "true"},
			},
		},
		{
			"bwlimit removed",
			func(s *Settings) { s.Storages[0].BWLimit = "" },
			[]Change{{"storages[nas].bwlimit", "20Mbit", ""}},
		},
		{
			"literal password changed",
			func(s *Settings) { s.Storages[0].Password = SecretValue("new-secret") },
			[]Change{{"storages[nas].password", Redacted, Redacted}},
		},
		{
			"password moved to the environment",
			func(s *Settings) { s.Storages[0].Password = SecretFromEnv("NAS_PASSWORD") },
			[]Change{{"storages[nas].password", Redacted, "{env: NAS_PASSWORD}"}},
		},
		{
			"password added",
			func(s *Settings) { s.Storages[1].Password = SecretValue("new-secret") },
			[]Change{{"storages[usb].password", "", Redacted}},
		},
		{
			"storage added and removed",
			func(s *Settings) {
				s.Storages[1] = Storage{Name: "s3", URL: "s3://minio:9000/b", Password: SecretValue("new-secret"), Backup: true}
			},
			[]Change{
				{"storages[usb]", `{"name":"usb","url":"/mnt/backup","backup":false}`, ""},
				{"storages[s3]", "", `{"name":"s3","url":"s3://minio:9000/b","password":"[redacted]","backup":true}`},
			},
		},
		{
			"storage renamed",
			func(s *Settings) { s.Storages[1].Name = "usb2" },
			[]Change{
				{"storages[usb]", `{"name":"usb","url":"/mnt/backup","backup":false}`, ""},
				{"storages[usb2]", "", `{"name":"usb2","url":"/mnt/backup","backup":false}`},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := valid()
			old.Storages[0].Password = SecretValue(literal)
			nw := valid()
			nw.Storages[0].Password = SecretValue(literal)
			tt.change(&nw)
			got := Diff(old, nw)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Diff =\n%q\nwant\n%q", got, tt.want)
			}
			for _, c := range got {
				if strings.Contains(c.String(), literal) || strings.Contains(c.String(), "new-secret") {
					t.Fatalf("change %s shows a secret", c)
				}
			}
		})
	}
}

func TestChangeString(t *testing.T) {
	tests := []struct {
		c    Change
		want string
	}{
		{Change{"storages[nas].bwlimit", "20Mbit", "50Mbit"}, `storages[nas].bwlimit: "20Mbit" → "50Mbit"`},
		{Change{"storages[nas].bwlimit", "", "50Mbit"}, `storages[nas].bwlimit: (none) → "50Mbit"`},
		{Change{"storages[nas].password", Redacted, Redacted}, `storages[nas].password: "[redacted]" → "[redacted]"`},
	}
	for _, tt := range tests {
		if got := tt.c.String(); got != tt.want {
			t.Errorf("String() = %s, want %s", got, tt.want)
		}
	}
}
