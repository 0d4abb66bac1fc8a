package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vigil-backup/vigil/internal/catalog"
	"github.com/vigil-backup/vigil/internal/config"
	"github.com/vigil-backup/vigil/internal/devconf"
	"github.com/vigil-backup/vigil/internal/devconf/drivers"
	"github.com/vigil-backup/vigil/internal/events"
	"github.com/vigil-backup/vigil/internal/storage"
	"github.com/vigil-backup/vigil/internal/vault"
)

// dataDirEnv names the folder holding the catalog, as --data does.
const dataDirEnv = "VIGIL_DATA"

// dataDir is the folder holding the catalog: --data, $VIGIL_DATA, or server.data_dir in
// the settings.
func (g *globalOptions) dataDir() (string, error) {
	if g.data != "" {
		return g.data, nil
	}
	settings, _, err := g.settings()
	if err != nil {
		return "", err
	}
	return settings.Server.DataDir, nil
}

// openCatalog opens (making it if need be) the catalog in the data folder: the device
// commands keep the devices and the Super PIN's vault there.
func (g *globalOptions) openCatalog(ctx context.Context) (*catalog.Catalog, error) {
	dir, err := g.dataDir()
	if err != nil {
		return nil, err
	}
	return catalog.Open(ctx, filepath.Join(dir, catalogFile))
}

// newVault is the Super PIN vault kept in the catalog; wrong PINs are logged as events.
func (g *globalOptions) newVault(cat *catalog.Catalog) *vault.Vault {
	return vault.New(vault.CatalogStore(cat), vault.WithEvents(events.Log(g.log)), vault.WithLogger(g.log))
}

// deviceSource says where a device is defined, for messages.
type deviceSource struct {
	config.Device
	inSettings bool
}

// devices returns every device: those of the settings, then those added from the command
// line. An ID in both is the settings' (the file is what an operator edits last).
func (g *globalOptions) devices(ctx context.Context, cat *catalog.Catalog) ([]deviceSource, error) {
	settings, _, err := g.settings()
	if err != nil {
		return nil, err
	}
	var out []deviceSource
	ids := map[string]bool{}
	for _, d := range settings.Devices {
		out = append(out, deviceSource{Device: d, inSettings: true})
		ids[strings.ToLower(d.ID)] = true
	}
	rows, err := cat.Devices(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		if ids[strings.ToLower(r.ID)] {
			g.log.Warn("device defined twice: the settings' definition is used", "device", r.ID)
			continue
		}
		d, err := decodeDevice(r)
		if err != nil {
			return nil, err
		}
		out = append(out, deviceSource{Device: d})
	}
	return out, nil
}

// device returns the device with the ID; none is a not-found error naming what exists.
func (g *globalOptions) device(ctx context.Context, cat *catalog.Catalog, id string) (deviceSource, error) {
	all, err := g.devices(ctx, cat)
	if err != nil {
		return deviceSource{}, err
	}
	if i := slices.IndexFunc(all, func(d deviceSource) bool { return d.ID == id }); i >= 0 {
		return all[i], nil
	}
	return deviceSource{}, fmt.Errorf("device %q: %w (see vigil device list)", id, storage.ErrNotFound)
}

// encodeDevice turns a device into its catalog row: the settings as JSON, the password apart.
func encodeDevice(d config.Device) (catalog.Device, error) {
	pw, err := d.Password.Reveal()
	if err != nil {
		return catalog.Device{}, fmt.Errorf("device %s: password: %w", d.ID, err)
	}
	d.Password = config.Secret{}
	doc, err := json.Marshal(d)
	if err != nil {
		return catalog.Device{}, err
	}
	return catalog.Device{ID: d.ID, Document: doc, Password: pw}, nil
}

func decodeDevice(r catalog.Device) (config.Device, error) {
	var d config.Device
	if err := json.Unmarshal(r.Document, &d); err != nil {
		return d, fmt.Errorf("device %s in the catalog: %w", r.ID, err)
	}
	if r.Password != "" {
		d.Password = config.SecretValue(r.Password)
	}
	d.ApplyDefaults()
	return d, nil
}

// deviceTargets opens the device's storages; the caller closes them with closeAll.
func (g *globalOptions) deviceTargets(ctx context.Context, d config.Device) (targets []devconf.Target, closeAll func(), err error) {
	closeAll = func() {
		for _, t := range targets {
			t.Storage.Close()
		}
	}
	for _, name := range d.Storages {
		st, loc, err := g.openStorage(ctx, name, storageOptions{}, false)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("device %s: storage %s: %w", d.ID, name, err)
		}
		shown := name
		if strings.Contains(name, "/") || strings.Contains(name, `\`) {
			shown = loc.String()
		}
		targets = append(targets, devconf.Target{Name: shown, Storage: st})
	}
	return targets, closeAll, nil
}

// sealer is what backups are made with: the vault's public key and MAC key, and the
// wrapped key to publish. It needs no PIN, and refuses while no PIN is set or a reset
// waits.
func sealer(ctx context.Context, v *vault.Vault) (devconf.Sealer, error) {
	s, err := v.Sealer(ctx)
	if err != nil {
		return devconf.Sealer{}, err
	}
	w, err := v.Current(ctx)
	if err != nil {
		return devconf.Sealer{}, err
	}
	kf, err := w.Marshal()
	if err != nil {
		return devconf.Sealer{}, err
	}
	return devconf.Sealer{Recipient: s.Recipient, RecipientString: s.Recipient.String(), MACKey: s.MACKey, KeyFile: kf}, nil
}

func opener(k vault.Keys) devconf.Opener {
	return devconf.Opener{Identity: k.Identity, RecipientString: k.Recipient().String(), MACKey: k.MACKey}
}

// backupDevice makes one backup of the device on all its storages.
func (g *globalOptions) backupDevice(ctx context.Context, v *vault.Vault, d config.Device) (devconf.BackupResult, error) {
	seal, err := sealer(ctx, v)
	if err != nil {
		return devconf.BackupResult{}, fmt.Errorf("back up %s: %w", d.ID, err)
	}
	drv, err := drivers.Open(d)
	if err != nil {
		return devconf.BackupResult{}, fmt.Errorf("back up %s: %w", d.ID, err)
	}
	targets, closeAll, err := g.deviceTargets(ctx, d)
	if err != nil {
		return devconf.BackupResult{}, err
	}
	defer closeAll()
	return devconf.Backup(ctx, devconfDevice(d), drv, targets, seal, nil)
}

func devconfDevice(d config.Device) devconf.Device {
	return devconf.Device{ID: d.ID, Name: d.Name, Driver: d.Driver, Address: d.Address, Keep: d.Keep}
}

// eachStorage calls fn once for each storage the devices use, opened for the call. A
// storage that cannot be opened, or for which fn fails, is logged with warn and passed.
func (g *globalOptions) eachStorage(ctx context.Context, devs []deviceSource, warn string, fn func(name string, st storage.Storage) error) {
	done := map[string]bool{}
	for _, d := range devs {
		for _, name := range d.Storages {
			if done[name] {
				continue
			}
			done[name] = true
			st, _, err := g.openStorage(ctx, name, storageOptions{}, false)
			if err == nil {
				err = fn(name, st)
				st.Close()
			}
			if err != nil {
				g.log.Warn(warn, "storage", name, "err", err)
			}
		}
	}
}

// publishKey writes the vault's current wrapped key to the storages of every device, after
// the PIN changed: a copy under the old PIN would otherwise be what a new machine finds.
// A storage it cannot reach is a warning; the next backup there writes the key.
func (g *globalOptions) publishKey(ctx context.Context, cat *catalog.Catalog, v *vault.Vault) {
	w, err := v.Current(ctx)
	if err != nil || w == nil {
		return
	}
	kf, err := w.Marshal()
	if err != nil {
		return
	}
	devs, err := g.devices(ctx, cat)
	if err != nil {
		g.log.Warn("the wrapped key was not copied to the storages", "err", err)
		return
	}
	g.eachStorage(ctx, devs, "the wrapped key was not copied to a storage: the next backup there copies it",
		func(_ string, st storage.Storage) error { return devconf.PublishKey(ctx, st, w.Recipient, kf) })
}

// removeKey removes the wrapped key of recipient from the storages of the devices.
func (g *globalOptions) removeKey(ctx context.Context, devs []deviceSource, recipient string) {
	g.eachStorage(ctx, devs, "the old wrapped key was not removed from a storage", func(_ string, st storage.Storage) error {
		if err := st.Remove(ctx, devconf.KeyName(recipient)); !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		return nil
	})
}

// vaultHint turns the vault's refusals into errors that say what to do.
func vaultHint(err error) error {
	var le *vault.LockedError
	switch {
	case errors.As(err, &le), errors.Is(err, vault.ErrWrongPIN):
		return pinError{err}
	}
	return err
}

// pinError is a wrong PIN, or one refused while wrong attempts are being waited out.
type pinError struct{ error }

func (e pinError) Unwrap() error { return e.error }
