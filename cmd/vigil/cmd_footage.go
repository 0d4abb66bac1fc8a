package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-backup/vigil/internal/config"
	"github.com/vigil-backup/vigil/internal/footage"
	"github.com/vigil-backup/vigil/internal/footage/layout"
	"github.com/vigil-backup/vigil/internal/schedule"
	"github.com/vigil-backup/vigil/internal/storage"
	"github.com/vigil-backup/vigil/internal/storage/throttle"
)

func newFootageCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "footage",
		Short: "Back up camera footage and see how far the backup is",
	}
	cmd.AddCommand(newFootageBackupCommand(g), newFootageStatusCommand(g), newFootageSkipCommand(g), newFootageVerifyCommand(g), newFootageRestoreCommand(g))
	addRetentionCommands(cmd, g)
	return cmd
}

type footageBackupOptions struct {
	storageOptions
	source   string
	layout   string
	to       []string
	spread   bool
	cameras  []string
	quality  string
	serverID string
	timezone string
	parallel int
	cacheDir string
	json     bool
	window   string
	bwGrid   string
	realtime bool
	catchUp  bool
	eventOptions
	catalogOptions
}

func newFootageBackupCommand(g *globalOptions) *cobra.Command {
	var opts footageBackupOptions
	cmd := &cobra.Command{
		Use:   "backup --source DIR --layout nx|frigate|PATTERN --to URL|NAME [--to ...] [--spread]",
		Short: "Copy every closed chunk not yet backed up to each storage, oldest first",
		Long: `Copies the recorder's footage to one or more backup storages, keeping the recorder's
folder layout so that the VMS can play it from there. Chunks still being recorded are left
for a later run. Each storage keeps an index of what it holds and, per camera and stream,
the time up to which every chunk is backed up ("complete until").

Layouts: nx (Nx Witness / DW Spectrum), frigate, or a pattern such as
  {camera}/{yyyy}-{mm}-{dd}/{HH}/{start_unix}.mp4

With --spread each chunk goes to one of the storages only, instead of to each: the one
with the most free space (read again every 256 MiB or 30 s). A storage that fails is
left out for the run and its chunks go to the others. Every storage must report its
free space (S3 buckets cannot). "footage status", "verify" and "restore" take the
storages together: --to A --to B, or --from A --from B.

With --window the run copies only inside a time window, such as "Mon-Fri 01:00-05:00"
in --timezone: outside it nothing is copied; when it closes, the copies under way finish
and the rest is left for the next run. --bwlimit-grid sets one bandwidth limit for all
storages hour by hour, such as
  "Mon-Fri 08-18 20Mbit; Mon-Fri 18-08 unlimited; Sat,Sun 00-24 unlimited"
and "off" hours carry no backup traffic at all. For a storage named in the settings file,
a SIGHUP (kill -HUP) makes a run going on take the storage's bwlimit as it now is there.

With --realtime the command keeps running: it watches the archive and copies each chunk
as soon as the recorder closes it, until it is stopped (Ctrl-C, SIGTERM). It copies only
what is recorded from then on, unless --catch-up also copies the older footage in the
time the new leaves. A backup.bandwidth_insufficient event warns when new footage keeps
arriving faster than it is copied.

The exit code is 0 only when everything selected is on every storage (with --spread: on
one of them, and no storage failed), or when the window closed (or was not open) before
it was; with --realtime, when it was stopped.`,
		Args: argsUsage(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.loadDataDir(cmd)
			return runFootageBackup(cmd.Context(), g, opts)
		},
	}
	opts.addFlags(cmd)
	opts.addReportFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&opts.source, "source", "", "the recorder's archive folder")
	f.StringVar(&opts.layout, "layout", "nx", "the archive's layout: nx, frigate or a pattern")
	f.StringArrayVar(&opts.to, "to", nil, "a backup storage (URL or name in the settings); repeat for more")
	f.BoolVar(&opts.spread, "spread", false, "put each chunk on one of the storages, the one with the most free space, instead of on each")
	f.StringSliceVar(&opts.cameras, "cameras", nil, "camera ids to back up (default: all, also those added later)")
	f.StringVar(&opts.quality, "quality", "both", "hi, lo or both")
	f.StringVar(&opts.serverID, "server-id", "", "this server's id on the storages (default: server.id in the settings, the host name)")
	f.StringVar(&opts.timezone, "timezone", "Local", "the recording server's time zone, in which the archive's date folders are named")
	f.IntVar(&opts.parallel, "parallel", 4, "chunks copied at once")
	f.StringVar(&opts.cacheDir, "cache-dir", defaultCacheDir(), "where to keep the archive's folder listings between runs, so that a re-run reads only what changed, and which failures the event receivers were told (\"\" for none)")
	f.BoolVar(&opts.json, "json", false, "print progress and the result as JSON lines")
	f.StringVar(&opts.window, "window", "", `copy only inside this time window in --timezone, e.g. "Mon-Fri 01:00-05:00"`)
	f.BoolVar(&opts.realtime, "realtime", false, "keep running and copy each chunk as soon as it is closed")
	f.BoolVar(&opts.catchUp, "catch-up", false, "with --realtime: copy the footage recorded before the start too")
	f.StringVar(&opts.bwGrid, "bwlimit-grid", "", `one bandwidth limit for all storages by day and hour in --timezone, e.g. "Mon-Fri 08-18 20Mbit; Sat,Sun 00-24 unlimited" (rates: a limit, unlimited or off)`)
	return cmd
}

func runFootageBackup(ctx context.Context, g *globalOptions, opts footageBackupOptions) error {
	if opts.source == "" || len(opts.to) == 0 {
		return usageError{errors.New("footage backup needs --source and at least one --to")}
	}
	if fi, err := os.Stat(opts.source); err != nil || !fi.IsDir() {
		return usageError{fmt.Errorf("--source %s: not a folder", opts.source)}
	}
	if opts.parallel < 1 || opts.parallel > 64 {
		return usageError{fmt.Errorf("--parallel %d: give 1 to 64", opts.parallel)}
	}
	tz, err := time.LoadLocation(opts.timezone)
	if err != nil {
		return usageError{fmt.Errorf("--timezone %q: %v", opts.timezone, err)}
	}
	lay, err := layout.ByName(opts.layout, tz)
	if err != nil {
		return usageError{err}
	}
	streams, err := parseQuality(opts.quality)
	if err != nil {
		return usageError{err}
	}
	if opts.catchUp && !opts.realtime {
		return usageError{errors.New("--catch-up goes with --realtime")}
	}
	if opts.spread && len(opts.to) < 2 {
		return usageError{errors.New("--spread spreads chunks over several storages: give two --to at least")}
	}
	if opts.realtime && opts.window != "" {
		return usageError{errors.New("--realtime runs at all hours: give no --window (an \"off\" hour of --bwlimit-grid pauses it)")}
	}
	var window *schedule.Window
	if opts.window != "" {
		w, err := schedule.ParseWindow(opts.window, tz)
		if err != nil {
			return usageError{fmt.Errorf("--window: %w", err)}
		}
		window = &w
	}
	var grid *schedule.Grid
	if opts.bwGrid != "" {
		if opts.bwlimit != "" {
			return usageError{errors.New("give --bwlimit or --bwlimit-grid, not both")}
		}
		gr, err := schedule.ParseGrid(opts.bwGrid, tz)
		if err != nil {
			return usageError{fmt.Errorf("--bwlimit-grid: %w", err)}
		}
		grid = &gr
	}
	var until time.Time
	now := time.Now()
	if window != nil {
		start, end := window.Next(now)
		if !window.Open(now) {
			return notNow(g, opts.json, "outside the backup window "+window.String(), start)
		}
		until = end
	}
	if grid != nil && grid.At(now) == schedule.Off && !opts.realtime {
		// NextChange from an off hour is the first hour that is not.
		return notNow(g, opts.json, "the bandwidth grid is off in this hour", grid.NextChange(now))
	}
	serverID, err := g.serverID(opts.serverID)
	if err != nil {
		return err
	}
	sink, closeEvents, err := g.eventSink(opts.eventOptions, eventState(opts.cacheDir, opts, serverID))
	if err != nil {
		return err
	}
	defer closeEvents()
	// The grid is the site's uplink: one limit that every storage of the run shares.
	var uplink *throttle.Limit
	if grid != nil {
		uplink = throttle.NewLimit(0)
		stop := followGrid(ctx, g, *grid, uplink)
		defer stop()
	}
	var targets []footage.Target
	settings, _, err := g.settings()
	if err != nil {
		return err
	}
	// A storage named in the settings takes a new bwlimit there on SIGHUP, unless the
	// command line or the grid sets its rate.
	limits := map[string]*throttle.Limit{}
	for _, arg := range opts.to {
		named := slices.ContainsFunc(settings.Storages, func(s config.Storage) bool { return s.Name == arg })
		live := named && opts.bwlimit == "" && uplink == nil
		s, loc, up, err := g.openStorageLimited(ctx, arg, opts.storageOptions, false, live)
		if err != nil {
			return err
		}
		defer s.Close()
		if opts.spread {
			// A mistake in the command line, told before the run starts: nothing is written
			// and no event sent.
			if _, ok, err := storage.UsageOf(ctx, s); err == nil && !ok {
				return usageError{fmt.Errorf("--spread: %s does not report its free space (%s storages cannot): back up to it without --spread", loc, loc.Kind)}
			}
		}
		if uplink != nil {
			s = throttle.New(s, uplink, nil)
		}
		if live {
			limits[arg] = up
		}
		targets = append(targets, footage.Target{Name: loc.String(), Storage: s})
	}
	if len(limits) > 0 {
		stop := reloadLimitsOnHangup(ctx, g, limits)
		defer stop()
	}
	bopts := footage.BackupOptions{
		Source: opts.source, Layout: lay, ServerID: serverID, Targets: targets, Spread: opts.spread,
		Cameras: opts.cameras, Streams: streams, Parallel: opts.parallel, ScanCache: scanCachePath(opts.cacheDir, opts.source, lay),
		Until: until, Log: g.log, Events: sink,
	}
	if opts.realtime {
		record := func(res footage.Result) { g.recordFootageComplete(ctx, opts.catalogOptions, serverID, opts.to, res) }
		return spreadRefused(runRealtime(ctx, g, opts.json, record, footage.RealtimeOptions{BackupOptions: bopts, CatchUp: opts.catchUp}))
	}
	out := newProgressPrinter(g.stdout, g.stderr, opts.json)
	bopts.Progress = out.progress
	res, err := footage.Backup(ctx, bopts)
	out.done()
	g.recordFootageComplete(ctx, opts.catalogOptions, serverID, opts.to, res)
	if err != nil {
		return spreadRefused(fmt.Errorf("footage backup: %w", err))
	}
	var next time.Time
	if window != nil && res.WindowEnded {
		next, _ = window.Next(res.Finished)
	}
	if err := out.result(res, next); err != nil {
		return err
	}
	if !res.Complete() && !onlyWindowEnded(res) {
		return backupIncomplete(res)
	}
	return nil
}

// spreadRefused makes a set of storages chunks cannot be spread over a usage error: the
// command line or the settings must change.
func spreadRefused(err error) error {
	if errors.Is(err, footage.ErrCannotSpread) {
		return usageError{err}
	}
	return err
}

// recordEvery is how often a real-time run records complete-until in the catalog, at most.
const recordEvery = 10 * time.Second

// runRealtime backs up as chunks close until ctx ends, telling of each pass that copied
// something, and recording complete-until with record now and then and at the end.
func runRealtime(ctx context.Context, g *globalOptions, asJSON bool, record func(footage.Result), opts footage.RealtimeOptions) error {
	var (
		pending  *footage.Result
		recorded time.Time
	)
	defer func() {
		if pending != nil {
			record(*pending)
		}
	}()
	if !opts.CatchUp {
		g.log.Info("real-time backup copies the footage recorded from now on; complete-until stays where older footage not yet backed up holds it (see --catch-up and footage skip)")
	}
	opts.Pass = func(res footage.Result) {
		copied, n := int64(0), 0
		for _, t := range res.Targets {
			copied += t.Bytes
			n += t.Copied
		}
		if n == 0 {
			return
		}
		pending = &res
		if time.Since(recorded) >= recordEvery {
			record(res)
			pending, recorded = nil, time.Now()
		}
		if asJSON {
			m := map[string]any{"type": "pass", "time": res.Finished, "copied": n, "bytes": copied, "seconds": res.Finished.Sub(res.Started).Seconds()}
			if until, ok := systemWide(res); ok {
				m["complete_until"] = until
			}
			_ = json.NewEncoder(g.stdout).Encode(m)
			return
		}
		fmt.Fprintf(g.stdout, "%s copied %d chunks (%s)\n", res.Finished.Local().Format(time.TimeOnly), n, bytes(copied))
	}
	if err := footage.Realtime(ctx, opts); err != nil {
		return fmt.Errorf("footage backup: %w", err)
	}
	return nil
}

// systemWide is the run's complete-until for every camera: the earliest of each storage's,
// or when chunks were spread, the set's.
func systemWide(res footage.Result) (time.Time, bool) {
	if res.SetCompleteUntil != nil {
		return footage.Oldest(res.SetCompleteUntil)
	}
	var until time.Time
	for _, t := range res.Targets {
		if u, ok := footage.Oldest(t.CompleteUntil); ok && (until.IsZero() || u.Before(until)) {
			until = u
		}
	}
	return until, !until.IsZero()
}

// onlyWindowEnded reports whether all a run left out is what its window left no time for:
// the schedule working, not a failure.
func onlyWindowEnded(res footage.Result) bool {
	if !res.WindowEnded || len(res.SourceFailed) > 0 {
		return false
	}
	return !slices.ContainsFunc(res.Targets, func(t footage.TargetResult) bool { return t.Err != nil })
}

// notNow tells that a run copied nothing because its schedule does not allow it now, and
// when it does. It is no failure: a scheduler may start the run at any time.
func notNow(g *globalOptions, asJSON bool, why string, opens time.Time) error {
	if opens.IsZero() {
		// A schedule that never allows a backup is a mistake, not a wait.
		return usageError{fmt.Errorf("nothing copied: %s, and the schedule never allows a backup", why)}
	}
	if asJSON {
		return json.NewEncoder(g.stdout).Encode(map[string]any{"type": "result", "complete": false, "copied": 0, "not_now": why, "opens": opens})
	}
	_, err := fmt.Fprintf(g.stdout, "Nothing copied: %s; the next backup can start at %s.\n", why, opens.Format("Mon 2006-01-02 15:04 MST"))
	return err
}

// followGrid keeps limit at the grid's rate as the hours pass, paused through hours that
// are off, until ctx ends or the returned stop is called.
func followGrid(ctx context.Context, g *globalOptions, grid schedule.Grid, limit *throttle.Limit) (stop func()) {
	apply := func(t time.Time) {
		r := grid.At(t)
		if r == schedule.Off {
			limit.Pause()
			g.log.Info("bandwidth grid: no backup traffic in this hour", "until", grid.NextChange(t))
			return
		}
		limit.SetRate(max(r, 0)) // Unlimited is below 0, which SetRate reads as unlimited
		limit.Resume()
		if r > 0 {
			g.log.Debug("bandwidth grid: limit changed", "bytes_per_second", r)
		}
	}
	apply(time.Now())
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			next := grid.NextChange(time.Now())
			if next.IsZero() {
				return // the same rate all week
			}
			timer := time.NewTimer(time.Until(next))
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case <-timer.C:
				apply(time.Now())
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// backupIncomplete is the error of a run that left something out, with the kind of the
// first storage failure, so that the exit code says what went wrong.
func backupIncomplete(res footage.Result) error {
	var errs []error
	for _, t := range res.Targets {
		if t.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", t.Name, t.Err))
		}
	}
	if len(res.SourceFailed) > 0 {
		errs = append(errs, fmt.Errorf("%d chunks could not be read from the archive (first: %s)", len(res.SourceFailed), res.SourceFailed[0]))
	}
	return fmt.Errorf("footage backup incomplete: %w", errors.Join(errs...))
}

// defaultCacheDir is the user's cache folder for vigil, or "" (no cache) when there is none.
func defaultCacheDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "vigil")
}

// scanCachePath names the scan cache of one archive read with one layout.
func scanCachePath(dir, source string, lay footage.Layout) string {
	if dir == "" {
		return ""
	}
	abs, err := filepath.Abs(source)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256([]byte(abs + "\x00" + lay.Name()))
	return filepath.Join(dir, "footage-scan-"+hex.EncodeToString(sum[:8])+".gob")
}

func parseQuality(q string) ([]footage.Stream, error) {
	switch q {
	case "both", "":
		return nil, nil
	case "hi", "lo":
		return []footage.Stream{footage.Stream(q)}, nil
	}
	return nil, fmt.Errorf("--quality %q: use hi, lo or both", q)
}

// serverID is the id given, or the settings' (the host name by default).
func (g *globalOptions) serverID(given string) (string, error) {
	if given != "" {
		if err := storage.ValidName(given); err != nil || strings.Contains(given, "/") {
			return "", usageError{fmt.Errorf("--server-id %q: use letters, digits and -", given)}
		}
		return given, nil
	}
	settings, _, err := g.settings()
	if err != nil {
		return "", err
	}
	return settings.Server.ID, nil
}

// openStorages opens the storages command-line arguments name, as openStorage does, for
// the footage commands that read several together. closeAll closes them.
func (g *globalOptions) openStorages(ctx context.Context, args []string, opts storageOptions) (set []footage.Target, closeAll func(), err error) {
	closeAll = func() {
		for _, t := range set {
			t.Storage.Close()
		}
	}
	for _, arg := range args {
		s, loc, err := g.openStorage(ctx, arg, opts, false)
		if err != nil {
			closeAll() // those opened so far
			return nil, func() {}, err
		}
		set = append(set, footage.Target{Name: loc.String(), Storage: s})
	}
	return set, closeAll, nil
}

// progressPrinter shows a footage run's progress and result.
type progressPrinter struct {
	*liveLine
	latest footage.Progress // under liveLine.mu
}

func newProgressPrinter(stdout, stderr io.Writer, asJSON bool) *progressPrinter {
	return &progressPrinter{liveLine: newLiveLine(stdout, stderr, asJSON)}
}

func (p *progressPrinter) progress(pr footage.Progress) {
	p.liveLine.mu.Lock()
	p.latest = pr
	p.liveLine.mu.Unlock()
	p.show(pr.CopiesDone == pr.Copies, pr.BytesDone, pr.Bytes, fmt.Sprintf("%d/%d chunks", pr.CopiesDone, pr.Copies), map[string]any{
		"copies": pr.Copies, "copies_done": pr.CopiesDone, "bytes": pr.Bytes, "bytes_done": pr.BytesDone, "last": pr.Last,
	})
}

// byKey keys complete-until times by series, as "camera/stream", for JSON.
func byKey(until map[footage.Key]time.Time) map[string]time.Time {
	out := make(map[string]time.Time, len(until))
	for k, u := range until {
		out[k.String()] = u
	}
	return out
}

type jsonTarget struct {
	Storage       string               `json:"storage"`
	Copied        int                  `json:"copied"`
	Bytes         int64                `json:"bytes"`
	Skipped       int                  `json:"already_there"`
	Error         string               `json:"error,omitempty"`
	CompleteUntil map[string]time.Time `json:"complete_until"`
}

// result shows what a run did; next is when the next window opens, for a run whose window
// closed.
func (p *progressPrinter) result(res footage.Result, next time.Time) error {
	took := res.Finished.Sub(res.Started)
	p.mu.Lock()
	left, leftBytes := p.latest.Copies-p.latest.CopiesDone, p.latest.Bytes-p.latest.BytesDone
	p.mu.Unlock()
	if p.json {
		var targets []jsonTarget
		for _, t := range res.Targets {
			jt := jsonTarget{Storage: t.Name, Copied: t.Copied, Bytes: t.Bytes, Skipped: t.Skipped}
			if t.Err != nil {
				jt.Error = t.Err.Error()
			}
			jt.CompleteUntil = byKey(t.CompleteUntil)
			targets = append(targets, jt)
		}
		m := map[string]any{
			"type": "result", "complete": res.Complete(), "chunks": res.Chunks, "recording": res.Recording,
			"unmatched": len(res.Unmatched), "source_failed": res.SourceFailed, "seconds": took.Seconds(), "storages": targets,
		}
		if res.SetCompleteUntil != nil {
			// Each storage's own complete-until is of what it alone holds; the set's is
			// what counts.
			m["spread"], m["complete_until"] = true, byKey(res.SetCompleteUntil)
		}
		if res.WindowEnded {
			m["window_ended"], m["copies_left"], m["bytes_left"] = true, left, leftBytes
			if !next.IsZero() {
				m["next_window"] = next
			}
		}
		return json.NewEncoder(p.stdout).Encode(m)
	}
	w := p.stdout
	fmt.Fprintf(w, "%d closed chunks selected, %d still being recorded (left for later), in %s\n", res.Chunks, res.Recording, duration(took))
	if n := len(res.Unmatched); n > 0 {
		fmt.Fprintf(w, "%d files fit no chunk of the layout and were left alone (first: %s)\n", n, res.Unmatched[0])
	}
	for _, t := range res.Targets {
		state := "ok"
		if t.Err != nil {
			state = "FAILED: " + t.Err.Error()
		}
		fmt.Fprintf(w, "%s: copied %d chunks (%s), %d already there; %s\n", t.Name, t.Copied, bytes(t.Bytes), t.Skipped, state)
		if u, ok := footage.Oldest(t.CompleteUntil); ok && res.SetCompleteUntil == nil {
			fmt.Fprintf(w, "  complete until %s for every camera\n", u.Local().Format(time.DateTime))
		}
	}
	if res.SetCompleteUntil != nil {
		fmt.Fprintf(w, "Spread over %d storages: ", len(res.Targets))
		if u, ok := footage.Oldest(res.SetCompleteUntil); ok {
			fmt.Fprintf(w, "complete until %s for every camera\n", u.Local().Format(time.DateTime))
		} else {
			fmt.Fprintln(w, "nothing complete yet")
		}
	}
	if res.WindowEnded {
		fmt.Fprintf(w, "The backup window closed: %d chunk copies (%s) left", left, bytes(leftBytes))
		if !next.IsZero() {
			fmt.Fprintf(w, " for the next window, at %s", next.Format("Mon 2006-01-02 15:04 MST"))
		}
		fmt.Fprintln(w)
	}
	return nil
}

type footageSkipOptions struct {
	storageOptions
	to       string
	cameras  []string
	quality  string
	from     string
	yes      bool
	serverID string
}

func newFootageSkipCommand(g *globalOptions) *cobra.Command {
	var opts footageSkipOptions
	cmd := &cobra.Command{
		Use:   "skip --to URL|NAME --camera ID [--camera ID] [--from T] [--yes]",
		Short: "Start cameras' backup to a storage from a moment, leaving older footage out",
		Long: `Makes the backup of the cameras' footage to the storage start at --from (default: now):
from the next backup run on, chunks that start before it are not copied there and do not
hold "complete until" back, which is then at least --from, even where no footage reaches it.
A chunk that starts before --from is left out whole.

Run it again with an earlier --from to change your mind: the next run copies the older
footage it no longer skips.`,
		Args: argsUsage(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runFootageSkip(cmd.Context(), g, opts)
		},
	}
	opts.addFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&opts.to, "to", "", "the backup storage (URL or name in the settings)")
	f.StringArrayVar(&opts.cameras, "camera", nil, "a camera id; repeat for more")
	f.StringVar(&opts.quality, "quality", "both", "hi, lo or both")
	f.StringVar(&opts.from, "from", "", "where the backup starts: RFC 3339 or local time (default: now)")
	f.BoolVar(&opts.yes, "yes", false, "do not ask for confirmation")
	f.StringVar(&opts.serverID, "server-id", "", "whose footage (default: this server's id)")
	return cmd
}

func runFootageSkip(ctx context.Context, g *globalOptions, opts footageSkipOptions) error {
	if opts.to == "" || len(opts.cameras) == 0 {
		return usageError{errors.New("footage skip needs --to and at least one --camera")}
	}
	for _, c := range opts.cameras {
		if err := storage.ValidName(c); err != nil || strings.Contains(c, "/") {
			return usageError{fmt.Errorf("--camera %q: not a camera id", c)}
		}
	}
	streams, err := parseQuality(opts.quality)
	if err != nil {
		return usageError{err}
	}
	if streams == nil {
		streams = []footage.Stream{footage.High, footage.Low}
	}
	from := time.Now()
	if opts.from != "" {
		if from, err = parseTime("--from", opts.from); err != nil {
			return err
		}
	}
	// Footage left out is lost to the backup: nobody confirms by accident from a script.
	if !opts.yes && !stdinIsTerminal() {
		return usageError{errors.New("footage skip leaves footage out of the backup: give --yes to confirm")}
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
	what := fmt.Sprintf("Footage of cameras %s", strings.Join(opts.cameras, ", "))
	if len(streams) == 1 {
		what += fmt.Sprintf(" (%s stream)", streams[0])
	}
	what += fmt.Sprintf(" before %s will not be backed up to %s", from.Local().Format("2006-01-02 15:04:05 MST"), loc)
	if !opts.yes {
		fmt.Fprintf(g.stderr, "%s. Continue? [y/N] ", what)
		answer, _ := bufio.NewReader(os.Stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			return errors.New("footage skip: not confirmed; nothing changed")
		}
	}
	for _, c := range opts.cameras {
		for _, st := range streams {
			if err := footage.SkipBefore(ctx, s, serverID, footage.Key{Camera: c, Stream: st}, from); err != nil {
				return fmt.Errorf("footage skip %s: %w", loc, err)
			}
		}
	}
	_, err = fmt.Fprintf(g.stdout, "%s, from the next backup run on.\n", what)
	return err
}

// stdinIsTerminal reports whether someone can answer a question on stdin. The null device
// is a character device like a terminal, but nobody types into it.
func stdinIsTerminal() bool {
	fi, err := os.Stdin.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(fi, null)
}
