package schedule

import (
	"strings"
	"testing"
	"time"
)

const officeGrid = `Mon-Fri 08-18 20Mbit
Mon-Fri 18-08 unlimited
Sat,Sun 00-24 unlimited
Sun 02-04 off`

func TestParseGrid(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{officeGrid, "Mon-Fri 08-18 20Mbit\nSun 02-04 off"},
		{"", "daily 00-24 unlimited"},
		{"# no limit\n\n", "daily 00-24 unlimited"},
		{"daily 00-24 unlimited", "daily 00-24 unlimited"},
		{"daily 00-24 off", "daily 00-24 off"},
		{"daily 00-00 off", "daily 00-24 off"},
		{"Mon-Fri 08-18 20Mbit; Sun 02-04 off", "Mon-Fri 08-18 20Mbit\nSun 02-04 off"},
		{"mon - fri 8-18 20 Mbit/s # office hours", "Mon-Fri 08-18 20Mbit"},
		{"Mon-Fri 08:00-18:00 1Gbit", "Mon-Fri 08-18 1Gbit"},
		{"Mon 10-11 5MiB", "Mon 10-11 5MiB"},
		{"Mon 10-11 500kbit", "Mon 10-11 500kbit"},
		{"Mon 10-11 2KiB", "Mon 10-11 2KiB"},
		{"Mon 10-11 1001", "Mon 10-11 1001B"},
		{"Mon 10-11 1.5Mbit", "Mon 10-11 1500kbit"},
		// Crossing midnight belongs to the start day, and Sunday night reaches Monday.
		{"Fri 22-02 1MB", "Fri 22-24 8Mbit\nSat 00-02 8Mbit"},
		{"Sun 22-02 off", "Mon 00-02 off\nSun 22-24 off"},
		{"Mon 08-08 off", "Mon 08-24 off\nTue 00-08 off"},
		// Later lines win.
		{"daily 00-24 off\nMon 10-12 5MB", "Mon 00-10 off\nMon 10-12 40Mbit\nMon 12-24 off\nTue-Sun 00-24 off"},
		{"Mon 10-12 5MB\nMon 00-24 unlimited", "daily 00-24 unlimited"},
	}
	loc := mustLoc(t, "Europe/Berlin")
	for _, tt := range tests {
		g, err := ParseGrid(tt.in, loc)
		if err != nil {
			t.Fatalf("ParseGrid(%q): %v", tt.in, err)
		}
		if got := g.String(); got != tt.want {
			t.Fatalf("ParseGrid(%q).String() = %q, want %q", tt.in, got, tt.want)
		}
		again, err := ParseGrid(g.String(), loc)
		if err != nil || again != g {
			t.Fatalf("ParseGrid(%q) = %v, %v; want the grid back", g.String(), again, err)
		}
	}
}

func TestParseGridErrors(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"Mon-Fri 08-18 20Mbit\nFunday 00-24 off", `grid line 2 "Funday 00-24 off": unknown day "Funday"`},
		{"Mon-Fri 08-18 20Mbit; Mon 08-18 0", `grid line 2 "Mon 08-18 0": rate "0" is ambiguous: write off for no backup or unlimited for no limit`},
		{"Mon-Fri 08-18 0Mbit", `rate "0Mbit" is ambiguous`},
		{"Mon-Fri 08-18", "missing rate after the hours"},
		{"Mon-Fri", "missing hours after the days"},
		{"08-18 20Mbit", "missing days before the hours"},
		{"Mon-Fri 20Mbit", `"20Mbit" is not a range of hours`},
		{"Mon-Fri 08-25 off", "hour 25 is out of range (00-24)"},
		{"Mon-Fri 8:30-18 off", `"8:30": the grid changes only on the hour`},
		{"Mon-Fri 8:3-18 off", `"8:3" is not an hour`},
		{"Mon-Fri 24-08 off", "hours cannot start at 24"},
		{"Mon 8-18-20 off", `"18-20" is not an hour`},
		{"Mon-Fri 08-18 20Mbat", `"20Mbat": unknown unit "Mbat"`},
		{"Mon-Fri 08-18 -5MB", "cannot be negative"},
		{"Mon-Fri 08-18 fast", "starts with a number"},
		{"Mon-Fri all day off", `"all" is not a range of hours`},
	}
	for _, tt := range tests {
		g, err := ParseGrid(tt.in, time.UTC)
		if err == nil {
			t.Fatalf("ParseGrid(%q) = %v, want an error containing %q", tt.in, g, tt.want)
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Fatalf("ParseGrid(%q) error = %q, want it to contain %q", tt.in, err, tt.want)
		}
	}
}

func TestGridAtNextChange(t *testing.T) {
	// 5 January 2026 is a Monday.
	tests := []struct {
		zone, grid string
		t          string
		rate       int64
		change     string // empty: never
	}{
		{"Europe/Berlin", officeGrid, "2026-01-05T09:15:00+01:00", 2_500_000, "2026-01-05T18:00:00+01:00"},
		{"Europe/Berlin", officeGrid, "2026-01-05T08:00:00+01:00", 2_500_000, "2026-01-05T18:00:00+01:00"},
		{"Europe/Berlin", officeGrid, "2026-01-05T07:59:59+01:00", Unlimited, "2026-01-05T08:00:00+01:00"},
		{"Europe/Berlin", officeGrid, "2026-01-05T18:00:00+01:00", Unlimited, "2026-01-06T08:00:00+01:00"},
		// Friday evening to Sunday's pause, over the weekend.
		{"Europe/Berlin", officeGrid, "2026-01-09T18:00:00+01:00", Unlimited, "2026-01-11T02:00:00+01:00"},
		{"Europe/Berlin", officeGrid, "2026-01-11T02:30:00+01:00", Off, "2026-01-11T04:00:00+01:00"},
		{"Europe/Berlin", officeGrid, "2026-01-11T04:00:00+01:00", Unlimited, "2026-01-12T08:00:00+01:00"},
		{"Europe/Berlin", officeGrid, "2026-01-11T01:00:00Z", Off, "2026-01-11T04:00:00+01:00"},
		{"Europe/Berlin", "Sun 22-02 off", "2026-01-12T01:00:00+01:00", Off, "2026-01-12T02:00:00+01:00"},
		{"Europe/Berlin", "Sun 22-02 off", "2026-12-31T12:00:00+01:00", Unlimited, "2027-01-03T22:00:00+01:00"},
		{"Europe/Berlin", "", "2026-01-05T09:15:00+01:00", Unlimited, ""},
		{"Europe/Berlin", "daily 00-24 5MB", "2026-01-05T09:15:00+01:00", 5_000_000, ""},
		// Spring forward in Berlin: hour 02 is skipped, so its rate does not apply that day.
		{"Europe/Berlin", "Sun 02-03 off", "2026-03-29T01:30:00+01:00", Unlimited, "2026-04-05T02:00:00+02:00"},
		{"Europe/Berlin", "daily 03-04 1MB", "2026-03-29T01:30:00+01:00", Unlimited, "2026-03-29T03:00:00+02:00"},
		{"Europe/Berlin", "daily 02-03 1MB", "2026-03-29T01:30:00+01:00", Unlimited, "2026-03-30T02:00:00+02:00"},
		// Fall back in Berlin: hour 02 happens twice and keeps its rate both times.
		{"Europe/Berlin", "Sun 02-03 off", "2026-10-25T02:10:00+02:00", Off, "2026-10-25T03:00:00+01:00"},
		{"Europe/Berlin", "Sun 02-03 off", "2026-10-25T02:10:00+01:00", Off, "2026-10-25T03:00:00+01:00"},
		{"Europe/Berlin", "Sun 03-04 off", "2026-10-25T02:10:00+02:00", Unlimited, "2026-10-25T03:00:00+01:00"},
		// New York.
		{"America/New_York", "Sun 01-02 off", "2026-11-01T01:10:00-04:00", Off, "2026-11-01T02:00:00-05:00"},
		{"America/New_York", "Sun 03-05 1MB", "2026-03-08T01:59:00-05:00", Unlimited, "2026-03-08T03:00:00-04:00"},
		{"America/New_York", "Sun 02-03 off", "2026-03-08T01:59:00-05:00", Unlimited, "2026-03-15T02:00:00-04:00"},
		// Lord Howe Island moves its clocks by half an hour, so an hour may start at :30.
		{"Australia/Lord_Howe", "Sun 02-03 off", "2026-10-04T01:45:00+10:30", Unlimited, "2026-10-04T02:30:00+11:00"},
	}
	for _, tt := range tests {
		g, err := ParseGrid(tt.grid, mustLoc(t, tt.zone))
		if err != nil {
			t.Fatalf("ParseGrid(%q): %v", tt.grid, err)
		}
		at := instant(t, tt.t)
		if got := g.At(at); got != tt.rate {
			t.Fatalf("%s %q At(%s) = %d, want %d", tt.zone, tt.grid, tt.t, got, tt.rate)
		}
		got := g.NextChange(at)
		if tt.change == "" {
			if !got.IsZero() {
				t.Fatalf("%s %q NextChange(%s) = %s, want the zero time", tt.zone, tt.grid, tt.t, got)
			}
			continue
		}
		if !got.Equal(instant(t, tt.change)) {
			t.Fatalf("%s %q NextChange(%s) = %s, want %s", tt.zone, tt.grid, tt.t, got.Format(time.RFC3339), tt.change)
		}
	}
}

func TestFixedGrid(t *testing.T) {
	tests := []struct {
		rate, want int64
		str        string
	}{
		{2_500_000, 2_500_000, "daily 00-24 20Mbit"},
		{1, 1, "daily 00-24 1B"},
		{0, Unlimited, "daily 00-24 unlimited"},
		{Unlimited, Unlimited, "daily 00-24 unlimited"},
	}
	for _, tt := range tests {
		g := FixedGrid(tt.rate)
		at := instant(t, "2026-06-01T12:00:00Z")
		if got := g.At(at); got != tt.want {
			t.Fatalf("FixedGrid(%d).At = %d, want %d", tt.rate, got, tt.want)
		}
		if next := g.NextChange(at); !next.IsZero() {
			t.Fatalf("FixedGrid(%d).NextChange = %s, want the zero time", tt.rate, next)
		}
		if g.String() != tt.str {
			t.Fatalf("FixedGrid(%d).String() = %q, want %q", tt.rate, g.String(), tt.str)
		}
		if again, err := ParseGrid(g.String(), time.UTC); err != nil || again != g {
			t.Fatalf("ParseGrid(%q) = %v, %v; want FixedGrid(%d)", g.String(), again, err, tt.rate)
		}
	}
	var zero Grid
	if zero.At(time.Unix(0, 0)) != Unlimited {
		t.Fatalf("the zero Grid is %d, want unlimited", zero.At(time.Unix(0, 0)))
	}
}
