package schedule

import (
	"testing"
	"time"
)

// fuzzInstants include both of Berlin's changes of the clocks in 2026.
var fuzzInstants = []string{
	"2026-01-05T12:00:00+01:00",
	"2026-03-29T01:59:00+01:00",
	"2026-10-25T02:30:00+02:00",
	"2026-10-25T02:30:00+01:00",
}

func FuzzParseWindow(f *testing.F) {
	for _, s := range []string{
		"Mon-Fri 01:00-05:00", "Sat,Sun 00:00-24:00", "daily 22:00-06:00", "Mon,Wed,Fri 13:30-14:00",
		"Sat,Sun all day", "Fri-Mon 02:30-02:30", "mon - fri 1:00 - 5:00", "Mon–Fri 01:00–05:00",
		"weekdays 00:00-00:00", "Mon-Fri 25:00-05:00", "Mon,,Fri 01:00-05:00", "",
	} {
		f.Add(s)
	}
	loc := mustLoc(f, "Europe/Berlin")
	f.Fuzz(func(t *testing.T, s string) {
		w, err := ParseWindow(s, loc)
		if err != nil {
			return
		}
		again, err := ParseWindow(w.String(), loc)
		if err != nil {
			t.Fatalf("ParseWindow(%q) = %q, which does not parse: %v", s, w.String(), err)
		}
		if again != w || again.String() != w.String() {
			t.Fatalf("ParseWindow(%q) = %q, which parses to %q", s, w.String(), again.String())
		}
		for _, text := range fuzzInstants {
			at := instant(t, text)
			start, end := w.Next(at)
			if w.alwaysOpen() {
				if !w.Open(at) || !start.Equal(at) || !end.IsZero() {
					t.Fatalf("%q at %s: always open, but Open = %v, Next = %s, %s", w, at, w.Open(at), start, end)
				}
				continue
			}
			if !end.After(start) || !end.After(at) || w.Open(at) != !start.After(at) {
				t.Fatalf("%q at %s: Open = %v, Next = %s, %s", w, at, w.Open(at), start, end)
			}
		}
	})
}

func FuzzParseGrid(f *testing.F) {
	for _, s := range []string{
		officeGrid, "", "daily 00-24 off", "Fri 22-02 1MB", "Sun 22-02 off; Mon 08:00-18:00 1.5Mbit",
		"mon - fri 8-18 20 Mbit/s # office", "Mon-Fri 08-18 0", "Mon 10-11 1001", "Sat 02-03 5MiB\nSun 02-03 off",
	} {
		f.Add(s)
	}
	loc := mustLoc(f, "Europe/Berlin")
	f.Fuzz(func(t *testing.T, s string) {
		g, err := ParseGrid(s, loc)
		if err != nil {
			return
		}
		again, err := ParseGrid(g.String(), loc)
		if err != nil {
			t.Fatalf("ParseGrid(%q) = %q, which does not parse: %v", s, g.String(), err)
		}
		if again != g || again.String() != g.String() {
			t.Fatalf("ParseGrid(%q) = %q, which parses to %q", s, g.String(), again.String())
		}
		for _, text := range fuzzInstants {
			at := instant(t, text)
			rate, next := g.At(at), g.NextChange(at)
			if rate < Unlimited {
				t.Fatalf("%q: At(%s) = %d", g, at, rate)
			}
			if next.IsZero() != g.uniform() || !next.IsZero() && (!next.After(at) || g.At(next) == rate) {
				t.Fatalf("%q: NextChange(%s) = %s, from %d to %d", g, at, next, rate, g.At(next))
			}
		}
	})
}

func FuzzParseFrequency(f *testing.F) {
	f.Add("weekly", "Sunday", "04:00")
	f.Add("monthly", "31", "02:30")
	f.Add("daily", "", "00:00")
	f.Add("now", "", "")
	loc := mustLoc(f, "Europe/Berlin")
	f.Fuzz(func(t *testing.T, kind, day, at string) {
		freq, err := ParseFrequency(kind, day, at, loc)
		if err != nil {
			return
		}
		for _, text := range fuzzInstants {
			after := instant(t, text)
			next := freq.Next(after)
			if !next.After(after) || next.Sub(after) > 32*24*time.Hour || !freq.Missed(after, next) || freq.Missed(after, next.Add(-time.Second)) {
				t.Fatalf("%v: Next(%s) = %s", freq, after, next)
			}
		}
	})
}
