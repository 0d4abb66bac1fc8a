package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/vigil-backup/vigil/internal/catalog"
	"github.com/vigil-backup/vigil/internal/config"
	"github.com/vigil-backup/vigil/internal/jobs"
	"github.com/vigil-backup/vigil/internal/server"
)

type serveOptions struct {
	listen  string
	dataDir string
}

func newServeCommand(g *globalOptions) *cobra.Command {
	var opts serveOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the Vigil daemon: HTTP API, health check and metrics",
		Long: `Runs until SIGINT or SIGTERM. Serves /healthz and Prometheus /metrics on the listen
address, and keeps its state (the catalog) in the data folder. Each new version of the
settings file is recorded in the catalog with what changed.

Backs up each enabled dataset of the settings on its schedule, in the server's local
time; a backup that was due while the daemon was not running runs once when it starts.`,
		Args: argsUsage(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runServe(cmd.Context(), g, opts)
		},
	}
	cmd.Flags().StringVar(&opts.listen, "listen", "", "address to listen on (default: server.listen in the settings, "+config.DefaultListen+")")
	cmd.Flags().StringVar(&opts.dataDir, "data-dir", "", "folder for the catalog (default: server.data_dir in the settings, "+config.DefaultDataDir+")")
	return cmd
}

func runServe(ctx context.Context, g *globalOptions, opts serveOptions) error {
	settings, path, err := g.settings()
	if err != nil {
		return err
	}
	if opts.listen != "" {
		settings.Server.Listen = opts.listen
	}
	if opts.dataDir == "" {
		opts.dataDir = g.data
	}
	if opts.dataDir != "" {
		settings.Server.DataDir = opts.dataDir
	}
	if err := settings.Validate(); err != nil {
		return usageError{err}
	}
	cat, err := catalog.Open(ctx, filepath.Join(settings.Server.DataDir, "catalog.db"))
	if err != nil {
		return err
	}
	defer cat.Close()
	if path != "" {
		if err := recordSettings(ctx, cat, path, settings); err != nil {
			return err
		}
	}
	l, err := net.Listen("tcp", settings.Server.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", settings.Server.Listen, err)
	}
	g.log.Info("vigil is serving", "version", version, "address", "http://"+l.Addr().String(), "server_id", settings.Server.ID, "data_dir", settings.Server.DataDir, "storages", len(settings.Storages))
	sched := &jobs.Scheduler{Jobs: append(datasetJobs(g, settings), deviceJobs(ctx, g, cat)...), Store: cat, Log: g.log}
	schedCtx, stopSched := context.WithCancel(ctx)
	schedDone := make(chan error, 1)
	go func() { schedDone <- sched.Run(schedCtx) }()
	err = server.New(server.Options{Version: version, Logger: g.log}).Serve(ctx, l)
	// Scheduled backups stop with the server: a cancelled one runs again at the next start.
	stopSched()
	<-schedDone
	g.log.Info("vigil stopped")
	return err
}

// recordSettings adds the settings file to the catalog's history when it differs from the
// last version recorded, with what changed.
func recordSettings(ctx context.Context, cat *catalog.Catalog, path string, settings config.Settings) error {
	doc, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read settings: %w", err)
	}
	var previous config.Settings
	latest, err := cat.LatestSettings(ctx)
	switch {
	case errors.Is(err, catalog.ErrNoSettings):
		previous = config.Default()
	case err != nil:
		return err
	default:
		if previous, err = config.Parse(latest.Document); err != nil {
			// A document this version cannot read: record the change whole.
			previous = config.Default()
		}
	}
	var changes []catalog.FieldChange
	for _, c := range config.Diff(previous, settings) {
		changes = append(changes, catalog.FieldChange{Field: c.Field, Old: c.Old, New: c.New})
	}
	_, err = cat.SaveSettings(ctx, doc, "file "+path, "read at start", changes)
	return err
}
