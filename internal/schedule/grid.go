package schedule

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-backup/vigil/internal/rate"
)

// Rates in a Grid, in bytes per second; any positive value is a limit.
const (
	// Off means no backup may run in that hour.
	Off int64 = 0
	// Unlimited means backups run at full speed.
	Unlimited int64 = -1
)

// Grid is a weekly bandwidth timetable: a rate for each hour of each day of the week, by
// the clock in its time zone. Grids are compared with ==.
//
// The zero Grid is unlimited in every hour, in UTC.
type Grid struct {
	// cells are indexed by time.Weekday and hour, and hold 0 for Unlimited and -1 for
	// Off, so that the zero Grid imposes no limit.
	cells [7][24]int64
	loc   *time.Location
}

func encodeRate(rate int64) int64 {
	switch {
	case rate == Off:
		return -1
	case rate < 0:
		return 0
	}
	return rate
}

func decodeRate(cell int64) int64 {
	switch cell {
	case 0:
		return Unlimited
	case -1:
		return Off
	}
	return cell
}

// FixedGrid returns a grid with the same rate in every hour, in UTC. Like
// rate.Parse and throttle.Limit, it reads a rate of 0 or less as unlimited: a
// grid that is off all week is never what a fixed limit means.
func FixedGrid(rate int64) Grid {
	var g Grid
	if rate > 0 {
		for d := range g.cells {
			for h := range g.cells[d] {
				g.cells[d][h] = rate
			}
		}
	}
	g.loc = time.UTC
	return g
}

// ParseGrid parses a bandwidth timetable in loc (nil means UTC). Each line (or each part
// between semicolons) is days, hours and a rate:
//
//	Mon-Fri 08-18 20Mbit
//	Mon-Fri 18-08 unlimited
//	Sat,Sun 00-24 unlimited
//	Sun 02-04 off
//
// Days are written as for ParseWindow. Hours are HH-HH (or HH:00-HH:00) in whole hours;
// an end at or before the start crosses midnight and belongs to the day it starts on, and
// equal ends mean 24 hours. The rate is "unlimited", "off" (no backup in those hours) or
// a limit in a form rate.Parse reads. A 0 rate is refused because config reads
// it as unlimited while here it could mean off.
//
// Later lines override earlier ones; hours no line covers are unlimited, so an empty text
// is unlimited all week. Blank lines and text after # are ignored.
func ParseGrid(s string, loc *time.Location) (Grid, error) {
	g := Grid{loc: orUTC(loc)}
	for n, line := range strings.Split(strings.ReplaceAll(s, ";", "\n"), "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if err := g.apply(line); err != nil {
			return Grid{}, fmt.Errorf("grid line %d %q: %w", n+1, line, err)
		}
	}
	return g, nil
}

// apply sets the hours one line covers.
func (g *Grid) apply(line string) error {
	daysText, rest := splitSpec(strings.ReplaceAll(line, "–", "-"))
	if daysText == "" {
		return errors.New("missing days before the hours (e.g. Mon-Fri 08-18 20Mbit)")
	}
	days, err := parseDays(daysText)
	if err != nil {
		return err
	}
	if len(rest) == 0 {
		return errors.New("missing hours after the days (e.g. 08-18 or 00-24)")
	}
	start, length, err := parseHours(rest[0])
	if err != nil {
		return err
	}
	if len(rest) == 1 {
		return errors.New("missing rate after the hours (e.g. 20Mbit, unlimited or off)")
	}
	cell, err := parseCell(strings.Join(rest[1:], " "))
	if err != nil {
		return err
	}
	for d := range 7 {
		if days&(1<<d) == 0 {
			continue
		}
		for h := start; h < start+length; h++ {
			g.cells[(d+h/24)%7][h%24] = cell
		}
	}
	return nil
}

// parseHours parses HH-HH into a start hour and a length in hours (1-24).
func parseHours(s string) (start, length int, err error) {
	from, to, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, fmt.Errorf("%q is not a range of hours (use HH-HH, e.g. 08-18)", s)
	}
	if start, err = parseHour(from); err != nil {
		return 0, 0, err
	}
	end, err := parseHour(to)
	if err != nil {
		return 0, 0, err
	}
	if start == 24 {
		return 0, 0, errors.New("hours cannot start at 24; write 00 and the next day")
	}
	length = (end - start + 24) % 24
	if length == 0 {
		length = 24
	}
	return start, length, nil
}

func parseHour(s string) (int, error) {
	h, m, hasMinutes := strings.Cut(s, ":")
	if len(h) < 1 || len(h) > 2 || !isDigits(h) || hasMinutes && (len(m) != 2 || !isDigits(m)) {
		return 0, fmt.Errorf("%q is not an hour (use 00-24)", s)
	}
	if hasMinutes && m != "00" {
		return 0, fmt.Errorf("%q: the grid changes only on the hour", s)
	}
	hour, _ := strconv.Atoi(h)
	if hour > 24 {
		return 0, fmt.Errorf("hour %d is out of range (00-24)", hour)
	}
	return hour, nil
}

func parseCell(s string) (int64, error) {
	switch strings.ToLower(s) {
	case "unlimited":
		return encodeRate(Unlimited), nil
	case "off":
		return encodeRate(Off), nil
	}
	rate, err := rate.Parse(s)
	if err != nil {
		return 0, err
	}
	if rate == 0 {
		return 0, fmt.Errorf("rate %q is ambiguous: write off for no backup or unlimited for no limit", s)
	}
	return rate, nil
}

// Location returns the time zone the grid's hours are read in.
func (g Grid) Location() *time.Location { return orUTC(g.loc) }

// At returns the rate at t: bytes per second, Off or Unlimited.
func (g Grid) At(t time.Time) int64 {
	c := t.In(g.Location())
	return decodeRate(g.cells[c.Weekday()][c.Hour()])
}

// NextChange returns the first instant after t at which At differs from At(t), or the zero
// Time if the rate is the same all week. A job sets its limit to At(now) and looks again at
// NextChange(now).
func (g Grid) NextChange(t time.Time) time.Time {
	if g.uniform() {
		return time.Time{}
	}
	loc := g.Location()
	rate := g.At(t)
	cur := t.In(loc)
	// Every rate in the grid comes round within a week, or two when DST skips the
	// hour that holds it.
	limit := t.AddDate(0, 0, 15)
	for cur.Before(limit) {
		cur = nextHour(cur)
		if g.At(cur) != rate {
			return cur
		}
	}
	return time.Time{}
}

// nextHour returns the first instant after t at which the clock's hour changes: the next
// full hour of the clock, or an earlier change of offset.
func nextHour(t time.Time) time.Time {
	_, off := t.Zone()
	wall := t.Unix() + int64(off)
	next := time.Unix((floorDiv(wall, 3600)+1)*3600-int64(off), 0).In(t.Location())
	if _, end := t.ZoneBounds(); !end.IsZero() && end.Before(next) {
		return end
	}
	return next
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func (g Grid) uniform() bool {
	first := g.cells[0][0]
	for d := range g.cells {
		for _, c := range g.cells[d] {
			if c != first {
				return false
			}
		}
	}
	return true
}

// String returns the grid in the form ParseGrid reads, one line per run of hours that is
// not unlimited, Monday first; ParseGrid(g.String(), loc) returns g.
func (g Grid) String() string {
	type run struct {
		start, end int
		cell       int64
	}
	days := map[run]uint8{}
	var order []run
	for _, d := range weekOrder {
		row := g.cells[d]
		for h := 0; h < 24; {
			e := h + 1
			for e < 24 && row[e] == row[h] {
				e++
			}
			if row[h] != 0 {
				r := run{h, e, row[h]}
				if _, seen := days[r]; !seen {
					order = append(order, r)
				}
				days[r] |= 1 << d
			}
			h = e
		}
	}
	if len(order) == 0 {
		return "daily 00-24 unlimited"
	}
	lines := make([]string, len(order))
	for i, r := range order {
		lines[i] = fmt.Sprintf("%s %02d-%02d %s", formatDays(days[r]), r.start, r.end, formatCell(r.cell))
	}
	return strings.Join(lines, "\n")
}

func formatCell(cell int64) string {
	switch rate := decodeRate(cell); {
	case rate == Unlimited:
		return "unlimited"
	case rate == Off:
		return "off"
	case rate%125_000_000 == 0:
		return strconv.FormatInt(rate/125_000_000, 10) + "Gbit"
	case rate%125_000 == 0:
		return strconv.FormatInt(rate/125_000, 10) + "Mbit"
	case rate%(1<<20) == 0:
		return strconv.FormatInt(rate>>20, 10) + "MiB"
	case rate%125 == 0:
		return strconv.FormatInt(rate/125, 10) + "kbit"
	case rate%(1<<10) == 0:
		return strconv.FormatInt(rate>>10, 10) + "KiB"
	default:
		return strconv.FormatInt(rate, 10) + "B"
	}
}
