package config

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/vigil-backup/vigil/internal/schedule"
	"github.com/vigil-backup/vigil/internal/storage"
)

// Dataset is one set of databases and folders backed up together (Data, Archive, In/Out,
// Video events, or any named set).
type Dataset struct {
	// Name is unique and names the dataset's folder on the storages.
	Name string `yaml:"name" json:"name"`
	// Letter (A-Z) starts the names of its backups, X_YYYY_MM_DD_HH_MM_SS; unique.
	Letter string `yaml:"letter" json:"letter"`
	// Enabled datasets are backed up on their schedule. Default true.
	Enabled *bool `yaml:"enabled,omitempty" json:"enabled,omitempty"`
	// Sources are sqlite:///path, postgres://user@host/db or dir:///path URLs.
	Sources []string `yaml:"sources" json:"sources"`
	// SourcePassword is the PostgreSQL password of its postgres sources.
	SourcePassword Secret `yaml:"source_password,omitempty" json:"source_password,omitzero"`
	// Schedule is "weekly sun 04:00", "monthly 31 04:00", "daily 02:30", or "manual" for
	// on demand only. Default weekly sun 04:00, in the server's local time.
	Schedule string `yaml:"schedule" json:"schedule"`
	// Storages are the names of the storages it goes to; two in separate places are
	// recommended.
	Storages []string `yaml:"storages" json:"storages"`
	// Folder on the storages; default vigil/datasets/<name>.
	Folder string `yaml:"folder,omitempty" json:"folder,omitempty"`
	Format string `yaml:"format" json:"format"` // separate or compressed (default)
	Type   string `yaml:"type" json:"type"`     // full (default) or incremental
	// Encryption of compressed backups: a passphrase or age recipients (public keys).
	Encryption Encryption `yaml:"encryption,omitempty" json:"encryption,omitzero"`
	Keep       int        `yaml:"keep,omitempty" json:"keep,omitempty"`           // newest backups kept; 0 all
	KeepDays   int        `yaml:"keep_days,omitempty" json:"keep_days,omitempty"` // and none older; 0 no limit
}

// Encryption says how a dataset's backups are encrypted; the zero value is none.
type Encryption struct {
	Passphrase Secret   `yaml:"passphrase,omitempty" json:"passphrase,omitzero"`
	Recipients []string `yaml:"recipients,omitempty" json:"recipients,omitempty"`
}

// IsEnabled reports whether the dataset is backed up on its schedule.
func (d Dataset) IsEnabled() bool { return d.Enabled == nil || *d.Enabled }

// Frequency is the dataset's schedule read in loc; ok is false for "manual".
func (d Dataset) Frequency(loc *time.Location) (f schedule.Frequency, ok bool, err error) {
	if strings.EqualFold(strings.TrimSpace(d.Schedule), "manual") {
		return f, false, nil
	}
	f, err = schedule.ParseSpec(d.Schedule, loc)
	return f, err == nil, err
}

// DefaultDatasetSchedule is when a new installation backs up its datasets.
const DefaultDatasetSchedule = "weekly sun 04:00"

// defaultDatasets are a new installation's: the four databases of an access-control and
// video system, each backed up every Sunday at 04:00 once given its sources and storages.
func defaultDatasets() []Dataset {
	return []Dataset{
		{Name: "Data", Letter: "D"},
		{Name: "Archive", Letter: "A"},
		{Name: "In-Out", Letter: "T"},
		{Name: "Video events", Letter: "V"},
	}
}

func (d *Dataset) applyDefaults() {
	if d.Schedule == "" {
		d.Schedule = DefaultDatasetSchedule
	}
	if d.Format == "" {
		d.Format = "compressed"
	}
	if d.Type == "" {
		d.Type = "full"
	}
	if d.Sources == nil {
		d.Sources = []string{}
	}
	if d.Storages == nil {
		d.Storages = []string{}
	}
}

var datasetName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 _-]{0,63}$`)

func (s Settings) validateDatasets(v *validator) {
	storages := map[string]bool{}
	for _, st := range s.Storages {
		storages[st.Name] = true
	}
	names, letters := map[string]bool{}, map[string]bool{}
	for i, d := range s.Datasets {
		f := fmt.Sprintf("datasets[%d]", i)
		switch {
		case !datasetName.MatchString(d.Name) || strings.TrimSpace(d.Name) != d.Name:
			v.add(f+".name", "%q is not a valid name: 1 to 64 letters, digits, spaces, _ and -", d.Name)
		case names[strings.ToLower(d.Name)]:
			v.add(f+".name", "%q is used twice", d.Name)
		}
		names[strings.ToLower(d.Name)] = true
		l := strings.ToUpper(d.Letter)
		switch {
		case len(l) != 1 || l[0] < 'A' || l[0] > 'Z':
			v.add(f+".letter", "%q is not one letter A-Z", d.Letter)
		case letters[l]:
			v.add(f+".letter", "%q is used by two datasets: their backups' names would mix", d.Letter)
		}
		letters[l] = true
		for j, src := range d.Sources {
			scheme, _, ok := strings.Cut(src, "://")
			if !ok || scheme != "sqlite" && scheme != "postgres" && scheme != "postgresql" && scheme != "dir" {
				v.add(fmt.Sprintf("%s.sources[%d]", f, j), "%q is not a sqlite://, postgres:// or dir:// URL", src)
			}
		}
		if _, _, err := d.Frequency(nil); err != nil {
			v.add(f+".schedule", "%s", err)
		}
		for j, name := range d.Storages {
			if !storages[name] {
				v.add(fmt.Sprintf("%s.storages[%d]", f, j), "%q is not a storage of the settings", name)
			}
		}
		if d.Folder != "" {
			if err := storage.ValidName(d.Folder); err != nil {
				v.add(f+".folder", "%s", err)
			}
		}
		if d.Format != "separate" && d.Format != "compressed" {
			v.add(f+".format", "%q is not separate or compressed", d.Format)
		}
		if d.Type != "full" && d.Type != "incremental" {
			v.add(f+".type", "%q is not full or incremental", d.Type)
		}
		enc := d.Encryption
		if !enc.Passphrase.IsZero() && len(enc.Recipients) > 0 {
			v.add(f+".encryption", "give a passphrase or recipients, not both")
		}
		if (!enc.Passphrase.IsZero() || len(enc.Recipients) > 0) && d.Format != "compressed" {
			v.add(f+".encryption", "needs format compressed: separate files are stored as they are")
		}
		for j, r := range enc.Recipients {
			if !strings.HasPrefix(r, "age1") {
				v.add(fmt.Sprintf("%s.encryption.recipients[%d]", f, j), "%q is not an age public key (age1...)", r)
			}
		}
		if d.Keep < 0 || d.KeepDays < 0 {
			v.add(f+".keep", "cannot be negative")
		}
	}
}
