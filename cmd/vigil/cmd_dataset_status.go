package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-backup/vigil/internal/catalog"
)

type datasetStatusOptions struct {
	catalogOptions
	json bool
}

func newDatasetStatusCommand(g *globalOptions) *cobra.Command {
	var opts datasetStatusOptions
	cmd := &cobra.Command{
		Use:   "status [--json]",
		Short: "Show the datasets of the settings: schedule, next run, storages, and what is missing",
		Long: `Lists each dataset of the settings with its schedule and next run in local time, the
storages it goes to, and the last scheduled run vigil serve dealt with (from the catalog).
A dataset kept on one storage only is flagged: keep a second copy in another place.`,
		Args: argsUsage(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.loadDataDir(cmd)
			return runDatasetStatus(cmd.Context(), g, opts)
		},
	}
	opts.addDataDirFlag(cmd, "folder of the catalog")
	cmd.Flags().BoolVar(&opts.json, "json", false, "print JSON")
	return cmd
}

type datasetStatus struct {
	Name     string     `json:"name"`
	Letter   string     `json:"letter"`
	Enabled  bool       `json:"enabled"`
	Schedule string     `json:"schedule"`
	Next     *time.Time `json:"next_run,omitempty"`
	LastDue  *time.Time `json:"last_scheduled_run,omitempty"`
	Storages []string   `json:"storages"`
	Sources  int        `json:"sources"`
	Warnings []string   `json:"warnings"`
}

func runDatasetStatus(ctx context.Context, g *globalOptions, opts datasetStatusOptions) error {
	settings, _, err := g.settings()
	if err != nil {
		return err
	}
	var cat *catalog.Catalog
	if path, _, err := g.catalogPath(opts.catalogOptions); err == nil && path != "" {
		if _, serr := os.Stat(path); serr == nil {
			if cat, err = catalog.Open(ctx, path); err != nil {
				return err
			}
			defer cat.Close()
		}
	}
	now := time.Now()
	var out []datasetStatus
	for _, d := range settings.Datasets {
		st := datasetStatus{Name: d.Name, Letter: d.Letter, Enabled: d.IsEnabled(), Schedule: d.Schedule,
			Storages: d.Storages, Sources: len(d.Sources), Warnings: []string{}}
		f, scheduled, err := d.Frequency(time.Local)
		if err == nil && scheduled && st.Enabled {
			next := f.Next(now)
			st.Next = &next
		}
		if cat != nil {
			if last, ok, err := cat.LastDue(ctx, "dataset "+d.Name); err == nil && ok {
				st.LastDue = &last
			}
		}
		switch {
		case len(d.Sources) == 0:
			st.Warnings = append(st.Warnings, "no sources: nothing is backed up")
		case len(d.Storages) == 0:
			st.Warnings = append(st.Warnings, "no storages: nothing is backed up")
		case len(d.Storages) == 1:
			st.Warnings = append(st.Warnings, "one copy only: add a second storage in another place")
		}
		out = append(out, st)
	}
	if opts.json {
		if out == nil {
			out = []datasetStatus{}
		}
		return json.NewEncoder(g.stdout).Encode(out)
	}
	w := g.stdout
	if len(out) == 0 {
		fmt.Fprintln(w, "No datasets in the settings.")
	}
	for _, st := range out {
		state := st.Schedule
		if !st.Enabled {
			state = "disabled"
		}
		fmt.Fprintf(w, "%s (%s): %s", st.Name, st.Letter, state)
		if st.Next != nil {
			fmt.Fprintf(w, ", next %s", st.Next.Format("Mon 2006-01-02 15:04 MST"))
		}
		if st.LastDue != nil {
			fmt.Fprintf(w, ", last scheduled %s", st.LastDue.Local().Format("Mon 2006-01-02 15:04 MST"))
		}
		fmt.Fprintf(w, "; %d sources; storages: %s\n", st.Sources, orNone(strings.Join(st.Storages, ", ")))
		for _, warn := range st.Warnings {
			fmt.Fprintf(w, "  WARNING: %s\n", warn)
		}
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
