// Package schedule is the calendar arithmetic behind Vigil's schedules: the days and hours
// a scheduled footage backup may run (Window), the bandwidth allowed hour by hour (Grid),
// and when a dataset is backed up (Frequency).
//
// Every function is given the instant it works on and none reads the clock, so the
// callers decide what "now" is and the tests can walk across years and DST changes.
//
// Schedules are written in wall-clock time in a time zone. Where a daylight-saving
// change makes a wall-clock time ambiguous, the rules are:
//   - A time the clocks skip (02:30 on a spring-forward night) happens at the instant
//     the clocks jump, the first valid instant after it (03:00 in Europe/Berlin).
//   - A time the clocks show twice (02:30 on a fall-back night) starts things at its
//     first occurrence, and ends a Window at its last. A Window is so open at every
//     instant the clock shows a time inside it, in one piece: 01:00–03:00 on a fall-back
//     night is open for three hours, 01:00–03:00 on a spring-forward night for one, and
//     02:00–03:00 that night not at all.
//   - A Grid follows the hour shown on the clock: a skipped hour's rate never applies
//     and a repeated hour's rate applies both times.
package schedule

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

const (
	minutesPerDay = 24 * 60
	allDays       = 1<<7 - 1
)

// dayNames are in time.Weekday order; a day may be written as any prefix of its
// name of three letters or more.
var dayNames = [7]string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"}

// weekOrder lists the days the way operators read a week, Monday first.
var weekOrder = [7]time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday, time.Sunday}

const dayHint = "use Mon, Tue, Wed, Thu, Fri, Sat, Sun, ranges like Mon-Fri, lists like Sat,Sun, or daily"

// parseDays parses a set of days of the week into a bit mask indexed by time.Weekday.
// Ranges may wrap round the end of the week (Fri-Mon).
func parseDays(s string) (uint8, error) {
	s = strings.TrimSpace(strings.ReplaceAll(s, "–", "-"))
	switch strings.ToLower(s) {
	case "":
		return 0, errors.New("missing days (e.g. Mon-Fri, Sat,Sun or daily)")
	case "daily":
		return allDays, nil
	case "weekdays":
		return daysBetween(time.Monday, time.Friday), nil
	case "weekends":
		return daysBetween(time.Saturday, time.Sunday), nil
	}
	var mask uint8
	for _, tok := range strings.Split(s, ",") {
		tok = strings.TrimSpace(tok)
		if tok == "" {
			return 0, fmt.Errorf("empty day in %q", s)
		}
		from, to, isRange := strings.Cut(tok, "-")
		if !isRange {
			d, err := parseDay(tok)
			if err != nil {
				return 0, err
			}
			mask |= 1 << d
			continue
		}
		a, err := parseDay(strings.TrimSpace(from))
		if err != nil {
			return 0, err
		}
		b, err := parseDay(strings.TrimSpace(to))
		if err != nil {
			return 0, err
		}
		mask |= daysBetween(a, b)
	}
	return mask, nil
}

// daysBetween returns the days from a to b inclusive, wrapping past Saturday.
func daysBetween(a, b time.Weekday) uint8 {
	var mask uint8
	for d := a; ; d = (d + 1) % 7 {
		mask |= 1 << d
		if d == b {
			return mask
		}
	}
}

func parseDay(s string) (time.Weekday, error) {
	lower := strings.ToLower(s)
	if len(lower) >= 3 {
		for d, name := range dayNames {
			if strings.HasPrefix(name, lower) {
				return time.Weekday(d), nil
			}
		}
	}
	return 0, fmt.Errorf("unknown day %q (%s)", s, dayHint)
}

// formatDays writes a day mask in the form parseDays reads, Monday first: "daily",
// "Mon-Fri", "Sat,Sun", "Mon,Wed,Fri".
func formatDays(mask uint8) string {
	if mask&allDays == allDays {
		return "daily"
	}
	var parts []string
	for i := 0; i < 7; {
		if mask&(1<<weekOrder[i]) == 0 {
			i++
			continue
		}
		j := i
		for j+1 < 7 && mask&(1<<weekOrder[j+1]) != 0 {
			j++
		}
		first, last := shortDay(weekOrder[i]), shortDay(weekOrder[j])
		switch j - i {
		case 0:
			parts = append(parts, first)
		case 1:
			parts = append(parts, first, last)
		default:
			parts = append(parts, first+"-"+last)
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

func shortDay(d time.Weekday) string { return d.String()[:3] }

// parseClock parses "HH:MM" (or "H:MM") into minutes after midnight; 24:00 is allowed
// so that a period can end at midnight.
func parseClock(s string) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	if !ok || len(h) < 1 || len(h) > 2 || len(m) != 2 || !isDigits(h) || !isDigits(m) {
		return 0, fmt.Errorf("%q is not a time of day (use HH:MM, e.g. 01:30)", s)
	}
	hour, _ := strconv.Atoi(h)
	minute, _ := strconv.Atoi(m)
	if hour > 24 {
		return 0, fmt.Errorf("%q: hour %d is out of range (00-24)", s, hour)
	}
	if minute > 59 {
		return 0, fmt.Errorf("%q: minute %d is out of range (00-59)", s, minute)
	}
	if hour == 24 && minute != 0 {
		return 0, fmt.Errorf("%q is past 24:00", s)
	}
	return hour*60 + minute, nil
}

func formatClock(min int) string { return fmt.Sprintf("%02d:%02d", min/60, min%60) }

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// splitSpec splits "<days> <rest>" where the rest starts at the first field that
// begins with a digit or is the word "all" (as in "all day"). Days may contain spaces
// ("Mon, Wed" or "Mon - Fri"); the rest is returned as fields.
func splitSpec(s string) (days string, rest []string) {
	fields := strings.Fields(s)
	for i, f := range fields {
		if f[0] >= '0' && f[0] <= '9' || strings.EqualFold(f, "all") {
			return strings.Join(fields[:i], " "), fields[i:]
		}
	}
	return strings.Join(fields, " "), nil
}

// day is a calendar date, held as midnight UTC so that date arithmetic never meets a
// time zone.
type day = time.Time

func dateOf(t time.Time) day {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// wallSeconds is the reading of the clock in t's location, as seconds since the epoch
// of a clock that never changes offset.
func wallSeconds(t time.Time) int64 {
	_, off := t.Zone()
	return t.Unix() + int64(off)
}

// wallTime returns the instant at which clocks in loc show date d plus min minutes (min
// may pass 24:00 into the next days). A time the clocks skip resolves to the instant they
// jump; a time they show twice resolves to its first occurrence, or its last if last is set.
func wallTime(d day, min int, loc *time.Location, last bool) time.Time {
	target := d.Add(time.Duration(min) * time.Minute)
	want := target.Unix()
	y, mo, dd := target.Date()
	t := time.Date(y, mo, dd, target.Hour(), target.Minute(), 0, 0, loc)
	if w := wallSeconds(t); w != want {
		// The clocks skip the wanted time. time.Date put t on one side of the jump; the
		// jump is the edge of t's zone period on the other side.
		start, end := t.ZoneBounds()
		if w > want && !start.IsZero() {
			return start
		}
		if w < want && !end.IsZero() {
			return end
		}
		return t
	}
	_, off := t.Zone()
	start, end := t.ZoneBounds()
	if last && !end.IsZero() {
		if _, next := end.Zone(); next < off {
			c := t.Add(time.Duration(off-next) * time.Second)
			if !c.Before(end) && wallSeconds(c) == want {
				return c
			}
		}
	}
	if !last && !start.IsZero() {
		if _, prev := start.Add(-time.Nanosecond).Zone(); prev > off {
			c := t.Add(-time.Duration(prev-off) * time.Second)
			if c.Before(start) && wallSeconds(c) == want {
				return c
			}
		}
	}
	return t
}

func orUTC(loc *time.Location) *time.Location {
	if loc == nil {
		return time.UTC
	}
	return loc
}
