package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-backup/vigil/internal/footage"
	"github.com/vigil-backup/vigil/internal/footage/layout"
	"github.com/vigil-backup/vigil/internal/rate"
	"github.com/vigil-backup/vigil/internal/storage"
)

// addRetentionCommands adds retention and evidence locks to the footage command.
func addRetentionCommands(footageCmd *cobra.Command, g *globalOptions) {
	footageCmd.AddCommand(newFootagePruneCommand(g), newFootageLockCommand(g))
}

type footagePruneOptions struct {
	storageOptions
	to        string
	serverID  string
	maxAge    string
	keepFree  []string
	archive   string
	layout    string
	timezone  string
	elsewhere []string
	dryRun    bool
	parallel  int
	json      bool
}

func newFootagePruneCommand(g *globalOptions) *cobra.Command {
	var opts footagePruneOptions
	cmd := &cobra.Command{
		Use:   "prune --to URL|NAME [--max-age 30d] [--keep-free 10%|500GB] [--dry-run]",
		Short: "Remove old footage from a backup storage, oldest first, never what is locked",
		Long: `Removes a server's footage from a backup storage as a recorder does from its disks:
the chunks older than --max-age and, oldest first across all cameras, as many as it takes
to keep --keep-free free (a percentage of the storage, or a size such as 500GB; give both
to keep the larger). Footage under an evidence lock (vigil footage lock) is never removed.

With --only-if-in-archive, a chunk goes only while the recorder's archive still has it;
with --only-if-on, only while another backup storage has it, checked against that
storage's index and hash. Given both, every one of them must have it.

The next backups do not copy the removed footage back from the recorder. "Complete until"
stays as it is; footage status shows from when footage is retained.

The exit code is 1 when the free space goal cannot be met, after saying why (locks, or
chunks found nowhere else); a storage failure has its own code (see vigil storage test).`,
		Args: argsUsage(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runFootagePrune(cmd.Context(), g, opts)
		},
	}
	opts.addFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&opts.to, "to", "", "the backup storage (URL or name in the settings)")
	f.StringVar(&opts.serverID, "server-id", "", "whose footage (default: this server's id)")
	f.StringVar(&opts.maxAge, "max-age", "", "remove footage older than this: days (30d) or hours and minutes (36h, 90m)")
	f.StringArrayVar(&opts.keepFree, "keep-free", nil, "keep this much of the storage free: a percentage (10%) or a size (500GB, 2TiB); repeat for both")
	f.StringVar(&opts.archive, "only-if-in-archive", "", "remove a chunk only while the recorder's archive folder still has it")
	f.StringVar(&opts.layout, "layout", "nx", "the archive's layout, with --only-if-in-archive: nx, frigate or a pattern")
	f.StringVar(&opts.timezone, "timezone", "Local", "the recording server's time zone, with --only-if-in-archive")
	f.StringArrayVar(&opts.elsewhere, "only-if-on", nil, "remove a chunk only while this other backup storage has it (URL or name in the settings); repeat for more")
	f.BoolVar(&opts.dryRun, "dry-run", false, "remove nothing: show what would be removed")
	f.IntVar(&opts.parallel, "parallel", 4, "chunks removed at once")
	f.BoolVar(&opts.json, "json", false, "print progress and the result as JSON lines")
	return cmd
}

func runFootagePrune(ctx context.Context, g *globalOptions, opts footagePruneOptions) error {
	if opts.to == "" || opts.maxAge == "" && len(opts.keepFree) == 0 {
		return usageError{errors.New("footage prune needs --to and --max-age or --keep-free")}
	}
	if opts.parallel < 1 || opts.parallel > 64 {
		return usageError{fmt.Errorf("--parallel %d: give 1 to 64", opts.parallel)}
	}
	var popts footage.PruneOptions
	if opts.maxAge != "" {
		age, err := parseAge(opts.maxAge)
		if err != nil {
			return err
		}
		popts.MaxAge = age
	}
	for _, v := range opts.keepFree {
		pct, n, err := parseKeepFree(v)
		if err != nil {
			return err
		}
		popts.KeepFreePercent, popts.KeepFreeBytes = max(popts.KeepFreePercent, pct), max(popts.KeepFreeBytes, n)
	}
	if opts.archive != "" {
		if fi, err := os.Stat(opts.archive); err != nil || !fi.IsDir() {
			return usageError{fmt.Errorf("--only-if-in-archive %s: not a folder", opts.archive)}
		}
		tz, err := time.LoadLocation(opts.timezone)
		if err != nil {
			return usageError{fmt.Errorf("--timezone %q: %v", opts.timezone, err)}
		}
		lay, err := layout.ByName(opts.layout, tz)
		if err != nil {
			return usageError{err}
		}
		popts.Elsewhere = append(popts.Elsewhere, footage.ArchivePlace(opts.archive, lay))
	}
	serverID, err := g.serverID(opts.serverID)
	if err != nil {
		return err
	}
	s, loc, err := g.openStorage(ctx, opts.to, opts.storageOptions, false)
	if err != nil {
		return err
	}
	defer s.Close()
	for _, arg := range opts.elsewhere {
		// The --user and --password-file flags are the pruned storage's: the others take
		// theirs from the settings or the environment.
		other, oloc, err := g.openStorage(ctx, arg, storageOptions{}, false)
		if err != nil {
			return fmt.Errorf("--only-if-on %s: %w", arg, err)
		}
		defer other.Close()
		popts.Elsewhere = append(popts.Elsewhere, footage.StoragePlace(oloc.String(), other, serverID))
	}
	out := newProgressPrinter(g.stdout, g.stderr, opts.json)
	popts.Storage, popts.ServerID, popts.DryRun, popts.Parallel = s, serverID, opts.dryRun, opts.parallel
	popts.Progress, popts.Log = out.progress, g.log
	start := time.Now()
	res, err := footage.Prune(ctx, popts)
	out.done()
	if err != nil {
		if res.Removed.Chunks > 0 || res.Gone > 0 {
			// What was removed before the failure is gone: the operator must hear of it.
			_ = printPruneResult(g, opts.json, loc.String(), serverID, res, time.Since(start))
		}
		return fmt.Errorf("footage prune %s: %w", loc, err)
	}
	if err := printPruneResult(g, opts.json, loc.String(), serverID, res, time.Since(start)); err != nil {
		return err
	}
	if short := res.Short(); short > 0 && !res.DryRun {
		return fmt.Errorf("footage prune %s: the free space goal of %s is not met, %s short: %s", loc, bytes(res.FreeGoal), bytes(short), shortBecause(res))
	}
	return nil
}

// parseAge reads a maximum age: days (30d), or a Go duration (36h, 90m).
func parseAge(v string) (time.Duration, error) {
	var d time.Duration
	var err error
	if days, ok := strings.CutSuffix(v, "d"); ok {
		var n int
		n, err = strconv.Atoi(days)
		d = time.Duration(n) * 24 * time.Hour
		if err == nil && n > 100*365 {
			err = errors.New("too long")
		}
	} else {
		d, err = time.ParseDuration(v)
	}
	if err != nil || d <= 0 {
		return 0, usageError{fmt.Errorf("--max-age %q: give days (30d) or hours and minutes (36h, 90m), more than 0", v)}
	}
	return d, nil
}

// parseKeepFree reads a free space goal: a percentage (10%), or a size in bytes with its
// unit (500GB, 2TiB). A rate in bits, which rate.Parse would take, is no size.
func parseKeepFree(v string) (pct float64, n int64, err error) {
	bad := usageError{fmt.Errorf("--keep-free %q: give a percentage below 100 (10%%) or a size (500GB, 2TiB)", v)}
	if p, ok := strings.CutSuffix(strings.TrimSpace(v), "%"); ok {
		pct, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || !(pct > 0 && pct < 100) {
			return 0, 0, bad
		}
		return pct, 0, nil
	}
	if !strings.HasSuffix(v, "B") {
		return 0, 0, bad
	}
	n, err = rate.Parse(v)
	if err != nil || n <= 0 {
		return 0, 0, bad
	}
	return 0, n, nil
}

// shortBecause says what keeps a free space goal from being met: the footage the prune
// had to keep, and whatever else fills the storage.
func shortBecause(res footage.PruneResult) string {
	var why []string
	if c := res.Locked; c.Chunks > 0 {
		why = append(why, fmt.Sprintf("%d chunks (%s) are under evidence locks", c.Chunks, bytes(c.Bytes)))
	}
	if c := res.NotElsewhere; c.Chunks > 0 {
		why = append(why, fmt.Sprintf("%d chunks (%s) were found nowhere else", c.Chunks, bytes(c.Bytes)))
	}
	if kept := res.Locked.Bytes + res.NotElsewhere.Bytes; kept < res.Short() {
		why = append(why, "the rest of the storage holds footage of other servers or other data")
	}
	return "every chunk that may go is gone; " + strings.Join(why, ", ")
}

type jsonSeriesPrune struct {
	Camera       string     `json:"camera"`
	Stream       string     `json:"stream"`
	Removed      int        `json:"removed"`
	Bytes        int64      `json:"bytes"`
	Locked       int        `json:"locked"`
	NotElsewhere int        `json:"not_elsewhere"`
	Left         int        `json:"left"`
	LeftBytes    int64      `json:"left_bytes"`
	OldestLeft   *time.Time `json:"oldest_left"`
	PrunedBefore *time.Time `json:"pruned_before"`
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// localTime shows a time to an operator, "-" when there is none.
func localTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.DateTime)
}

func printPruneResult(g *globalOptions, asJSON bool, loc, serverID string, res footage.PruneResult, took time.Duration) error {
	if asJSON {
		series := make([]jsonSeriesPrune, 0, len(res.Series))
		for _, sp := range res.Series {
			series = append(series, jsonSeriesPrune{
				Camera: sp.Camera, Stream: string(sp.Stream), Removed: sp.Removed.Chunks, Bytes: sp.Removed.Bytes,
				Locked: sp.Locked.Chunks, NotElsewhere: sp.NotElsewhere.Chunks, Left: sp.Left.Chunks, LeftBytes: sp.Left.Bytes,
				OldestLeft: timeOrNil(sp.OldestLeft), PrunedBefore: timeOrNil(sp.PrunedBefore),
			})
		}
		m := map[string]any{
			"type": "result", "dry_run": res.DryRun, "removed": res.Removed.Chunks, "bytes": res.Removed.Bytes,
			"gone": res.Gone, "resumed": res.Resumed, "locked": res.Locked.Chunks, "locked_bytes": res.Locked.Bytes,
			"not_elsewhere": res.NotElsewhere.Chunks, "not_elsewhere_bytes": res.NotElsewhere.Bytes,
			"series": series, "seconds": took.Seconds(),
		}
		if res.FreeGoal > 0 {
			m["free_goal"], m["free_before"], m["free_after"], m["total"], m["short"] = res.FreeGoal, res.FreeBefore, res.FreeAfter, res.Total, res.Short()
		}
		return json.NewEncoder(g.stdout).Encode(m)
	}
	w := g.stdout
	verb := "Removed"
	if res.DryRun {
		verb = "Dry run: would remove"
	}
	fmt.Fprintf(w, "%s %d chunks (%s) of server %s from %s in %s\n", verb, res.Removed.Chunks, bytes(res.Removed.Bytes), serverID, loc, duration(took))
	if res.Resumed > 0 {
		fmt.Fprintf(w, "  first finished the last %d chunks of a prune that had been stopped\n", res.Resumed)
	}
	if res.Gone > 0 {
		fmt.Fprintf(w, "  %d chunks the index listed were not there: taken out of the index\n", res.Gone)
	}
	if c := res.Locked; c.Chunks > 0 {
		fmt.Fprintf(w, "  %d chunks (%s) kept: under evidence locks\n", c.Chunks, bytes(c.Bytes))
	}
	if c := res.NotElsewhere; c.Chunks > 0 {
		fmt.Fprintf(w, "  %d chunks (%s) kept: not found in every place they must also be\n", c.Chunks, bytes(c.Bytes))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CAMERA\tSTREAM\tREMOVED\tSIZE\tLOCKED\tLEFT\tRETAINED FROM\tOLDEST LEFT")
	for _, sp := range res.Series {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%d\t%s\t%s\n", sp.Camera, sp.Stream, sp.Removed.Chunks, bytes(sp.Removed.Bytes),
			sp.Locked.Chunks, sp.Left.Chunks, localTime(sp.PrunedBefore), localTime(sp.OldestLeft))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if res.FreeGoal > 0 {
		fmt.Fprintf(w, "Free space: %s of %s, the goal %s", bytes(res.FreeAfter), bytes(res.Total), bytes(res.FreeGoal))
		if res.DryRun {
			fmt.Fprint(w, " (after the prune)")
		}
		if short := res.Short(); short > 0 {
			fmt.Fprintf(w, "; %s short: %s", bytes(short), shortBecause(res))
		}
		fmt.Fprintln(w)
	}
	return nil
}

// retainedHeader and retainedCell add a column to footage status when retention has
// removed footage of some series: from when it is kept.
func retainedHeader(sts []footage.Status) string {
	if !slices.ContainsFunc(sts, pruned) {
		return ""
	}
	return "\tRETAINED FROM"
}

func retainedCell(sts []footage.Status, st footage.Status) string {
	if !slices.ContainsFunc(sts, pruned) {
		return ""
	}
	return "\t" + localTime(st.PrunedBefore)
}

func pruned(st footage.Status) bool { return !st.PrunedBefore.IsZero() }

func newFootageLockCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lock",
		Short: "Keep footage from retention: evidence locks on a camera and a time range",
		Long: `An evidence lock keeps a camera's footage of a time range on a backup storage:
footage prune never removes a chunk that overlaps it. Locks are kept on the storage
itself, beside the footage, so that every machine that prunes it honours them.`,
	}
	cmd.AddCommand(newLockAddCommand(g), newLockLsCommand(g), newLockRmCommand(g))
	return cmd
}

// lockOptions are the flags every lock command takes.
type lockOptions struct {
	storageOptions
	to       string
	serverID string
	json     bool
}

func (o *lockOptions) addFlags(cmd *cobra.Command) {
	o.storageOptions.addFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&o.to, "to", "", "the backup storage (URL or name in the settings)")
	f.StringVar(&o.serverID, "server-id", "", "whose footage (default: this server's id)")
	f.BoolVar(&o.json, "json", false, "print JSON")
}

// open opens the storage of a lock command and returns it with its name and the server id.
func (o *lockOptions) open(ctx context.Context, g *globalOptions, command string) (*lockTarget, error) {
	if o.to == "" {
		return nil, usageError{fmt.Errorf("footage lock %s needs --to", command)}
	}
	serverID, err := g.serverID(o.serverID)
	if err != nil {
		return nil, err
	}
	s, loc, err := g.openStorage(ctx, o.to, o.storageOptions, false)
	if err != nil {
		return nil, err
	}
	return &lockTarget{Storage: s, name: loc.String(), serverID: serverID}, nil
}

type lockTarget struct {
	storage.Storage
	name, serverID string
}

type lockAddOptions struct {
	lockOptions
	camera, quality, from, until, reason, by string
}

func newLockAddCommand(g *globalOptions) *cobra.Command {
	var opts lockAddOptions
	cmd := &cobra.Command{
		Use:   "add --to URL|NAME --camera ID|* --from T --until T --reason TEXT",
		Short: "Lock a camera's footage of a time range against retention",
		Long: `Adds an evidence lock: footage prune never removes a chunk of the camera (* for every
camera) whose footage overlaps [from, until). Times are RFC 3339 or local time, as for
footage restore. The reason is required, on one line.`,
		Args: argsUsage(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLockAdd(cmd.Context(), g, opts)
		},
	}
	opts.addFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&opts.camera, "camera", "", "the camera id, or * for every camera")
	f.StringVar(&opts.quality, "quality", "both", "hi, lo or both")
	f.StringVar(&opts.from, "from", "", "start of the range")
	f.StringVar(&opts.until, "until", "", "end of the range (not included)")
	f.StringVar(&opts.reason, "reason", "", "why the footage must be kept, e.g. a case number")
	f.StringVar(&opts.by, "by", defaultLockBy(), "who sets the lock")
	return cmd
}

// defaultLockBy names who runs the command: user@host.
func defaultLockBy() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if h, err := os.Hostname(); err == nil {
		name += "@" + h
	}
	return name
}

func runLockAdd(ctx context.Context, g *globalOptions, opts lockAddOptions) error {
	if opts.camera == "" || opts.from == "" || opts.until == "" || opts.reason == "" {
		return usageError{errors.New("footage lock add needs --camera, --from, --until and --reason")}
	}
	from, err := parseTime("--from", opts.from)
	if err != nil {
		return err
	}
	until, err := parseTime("--until", opts.until)
	if err != nil {
		return err
	}
	streams, err := parseQuality(opts.quality)
	if err != nil {
		return usageError{err}
	}
	l := footage.Lock{Camera: opts.camera, From: from, To: until, Reason: opts.reason, By: opts.by}
	if len(streams) == 1 {
		l.Stream = streams[0]
	}
	t, err := opts.open(ctx, g, "add")
	if err != nil {
		return err
	}
	defer t.Close()
	l, err = footage.AddLock(ctx, t, t.serverID, l)
	if errors.Is(err, footage.ErrBadLock) {
		return usageError{err}
	}
	if err != nil {
		return fmt.Errorf("footage lock add %s: %w", t.name, err)
	}
	if opts.json {
		return json.NewEncoder(g.stdout).Encode(l)
	}
	_, err = fmt.Fprintf(g.stdout, "Locked %s on %s: lock %s\n", lockText(l), t.name, l.ID)
	return err
}

// lockText says what a lock covers, for a message.
func lockText(l footage.Lock) string {
	what := "camera " + l.Camera
	if l.Camera == footage.AllCameras {
		what = "every camera"
	}
	if l.Stream != "" {
		what += " (" + string(l.Stream) + " stream)"
	}
	return fmt.Sprintf("the footage of %s from %s to %s", what, localTime(l.From), localTime(l.To))
}

func newLockLsCommand(g *globalOptions) *cobra.Command {
	var opts lockOptions
	cmd := &cobra.Command{
		Use:   "ls --to URL|NAME",
		Short: "List the evidence locks on a storage",
		Args:  argsUsage(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLockLs(cmd.Context(), g, opts)
		},
	}
	opts.addFlags(cmd)
	return cmd
}

func runLockLs(ctx context.Context, g *globalOptions, opts lockOptions) error {
	t, err := opts.open(ctx, g, "ls")
	if err != nil {
		return err
	}
	defer t.Close()
	locks, err := footage.ReadLocks(ctx, t, t.serverID)
	if err != nil {
		return fmt.Errorf("footage lock ls %s: %w", t.name, err)
	}
	if opts.json {
		if locks == nil {
			locks = []footage.Lock{}
		}
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(locks)
	}
	if len(locks) == 0 {
		_, err := fmt.Fprintf(g.stdout, "No evidence locks of server %s on %s\n", t.serverID, t.name)
		return err
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCAMERA\tSTREAM\tFROM\tUNTIL\tCREATED\tBY\tREASON")
	for _, l := range locks {
		stream := string(l.Stream)
		if stream == "" {
			stream = "both"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.ID, l.Camera, stream, localTime(l.From), localTime(l.To), localTime(l.Created), l.By, l.Reason)
	}
	return tw.Flush()
}

func newLockRmCommand(g *globalOptions) *cobra.Command {
	var opts lockOptions
	cmd := &cobra.Command{
		Use:   "rm --to URL|NAME ID",
		Short: "Remove an evidence lock: the next prune may remove the footage it kept",
		Args:  argsUsage(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLockRm(cmd.Context(), g, opts, args[0])
		},
	}
	opts.addFlags(cmd)
	return cmd
}

func runLockRm(ctx context.Context, g *globalOptions, opts lockOptions, id string) error {
	t, err := opts.open(ctx, g, "rm")
	if err != nil {
		return err
	}
	defer t.Close()
	l, err := footage.RemoveLock(ctx, t, t.serverID, id)
	if errors.Is(err, footage.ErrNoLock) {
		return usageError{err}
	}
	if err != nil {
		return fmt.Errorf("footage lock rm %s: %w", t.name, err)
	}
	if opts.json {
		return json.NewEncoder(g.stdout).Encode(l)
	}
	// The lock is shown quoted: it may be one that was refused for what it holds.
	_, err = fmt.Fprintf(g.stdout, "Removed lock %s from %s: the footage of camera %q from %s to %s, kept for %q, may go at the next prune\n",
		l.ID, t.name, l.Camera, localTime(l.From), localTime(l.To), l.Reason)
	return err
}
