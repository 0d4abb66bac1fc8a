package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-backup/vigil/internal/catalog"
	"github.com/vigil-backup/vigil/internal/config"
	"github.com/vigil-backup/vigil/internal/footage"
)

// catalogOptions say where the catalog is, for commands that keep or read what the
// daemon would: --data-dir, or server.data_dir in the settings.
type catalogOptions struct {
	dataDir string
	// given is set when --data-dir is on the command line: "" then means no catalog.
	given bool
}

// catalogFile is the catalog's name in the data folder, as vigil serve keeps it.
const catalogFile = "catalog.db"

func (o *catalogOptions) addDataDirFlag(cmd *cobra.Command, usage string) {
	cmd.Flags().StringVar(&o.dataDir, "data-dir", "", usage+" (default: server.data_dir in the settings, "+config.DefaultDataDir+")")
}

// loadDataDir notes whether --data-dir was given; call it from RunE.
func (o *catalogOptions) loadDataDir(cmd *cobra.Command) {
	o.given = cmd.Flags().Changed("data-dir")
}

// catalogPath is where the catalog is, and whether the command line or the settings
// asked for it: "" when --data-dir "" turns it off.
func (g *globalOptions) catalogPath(opts catalogOptions) (path string, given bool, err error) {
	if opts.given {
		if opts.dataDir == "" {
			return "", true, nil
		}
		return filepath.Join(opts.dataDir, catalogFile), true, nil
	}
	if g.data != "" {
		return filepath.Join(g.data, catalogFile), true, nil
	}
	settings, _, err := g.settings()
	if err != nil {
		return "", false, err
	}
	return filepath.Join(settings.Server.DataDir, catalogFile), false, nil
}

// catalogHelp is the part of footage backup's help about the catalog.
const catalogHelp = `

After the run, each storage's complete-until per camera and stream is also recorded in
the catalog in --data-dir, as vigil serve keeps it, for the daemon's UI and API and for
"vigil footage status" without --to. The catalog of server.data_dir in the settings is
used only when it exists (vigil serve made it), so that a run as another user never makes
the daemon's catalog; one in a folder given with --data-dir is made if need be, and
--data-dir "" records nothing. A catalog that cannot be written (a user without rights
to the daemon's folder) is a warning, not a failed backup: the index on each storage is
what counts, and the next run that can write the catalog catches up.`

// recordFootageComplete records each storage's complete-until of a run in the catalog; of a
// run that spread the chunks, the set's, under the storages' names joined by " + ".
// It never fails the run: the storages' indexes are the truth, the catalog a copy of it
// for the daemon, so a catalog that cannot be written is logged and left for the next
// run. to are the storages as given on the command line, in res.Targets' order.
func (g *globalOptions) recordFootageComplete(ctx context.Context, opts catalogOptions, serverID string, to []string, res footage.Result) {
	path, given, err := g.catalogPath(opts)
	if err != nil || path == "" {
		return // the settings were read before the run: err cannot be new here
	}
	if !given {
		// The daemon makes its catalog, owned by its user: one made by a CLI run as root
		// would lock it out.
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			g.log.Debug("complete-until not recorded: there is no catalog", "catalog", path)
			return
		}
	}
	settings, _, err := g.settings()
	if err != nil || len(res.Targets) != len(to) {
		return
	}
	var rows []catalog.FootageComplete
	add := func(name string, until map[footage.Key]time.Time) {
		for k, u := range until {
			rows = append(rows, catalog.FootageComplete{ServerID: serverID, Storage: name, Camera: k.Camera, Stream: string(k.Stream), CompleteUntil: u})
		}
	}
	names := make([]string, len(res.Targets))
	for i, t := range res.Targets {
		names[i] = to[i]
		if !slices.ContainsFunc(settings.Storages, func(s config.Storage) bool { return s.Name == names[i] }) {
			names[i] = t.Name // a URL, as the run's events and output name it
		}
		if res.SetCompleteUntil == nil {
			add(names[i], t.CompleteUntil)
		}
	}
	if res.SetCompleteUntil != nil {
		// Each storage holds part of the footage: its own complete-until says little.
		add(strings.Join(names, " + "), res.SetCompleteUntil)
	}
	if len(rows) == 0 {
		return
	}
	// An interrupted run records what it did all the same.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	warn := func(err error) {
		attrs := []any{"err", err}
		if errors.Is(err, fs.ErrPermission) {
			attrs = append(attrs, "hint", `run as the daemon's user, or give --data-dir "" not to record`)
		}
		g.log.Warn("complete-until not recorded in the catalog; the storages' indexes have it", attrs...)
	}
	cat, err := catalog.Open(ctx, path)
	if err != nil {
		warn(err)
		return
	}
	defer cat.Close()
	if err := cat.SetFootageComplete(ctx, rows); err != nil {
		warn(err)
	}
}

// runFootageCatalogStatus shows the complete-until the catalog holds for a server, on
// every storage its runs recorded: what footage status shows when given no storage.
func runFootageCatalogStatus(ctx context.Context, g *globalOptions, opts footageStatusOptions) error {
	path, _, err := g.catalogPath(opts.catalogOptions)
	if err != nil {
		return err
	}
	if path == "" {
		return usageError{errors.New("footage status needs --to, or a catalog (not --data-dir \"\")")}
	}
	// Reading must not leave an empty catalog behind, as Open would.
	if _, err := os.Stat(path); err != nil {
		return usageError{fmt.Errorf("footage status needs --to: there is no catalog at %s to read (%v)", path, errors.Unwrap(err))}
	}
	serverID, err := g.serverID(opts.serverID)
	if err != nil {
		return err
	}
	cat, err := catalog.Open(ctx, path)
	if err != nil {
		return err
	}
	defer cat.Close()
	fcs, err := cat.FootageComplete(ctx, serverID)
	if err != nil {
		return err
	}
	if opts.json {
		type row struct {
			Storage       string    `json:"storage"`
			Camera        string    `json:"camera"`
			Stream        string    `json:"stream"`
			CompleteUntil time.Time `json:"complete_until"`
			Updated       time.Time `json:"updated"`
		}
		rows := []row{}
		for _, fc := range fcs {
			rows = append(rows, row{fc.Storage, fc.Camera, fc.Stream, fc.CompleteUntil, fc.Updated})
		}
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	if len(fcs) == 0 {
		_, err := fmt.Fprintf(g.stdout, "The catalog %s holds no backup of server %s; give --to to read a storage\n", path, serverID)
		return err
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STORAGE\tCAMERA\tSTREAM\tCOMPLETE UNTIL\tRECORDED")
	oldest := fcs[0].CompleteUntil
	for _, fc := range fcs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", fc.Storage, fc.Camera, fc.Stream,
			fc.CompleteUntil.Local().Format(time.DateTime), fc.Updated.Local().Format(time.DateTime))
		if fc.CompleteUntil.Before(oldest) {
			oldest = fc.CompleteUntil
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err = fmt.Fprintf(g.stdout, "System-wide: complete until %s\nFrom the catalog %s, as the last runs recorded it; --to NAME reads a storage's own index.\n",
		oldest.Local().Format(time.DateTime), path)
	return err
}

// addReportFlags adds the flags that say where footage backup reports besides its output:
// events and the catalog.
func (o *footageBackupOptions) addReportFlags(cmd *cobra.Command) {
	o.addEventFlags(cmd)
	o.addDataDirFlag(cmd, "the daemon's data folder, whose catalog is told each storage's complete-until")
	cmd.Long += catalogHelp
}
