package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-backup/vigil/internal/atomicfile"
	"github.com/vigil-backup/vigil/internal/catalog"
	"github.com/vigil-backup/vigil/internal/config"
	"github.com/vigil-backup/vigil/internal/devconf"
	"github.com/vigil-backup/vigil/internal/devconf/drivers"
	"github.com/vigil-backup/vigil/internal/storage"
	"github.com/vigil-backup/vigil/internal/vault"
)

func newDeviceCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "device",
		Short: "Back up and restore the configuration of cameras and other devices",
		Long: `Keeps encrypted, timestamped copies of each device's configuration (the newest 5 by
default), as vigil/devices/<id>/<UTC time>.tar.zst.age on its storages, and puts one back
on request: push, reboot, wait for the device to answer, read the configuration back.

Drivers:
  onvif   ONVIF Device Management (GetSystemBackup, RestoreSystem, SystemReboot)
  isapi   Hikvision ISAPI (/ISAPI/System/configurationData, /ISAPI/System/reboot)
  http    any device with a URL to GET its configuration and one to PUT or POST it
  file    a configuration file on this machine, and a command run after restoring it

Backups are encrypted to the installation's key and need no PIN; restoring and exporting
need the Super PIN (see vigil pin). Devices are those of the settings (devices:) and those
added with vigil device add, kept in the catalog in --data.`,
	}
	cmd.AddCommand(newDeviceAddCommand(g), newDeviceRemoveCommand(g), newDeviceBackupCommand(g), newDeviceListCommand(g),
		newDeviceRestoreCommand(g), newDeviceExportCommand(g), newDeviceDeleteAllCommand(g))
	return cmd
}

type deviceAddOptions struct {
	dev          config.Device
	passwordFile string
}

func newDeviceAddCommand(g *globalOptions) *cobra.Command {
	var opts deviceAddOptions
	cmd := &cobra.Command{
		Use:   "add ID --driver onvif|isapi|http|file --address URL|PATH [--user U --password-file F] [--keep 5] --to URL|NAME [--to ...]",
		Short: "Add a device whose configuration is backed up",
		Long: `Adds a device to the catalog. Its password is read from --password-file and kept in the
catalog, which only its owner can read. --to names a storage of the settings, or a
storage URL (its password then comes from $VIGIL_STORAGE_PASSWORD when backups run).

The device is asked whether it answers; one that does not is added all the same, with a
warning, since it may be offline for now.`,
		Args: argsUsage(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.dev.ID = args[0]
			return runDeviceAdd(cmd.Context(), g, opts)
		},
	}
	f := cmd.Flags()
	d := &opts.dev
	f.StringVar(&d.Name, "name", "", "a name an operator knows the device by, e.g. \"Entrance\"")
	f.StringVar(&d.Driver, "driver", "", "onvif, isapi, http or file")
	f.StringVar(&d.Address, "address", "", "the device's URL (http://10.0.0.5/onvif/device_service), or the file's path")
	f.StringVar(&d.User, "user", "", "the device's user name")
	f.StringVar(&opts.passwordFile, "password-file", "", "file holding the device's password")
	f.IntVar(&d.Keep, "keep", config.DefaultDeviceKeep, "backups kept per device")
	f.StringArrayVar(&d.Storages, "to", nil, "storage the backups go to (name in the settings, or URL); repeat for more")
	f.StringVar(&d.Schedule, "schedule", "", `when vigil serve backs it up: "weekly sun 04:00", "monthly 31 04:00", "daily 02:30" (default: on demand)`)
	f.StringVar(&d.RestoreURL, "restore-url", "", "http: where the configuration is written back (default --address)")
	f.StringVar(&d.RestoreMethod, "restore-method", "", "http: PUT (default) or POST")
	f.StringVar(&d.RebootURL, "reboot-url", "", "http: the URL POSTed to reboot the device")
	f.StringVar(&d.HealthURL, "health-url", "", "http: a URL that answers 2xx when the device is up (default --address)")
	f.StringVar(&d.Auth, "auth", "", "http: basic (default) or digest")
	f.StringArrayVar(&d.RestoreCommand, "restore-command", nil, "file: the program run after restoring, then each of its arguments (repeat)")
	f.StringVar(&d.RebootTimeout, "reboot-timeout", "", "how long a restore waits for the device after its reboot (default 5m)")
	return cmd
}

func runDeviceAdd(ctx context.Context, g *globalOptions, opts deviceAddOptions) error {
	d := opts.dev
	if opts.passwordFile != "" {
		pw, err := readSecretFile(opts.passwordFile, "--password-file")
		if err != nil {
			return err
		}
		d.Password = config.SecretValue(pw)
	}
	d.ApplyDefaults()
	settings, _, err := g.settings()
	if err != nil {
		return err
	}
	known := func(name string) bool {
		if slices.ContainsFunc(settings.Storages, func(s config.Storage) bool { return s.Name == name }) {
			return true
		}
		_, err := storage.ParseLocation(name)
		return err == nil && (strings.Contains(name, "/") || strings.Contains(name, `\`))
	}
	if err := d.Validate(known); err != nil {
		return usageError{err}
	}
	cat, err := g.openCatalog(ctx)
	if err != nil {
		return err
	}
	defer cat.Close()
	if i := slices.IndexFunc(settings.Devices, func(s config.Device) bool { return strings.EqualFold(s.ID, d.ID) }); i >= 0 {
		return usageError{fmt.Errorf("device %s is in the settings file already", settings.Devices[i].ID)}
	}
	row, err := encodeDevice(d)
	if err != nil {
		return err
	}
	if err := cat.AddDevice(ctx, row); errors.Is(err, catalog.ErrExists) {
		return usageError{fmt.Errorf("device %s exists already: remove it first (vigil device remove %s)", d.ID, d.ID)}
	} else if err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "Device %s added (%s, %s), backups to %s, %d kept.\n", d.Label(), d.Driver, d.Address, strings.Join(d.Storages, ", "), d.Keep)
	drv, err := drivers.Open(d)
	if err == nil {
		pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err = drv.Ping(pctx)
		cancel()
	}
	if err != nil {
		g.log.Warn("the device does not answer now; it is added all the same", "device", d.ID, "err", err)
	}
	return nil
}

func newDeviceRemoveCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "remove ID",
		Short: "Forget a device added with device add; its backups stay on the storages",
		Args:  argsUsage(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cat, err := g.openCatalog(ctx)
			if err != nil {
				return err
			}
			defer cat.Close()
			d, err := g.device(ctx, cat, args[0])
			if err != nil {
				return err
			}
			if d.inSettings {
				return usageError{fmt.Errorf("device %s is defined in the settings file: remove it there", d.ID)}
			}
			if err := cat.RemoveDevice(ctx, d.ID); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "Device %s removed. Its backups stay on %s (vigil device delete-all %s --yes, before removing, deletes them).\n",
				d.ID, strings.Join(d.Storages, ", "), d.ID)
			return nil
		},
	}
}

type deviceBackupOptions struct {
	all, json bool
}

func newDeviceBackupCommand(g *globalOptions) *cobra.Command {
	var opts deviceBackupOptions
	cmd := &cobra.Command{
		Use:   "backup ID|--all [--json]",
		Short: "Back up a device's configuration now",
		Long: `Reads the device's configuration and stores it, encrypted, on each of its storages as
vigil/devices/<id>/<UTC time>.tar.zst.age, then removes the oldest beyond the device's
keep count: only once the new one is safely written, and never when the backup failed.
A configuration identical to the previous backup's is stored all the same, flagged
unchanged. No PIN is needed, but one must be set (vigil pin set).`,
		Args: func(cmd *cobra.Command, args []string) error {
			if opts.all == (len(args) == 1) && len(args) <= 1 {
				return usageError{errors.New("give a device ID or --all")}
			}
			return argsUsage(0, 1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDeviceBackup(cmd.Context(), g, opts, args)
		},
	}
	cmd.Flags().BoolVar(&opts.all, "all", false, "back up every device")
	cmd.Flags().BoolVar(&opts.json, "json", false, "print a JSON line per device")
	return cmd
}

func runDeviceBackup(ctx context.Context, g *globalOptions, opts deviceBackupOptions, args []string) error {
	cat, err := g.openCatalog(ctx)
	if err != nil {
		return err
	}
	defer cat.Close()
	var devs []deviceSource
	if opts.all {
		if devs, err = g.devices(ctx, cat); err != nil {
			return err
		}
		if len(devs) == 0 {
			return usageError{errors.New("no devices: add one with vigil device add")}
		}
	} else {
		d, err := g.device(ctx, cat, args[0])
		if err != nil {
			return err
		}
		devs = []deviceSource{d}
	}
	v := g.newVault(cat)
	var failed []error
	for _, d := range devs {
		start := time.Now()
		res, err := g.backupDevice(ctx, v, d.Device)
		if errors.Is(err, vault.ErrNoPIN) || errors.Is(err, vault.ErrReset) {
			return err // the same for every device
		}
		if err != nil {
			failed = append(failed, err)
		}
		if res.Name == "" {
			if opts.json {
				json.NewEncoder(g.stdout).Encode(map[string]any{"device": d.ID, "error": err.Error()})
			}
			continue
		}
		if opts.json {
			out := map[string]any{"device": d.ID, "backup": res.Name, "time": res.Time, "unchanged": res.Unchanged,
				"size": res.Label.ArchiveSize, "stored": res.Stored, "removed": res.Removed, "model": res.Label.Model, "firmware": res.Label.Firmware}
			if err != nil {
				out["error"] = err.Error()
			}
			json.NewEncoder(g.stdout).Encode(out)
			continue
		}
		note := ""
		if res.Unchanged {
			note = " (unchanged since the previous backup)"
		}
		fmt.Fprintf(g.stdout, "%s: backup %s, %s, on %s in %s%s.\n", d.Label(), res.Name, bytes(res.Label.ArchiveSize),
			orNone(strings.Join(res.Stored, ", ")), duration(time.Since(start)), note)
		for _, st := range slices.Sorted(maps.Keys(res.Removed)) {
			if r := res.Removed[st]; len(r) > 0 {
				fmt.Fprintf(g.stdout, "  removed from %s, to keep %d: %s\n", st, d.Keep, strings.Join(r, ", "))
			}
		}
	}
	return errors.Join(failed...)
}

type deviceListOptions struct{ json bool }

func newDeviceListCommand(g *globalOptions) *cobra.Command {
	var opts deviceListOptions
	cmd := &cobra.Command{
		Use:   "list [ID] [--json]",
		Short: "List the devices and their backups on each storage",
		Args:  argsUsage(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDeviceList(cmd.Context(), g, opts, args)
		},
	}
	cmd.Flags().BoolVar(&opts.json, "json", false, "print JSON")
	return cmd
}

// listedBackup is a backup in device list --json.
type listedBackup struct {
	Backup    string    `json:"backup"`
	Time      time.Time `json:"time"`
	Storage   string    `json:"storage"`
	Size      int64     `json:"size"`
	Vendor    string    `json:"vendor,omitempty"`
	Model     string    `json:"model,omitempty"`
	Firmware  string    `json:"firmware,omitempty"`
	Unchanged bool      `json:"unchanged"`
	Missing   bool      `json:"archive_missing,omitempty"`
}

type listedDevice struct {
	ID       string         `json:"id"`
	Name     string         `json:"name,omitempty"`
	Driver   string         `json:"driver"`
	Address  string         `json:"address"`
	Keep     int            `json:"keep"`
	Schedule string         `json:"schedule,omitempty"`
	Storages []string       `json:"storages"`
	Backups  []listedBackup `json:"backups"`
	Errors   []string       `json:"errors,omitempty"`
}

func runDeviceList(ctx context.Context, g *globalOptions, opts deviceListOptions, args []string) error {
	cat, err := g.openCatalog(ctx)
	if err != nil {
		return err
	}
	defer cat.Close()
	devs, err := g.devices(ctx, cat)
	if err != nil {
		return err
	}
	if len(args) == 1 {
		d, err := g.device(ctx, cat, args[0])
		if err != nil {
			return err
		}
		devs = []deviceSource{d}
	}
	out := []listedDevice{}
	for _, d := range devs {
		ld := listedDevice{ID: d.ID, Name: d.Name, Driver: d.Driver, Address: d.Address, Keep: d.Keep, Schedule: d.Schedule,
			Storages: d.Storages, Backups: []listedBackup{}}
		targets, closeAll, err := g.deviceTargets(ctx, d.Device)
		if err != nil {
			ld.Errors = append(ld.Errors, err.Error())
		}
		for _, t := range targets {
			l, err := devconf.List(ctx, t.Storage, d.ID)
			if err != nil {
				ld.Errors = append(ld.Errors, fmt.Sprintf("%s: %v", t.Name, err))
				continue
			}
			for _, b := range l {
				ld.Backups = append(ld.Backups, listedBackup{Backup: b.Name, Time: b.Time, Storage: t.Name, Size: b.Label.ArchiveSize,
					Vendor: b.Label.Vendor, Model: b.Label.Model, Firmware: b.Label.Firmware, Unchanged: b.Label.Unchanged, Missing: b.ArchiveMissing})
			}
		}
		if closeAll != nil {
			closeAll()
		}
		out = append(out, ld)
	}
	st, err := g.newVault(cat).Status(ctx)
	if err != nil {
		return err
	}
	if opts.json {
		return json.NewEncoder(g.stdout).Encode(map[string]any{"devices": out, "pin": st.State})
	}
	w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	for _, d := range out {
		sched := d.Schedule
		if sched == "" {
			sched = "on demand"
		}
		fmt.Fprintf(w, "%s (%s, %s), keep %d, %s:\n", config.Device{ID: d.ID, Name: d.Name}.Label(), d.Driver, d.Address, d.Keep, sched)
		for _, b := range d.Backups {
			what := strings.TrimSpace(strings.Join([]string{b.Vendor, b.Model, b.Firmware}, " "))
			flags := ""
			if b.Unchanged {
				flags += " unchanged"
			}
			if b.Missing {
				flags += " ARCHIVE MISSING: cannot be restored"
			}
			fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\n", b.Backup, bytes(b.Size), b.Storage, orNone(what), strings.TrimSpace(flags))
		}
		if len(d.Backups) == 0 {
			fmt.Fprintf(w, "  no backups on %s\n", strings.Join(d.Storages, ", "))
		}
		for _, e := range d.Errors {
			fmt.Fprintf(w, "  ERROR: %s\n", e)
		}
	}
	if len(out) == 0 {
		fmt.Fprintln(w, "No devices: add one with vigil device add.")
	}
	switch st.State {
	case vault.StateNone:
		fmt.Fprintln(w, "No Super PIN is set: backups are refused until one is (vigil pin set).")
	case vault.StateReset:
		fmt.Fprintln(w, "The Super PIN was reset: backups are refused until the old PIN is given again or every backup is deleted.")
	}
	return w.Flush()
}

type deviceOpenOptions struct {
	backup, pinFile, from string
}

func (o *deviceOpenOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.backup, "backup", "", "the backup's time, as device list shows it, e.g. 2026-11-22T04-00-00Z")
	f.StringVar(&o.pinFile, "pin-file", "", "file holding the Super PIN (default: typed at the terminal)")
	f.StringVar(&o.from, "from", "", "the storage to read it from (default: the first of the device's storages that has it)")
}

// open finds, unlocks and checks a backup: everything a restore or an export needs.
func (o *deviceOpenOptions) open(ctx context.Context, g *globalOptions, cat *catalog.Catalog, id string) (deviceSource, devconf.Config, devconf.Manifest, error) {
	var cfg devconf.Config
	var m devconf.Manifest
	if o.backup == "" {
		return deviceSource{}, cfg, m, usageError{errors.New("give --backup TIME (see vigil device list)")}
	}
	at, err := devconf.ParseBackupName(o.backup)
	if err != nil {
		return deviceSource{}, cfg, m, usageError{fmt.Errorf("--backup: %w", err)}
	}
	d, err := g.device(ctx, cat, id)
	if err != nil {
		return d, cfg, m, err
	}
	pin, err := readPIN(o.pinFile, "--pin-file", "Super PIN", false)
	if err != nil {
		return d, cfg, m, err
	}
	keys, err := g.newVault(cat).Unlock(ctx, pin)
	if err != nil {
		return d, cfg, m, vaultHint(err)
	}
	targets, closeAll, err := g.deviceTargets(ctx, d.Device)
	if err != nil {
		return d, cfg, m, err
	}
	defer closeAll()
	if o.from != "" {
		i := slices.IndexFunc(targets, func(t devconf.Target) bool { return t.Name == o.from })
		if i < 0 {
			return d, cfg, m, usageError{fmt.Errorf("--from %s is not a storage of device %s (%s)", o.from, d.ID, strings.Join(d.Storages, ", "))}
		}
		targets = targets[i : i+1]
	}
	name := devconf.BackupName(at)
	var errs []error
	for _, t := range targets {
		cfg, m, err = devconf.Open(ctx, t.Storage, d.ID, name, opener(keys))
		if err == nil {
			return d, cfg, m, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", t.Name, err))
		if !errors.Is(err, storage.ErrNotFound) && !errors.Is(err, storage.ErrUnreachable) {
			break // damaged or altered: say so rather than quietly take another copy
		}
	}
	return d, cfg, m, errors.Join(errs...)
}

type deviceRestoreOptions struct {
	deviceOpenOptions
	noReboot bool
}

func newDeviceRestoreCommand(g *globalOptions) *cobra.Command {
	var opts deviceRestoreOptions
	cmd := &cobra.Command{
		Use:   "restore ID --backup TIME [--pin-file F] [--no-reboot]",
		Short: "Put a backed-up configuration back on its device, reboot it and wait for it",
		Long: `Opens the backup with the Super PIN, checks it was made by this installation and is
whole, pushes the configuration to the device, reboots it, waits for it to answer again
(up to the device's reboot_timeout, 5 minutes by default) and reads its configuration
back to confirm. --no-reboot pushes only.`,
		Args: argsUsage(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDeviceRestore(cmd.Context(), g, opts, args[0])
		},
	}
	opts.addFlags(cmd)
	cmd.Flags().BoolVar(&opts.noReboot, "no-reboot", false, "push the configuration but do not reboot the device")
	return cmd
}

func runDeviceRestore(ctx context.Context, g *globalOptions, opts deviceRestoreOptions, id string) error {
	cat, err := g.openCatalog(ctx)
	if err != nil {
		return err
	}
	defer cat.Close()
	d, cfg, m, err := opts.open(ctx, g, cat, id)
	if err != nil {
		return err
	}
	drv, err := drivers.Open(d.Device)
	if err != nil {
		return err
	}
	start := time.Now()
	res, err := devconf.Restore(ctx, drv, cfg, devconf.RestoreOptions{
		NoReboot: opts.noReboot, Timeout: d.WaitTimeout(), Poll: 500 * time.Millisecond,
		Progress: func(step string) { g.log.Info(step, "device", d.ID) },
	})
	if err != nil {
		return fmt.Errorf("restore %s to %s: %w", devconf.BackupName(m.Time), d.ID, err)
	}
	fmt.Fprintf(g.stdout, "Restored backup %s to %s", devconf.BackupName(m.Time), d.Label())
	switch {
	case opts.noReboot:
		fmt.Fprintln(g.stdout, "; not rebooted (--no-reboot): the configuration may take effect only when it restarts.")
	case !res.Rebooted:
		fmt.Fprintln(g.stdout, "; the device needs no reboot.")
	default:
		fmt.Fprintf(g.stdout, "; it rebooted and answered again after %s.\n", duration(res.Back))
	}
	switch {
	case opts.noReboot:
	case res.Confirmed:
		fmt.Fprintln(g.stdout, "Its configuration, read back, is the one restored.")
	default:
		fmt.Fprintln(g.stdout, "Its configuration, read back, differs from the backup: the device may have adjusted some values; check it.")
	}
	fmt.Fprintf(g.stdout, "(took %s)\n", duration(time.Since(start)))
	return nil
}

type deviceExportOptions struct {
	deviceOpenOptions
	out string
}

func newDeviceExportCommand(g *globalOptions) *cobra.Command {
	var opts deviceExportOptions
	cmd := &cobra.Command{
		Use:   "export ID --backup TIME [--pin-file F] --out FILE",
		Short: "Write a backup's configuration, decrypted, to a file for the vendor's own tool",
		Long: `Opens and checks the backup as restore does, and writes the configuration as the device
gave it to --out (mode 0600: it holds the device's secrets). A configuration in several
parts (some ONVIF devices) is written as a folder of files instead.`,
		Args: argsUsage(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDeviceExport(cmd.Context(), g, opts, args[0])
		},
	}
	opts.addFlags(cmd)
	cmd.Flags().StringVar(&opts.out, "out", "", "the file (or, for several parts, the folder) to write; it must not exist")
	return cmd
}

func runDeviceExport(ctx context.Context, g *globalOptions, opts deviceExportOptions, id string) error {
	if opts.out == "" {
		return usageError{errors.New("give --out FILE")}
	}
	if _, err := os.Lstat(opts.out); err == nil {
		return usageError{fmt.Errorf("--out %s exists: give a new name", opts.out)}
	}
	cat, err := g.openCatalog(ctx)
	if err != nil {
		return err
	}
	defer cat.Close()
	_, cfg, m, err := opts.open(ctx, g, cat, id)
	if err != nil {
		return err
	}
	if len(cfg.Files) == 1 {
		if err := atomicfile.Write(opts.out, cfg.Files[0].Data, nil); err != nil {
			return err
		}
		fmt.Fprintf(g.stdout, "Wrote %s (%s), the configuration of %s at %s.\n", opts.out, bytes(int64(len(cfg.Files[0].Data))), id, devconf.BackupName(m.Time))
		return nil
	}
	// Several parts: a folder made whole under a temporary name, then renamed.
	tmp, err := os.MkdirTemp(filepath.Dir(opts.out), "."+filepath.Base(opts.out)+".tmp-")
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer os.RemoveAll(tmp)
	for _, f := range cfg.Files {
		if err := atomicfile.Write(filepath.Join(tmp, f.Name), f.Data, nil); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, opts.out); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	fmt.Fprintf(g.stdout, "Wrote %d files to %s, the configuration of %s at %s.\n", len(cfg.Files), opts.out, id, devconf.BackupName(m.Time))
	return nil
}

type deviceDeleteAllOptions struct{ yes bool }

func newDeviceDeleteAllCommand(g *globalOptions) *cobra.Command {
	var opts deviceDeleteAllOptions
	cmd := &cobra.Command{
		Use:   "delete-all [ID] --yes",
		Short: "Delete every backup of a device, or of all devices",
		Long: `Deletes every backup of the device (of all devices without an ID) on all its storages.
No PIN is needed: this is the way out when the PIN is forgotten. After a PIN reset, once
no device has a backup left, the key of the new PIN is put in use and backups are made
again.`,
		Args: argsUsage(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDeviceDeleteAll(cmd.Context(), g, opts, args)
		},
	}
	cmd.Flags().BoolVar(&opts.yes, "yes", false, "confirm: the backups cannot be recovered")
	return cmd
}

func runDeviceDeleteAll(ctx context.Context, g *globalOptions, opts deviceDeleteAllOptions, args []string) error {
	cat, err := g.openCatalog(ctx)
	if err != nil {
		return err
	}
	defer cat.Close()
	all, err := g.devices(ctx, cat)
	if err != nil {
		return err
	}
	devs := all
	what := "every device backup"
	if len(args) == 1 {
		d, err := g.device(ctx, cat, args[0])
		if err != nil {
			return err
		}
		devs, what = []deviceSource{d}, "every backup of "+d.ID
	}
	if !opts.yes {
		return usageError{fmt.Errorf("this deletes %s on all storages, for good: add --yes", what)}
	}
	// Devices not named are looked at too: after a reset, the new key is taken into use
	// only when no backup under the old one is left anywhere.
	left := 0
	var failed []error
	for _, d := range all {
		named := slices.ContainsFunc(devs, func(x deviceSource) bool { return x.ID == d.ID })
		targets, closeAll, err := g.deviceTargets(ctx, d.Device)
		if err != nil {
			failed = append(failed, err)
			continue
		}
		for _, t := range targets {
			if !named {
				l, err := devconf.List(ctx, t.Storage, d.ID)
				if err != nil {
					failed = append(failed, fmt.Errorf("%s on %s: %w", d.ID, t.Name, err))
				}
				left += len(l)
				continue
			}
			n, err := devconf.DeleteAll(ctx, t.Storage, d.ID)
			if err != nil {
				failed = append(failed, fmt.Errorf("%s on %s: %w", d.ID, t.Name, err))
			}
			fmt.Fprintf(g.stdout, "%s: deleted %d files on %s.\n", d.ID, n, t.Name)
		}
		closeAll()
	}
	if len(failed) > 0 {
		return errors.Join(failed...)
	}
	v := g.newVault(cat)
	st, err := v.Status(ctx)
	if err != nil {
		return err
	}
	if st.State == vault.StateReset {
		if left > 0 {
			fmt.Fprintf(g.stdout, "%d backups of other devices are left: the Super PIN reset waits until they are deleted too (vigil device delete-all --yes).\n", left)
			return nil
		}
		if _, err := v.Reinit(ctx); err != nil {
			return err
		}
		g.publishKey(ctx, cat, v)
		// The old key opens nothing now; its copies would only let a thief guess the old
		// PIN, which an operator may use elsewhere.
		g.removeKey(ctx, all, st.Recipient)
		fmt.Fprintln(g.stdout, "No backup is left under the old PIN: the new Super PIN's key is in use, and backups are made again.")
	}
	return nil
}
