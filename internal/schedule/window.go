package schedule

import (
	"fmt"
	"strings"
	"time"
)

// Window is a time of day on some days of the week during which work may run, such as
// Mon-Fri 01:00-05:00, in a time zone. A window that crosses midnight (22:00-06:00)
// belongs to the day it starts on. Windows are compared with ==.
//
// The zero Window has no days and is never open.
type Window struct {
	days   uint8 // bit time.Weekday set when the window opens that day
	start  int   // minutes after midnight, 0-1439
	length int   // minutes, 1-1440
	loc    *time.Location
}

// ParseWindow parses a window in loc (nil means UTC): days, then a time range or
// "all day". Days are a name (Mon or Monday), a range (Mon-Fri, which may wrap as in
// Fri-Mon), a comma-separated list of either, or one of daily, weekdays, weekends. The
// range is HH:MM-HH:MM; an end at or before the start crosses midnight, 24:00 is
// midnight at the end of the day, and equal ends (00:00-00:00) mean 24 hours.
//
//	Mon-Fri 01:00-05:00
//	Sat,Sun 00:00-24:00
//	daily 22:00-06:00
//	Mon,Wed,Fri 13:30-14:00
func ParseWindow(s string, loc *time.Location) (Window, error) {
	w, err := parseWindow(s)
	if err != nil {
		return Window{}, fmt.Errorf("window %q: %w", s, err)
	}
	w.loc = orUTC(loc)
	return w, nil
}

func parseWindow(s string) (Window, error) {
	daysText, rest := splitSpec(strings.ReplaceAll(s, "–", "-"))
	if daysText == "" {
		return Window{}, fmt.Errorf("missing days before the time (e.g. Mon-Fri 01:00-05:00 or daily 01:00-05:00)")
	}
	days, err := parseDays(daysText)
	if err != nil {
		return Window{}, err
	}
	if len(rest) == 0 {
		return Window{}, fmt.Errorf("missing time range after the days (e.g. 01:00-05:00 or all day)")
	}
	w := Window{days: days}
	if strings.EqualFold(rest[0], "all") {
		if len(rest) != 2 || !strings.EqualFold(rest[1], "day") {
			return Window{}, fmt.Errorf("%q is not a time range (use HH:MM-HH:MM or all day)", strings.Join(rest, " "))
		}
		w.length = minutesPerDay
		return w, nil
	}
	r := strings.Join(rest, "")
	from, to, ok := strings.Cut(r, "-")
	if !ok {
		return Window{}, fmt.Errorf("%q is not a time range (use HH:MM-HH:MM, e.g. 01:00-05:00)", r)
	}
	if w.start, err = parseClock(from); err != nil {
		return Window{}, fmt.Errorf("start: %w", err)
	}
	end, err := parseClock(to)
	if err != nil {
		return Window{}, fmt.Errorf("end: %w", err)
	}
	if w.start == minutesPerDay {
		return Window{}, fmt.Errorf("start 24:00 is the next day's 00:00; write 00:00 and the next day")
	}
	w.length = (end - w.start + minutesPerDay) % minutesPerDay
	if w.length == 0 {
		w.length = minutesPerDay
	}
	return w, nil
}

// String returns the window in the form ParseWindow reads, such as "Mon-Fri 01:00-05:00";
// ParseWindow(w.String(), loc) returns w.
func (w Window) String() string {
	if w.days == 0 {
		return "never"
	}
	end := w.start + w.length
	if end != minutesPerDay {
		end %= minutesPerDay
	}
	return formatDays(w.days) + " " + formatClock(w.start) + "-" + formatClock(end)
}

// Location returns the time zone the window's times are read in.
func (w Window) Location() *time.Location { return orUTC(w.loc) }

// alwaysOpen reports whether one day's window reaches the next day's, every day.
func (w Window) alwaysOpen() bool { return w.days == allDays && w.length == minutesPerDay }

// instance returns the window that opens on date d; ok is false if none does, including
// on a spring-forward day when the clocks skip all of it.
func (w Window) instance(d day) (start, end time.Time, ok bool) {
	if w.days&(1<<d.Weekday()) == 0 {
		return time.Time{}, time.Time{}, false
	}
	loc := w.Location()
	start = wallTime(d, w.start, loc, false)
	end = wallTime(d, w.start+w.length, loc, true)
	return start, end, end.After(start)
}

// containing returns the date of the earliest window that holds t.
func (w Window) containing(t time.Time) (day, bool) {
	// A window opens at most a day and a DST shift before t's date, and a clock turned back
	// over midnight may show t a day early.
	today := dateOf(t.In(w.Location()))
	for i := -2; i <= 1; i++ {
		d := today.AddDate(0, 0, i)
		if start, end, ok := w.instance(d); ok && !t.Before(start) && t.Before(end) {
			return d, true
		}
	}
	return day{}, false
}

// Open reports whether t is inside the window.
func (w Window) Open(t time.Time) bool {
	if w.days == 0 {
		return false
	}
	_, ok := w.containing(t)
	return ok
}

// Next returns the window that contains t, or else the first one that opens after t:
// start is when it opens (at or before t when t is inside) and end when it closes, after
// start and after t. Windows on consecutive days that meet or overlap count as one, as the
// window does not close between them, so Sat,Sun all day runs from Saturday 00:00 to
// Monday 00:00.
//
// A window that is always open (every day, 24 hours) never closes: Next returns t and the
// zero Time. The zero Window never opens: Next returns two zero Times.
func (w Window) Next(t time.Time) (start, end time.Time) {
	if w.days == 0 {
		return time.Time{}, time.Time{}
	}
	if w.alwaysOpen() {
		return t, time.Time{}
	}
	d, ok := w.containing(t)
	if ok {
		start, end, _ = w.instance(d)
		// Walk back over windows that reach this one. Unless the window is always
		// open, a week holds a gap, so the walk is short.
		back := d
		for i := 0; i < 8; i++ {
			s, e, ok := w.instance(back.AddDate(0, 0, -1))
			if !ok || e.Before(start) {
				break
			}
			back, start = back.AddDate(0, 0, -1), s
		}
	} else {
		today := dateOf(t.In(w.Location()))
		for i := -2; i <= 9 && start.IsZero(); i++ {
			d = today.AddDate(0, 0, i)
			if s, e, ok := w.instance(d); ok && s.After(t) {
				start, end = s, e
			}
		}
		if start.IsZero() {
			return time.Time{}, time.Time{}
		}
	}
	for i := 0; i < 8; i++ {
		s, e, ok := w.instance(d.AddDate(0, 0, 1))
		if !ok || s.After(end) {
			break
		}
		d = d.AddDate(0, 0, 1)
		if e.After(end) {
			end = e
		}
	}
	return start, end
}
