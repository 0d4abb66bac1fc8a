package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestDefault(t *testing.T) {
	s := Default()
	host, _ := os.Hostname()
	if want := hostID(host); s.Server.ID != want {
		t.Errorf("Server.ID = %q, want %q", s.Server.ID, want)
	}
	if s.Server.Listen != DefaultListen {
		t.Errorf("Server.Listen = %q, want %q", s.Server.Listen, DefaultListen)
	}
	if s.Server.DataDir != DefaultDataDir {
		t.Errorf("Server.DataDir = %q, want %q", s.Server.DataDir, DefaultDataDir)
	}
	if len(s.Storages) != 0 {
		t.Errorf("Storages = %v, want none", s.Storages)
	}
	if err := s.Validate(); err != nil {
		t.Errorf("Default().Validate() = %v", err)
	}
}

func TestHostID(t *testing.T) {
	tests := []struct{ in, want string }{
		{"nvr-01", "nvr-01"},
		{"NVR-01", "nvr-01"},
		{"nvr01.site.example.com", "nvr01"},
		{"Recorder_West 2", "recorder-west-2"},
		{"-edge-", "edge"},
		{"Überwachung", "berwachung"},
		{"", "vigil"},
		{"___", "vigil"},
		{strings.Repeat("a", 70), strings.Repeat("a", 63)},
		{strings.Repeat("a", 62) + "_b", strings.Repeat("a", 62)},
	}
	for _, tt := range tests {
		if got := hostID(tt.in); got != tt.want {
			t.Errorf("hostID(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := hostID(tt.in); !serverID.MatchString(got) {
			t.Errorf("hostID(%q) = %q, which is not a valid server ID", tt.in, got)
		}
	}
}

func TestParse(t *testing.T) {
	host, _ := os.Hostname()
	defaultID := hostID(host)
	tests := []struct {
		name string
		doc  string
		want Settings
	}{
		{
			name: "empty document is the defaults",
			doc:  "",
			want: Default(),
		},
		{
			name: "empty values are the defaults",
			doc:  "server:\n  id: \"\"\n  listen: \"\"\nstorages: []\nfootage: {}\n",
			want: Default(),
		},
		{
			name: "full YAML",
			doc: `
server:
  id: nvr-01
  listen: 0.0.0.0:9000
  data_dir: /srv/vigil
storages:
  - name: nas
    url: smb://backup@nas/share/vigil
    password: {env: NAS_PASSWORD}
    bwlimit: 20Mbit
    backup: true
  - name: usb
    url: /mnt/backup
  - name: unc
    url: '\\nas\share\vigil'
    user: backup
    password: s3cr3t
footage:
datasets: []
devices:
  - id: cam-01
    name: Entrance
    driver: onvif
    address: http://10.0.0.5/onvif/device_service
    user: admin
    password: {file: /etc/vigil/cam-01.pass}
    schedule: daily 02:30
    storages: [nas]
`,
			want: Settings{
				Server: Server{ID: "nvr-01", Listen: "0.0.0.0:9000", DataDir: "/srv/vigil"},
				Storages: []Storage{
					{Name: "nas", URL: "smb://backup@nas/share/vigil", Password: SecretFromEnv("NAS_PASSWORD"), BWLimit: "20Mbit", Backup: true},
					{Name: "usb", URL: "/mnt/backup"},
					{Name: "unc", URL: `\\nas\share\vigil`, User: "backup", Password: SecretValue("s3cr3t")},
				},
				Datasets: []Dataset{},
				Devices: []Device{{ID: "cam-01", Name: "Entrance", Driver: DriverONVIF, Address: "http://10.0.0.5/onvif/device_service",
					User: "admin", Password: SecretFromFile("/etc/vigil/cam-01.pass"), Keep: DefaultDeviceKeep, Schedule: "daily 02:30", Storages: []string{"nas"}}},
			},
		},
		{
			name: "JSON",
			doc:  `{"server": {"listen": "[::1]:8480"}, "storages": [{"name": "s3", "url": "s3://minio:9000/bucket/vigil", "user": "AKIA", "password": {"file": "/etc/vigil/s3.key"}, "backup": true}]}`,
			want: Settings{
				Server:   Server{ID: defaultID, Listen: "[::1]:8480", DataDir: DefaultDataDir},
				Storages: []Storage{{Name: "s3", URL: "s3://minio:9000/bucket/vigil", User: "AKIA", Password: SecretFromFile("/etc/vigil/s3.key"), Backup: true}},
				Datasets: Default().Datasets,
				Devices:  []Device{},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.doc))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Parse =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"unknown top-level field", "server: {}\nstorage: []\n", []string{`line 2: unknown field "storage" in the top level`}},
		{"unknown server field", "server:\n  listn: :80\n", []string{`line 2: unknown field "listn" in server`}},
		{
			"every unknown field at once",
			"storages:\n  - name: a\n    url: /a\n    speed: 5MB\nfootage:\n  cameras: all\n",
			[]string{`line 4: unknown field "speed" in storages`, `line 6: unknown field "cameras" in footage`},
		},
		{"wrong type", "storages:\n  - name: a\n    url: /a\n    backup: maybe\n", []string{"line 4:", "maybe", "bool"}},
		{"bad secret with the other errors", "storages:\n  - name: a\n    url: /a\n    password: {env: A, file: B}\n    x: 1\n", []string{"line 4: secret: give env or file, not both", `line 5: unknown field "x"`}},
		{"syntax", "server: [\n", []string{"parse settings:", "line"}},
		{"two documents", "server: {}\n---\nserver: {}\n", []string{"line 2: only one document is allowed"}},
		{"invalid values", "server: {listen: localhost}\n", []string{`server.listen: missing port in address "localhost"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			if err == nil {
				t.Fatalf("Parse succeeded, want an error containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Parse error = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestParseInvalidIsValidationError(t *testing.T) {
	_, err := Parse([]byte("storages:\n  - name: Bad Name\n"))
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Parse error = %v (%T), want a *ValidationError", err, err)
	}
	if len(ve.Problems) != 2 {
		t.Fatalf("Problems = %v, want 2 (name and url)", ve.Problems)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "vigil.yaml")
	if err := os.WriteFile(p, []byte("server:\n  id: nvr-01\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Load(p)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if s.Server.ID != "nvr-01" {
		t.Fatalf("Server.ID = %q, want %q", s.Server.ID, "nvr-01")
	}

	if err := os.WriteFile(p, []byte("server:\n  listen: nope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(p)
	var ve *ValidationError
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), p) {
		t.Fatalf("Load error = %v, want a *ValidationError naming %s", err, p)
	}

	_, err = Load(filepath.Join(dir, "missing.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load of a missing file: error = %v, want os.ErrNotExist", err)
	}
}

func TestParseRefusesHugeDocuments(t *testing.T) {
	doc := []byte("storages: []\n# " + strings.Repeat("x", MaxDocumentSize) + "\n")
	if _, err := Parse(doc); err == nil || !strings.Contains(err.Error(), "more than the 1048576 allowed") {
		t.Fatalf("a document over the limit: %v", err)
	}
}

// FuzzParse feeds the settings parser hostile documents: it must never panic, and what it
// accepts must be valid and never print a literal password.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"",
		"server: {id: a, listen: '127.0.0.1:1'}\nstorages:\n  - name: x\n    url: /srv\n    password: s3cr3t-seed\n",
		"storages: [{name: n, url: 'smb://u@h/s', password: {env: P}, bwlimit: 20Mbit}]",
		`{"storages":[{"name":"j","url":"s3://h/b","password":{"file":"/x"}}]}`,
		"storages:\n  - &a {name: a, url: /x}\n  - *a\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		s, err := Parse(doc)
		if err != nil {
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("Parse accepted settings that do not validate: %v", err)
		}
		out := fmt.Sprintf("%v %+v %#v", s, s, s)
		for _, st := range s.Storages {
			if st.Password.IsLiteral() && len(st.Password.literal) > 3 && strings.Contains(out, st.Password.literal) {
				t.Fatalf("a literal password shows in the printed settings")
			}
		}
	})
}
