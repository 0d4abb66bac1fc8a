package schedule

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

type kind uint8

const (
	daily kind = iota + 1
	weekly
	monthly
)

// Frequency is when a dataset is backed up: every day, once a week or once a month, at a
// time of day in a time zone. Frequencies are compared with ==.
//
// A run at a time the clocks skip happens when they jump (02:30 becomes 03:00 on a
// spring-forward night), and a run at a time they show twice happens once, the first
// time. The zero Frequency never runs.
type Frequency struct {
	kind    kind
	weekday time.Weekday // weekly
	day     int          // monthly: 1-31, clamped to the month's last day
	at      int          // minutes after midnight, 0-1439
	loc     *time.Location
}

// Daily returns a frequency of every day at hour:minute in loc (nil means UTC). It panics
// if the time is not a time of day.
func Daily(hour, minute int, loc *time.Location) Frequency {
	return Frequency{kind: daily, at: mustClock(hour, minute), loc: orUTC(loc)}
}

// Weekly returns a frequency of every week on day at hour:minute in loc (nil means UTC).
// It panics if day or the time is out of range.
func Weekly(day time.Weekday, hour, minute int, loc *time.Location) Frequency {
	if day < time.Sunday || day > time.Saturday {
		panic(fmt.Sprintf("schedule: weekday %d out of range", day))
	}
	return Frequency{kind: weekly, weekday: day, at: mustClock(hour, minute), loc: orUTC(loc)}
}

// Monthly returns a frequency of every month on day (1-31) at hour:minute in loc (nil
// means UTC). A day past the end of a shorter month means its last day: 31 is the last
// day of every month, 30 is 28 or 29 February. It panics if day or the time is out of
// range.
func Monthly(day, hour, minute int, loc *time.Location) Frequency {
	if day < 1 || day > 31 {
		panic(fmt.Sprintf("schedule: day of month %d out of range", day))
	}
	return Frequency{kind: monthly, day: day, at: mustClock(hour, minute), loc: orUTC(loc)}
}

// DefaultFrequency is the frequency of a new installation: every Sunday at 04:00 in loc.
func DefaultFrequency(loc *time.Location) Frequency {
	return Weekly(time.Sunday, 4, 0, loc)
}

func mustClock(hour, minute int) int {
	if hour < 0 || hour > 23 || minute < 0 || minute > 59 {
		panic(fmt.Sprintf("schedule: time %d:%02d out of range", hour, minute))
	}
	return hour*60 + minute
}

// ParseFrequency parses the settings of a dataset's frequency: kind is daily, weekly or
// monthly; day is empty for daily, a day of the week (Sun or Sunday) for weekly and a day
// of the month (1-31) for monthly; at is the start time, HH:MM in 24-hour form. loc nil
// means UTC.
func ParseFrequency(kind, day, at string, loc *time.Location) (Frequency, error) {
	f, err := parseFrequency(kind, strings.TrimSpace(day), strings.TrimSpace(at))
	if err != nil {
		return Frequency{}, fmt.Errorf("frequency: %w", err)
	}
	f.loc = orUTC(loc)
	return f, nil
}

func parseFrequency(k, day, at string) (Frequency, error) {
	var f Frequency
	switch strings.ToLower(strings.TrimSpace(k)) {
	case "daily":
		f.kind = daily
		if day != "" {
			return Frequency{}, fmt.Errorf("daily runs every day; leave the day (%q) empty", day)
		}
	case "weekly":
		f.kind = weekly
		if day == "" {
			return Frequency{}, errors.New("weekly needs a day of the week (e.g. Sunday)")
		}
		d, err := parseDay(day)
		if err != nil {
			return Frequency{}, err
		}
		f.weekday = d
	case "monthly":
		f.kind = monthly
		if day == "" {
			return Frequency{}, errors.New("monthly needs a day of the month (1-31)")
		}
		n, err := strconv.Atoi(day)
		if err != nil || n < 1 || n > 31 {
			return Frequency{}, fmt.Errorf("day of month %q is not 1-31 (31 means the last day of every month)", day)
		}
		f.day = n
	case "now":
		return Frequency{}, errors.New(`"now" is not a schedule: start the backup on demand`)
	case "":
		return Frequency{}, errors.New("missing kind (daily, weekly or monthly)")
	default:
		return Frequency{}, fmt.Errorf("unknown kind %q (use daily, weekly or monthly)", k)
	}
	if at == "" {
		return Frequency{}, errors.New("missing start time (HH:MM, e.g. 04:00)")
	}
	m, err := parseClock(at)
	if err != nil {
		return Frequency{}, fmt.Errorf("start time: %w", err)
	}
	if m == minutesPerDay {
		return Frequency{}, errors.New("start time 24:00 is the next day's 00:00")
	}
	f.at = m
	return f, nil
}

// String describes the frequency, such as "weekly Sunday 04:00" or "monthly 31 04:00".
func (f Frequency) String() string {
	at := formatClock(f.at)
	switch f.kind {
	case daily:
		return "daily " + at
	case weekly:
		return "weekly " + f.weekday.String() + " " + at
	case monthly:
		return "monthly " + strconv.Itoa(f.day) + " " + at
	}
	return "never"
}

// Location returns the time zone the frequency's times are read in.
func (f Frequency) Location() *time.Location { return orUTC(f.loc) }

// runsOn reports whether a run is due on date d.
func (f Frequency) runsOn(d day) bool {
	switch f.kind {
	case daily:
		return true
	case weekly:
		return d.Weekday() == f.weekday
	case monthly:
		last := time.Date(d.Year(), d.Month()+1, 0, 0, 0, 0, 0, time.UTC).Day()
		return d.Day() == min(f.day, last)
	}
	return false
}

// Next returns the first run strictly after after. It returns the zero Time for the zero
// Frequency, and for an after so near the end of time that no run follows.
func (f Frequency) Next(after time.Time) time.Time {
	if f.kind == 0 {
		return time.Time{}
	}
	loc := f.Location()
	// Start a little before after's date: a run skipped past by a DST jump at midnight
	// lands on the next date.
	d := dateOf(after.In(loc)).AddDate(0, 0, -2)
	for range 40 {
		if f.runsOn(d) {
			if t := wallTime(d, f.at, loc, false); t.After(after) {
				return t
			}
		}
		d = d.AddDate(0, 0, 1)
	}
	return time.Time{}
}

// Missed reports whether a run was due after last and at or before now, so that a server
// that was off at that time runs the backup once when it starts. last is the time of the
// last run; a zero last (never run) and a last after now report false.
func (f Frequency) Missed(last, now time.Time) bool {
	if f.kind == 0 || last.IsZero() || !last.Before(now) {
		return false
	}
	return !f.Next(last).After(now)
}

// ParseSpec parses a frequency written on one line, as operators type it: "daily 04:00",
// "weekly sun 04:00" or "monthly 31 04:00". loc nil means UTC.
func ParseSpec(spec string, loc *time.Location) (Frequency, error) {
	const how = `write it as "daily 04:00", "weekly sun 04:00" or "monthly 31 04:00"`
	fields := strings.Fields(spec)
	if len(fields) == 1 && strings.EqualFold(fields[0], "now") {
		_, err := ParseFrequency("now", "", "", loc)
		return Frequency{}, fmt.Errorf("schedule %q: %w", spec, err)
	}
	var kind, day, at string
	switch {
	case len(fields) == 2 && strings.EqualFold(fields[0], "daily"):
		kind, at = fields[0], fields[1]
	case len(fields) == 3:
		kind, day, at = fields[0], fields[1], fields[2]
	default:
		return Frequency{}, fmt.Errorf("schedule %q: %s", spec, how)
	}
	f, err := ParseFrequency(kind, day, at, loc)
	if err != nil {
		return Frequency{}, fmt.Errorf("schedule %q: %w", spec, err)
	}
	return f, nil
}
