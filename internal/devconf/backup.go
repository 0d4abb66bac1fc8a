package devconf

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/vigil-backup/vigil/internal/archive"
	"github.com/vigil-backup/vigil/internal/storage"
)

// Target is a storage backups go to, with the name it is shown by.
type Target struct {
	Name    string
	Storage storage.Storage
}

// Sealer is what a backup is encrypted and signed with: no PIN is needed for it.
type Sealer struct {
	Recipient age.Recipient
	// RecipientString is Recipient as text (age1…); it names the key in labels.
	RecipientString string
	MACKey          []byte
	// KeyFile is the wrapped private key as published under keys/ on every storage
	// backups go to, for a new machine to restore from the storage alone.
	KeyFile []byte
}

// Device is what a backup records of the device, besides its configuration.
type Device struct {
	ID, Name, Driver string
	// Address is the device's URL or path, without credentials.
	Address string
	Keep    int
}

// Manifest is the backup's last entry, MANIFEST.json: what the backup holds, checked
// file by file on restore.
type Manifest struct {
	Format   int            `json:"format"`
	Device   string         `json:"device"`
	Name     string         `json:"name,omitempty"`
	Driver   string         `json:"driver"`
	Address  string         `json:"address"`
	Time     time.Time      `json:"time"`
	Vendor   string         `json:"vendor,omitempty"`
	Model    string         `json:"model,omitempty"`
	Firmware string         `json:"firmware,omitempty"`
	Files    []ManifestFile `json:"files"`
	Size     int64          `json:"size"` // of all files together
}

// ManifestFile is one configuration file of a backup.
type ManifestFile struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

const (
	manifestName  = "MANIFEST.json"
	configFolder  = "config/"
	orphanMaxAge  = 24 * time.Hour // an archive without a label this old is an interrupted backup
	manifestLimit = 1 << 20
)

// BackupResult is what Backup did.
type BackupResult struct {
	Name      string    // the backup's name, its UTC time
	Time      time.Time //
	Label     Label
	Stored    []string            // storages that hold it
	Removed   map[string][]string // per storage, the backups removed to keep Keep
	Failed    map[string]error    // storages it could not be written to
	Unchanged bool                // same configuration as the newest backup before it
}

// Backup fetches the device's configuration and stores it, encrypted, on every target;
// then, on each storage that now holds it, removes the oldest backups beyond dev.Keep.
// Nothing is removed anywhere the new backup was not written, nor when fetching fails.
// It fails when any storage failed; the result says which.
func Backup(ctx context.Context, dev Device, drv Driver, targets []Target, seal Sealer, now func() time.Time) (BackupResult, error) {
	if len(targets) == 0 {
		return BackupResult{}, fmt.Errorf("back up %s: no storage given", dev.ID)
	}
	if now == nil {
		now = time.Now
	}
	cfg, err := drv.Fetch(ctx)
	if err != nil {
		return BackupResult{}, fmt.Errorf("back up %s: fetch the configuration: %w", dev.ID, err)
	}
	if len(cfg.Files) == 0 {
		return BackupResult{}, fmt.Errorf("back up %s: the device gave an empty configuration", dev.ID)
	}
	seen := map[string]bool{}
	for i := range cfg.Files {
		cfg.Files[i].Name = safeFileName(cfg.Files[i].Name, i, seen)
	}

	// The newest backup on any target decides the flag and the earliest name this one
	// may take.
	var newest *Info
	for _, t := range targets {
		l, err := List(ctx, t.Storage, dev.ID)
		if err != nil {
			continue // written to below if it can be; its failure is reported there
		}
		if n := len(l); n > 0 && (newest == nil || l[n-1].Time.After(newest.Time)) {
			newest = &l[n-1]
		}
	}
	at := now().UTC().Truncate(time.Second)
	if newest != nil && newest.Time.Sub(at) > 2*time.Second {
		// Rotation goes by time: a backup made now would be taken for the oldest and
		// removed first.
		return BackupResult{}, fmt.Errorf("back up %s: the newest backup, %s, is dated after this machine's clock (%s): check the clock",
			dev.ID, newest.Name, BackupName(at))
	}
	if newest != nil && !at.After(newest.Time) {
		// Names are to the second: wait for the next one rather than lie about the time.
		wait := newest.Time.Add(time.Second).Sub(now())
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return BackupResult{}, ctx.Err()
		}
		at = newest.Time.Add(time.Second)
	}
	res := BackupResult{Name: BackupName(at), Time: at, Removed: map[string][]string{}, Failed: map[string]error{}}

	data, m, err := seal.archive(dev, cfg, at)
	if err != nil {
		return res, fmt.Errorf("back up %s: %w", dev.ID, err)
	}
	sum := sha256.Sum256(data)
	res.Label = Label{
		Format: labelFormat, Device: dev.ID, Driver: dev.Driver, Time: at,
		Vendor: cfg.Vendor, Model: cfg.Model, Firmware: cfg.Firmware,
		Files: len(cfg.Files), ConfigSize: m.Size,
		ArchiveSize: int64(len(data)), ArchiveSHA256: hex.EncodeToString(sum[:]),
		Recipient: seal.RecipientString, ConfigMAC: configMAC(seal.MACKey, cfg),
	}
	res.Label.Unchanged = newest != nil && newest.Label.Recipient == seal.RecipientString &&
		newest.Label.ConfigMAC == res.Label.ConfigMAC
	res.Unchanged = res.Label.Unchanged
	label, err := encodeLabel(res.Label, seal.MACKey)
	if err != nil {
		return res, fmt.Errorf("back up %s: %w", dev.ID, err)
	}

	for _, t := range targets {
		if err := store(ctx, t.Storage, dev.ID, res.Name, data, label, seal); err != nil {
			res.Failed[t.Name] = err
			continue
		}
		res.Stored = append(res.Stored, t.Name)
		removed, err := rotate(ctx, t.Storage, dev.ID, dev.Keep, now())
		res.Removed[t.Name] = removed
		if err != nil {
			res.Failed[t.Name] = fmt.Errorf("stored, but removing old backups failed: %w", err)
		}
	}
	if len(res.Failed) > 0 {
		var errs []error
		for _, name := range slices.Sorted(maps.Keys(res.Failed)) {
			errs = append(errs, fmt.Errorf("%s: %w", name, res.Failed[name]))
		}
		return res, fmt.Errorf("back up %s: %w", dev.ID, errors.Join(errs...))
	}
	return res, nil
}

// archive builds the encrypted archive: the configuration files, then the manifest.
// Configurations are small (MaxConfigSize at most), so it is built in memory, which also
// gives its hash and size before anything is written.
func (s Sealer) archive(dev Device, cfg Config, at time.Time) ([]byte, Manifest, error) {
	m := Manifest{Format: 1, Device: dev.ID, Name: dev.Name, Driver: dev.Driver, Address: dev.Address, Time: at,
		Vendor: cfg.Vendor, Model: cfg.Model, Firmware: cfg.Firmware}
	var buf bytes.Buffer
	w, err := archive.NewWriter(&buf, archive.WriterOptions{Recipients: []age.Recipient{s.Recipient}, Concurrency: 1})
	if err != nil {
		return nil, m, fmt.Errorf("encrypt: %w", err)
	}
	for _, f := range cfg.Files {
		sum := sha256.Sum256(f.Data)
		m.Files = append(m.Files, ManifestFile{Name: f.Name, Size: int64(len(f.Data)), SHA256: hex.EncodeToString(sum[:])})
		m.Size += int64(len(f.Data))
		e := archive.Entry{Name: configFolder + f.Name, Size: int64(len(f.Data)), Mode: 0o600, ModTime: at}
		if err := w.Add(e, bytes.NewReader(f.Data)); err != nil {
			return nil, m, fmt.Errorf("archive %s: %w", f.Name, err)
		}
	}
	mj, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, m, err
	}
	if err := w.Add(archive.Entry{Name: manifestName, Size: int64(len(mj)), Mode: 0o600, ModTime: at}, bytes.NewReader(mj)); err != nil {
		return nil, m, fmt.Errorf("archive the manifest: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, m, fmt.Errorf("archive: %w", err)
	}
	return buf.Bytes(), m, nil
}

// store writes one backup to one storage: the wrapped key when the storage lacks it, the
// archive, a check that it is all there, and the label last, since a backup without its
// label is not listed: a crash leaves nothing that looks complete.
func store(ctx context.Context, st storage.Storage, id, name string, data, label []byte, seal Sealer) error {
	if err := PublishKey(ctx, st, seal.RecipientString, seal.KeyFile); err != nil {
		return err
	}
	an := archiveName(id, name)
	if err := st.Put(ctx, an, storage.BytesSource(data), storage.PutOptions{NoOverwrite: true}); err != nil {
		return fmt.Errorf("write %s: %w", an, err)
	}
	fi, err := st.Stat(ctx, an)
	if err != nil {
		return fmt.Errorf("check %s: %w", an, err)
	}
	if fi.Size != int64(len(data)) {
		return fmt.Errorf("check %s: %d bytes stored of %d", an, fi.Size, len(data))
	}
	ln := labelName(id, name)
	if err := st.Put(ctx, ln, storage.BytesSource(label), storage.PutOptions{NoOverwrite: true}); err != nil {
		return fmt.Errorf("write %s: %w", ln, err)
	}
	return nil
}

// PublishKey writes the wrapped key to the storage unless it holds these very bytes
// already (a PIN change re-wraps the key under the same name).
func PublishKey(ctx context.Context, st storage.Storage, recipient string, keyFile []byte) error {
	if len(keyFile) == 0 {
		return nil
	}
	name := KeyName(recipient)
	if old, err := readSmall(ctx, st, name, maxLabelSize); err == nil && bytes.Equal(old, keyFile) {
		return nil
	}
	if err := st.Put(ctx, name, storage.BytesSource(keyFile), storage.PutOptions{}); err != nil {
		return fmt.Errorf("write the wrapped key %s: %w", name, err)
	}
	return nil
}

// rotate removes the oldest backups beyond keep, each label before its archive (a backup
// without a label is no longer listed), and archives left without a label by an
// interrupted backup more than a day ago.
func rotate(ctx context.Context, st storage.Storage, id string, keep int, now time.Time) ([]string, error) {
	l, orphans, err := list(ctx, st, id)
	if err != nil {
		return nil, err
	}
	var removed []string
	for len(l) > keep {
		b := l[0]
		if err := removeBackup(ctx, st, id, b.Name); err != nil {
			return removed, err
		}
		removed = append(removed, b.Name)
		l = l[1:]
	}
	for _, o := range orphans {
		if now.Sub(o.ModTime) > orphanMaxAge {
			if err := st.Remove(ctx, o.Name); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return removed, fmt.Errorf("remove %s: %w", o.Name, err)
			}
		}
	}
	return removed, nil
}

func removeBackup(ctx context.Context, st storage.Storage, id, name string) error {
	for _, n := range []string{labelName(id, name), archiveName(id, name)} {
		if err := st.Remove(ctx, n); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("remove %s: %w", n, err)
		}
	}
	return nil
}

// readSmall reads a whole object of at most limit bytes.
func readSmall(ctx context.Context, st storage.Storage, name string, limit int64) ([]byte, error) {
	rc, err := st.Open(ctx, name, 0, 0)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("read %s: %w: more than %d bytes", name, ErrTampered, limit)
	}
	return data, nil
}

// StoredKeys returns the wrapped keys under keys/ on the storage, as stored.
func StoredKeys(ctx context.Context, st storage.Storage) ([][]byte, error) {
	var names []string
	err := st.List(ctx, keysFolder+"/", func(fi storage.FileInfo) error {
		if strings.HasSuffix(fi.Name, labelExt) {
			names = append(names, fi.Name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list the keys: %w", err)
	}
	slices.Sort(names)
	var out [][]byte
	for _, n := range names {
		data, err := readSmall(ctx, st, n, maxLabelSize)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, data)
	}
	return out, nil
}
