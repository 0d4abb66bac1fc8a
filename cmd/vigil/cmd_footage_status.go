package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-backup/vigil/internal/footage"
)

type footageStatusOptions struct {
	storageOptions
	catalogOptions
	to       []string
	serverID string
	json     bool
}

func newFootageStatusCommand(g *globalOptions) *cobra.Command {
	var opts footageStatusOptions
	cmd := &cobra.Command{
		Use:   "status [--to URL|NAME [--to ...]]",
		Short: "Show, per camera and stream, the time up to which footage is backed up on a storage",
		Long: `Reads the index a storage keeps of the footage on it: no catalog and no daemon needed,
so it works from any machine that can reach the storage.

Given several storages, such as those "footage backup --spread" spreads the chunks over,
it shows the time up to which every chunk is on one of them at least, per camera and
stream, and what each of them holds.

Without --to it shows instead what the catalog in --data-dir holds for every storage, as
the last backup runs on this server recorded it.`,
		Args: argsUsage(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			to := append(slices.Clone(opts.to), args...)
			switch len(to) {
			case 0:
				opts.loadDataDir(cmd)
				return runFootageCatalogStatus(cmd.Context(), g, opts)
			case 1:
				return runFootageStatus(cmd.Context(), g, opts, to[0])
			}
			return runFootageSetStatus(cmd.Context(), g, opts, to)
		},
	}
	opts.addFlags(cmd)
	cmd.Flags().StringArrayVar(&opts.to, "to", nil, "the backup storage (URL or name in the settings); repeat for storages read together")
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
		until := untilCell(st.CompleteUntil)
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
	if err := systemWideLine(g.stdout, oldest, ""); err != nil {
		return err
	}
	// A storage that chunks are spread over holds part of the footage only.
	i := slices.IndexFunc(sts, func(st footage.Status) bool { return st.Spread != nil })
	if i < 0 {
		return nil
	}
	others := "another"
	if n := len(sts[i].Spread.Members) - 1; n > 1 {
		others = fmt.Sprintf("%d others", n)
	}
	_, err = fmt.Fprintf(g.stdout, "Backups spread the chunks over this storage and %s: give them all (--to A --to B) to see how far they are complete together\n", others)
	return err
}

// untilCell shows a complete-until in a table.
func untilCell(t time.Time) string {
	if t.IsZero() {
		return "nothing yet"
	}
	return t.Local().Format(time.DateTime)
}

// systemWideLine tells the earliest complete-until of all cameras, zero when some camera has
// nothing backed up yet.
func systemWideLine(w io.Writer, oldest time.Time, where string) error {
	if oldest.IsZero() {
		_, err := fmt.Fprintf(w, "System-wide: some cameras have nothing backed up yet%s\n", where)
		return err
	}
	_, err := fmt.Fprintf(w, "System-wide: complete until %s%s\n", oldest.Local().Format(time.DateTime), where)
	return err
}

// runFootageSetStatus shows what several storages hold together, from their indexes.
func runFootageSetStatus(ctx context.Context, g *globalOptions, opts footageStatusOptions, to []string) error {
	serverID, err := g.serverID(opts.serverID)
	if err != nil {
		return err
	}
	set, closeAll, err := g.openStorages(ctx, to, opts.storageOptions)
	if err != nil {
		return err
	}
	defer closeAll()
	sets, each, err := footage.ReadSetStatuses(ctx, set, serverID)
	if err != nil {
		return fmt.Errorf("footage status: %w", err)
	}
	if opts.json {
		type member struct {
			Storage  string           `json:"storage"`
			Statuses []footage.Status `json:"statuses"`
		}
		members := make([]member, len(set))
		for i, t := range set {
			members[i] = member{Storage: t.Name, Statuses: each[i]}
			if members[i].Statuses == nil {
				members[i].Statuses = []footage.Status{}
			}
		}
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"set": sets, "storages": members})
	}
	if len(sets) == 0 {
		_, err := fmt.Fprintf(g.stdout, "No footage of server %s on the %d storages\n", serverID, len(set))
		return err
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CAMERA\tSTREAM\tCOMPLETE UNTIL\tCHUNKS\tSIZE")
	var oldest time.Time
	for i, ss := range sets {
		if i == 0 || ss.CompleteUntil.Before(oldest) {
			oldest = ss.CompleteUntil
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", ss.Camera, ss.Stream, untilCell(ss.CompleteUntil), ss.Chunks, bytes(ss.Bytes))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := systemWideLine(g.stdout, oldest, fmt.Sprintf(", on the %d storages together", len(set))); err != nil {
		return err
	}
	fmt.Fprintln(g.stdout)
	tw = tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STORAGE\tCHUNKS\tSIZE\tUPDATED")
	for i, t := range set {
		var c footage.Count
		var updated time.Time
		for _, st := range each[i] {
			c.Chunks += st.Chunks
			c.Bytes += st.Bytes
			if st.Updated.After(updated) {
				updated = st.Updated
			}
		}
		last := "never"
		if !updated.IsZero() {
			last = updated.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", t.Name, c.Chunks, bytes(c.Bytes), last)
	}
	return tw.Flush()
}
