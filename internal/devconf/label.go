package devconf

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"
)

// Where backups and keys are on a storage.
const (
	devicesFolder = "vigil/devices"
	keysFolder    = "vigil/keys"
	archiveExt    = ".tar.zst.age"
	labelExt      = ".json"
	// nameLayout is a backup's time as its name: UTC, sortable, and valid on every
	// storage (no colons, which SMB refuses).
	nameLayout = "2006-01-02T15-04-05Z"
)

// Folder is the device's folder on a storage.
func Folder(id string) string { return devicesFolder + "/" + id }

// KeyName is where the wrapped private key of recipient lives on a storage. Keys are named
// by their public key, so that installations sharing a storage never overwrite each
// other's, and a new machine finds the one its backups' labels name.
func KeyName(recipient string) string { return keysFolder + "/" + recipient + ".json" }

// BackupName is the name of the backup made at t: its UTC time to the second.
func BackupName(t time.Time) string { return t.UTC().Format(nameLayout) }

// ParseBackupName reads a backup's time from its name. It accepts the name as listed
// (2026-11-22T04-00-00Z), with the archive extension, or an RFC 3339 time (with colons,
// as an operator may type it).
func ParseBackupName(s string) (time.Time, error) {
	s = strings.TrimSuffix(strings.TrimSuffix(s, archiveExt), labelExt)
	if t, err := time.Parse(nameLayout, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC().Truncate(time.Second), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a backup time: give it as listed, e.g. 2026-11-22T04-00-00Z", s)
}

func archiveName(id, name string) string { return Folder(id) + "/" + name + archiveExt }
func labelName(id, name string) string   { return Folder(id) + "/" + name + labelExt }

// Label describes a backup in the clear, beside its archive: what a listing, the rotation
// and the "unchanged" flag need without the PIN. It holds no part of the configuration:
// ConfigMAC is keyed, so it says whether two configurations are equal to whoever holds the
// key and nothing to anyone else.
type Label struct {
	Format        int       `json:"format"`
	Device        string    `json:"device"`
	Driver        string    `json:"driver"`
	Time          time.Time `json:"time"`
	Vendor        string    `json:"vendor,omitempty"`
	Model         string    `json:"model,omitempty"`
	Firmware      string    `json:"firmware,omitempty"`
	Files         int       `json:"files"`
	ConfigSize    int64     `json:"config_size"`
	ArchiveSize   int64     `json:"archive_size"`
	ArchiveSHA256 string    `json:"archive_sha256"`
	Recipient     string    `json:"recipient"` // the public key the archive is encrypted to
	ConfigMAC     string    `json:"config_mac"`
	Unchanged     bool      `json:"unchanged"` // same configuration as the backup before it
}

// labelFile is a label as stored: the MAC covers the body's bytes as written (compacted),
// so verifying needs no canonical re-encoding of the fields.
type labelFile struct {
	Body json.RawMessage `json:"label"`
	MAC  string          `json:"mac"`
}

const labelFormat = 1

// maxLabelSize bounds what is read of a label: real ones are under 1 KiB.
const maxLabelSize = 64 << 10

// ErrTampered is returned (wrapped) when a backup is not what this installation wrote: its
// label's MAC, its archive's hash or size, or its manifest does not match.
var ErrTampered = errors.New("the backup was altered or damaged")

// ErrOtherKey is returned (wrapped) when a backup is encrypted to another key than the one
// given: another installation's, or one replaced since by deleting every backup.
var ErrOtherKey = errors.New("the backup is encrypted to another key")

func encodeLabel(l Label, macKey []byte) ([]byte, error) {
	body, err := json.Marshal(l)
	if err != nil {
		return nil, err
	}
	return json.MarshalIndent(labelFile{Body: body, MAC: mac(macKey, "label", body)}, "", "  ")
}

// decodeLabel parses a label; with a MAC key it also checks the label was written with it.
func decodeLabel(data []byte, macKey []byte) (Label, error) {
	var f labelFile
	var l Label
	if err := json.Unmarshal(data, &f); err != nil || len(f.Body) == 0 {
		return l, fmt.Errorf("%w: the label is not readable", ErrTampered)
	}
	if err := json.Unmarshal(f.Body, &l); err != nil {
		return l, fmt.Errorf("%w: the label is not readable", ErrTampered)
	}
	if l.Format != labelFormat {
		return l, fmt.Errorf("label format %d: this vigil reads format %d; upgrade vigil", l.Format, labelFormat)
	}
	// The body's bytes are signed in compact form, so that re-indenting the file (by hand,
	// or by MarshalIndent) does not break the MAC.
	var body bytes.Buffer
	if err := json.Compact(&body, f.Body); err != nil {
		return l, fmt.Errorf("%w: the label is not readable", ErrTampered)
	}
	if macKey != nil && !hmac.Equal([]byte(f.MAC), []byte(mac(macKey, "label", body.Bytes()))) {
		return l, fmt.Errorf("%w: its label was not written with this installation's key", ErrTampered)
	}
	return l, nil
}

// mac is HMAC-SHA256 under key, in hex, of a purpose and the data: the purpose keeps a MAC
// made for one use from being valid for another.
func mac(key []byte, purpose string, data []byte) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte("vigil device " + purpose + " v1\n"))
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil))
}

// configMAC is the keyed digest of a configuration's files, names and order included.
func configMAC(key []byte, cfg Config) string {
	var b bytes.Buffer
	for _, f := range cfg.Files {
		b.Write(binary.AppendUvarint(nil, uint64(len(f.Name))))
		b.WriteString(f.Name)
		b.Write(binary.AppendUvarint(nil, uint64(len(f.Data))))
		b.Write(f.Data)
	}
	return mac(key, "config", b.Bytes())
}

// safeFileName makes a name a device gave for a configuration file into a plain file name:
// a device is not trusted to name files on this machine.
func safeFileName(name string, i int, seen map[string]bool) string {
	name = path.Base(strings.ReplaceAll(name, `\`, "/"))
	name = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f || r == '/' || r == ':' {
			return '_'
		}
		return r
	}, name)
	if name == "" || name == "." || name == ".." || strings.HasPrefix(name, ".") || len(name) > 200 {
		name = fmt.Sprintf("file-%d", i+1)
	}
	for seen[name] {
		name = fmt.Sprintf("%d-%s", i+1, name)
	}
	seen[name] = true
	return name
}
