package schedule

import (
	"strings"
	"testing"
	"time"
)

func TestParseWindow(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"Mon-Fri 01:00-05:00", "Mon-Fri 01:00-05:00"},
		{"Sat,Sun 00:00-24:00", "Sat,Sun 00:00-24:00"},
		{"daily 22:00-06:00", "daily 22:00-06:00"},
		{"Mon,Wed,Fri 13:30-14:00", "Mon,Wed,Fri 13:30-14:00"},
		{"  mon - fri   1:00 - 5:00 ", "Mon-Fri 01:00-05:00"},
		{"Mon–Fri 01:00–05:00", "Mon-Fri 01:00-05:00"},
		{"Monday, Wednesday 10:00-11:00", "Mon,Wed 10:00-11:00"},
		{"Sat,Sun all day", "Sat,Sun 00:00-24:00"},
		{"Sat,Sun ALL DAY", "Sat,Sun 00:00-24:00"},
		{"Mon 00:00-00:00", "Mon 00:00-24:00"},
		{"Mon 05:00-05:00", "Mon 05:00-05:00"},
		{"Tue-Thu 22:00-00:00", "Tue-Thu 22:00-24:00"},
		{"Tue-Thu 22:00-24:00", "Tue-Thu 22:00-24:00"},
		{"Fri-Mon 23:59-00:01", "Mon,Fri-Sun 23:59-00:01"},
		{"Sun-Sat 05:00-05:00", "daily 05:00-05:00"},
		{"weekdays 01:00-05:00", "Mon-Fri 01:00-05:00"},
		{"weekends 00:00-24:00", "Sat,Sun 00:00-24:00"},
	}
	loc := mustLoc(t, "Europe/Berlin")
	for _, tt := range tests {
		w, err := ParseWindow(tt.in, loc)
		if err != nil {
			t.Fatalf("ParseWindow(%q): %v", tt.in, err)
		}
		if got := w.String(); got != tt.want {
			t.Fatalf("ParseWindow(%q).String() = %q, want %q", tt.in, got, tt.want)
		}
		again, err := ParseWindow(w.String(), loc)
		if err != nil || again != w {
			t.Fatalf("ParseWindow(%q) = %v, %v; want the window back", w.String(), again, err)
		}
	}
}

func TestParseWindowErrors(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"Mox 01:00-05:00", `window "Mox 01:00-05:00": unknown day "Mox" (use Mon, Tue, Wed, Thu, Fri, Sat, Sun, ranges like Mon-Fri, lists like Sat,Sun, or daily)`},
		{"", "missing days"},
		{"01:00-05:00", "missing days before the time"},
		{"Mon-Fri", "missing time range after the days"},
		{"Mo 01:00-05:00", `unknown day "Mo"`},
		{"Mon-Fri-Sat 01:00-05:00", `unknown day "Fri-Sat"`},
		{"Mon,,Fri 01:00-05:00", `empty day in "Mon,,Fri"`},
		{"Mon-Fri 25:00-05:00", `start: "25:00": hour 25 is out of range (00-24)`},
		{"Mon-Fri 01:60-05:00", `start: "01:60": minute 60 is out of range (00-59)`},
		{"Mon-Fri 01:00-24:30", `end: "24:30" is past 24:00`},
		{"Mon-Fri 24:00-05:00", "start 24:00 is the next day's 00:00"},
		{"Mon-Fri 01:00", `"01:00" is not a time range`},
		{"Mon-Fri 1-5", `start: "1" is not a time of day`},
		{"Mon-Fri 01:00-05:00-06:00", `end: "05:00-06:00" is not a time of day`},
		{"Mon-Fri 1:0-5:00", `start: "1:0" is not a time of day`},
		{"Mon-Fri all night", `"all night" is not a time range`},
		{"Mon-Fri all day long", `"all day long" is not a time range`},
	}
	for _, tt := range tests {
		w, err := ParseWindow(tt.in, time.UTC)
		if err == nil {
			t.Fatalf("ParseWindow(%q) = %v, want an error containing %q", tt.in, w, tt.want)
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Fatalf("ParseWindow(%q) error = %q, want it to contain %q", tt.in, err, tt.want)
		}
	}
}

func TestWindowOpenNext(t *testing.T) {
	// 5 January 2026 is a Monday.
	tests := []struct {
		zone, window string
		t            string
		open         bool
		start, end   string
	}{
		{"Europe/Berlin", "Mon-Fri 01:00-05:00", "2026-01-05T00:59:00+01:00", false, "2026-01-05T01:00:00+01:00", "2026-01-05T05:00:00+01:00"},
		{"Europe/Berlin", "Mon-Fri 01:00-05:00", "2026-01-05T01:00:00+01:00", true, "2026-01-05T01:00:00+01:00", "2026-01-05T05:00:00+01:00"},
		{"Europe/Berlin", "Mon-Fri 01:00-05:00", "2026-01-05T04:59:59+01:00", true, "2026-01-05T01:00:00+01:00", "2026-01-05T05:00:00+01:00"},
		{"Europe/Berlin", "Mon-Fri 01:00-05:00", "2026-01-05T05:00:00+01:00", false, "2026-01-06T01:00:00+01:00", "2026-01-06T05:00:00+01:00"},
		// Friday after the window: the next one is on Monday.
		{"Europe/Berlin", "Mon-Fri 01:00-05:00", "2026-01-09T06:00:00+01:00", false, "2026-01-12T01:00:00+01:00", "2026-01-12T05:00:00+01:00"},
		{"Europe/Berlin", "Mon-Fri 01:00-05:00", "2026-01-10T03:00:00+01:00", false, "2026-01-12T01:00:00+01:00", "2026-01-12T05:00:00+01:00"},
		// The same instant seen from another zone.
		{"Europe/Berlin", "Mon-Fri 01:00-05:00", "2026-01-05T00:30:00Z", true, "2026-01-05T01:00:00+01:00", "2026-01-05T05:00:00+01:00"},
		// Crossing midnight: the window belongs to the day it starts on.
		{"Europe/Berlin", "daily 22:00-06:00", "2026-01-05T23:00:00+01:00", true, "2026-01-05T22:00:00+01:00", "2026-01-06T06:00:00+01:00"},
		{"Europe/Berlin", "daily 22:00-06:00", "2026-01-06T05:59:00+01:00", true, "2026-01-05T22:00:00+01:00", "2026-01-06T06:00:00+01:00"},
		{"Europe/Berlin", "daily 22:00-06:00", "2026-01-06T06:00:00+01:00", false, "2026-01-06T22:00:00+01:00", "2026-01-07T06:00:00+01:00"},
		{"Europe/Berlin", "daily 22:00-06:00", "2026-12-31T23:00:00+01:00", true, "2026-12-31T22:00:00+01:00", "2027-01-01T06:00:00+01:00"},
		{"Europe/Berlin", "Fri 22:00-06:00", "2026-01-10T03:00:00+01:00", true, "2026-01-09T22:00:00+01:00", "2026-01-10T06:00:00+01:00"},
		{"Europe/Berlin", "Fri 22:00-06:00", "2026-01-11T03:00:00+01:00", false, "2026-01-16T22:00:00+01:00", "2026-01-17T06:00:00+01:00"},
		// Sunday night into Monday crosses the end of the week.
		{"Europe/Berlin", "Sun 22:00-02:00", "2026-01-12T01:00:00+01:00", true, "2026-01-11T22:00:00+01:00", "2026-01-12T02:00:00+01:00"},
		{"Europe/Berlin", "Sun 22:00-02:00", "2026-01-12T02:00:00+01:00", false, "2026-01-18T22:00:00+01:00", "2026-01-19T02:00:00+01:00"},
		// Days that meet make one window.
		{"Europe/Berlin", "Sat,Sun all day", "2026-01-10T10:00:00+01:00", true, "2026-01-10T00:00:00+01:00", "2026-01-12T00:00:00+01:00"},
		{"Europe/Berlin", "Sat,Sun all day", "2026-01-11T23:59:00+01:00", true, "2026-01-10T00:00:00+01:00", "2026-01-12T00:00:00+01:00"},
		{"Europe/Berlin", "Sat,Sun all day", "2026-01-12T00:00:00+01:00", false, "2026-01-17T00:00:00+01:00", "2026-01-19T00:00:00+01:00"},
		{"Europe/Berlin", "Mon-Sat 00:00-24:00", "2026-01-07T12:00:00+01:00", true, "2026-01-05T00:00:00+01:00", "2026-01-11T00:00:00+01:00"},
		{"Europe/Berlin", "Mon,Tue 12:00-12:00", "2026-01-06T13:00:00+01:00", true, "2026-01-05T12:00:00+01:00", "2026-01-07T12:00:00+01:00"},
		{"Europe/Berlin", "Mon,Wed,Fri 13:30-14:00", "2026-01-05T14:00:00+01:00", false, "2026-01-07T13:30:00+01:00", "2026-01-07T14:00:00+01:00"},
		// Fall back in Berlin (25 October 2026, 03:00 CEST becomes 02:00 CET): 01:00-03:00
		// lasts three hours, and an end the clocks show twice is the last of the two.
		{"Europe/Berlin", "daily 01:00-03:00", "2026-10-25T00:00:00+02:00", false, "2026-10-25T01:00:00+02:00", "2026-10-25T03:00:00+01:00"},
		{"Europe/Berlin", "daily 01:00-03:00", "2026-10-25T02:30:00+01:00", true, "2026-10-25T01:00:00+02:00", "2026-10-25T03:00:00+01:00"},
		{"Europe/Berlin", "daily 00:00-02:30", "2026-10-25T02:45:00+02:00", true, "2026-10-25T00:00:00+02:00", "2026-10-25T02:30:00+01:00"},
		{"Europe/Berlin", "daily 02:30-04:00", "2026-10-25T02:15:00+01:00", true, "2026-10-25T02:30:00+02:00", "2026-10-25T04:00:00+01:00"},
		// Spring forward in Berlin (29 March 2026, 02:00 CET becomes 03:00 CEST): a start the
		// clocks skip is when they jump, and a window wholly skipped does not open that day.
		{"Europe/Berlin", "daily 02:30-04:00", "2026-03-29T00:00:00+01:00", false, "2026-03-29T03:00:00+02:00", "2026-03-29T04:00:00+02:00"},
		{"Europe/Berlin", "daily 02:00-03:00", "2026-03-29T00:00:00+01:00", false, "2026-03-30T02:00:00+02:00", "2026-03-30T03:00:00+02:00"},
		{"Europe/Berlin", "daily 02:00-03:00", "2026-03-29T03:00:00+02:00", false, "2026-03-30T02:00:00+02:00", "2026-03-30T03:00:00+02:00"},
		{"Europe/Berlin", "daily 22:00-06:00", "2026-03-29T05:00:00+02:00", true, "2026-03-28T22:00:00+01:00", "2026-03-29T06:00:00+02:00"},
		{"Europe/Berlin", "daily 01:00-02:30", "2026-03-29T01:59:00+01:00", true, "2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00"},
		// New York (8 March and 1 November 2026).
		{"America/New_York", "daily 02:30-04:00", "2026-03-08T01:00:00-05:00", false, "2026-03-08T03:00:00-04:00", "2026-03-08T04:00:00-04:00"},
		{"America/New_York", "Sun 01:00-03:00", "2026-11-01T01:30:00-05:00", true, "2026-11-01T01:00:00-04:00", "2026-11-01T03:00:00-05:00"},
		{"America/New_York", "Sun 01:30-01:45", "2026-11-01T01:35:00-05:00", true, "2026-11-01T01:30:00-04:00", "2026-11-01T01:45:00-05:00"},
		{"America/New_York", "Sat 22:00-06:00", "2026-11-01T05:59:00-05:00", true, "2026-10-31T22:00:00-04:00", "2026-11-01T06:00:00-05:00"},
	}
	for _, tt := range tests {
		w, err := ParseWindow(tt.window, mustLoc(t, tt.zone))
		if err != nil {
			t.Fatalf("ParseWindow(%q): %v", tt.window, err)
		}
		at := instant(t, tt.t)
		if got := w.Open(at); got != tt.open {
			t.Fatalf("%s %q Open(%s) = %v, want %v", tt.zone, tt.window, tt.t, got, tt.open)
		}
		start, end := w.Next(at)
		if !start.Equal(instant(t, tt.start)) || !end.Equal(instant(t, tt.end)) {
			t.Fatalf("%s %q Next(%s) = %s, %s; want %s, %s", tt.zone, tt.window, tt.t,
				start.In(w.Location()).Format(time.RFC3339), end.In(w.Location()).Format(time.RFC3339), tt.start, tt.end)
		}
	}
}

func TestWindowDSTDuration(t *testing.T) {
	tests := []struct {
		zone, window string
		day          day
		want         time.Duration
	}{
		{"Europe/Berlin", "daily 01:00-03:00", date(2026, 10, 25), 3 * time.Hour},
		{"Europe/Berlin", "daily 01:00-03:00", date(2026, 3, 29), time.Hour},
		{"Europe/Berlin", "daily 01:00-03:00", date(2026, 3, 28), 2 * time.Hour},
		{"Europe/Berlin", "daily 00:00-24:00", date(2026, 10, 25), 25 * time.Hour},
		{"Europe/Berlin", "daily 22:00-06:00", date(2026, 3, 28), 7 * time.Hour},
		{"America/New_York", "daily 01:00-03:00", date(2026, 11, 1), 3 * time.Hour},
		{"America/New_York", "daily 01:00-03:00", date(2026, 3, 8), time.Hour},
		{"America/New_York", "daily 00:00-24:00", date(2026, 3, 8), 23 * time.Hour},
	}
	for _, tt := range tests {
		w, err := ParseWindow(tt.window, mustLoc(t, tt.zone))
		if err != nil {
			t.Fatalf("ParseWindow(%q): %v", tt.window, err)
		}
		start, end, ok := w.instance(tt.day)
		if !ok || end.Sub(start) != tt.want {
			t.Fatalf("%s %q on %s lasts %s (ok=%v), want %s", tt.zone, tt.window, tt.day.Format(time.DateOnly), end.Sub(start), ok, tt.want)
		}
	}
}

func TestWindowAlwaysOpen(t *testing.T) {
	for _, s := range []string{"daily all day", "daily 05:00-05:00", "Mon-Sun 00:00-24:00"} {
		w, err := ParseWindow(s, mustLoc(t, "Europe/Berlin"))
		if err != nil {
			t.Fatalf("ParseWindow(%q): %v", s, err)
		}
		at := instant(t, "2026-10-25T02:30:00+01:00")
		start, end := w.Next(at)
		if !w.Open(at) || !start.Equal(at) || !end.IsZero() {
			t.Fatalf("%q: Open = %v, Next = %s, %s; want open, %s and the zero time", s, w.Open(at), start, end, at)
		}
	}
}

func TestWindowZero(t *testing.T) {
	var w Window
	at := instant(t, "2026-01-05T12:00:00Z")
	if start, end := w.Next(at); w.Open(at) || !start.IsZero() || !end.IsZero() {
		t.Fatalf("zero Window: Open = %v, Next = %s, %s; want closed and zero times", w.Open(at), start, end)
	}
	if w.String() != "never" {
		t.Fatalf("zero Window String = %q, want never", w.String())
	}
}
