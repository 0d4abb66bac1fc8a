package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-backup/vigil/internal/footage"
)

type footageStatusOptions struct {
	storageOptions
	catalogOptions
	to       string
	serverID string
	json     bool
}

func newFootageStatusCommand(g *globalOptions) *cobra.Command {
	var opts footageStatusOptions
	cmd := &cobra.Command{
		Use:   "status [--to URL|NAME]",
		Short: "Show, per camera and stream, the time up to which footage is backed up on a storage",
		Long: `Reads the index a storage keeps of the footage on it: no catalog and no daemon needed,
so it works from any machine that can reach the storage.

Without --to it shows instead what the catalog in --data-dir holds for every storage, as
the last backup runs on this server recorded it.`,
		Args: argsUsage(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			to := opts.to
			if len(args) == 1 {
				to = args[0]
			}
			if to == "" {
				opts.loadDataDir(cmd)
				return runFootageCatalogStatus(cmd.Context(), g, opts)
			}
			return runFootageStatus(cmd.Context(), g, opts, to)
		},
	}
	opts.addFlags(cmd)
	cmd.Flags().StringVar(&opts.to, "to", "", "the backup storage (URL or name in the settings)")
	cmd.Flags().StringVar(&opts.serverID, "server-id", "", "whose footage (default: this server's id)")
	cmd.Flags().BoolVar(&opts.json, "json", false, "print JSON")
	opts.addDataDirFlag(cmd, "with no --to: the data folder whose catalog is read")
	return cmd
}

func runFootageStatus(ctx context.Context, g *globalOptions, opts footageStatusOptions, to string) error {
	serverID, err := g.serverID(opts.serverID)
	if err != nil {
		return err
	}
	s, loc, err := g.openStorage(ctx, to, opts.storageOptions, false)
	if err != nil {
		return err
	}
	defer s.Close()
	sts, err := footage.ReadStatuses(ctx, s, serverID)
	if err != nil {
		return fmt.Errorf("footage status %s: %w", loc, err)
	}
	if opts.json {
		if sts == nil {
			sts = []footage.Status{}
		}
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(sts)
	}
	if len(sts) == 0 {
		fmt.Fprintf(g.stdout, "No footage of server %s on %s\n", serverID, loc)
		return nil
	}
	skips := slices.ContainsFunc(sts, func(st footage.Status) bool { return !st.SkipBefore.IsZero() })
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	header := "CAMERA\tSTREAM\tCOMPLETE UNTIL\tCHUNKS\tSIZE\tUPDATED"
	if skips {
		header += "\tSKIPPED BEFORE"
	}
	header += retainedHeader(sts)
	fmt.Fprintln(tw, header)
	oldest := time.Time{}
	for i, st := range sts {
		until := "nothing yet"
		if !st.CompleteUntil.IsZero() {
			until = st.CompleteUntil.Local().Format(time.DateTime)
		}
		if i == 0 || st.CompleteUntil.Before(oldest) {
			oldest = st.CompleteUntil
		}
		// A status written by footage skip alone has no backup run behind it yet.
		updated := "never"
		if !st.Updated.IsZero() {
			updated = st.Updated.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s", st.Camera, st.Stream, until, st.Chunks, bytes(st.Bytes), updated)
		if skips {
			skipped := "-"
			if !st.SkipBefore.IsZero() {
				skipped = st.SkipBefore.Local().Format(time.DateTime)
			}
			fmt.Fprintf(tw, "\t%s", skipped)
		}
		fmt.Fprint(tw, retainedCell(sts, st))
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if oldest.IsZero() {
		_, err = fmt.Fprintln(g.stdout, "System-wide: some cameras have nothing backed up yet")
	} else {
		_, err = fmt.Fprintf(g.stdout, "System-wide: complete until %s\n", oldest.Local().Format(time.DateTime))
	}
	return err
}
