package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-backup/vigil/internal/footage"
	"github.com/vigil-backup/vigil/internal/storage"
)

type footageVerifyOptions struct {
	storageOptions
	to       []string
	serverID string
	cameras  []string
	parallel int
	json     bool
}

func newFootageVerifyCommand(g *globalOptions) *cobra.Command {
	var opts footageVerifyOptions
	cmd := &cobra.Command{
		Use:   "verify --to URL|NAME [--to ...]",
		Short: "Read back every backed-up chunk and check it against the storage's index",
		Long: `Reads every chunk the storage's index lists, and checks its size and SHA-256; given
several storages (such as those "footage backup --spread" spreads the chunks over), each
of them in turn. Each bad chunk is printed on a line of its own:

  BAD <path>: missing | wrong size ... | wrong hash ... | unreadable: <why>

Objects below the server's folder that the index does not list (left by a backup that
was interrupted, or put there by hand) are printed as NOT INDEXED; they are not errors.

The exit code is 0 when every chunk is good, 1 when any is bad.`,
		Args: argsUsage(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runFootageVerify(cmd.Context(), g, opts)
		},
	}
	opts.addFlags(cmd)
	f := cmd.Flags()
	f.StringArrayVar(&opts.to, "to", nil, "the backup storage (URL or name in the settings); repeat for more")
	f.StringVar(&opts.serverID, "server-id", "", "whose footage (default: this server's id)")
	f.StringSliceVar(&opts.cameras, "cameras", nil, "camera ids to verify (default: all)")
	f.IntVar(&opts.parallel, "parallel", 4, "chunks read at once")
	f.BoolVar(&opts.json, "json", false, "print progress and the result as JSON lines")
	return cmd
}

func runFootageVerify(ctx context.Context, g *globalOptions, opts footageVerifyOptions) error {
	if len(opts.to) == 0 {
		return usageError{errors.New("footage verify needs --to")}
	}
	if opts.parallel < 1 || opts.parallel > 64 {
		return usageError{fmt.Errorf("--parallel %d: give 1 to 64", opts.parallel)}
	}
	serverID, err := g.serverID(opts.serverID)
	if err != nil {
		return err
	}
	set, closeAll, err := g.openStorages(ctx, opts.to, opts.storageOptions)
	if err != nil {
		return err
	}
	defer closeAll()
	// Each storage is verified, also after one that is bad or cannot be read: the operator
	// wants to know of all of them.
	var errs []error
	for _, t := range set {
		if err := verifyStorage(ctx, g, opts, serverID, t); err != nil {
			if ctx.Err() != nil {
				return err
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// verifyStorage verifies one storage and prints what it found.
func verifyStorage(ctx context.Context, g *globalOptions, opts footageVerifyOptions, serverID string, t footage.Target) error {
	loc := t.Name
	out := newProgressPrinter(g.stdout, g.stderr, opts.json)
	start := time.Now()
	res, err := footage.Verify(ctx, t.Storage, serverID, footage.VerifyOptions{
		Cameras: opts.cameras, Parallel: opts.parallel, Progress: out.progress,
	})
	out.done()
	if err != nil {
		return fmt.Errorf("%s: %w", loc, err)
	}
	if opts.json {
		type jsonBad struct {
			Path    string `json:"path"`
			Problem string `json:"problem"`
		}
		bad := make([]jsonBad, 0, len(res.Bad))
		for _, b := range res.Bad {
			bad = append(bad, jsonBad{b.Path, b.Problem})
		}
		notIndexed := res.NotIndexed
		if notIndexed == nil {
			notIndexed = []string{}
		}
		if err := json.NewEncoder(g.stdout).Encode(map[string]any{
			"type": "result", "storage": loc, "ok": res.OK(), "checked": res.Checked, "bytes": res.Bytes,
			"bad": bad, "not_indexed": notIndexed, "seconds": time.Since(start).Seconds(),
		}); err != nil {
			return err
		}
	} else {
		w := g.stdout
		for _, b := range res.Bad {
			fmt.Fprintf(w, "BAD %s: %s\n", b.Path, b.Problem)
		}
		for _, n := range res.NotIndexed {
			fmt.Fprintf(w, "NOT INDEXED %s\n", n)
		}
		fmt.Fprintf(w, "Checked %d chunks (%s) of server %s on %s in %s: ", res.Checked, bytes(res.Bytes), serverID, loc, duration(time.Since(start)))
		if res.OK() {
			fmt.Fprintln(w, "all good")
		} else {
			fmt.Fprintf(w, "%d bad\n", len(res.Bad))
		}
		if n := len(res.NotIndexed); n > 0 {
			fmt.Fprintf(w, "%d objects are not in the index: left by an interrupted backup (the next run indexes them) or put there by hand\n", n)
		}
	}
	if !res.OK() {
		return fmt.Errorf("verify footage on %s: %d of %d chunks are bad (first: %s: %s)", loc, len(res.Bad), res.Checked, res.Bad[0].Path, res.Bad[0].Problem)
	}
	return nil
}

type footageRestoreOptions struct {
	storageOptions
	from     []string
	camera   string
	since    string
	until    string
	target   string
	quality  string
	serverID string
	parallel int
	json     bool
}

func newFootageRestoreCommand(g *globalOptions) *cobra.Command {
	var opts footageRestoreOptions
	cmd := &cobra.Command{
		Use:   "restore --from URL|NAME [--from ...] --camera ID --since T --until T --target DIR",
		Short: "Copy a camera's footage of a time range from a backup storage into a folder",
		Long: `Copies every chunk of the camera whose footage overlaps the range [since, until) from the
storage into the target folder, in the recorder's layout, so that the VMS can import it.
Each file is checked against the SHA-256 in the storage's index before it appears, and
gets the chunk's end as its modification time. Files already in the folder are never
replaced: an identical one is skipped, a different one stops the restore.

Given several storages (such as those "footage backup --spread" spreads the chunks over),
each chunk comes from one whose index lists it, or, when its copy there is damaged, from
another that has it too.

Times are RFC 3339 (2026-11-22T04:00:00Z, 2026-11-22T05:00:00+01:00) or local time
(2026-11-22 04:00 or 2026-11-22 04:00:30).`,
		Args: argsUsage(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runFootageRestore(cmd.Context(), g, opts)
		},
	}
	opts.addFlags(cmd)
	f := cmd.Flags()
	f.StringArrayVar(&opts.from, "from", nil, "the backup storage (URL or name in the settings); repeat for storages read together")
	f.StringVar(&opts.camera, "camera", "", "the camera id")
	f.StringVar(&opts.since, "since", "", "start of the range")
	f.StringVar(&opts.until, "until", "", "end of the range (not included)")
	f.StringVar(&opts.target, "target", "", "the folder to restore into (created when missing)")
	f.StringVar(&opts.quality, "quality", "both", "hi, lo or both")
	f.StringVar(&opts.serverID, "server-id", "", "whose footage (default: this server's id)")
	f.IntVar(&opts.parallel, "parallel", 4, "chunks restored at once")
	f.BoolVar(&opts.json, "json", false, "print progress and the result as JSON lines")
	return cmd
}

func runFootageRestore(ctx context.Context, g *globalOptions, opts footageRestoreOptions) error {
	if len(opts.from) == 0 || opts.camera == "" || opts.since == "" || opts.until == "" || opts.target == "" {
		return usageError{errors.New("footage restore needs --from, --camera, --since, --until and --target")}
	}
	if err := storage.ValidName(opts.camera); err != nil || strings.Contains(opts.camera, "/") {
		return usageError{fmt.Errorf("--camera %q: not a camera id", opts.camera)}
	}
	since, err := parseTime("--since", opts.since)
	if err != nil {
		return err
	}
	until, err := parseTime("--until", opts.until)
	if err != nil {
		return err
	}
	if !until.After(since) {
		return usageError{fmt.Errorf("--until %s is not after --since %s", opts.until, opts.since)}
	}
	streams, err := parseQuality(opts.quality)
	if err != nil {
		return usageError{err}
	}
	if opts.parallel < 1 || opts.parallel > 64 {
		return usageError{fmt.Errorf("--parallel %d: give 1 to 64", opts.parallel)}
	}
	serverID, err := g.serverID(opts.serverID)
	if err != nil {
		return err
	}
	set, closeAll, err := g.openStorages(ctx, opts.from, opts.storageOptions)
	if err != nil {
		return err
	}
	defer closeAll()
	out := newProgressPrinter(g.stdout, g.stderr, opts.json)
	start := time.Now()
	res, err := footage.RestoreFrom(ctx, set, serverID, footage.RestoreOptions{
		Camera: opts.camera, Streams: streams, Since: since, Until: until,
		Target: opts.target, Parallel: opts.parallel, Progress: out.progress,
	})
	out.done()
	if err != nil && len(set) == 1 {
		// With several, the error names the storage it is about.
		err = fmt.Errorf("%s: %w", set[0].Name, err)
	}
	if err != nil {
		return err
	}
	took := time.Since(start)
	if opts.json {
		return json.NewEncoder(g.stdout).Encode(map[string]any{
			"type": "result", "chunks": res.Chunks, "restored": res.Restored, "already_there": res.Skipped,
			"bytes": res.Bytes, "from": res.From, "to": res.To, "target": opts.target, "seconds": took.Seconds(),
		})
	}
	_, err = fmt.Fprintf(g.stdout, "Restored %d chunks (%s) of camera %s into %s in %s, %d already there\n  footage from %s to %s\n",
		res.Restored, bytes(res.Bytes), opts.camera, opts.target, duration(took), res.Skipped,
		res.From.Local().Format(time.DateTime), res.To.Local().Format(time.DateTime))
	return err
}

// timeLayouts are the forms --since and --until take besides RFC 3339, in local time.
var timeLayouts = []string{"2006-01-02 15:04", "2006-01-02 15:04:05"}

func parseTime(flag, v string) (time.Time, error) { return parseTimeIn(flag, v, time.Local) }

// parseTimeIn is parseTime reading local times in loc.
func parseTimeIn(flag, v string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	for _, layout := range timeLayouts {
		if t, err := time.ParseInLocation(layout, v, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, usageError{fmt.Errorf("%s %q: give RFC 3339 (2026-11-22T04:00:00Z) or local time (2026-11-22 04:00[:05])", flag, v)}
}
