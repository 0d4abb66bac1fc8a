package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-backup/vigil/internal/schedule"
)

type scheduleNextOptions struct {
	spec  string
	count int
	tz    string
	after string
	json  bool
}

func newScheduleCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schedule",
		Short: "Check schedules",
	}
	var opts scheduleNextOptions
	next := &cobra.Command{
		Use:   `next --spec "weekly sun 04:00" [--count N] [--tz ZONE]`,
		Short: "Print the next runs of a schedule",
		Long: `Prints when a dataset schedule runs next, in the server's local time zone (or --tz),
so that it can be checked before it is saved. Schedules:

  daily 04:00
  weekly sun 04:00         (mon, tue, ... or full day names)
  monthly 31 04:00         (29-31 mean the last day in shorter months)

A time the clocks skip on a spring-forward night runs when they jump; a time they show
twice on a fall-back night runs once, the first time.`,
		Args: argsUsage(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runScheduleNext(g, opts)
		},
	}
	f := next.Flags()
	f.StringVar(&opts.spec, "spec", "", `the schedule, e.g. "weekly sun 04:00"`)
	f.IntVar(&opts.count, "count", 5, "how many runs to print (1-1000)")
	f.StringVar(&opts.tz, "tz", "", "time zone, e.g. Europe/Berlin (default: local)")
	f.StringVar(&opts.after, "after", "", "list the runs after this time (RFC 3339 or local time; default: now)")
	f.BoolVar(&opts.json, "json", false, "print JSON")
	cmd.AddCommand(next)
	return cmd
}

func runScheduleNext(g *globalOptions, opts scheduleNextOptions) error {
	if opts.spec == "" {
		return usageError{errors.New(`schedule next needs --spec, e.g. --spec "weekly sun 04:00"`)}
	}
	if opts.count < 1 || opts.count > 1000 {
		return usageError{fmt.Errorf("--count %d: give 1 to 1000", opts.count)}
	}
	loc := time.Local
	if opts.tz != "" {
		var err error
		if loc, err = time.LoadLocation(opts.tz); err != nil {
			return usageError{fmt.Errorf("--tz %q: not a time zone (e.g. Europe/Berlin)", opts.tz)}
		}
	}
	f, err := schedule.ParseSpec(opts.spec, loc)
	if err != nil {
		return usageError{err}
	}
	after := time.Now()
	if opts.after != "" {
		if after, err = parseTimeIn("--after", opts.after, loc); err != nil {
			return err
		}
	}
	runs := make([]time.Time, 0, opts.count)
	for t := after; len(runs) < opts.count; {
		t = f.Next(t)
		if t.IsZero() {
			break
		}
		runs = append(runs, t.In(loc))
	}
	if opts.json {
		return json.NewEncoder(g.stdout).Encode(map[string]any{"schedule": f.String(), "time_zone": loc.String(), "runs": runs})
	}
	fmt.Fprintf(g.stdout, "%s (%s):\n", f, loc)
	for _, t := range runs {
		fmt.Fprintf(g.stdout, "  %s\n", t.Format("Mon 2006-01-02 15:04 MST"))
	}
	return nil
}
