package schedule

import (
	"testing"
	"time"
	_ "time/tzdata"
)

func mustLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	return loc
}

// instant parses an RFC 3339 time; the offset in it says which of two equal wall-clock
// readings is meant.
func instant(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return v
}

func date(y int, m time.Month, d int) day { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func TestWallTime(t *testing.T) {
	tests := []struct {
		zone string
		d    day
		at   string
		last bool
		want string
	}{
		{"Europe/Berlin", date(2026, 1, 15), "12:00", false, "2026-01-15T12:00:00+01:00"},
		{"Europe/Berlin", date(2026, 1, 15), "24:00", false, "2026-01-16T00:00:00+01:00"},
		// Spring forward: 02:00 CET becomes 03:00 CEST.
		{"Europe/Berlin", date(2026, 3, 29), "02:00", false, "2026-03-29T03:00:00+02:00"},
		{"Europe/Berlin", date(2026, 3, 29), "02:30", false, "2026-03-29T03:00:00+02:00"},
		{"Europe/Berlin", date(2026, 3, 29), "02:30", true, "2026-03-29T03:00:00+02:00"},
		{"Europe/Berlin", date(2026, 3, 29), "03:00", false, "2026-03-29T03:00:00+02:00"},
		{"Europe/Berlin", date(2026, 3, 29), "01:59", false, "2026-03-29T01:59:00+01:00"},
		// Fall back: 03:00 CEST becomes 02:00 CET.
		{"Europe/Berlin", date(2026, 10, 25), "02:00", false, "2026-10-25T02:00:00+02:00"},
		{"Europe/Berlin", date(2026, 10, 25), "02:00", true, "2026-10-25T02:00:00+01:00"},
		{"Europe/Berlin", date(2026, 10, 25), "02:30", false, "2026-10-25T02:30:00+02:00"},
		{"Europe/Berlin", date(2026, 10, 25), "02:30", true, "2026-10-25T02:30:00+01:00"},
		{"Europe/Berlin", date(2026, 10, 25), "03:00", false, "2026-10-25T03:00:00+01:00"},
		{"Europe/Berlin", date(2026, 10, 25), "03:00", true, "2026-10-25T03:00:00+01:00"},
		// Spring forward: 02:00 EST becomes 03:00 EDT.
		{"America/New_York", date(2026, 3, 8), "02:00", false, "2026-03-08T03:00:00-04:00"},
		{"America/New_York", date(2026, 3, 8), "02:30", false, "2026-03-08T03:00:00-04:00"},
		{"America/New_York", date(2026, 3, 8), "02:30", true, "2026-03-08T03:00:00-04:00"},
		// Fall back: 02:00 EDT becomes 01:00 EST.
		{"America/New_York", date(2026, 11, 1), "01:00", false, "2026-11-01T01:00:00-04:00"},
		{"America/New_York", date(2026, 11, 1), "01:30", false, "2026-11-01T01:30:00-04:00"},
		{"America/New_York", date(2026, 11, 1), "01:30", true, "2026-11-01T01:30:00-05:00"},
		{"America/New_York", date(2026, 11, 1), "02:00", true, "2026-11-01T02:00:00-05:00"},
		// Chile changes its clocks at midnight, so the skipped and repeated times cross dates.
		{"America/Santiago", date(2026, 9, 6), "00:00", false, "2026-09-06T01:00:00-03:00"},
		{"America/Santiago", date(2026, 9, 6), "00:30", true, "2026-09-06T01:00:00-03:00"},
		{"America/Santiago", date(2026, 4, 4), "23:30", false, "2026-04-04T23:30:00-03:00"},
		{"America/Santiago", date(2026, 4, 4), "23:30", true, "2026-04-04T23:30:00-04:00"},
		{"America/Santiago", date(2026, 4, 4), "24:00", true, "2026-04-05T00:00:00-04:00"},
		// Lord Howe Island moves its clocks by half an hour.
		{"Australia/Lord_Howe", date(2026, 10, 4), "02:15", false, "2026-10-04T02:30:00+11:00"},
		{"Australia/Lord_Howe", date(2026, 4, 5), "01:45", false, "2026-04-05T01:45:00+11:00"},
		{"Australia/Lord_Howe", date(2026, 4, 5), "01:45", true, "2026-04-05T01:45:00+10:30"},
	}
	for _, tt := range tests {
		min, err := parseClock(tt.at)
		if err != nil {
			t.Fatalf("parseClock(%q): %v", tt.at, err)
		}
		got := wallTime(tt.d, min, mustLoc(t, tt.zone), tt.last)
		if want := instant(t, tt.want); !got.Equal(want) {
			t.Fatalf("%s %s %s last=%v: got %s, want %s", tt.zone, tt.d.Format(time.DateOnly), tt.at, tt.last, got, want)
		}
	}
}

func TestParseDays(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"Mon-Fri", "Mon-Fri"},
		{"mon - fri", "Mon-Fri"},
		{"Monday,Tuesday", "Mon,Tue"},
		{"Tues, Thurs", "Tue,Thu"},
		{"Sat,Sun", "Sat,Sun"},
		{"Sun,Sat", "Sat,Sun"},
		{"Fri-Mon", "Mon,Fri-Sun"},
		{"Sun-Sat", "daily"},
		{"Wed-Wed", "Wed"},
		{"Mon,Wed,Fri", "Mon,Wed,Fri"},
		{"Mon-Wed,Fri", "Mon-Wed,Fri"},
		{"Mon,Mon", "Mon"},
		{"DAILY", "daily"},
		{"weekdays", "Mon-Fri"},
		{"weekends", "Sat,Sun"},
		{"Mon–Fri", "Mon-Fri"},
	}
	for _, tt := range tests {
		mask, err := parseDays(tt.in)
		if err != nil {
			t.Fatalf("parseDays(%q): %v", tt.in, err)
		}
		if got := formatDays(mask); got != tt.want {
			t.Fatalf("parseDays(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
