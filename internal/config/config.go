// Package config is the settings document: its types, defaults, strict
// decoding, validation with messages an operator can act on, and the
// field-by-field difference between two revisions.
//
// The document is YAML (JSON works too, being a subset). It is stored as the
// bytes the operator gave, so nothing here needs to write secrets back out:
// marshalling a Settings is for display only, and redacts them.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/vigil-backup/vigil/internal/rate"
	"github.com/vigil-backup/vigil/internal/storage"
	"io"
	"os"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Defaults for a new installation.
const (
	DefaultListen  = "127.0.0.1:8480"
	DefaultDataDir = "/var/lib/vigil"
)

// Settings is the whole settings document. The zero value is not usable:
// start from Default or Parse.
type Settings struct {
	Server   Server    `yaml:"server" json:"server"`
	Storages []Storage `yaml:"storages" json:"storages"`
	Footage  Footage   `yaml:"footage" json:"footage"`
	Datasets []Dataset `yaml:"datasets" json:"datasets"`
	Devices  []Device  `yaml:"devices" json:"devices"`
}

// Server describes this Vigil server.
type Server struct {
	// ID names this server on storages (footage/<id>/…), so it must stay the
	// same for the life of the installation: [a-z0-9][a-z0-9-]{0,62}.
	// Default: the short host name, lowercased, with other characters made "-".
	ID string `yaml:"id" json:"id"`
	// Listen is the HTTP API and UI address, host:port. Default DefaultListen.
	Listen string `yaml:"listen" json:"listen"`
	// DataDir holds the catalog and other state. Default DefaultDataDir.
	DataDir string `yaml:"data_dir" json:"data_dir"`
}

// Storage is a place backups can be written to. Only the URL's presence and the
// absence of a password in it are checked here; the storage packages parse the
// URL for their own kind.
type Storage struct {
	// Name is unique among storages and is how everything else refers to the
	// storage: [a-z0-9][a-z0-9_-]{0,62}.
	Name string `yaml:"name" json:"name"`
	// URL is where the storage is, e.g. smb://backup@nas/share/vigil,
	// sftp://u@h:22/srv/backup, s3://host:9000/bucket/prefix or /mnt/backup.
	URL string `yaml:"url" json:"url"`
	// User, when set, overrides the URL's user (a UNC path has no place for one).
	User string `yaml:"user,omitempty" json:"user,omitempty"`
	// Password is the SMB or SFTP password, or the S3 secret access key.
	Password Secret `yaml:"password,omitempty" json:"password,omitzero"`
	// BWLimit caps the transfer rate, in a form rate.Parse accepts; empty is unlimited.
	BWLimit string `yaml:"bwlimit,omitempty" json:"bwlimit,omitempty"`
	// Backup marks the storage as a backup storage ("use as backup storage").
	Backup bool `yaml:"backup" json:"backup"`
}

// Rate returns BWLimit in bytes per second, 0 meaning unlimited. It fails only
// for settings that did not pass Validate.
func (s Storage) Rate() (int64, error) { return rate.Parse(s.BWLimit) }

// Location parses the storage's URL.
func (s Storage) Location() (storage.Location, error) { return storage.ParseLocation(s.URL) }

// Credentials resolves the storage's user and password (reading the environment variable or
// file the password refers to).
func (s Storage) Credentials() (storage.Credentials, error) {
	c := storage.Credentials{User: s.User}
	if s.Password.IsZero() {
		return c, nil
	}
	pw, err := s.Password.Reveal()
	if err != nil {
		return c, fmt.Errorf("storage %s: password: %w", s.Name, err)
	}
	c.Password = pw
	return c, nil
}

// Footage holds the footage backup settings. It has no fields yet; the section
// is accepted (and must be empty) so that documents can carry it already.
type Footage struct{}

// Default returns the settings of a new installation: no storages, the server
// ID derived from the host name, and the default listen address and data folder.
func Default() Settings {
	var s Settings
	s.applyDefaults()
	return s
}

// MaxDocumentSize bounds a settings document. Real ones are a few KiB; the bound keeps a
// hostile or mistaken input (the wrong file, an upload through the API) from using memory
// without end.
const MaxDocumentSize = 1 << 20

// Parse decodes a settings document strictly (an unknown field is an error
// naming its line), fills in defaults for what is absent or empty, and
// validates the result. A validation failure is a *ValidationError.
func Parse(data []byte) (Settings, error) {
	if len(data) > MaxDocumentSize {
		return Settings{}, fmt.Errorf("parse settings: the document is %d bytes, more than the %d allowed", len(data), MaxDocumentSize)
	}
	var s Settings
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil && !errors.Is(err, io.EOF) {
		return Settings{}, fmt.Errorf("parse settings: %w", decodeError(err))
	}
	// A second document would be silently ignored by Decode; refuse it instead.
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return Settings{}, fmt.Errorf("parse settings: %w", decodeError(err))
		}
		return Settings{}, fmt.Errorf("parse settings: line %d: only one document is allowed", extra.Line)
	}
	s.applyDefaults()
	if err := s.Validate(); err != nil {
		return Settings{}, err
	}
	return s, nil
}

// Load reads and parses the settings document at path.
func Load(path string) (Settings, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Settings{}, fmt.Errorf("load settings: %w", err)
	}
	s, err := Parse(data)
	if err != nil {
		return Settings{}, fmt.Errorf("load settings %s: %w", path, err)
	}
	return s, nil
}

// applyDefaults fills empty fields, so that `listen: ""` means the default
// just as leaving the line out does.
func (s *Settings) applyDefaults() {
	if s.Server.ID == "" {
		h, _ := os.Hostname()
		s.Server.ID = hostID(h)
	}
	if s.Server.Listen == "" {
		s.Server.Listen = DefaultListen
	}
	if s.Server.DataDir == "" {
		s.Server.DataDir = DefaultDataDir
	}
	// An API client reads "storages": [] more easily than null.
	if s.Storages == nil {
		s.Storages = []Storage{}
	}
	// Absent means a new installation's datasets; an empty list means none.
	if s.Datasets == nil {
		s.Datasets = defaultDatasets()
	}
	for i := range s.Datasets {
		s.Datasets[i].applyDefaults()
	}
	if s.Devices == nil {
		s.Devices = []Device{}
	}
	for i := range s.Devices {
		s.Devices[i].ApplyDefaults()
	}
}

// hostID turns a host name into a server ID: the first label (a domain would
// change with the network, the machine would not), lowercased, with anything
// outside [a-z0-9-] made "-".
func hostID(host string) string {
	host, _, _ = strings.Cut(host, ".")
	var b strings.Builder
	for _, r := range strings.ToLower(host) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	id := strings.Trim(b.String(), "-")
	if len(id) > 63 {
		id = strings.TrimRight(id[:63], "-")
	}
	if id == "" {
		return "vigil"
	}
	return id
}

// unknownField matches the decoder's message for a field the types do not have.
var unknownField = regexp.MustCompile(`^line (\d+): field (.+) not found in type config\.(\w+)$`)

// sectionOf names each type by where it appears in the document, for messages.
var sectionOf = map[string]string{
	"Settings":   "the top level",
	"Server":     "server",
	"Storage":    "storages",
	"Footage":    "footage",
	"Dataset":    "datasets",
	"Encryption": "datasets[].encryption",
	"Device":     "devices",
}

// decodeError rewrites the decoder's messages in the document's own words
// ("unknown field "listn" in server" rather than a Go type name).
func decodeError(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	msgs := make([]string, len(te.Errors))
	for i, m := range te.Errors {
		if sm := unknownField.FindStringSubmatch(m); sm != nil {
			where := sectionOf[sm[3]]
			if where == "" {
				where = sm[3]
			}
			m = fmt.Sprintf("line %s: unknown field %q in %s", sm[1], sm[2], where)
		}
		msgs[i] = m
	}
	return errors.New(strings.Join(msgs, "; "))
}
