package schedule

import (
	"math/rand/v2"
	"testing"
	"time"
)

// The property tests check Next, Open and NextChange against definitions worked out from
// the clock's readings minute by minute, over random instants in 2026 and 2027 and in
// zones whose clocks move by an hour, by half an hour, and across midnight.

var propertyZones = []string{"Europe/Berlin", "America/New_York", "America/Santiago", "Australia/Lord_Howe"}

var (
	propertyFrom = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	propertyTo   = time.Date(2028, 1, 1, 0, 0, 0, 0, time.UTC)
)

// randomInstant returns an instant in the two years, half the time within three days of a
// change of the clocks, and often on a whole minute or hour.
func randomInstant(r *rand.Rand, loc *time.Location) time.Time {
	var t time.Time
	if r.IntN(2) == 0 {
		t = propertyFrom.Add(time.Duration(r.Int64N(int64(propertyTo.Sub(propertyFrom)))))
	} else {
		t = randomChange(r, loc).Add(time.Duration(r.Int64N(int64(6*24*time.Hour))) - 3*24*time.Hour)
	}
	return roundRandomly(r, t).In(loc)
}

func roundRandomly(r *rand.Rand, t time.Time) time.Time {
	switch r.IntN(3) {
	case 0:
		return t.Truncate(time.Minute)
	case 1:
		return t.Truncate(time.Hour)
	}
	return t
}

// randomChange returns an instant in the two years at which loc's clocks change.
func randomChange(r *rand.Rand, loc *time.Location) time.Time {
	var changes []time.Time
	for c := propertyFrom.In(loc); ; {
		_, end := c.ZoneBounds()
		if end.IsZero() || end.After(propertyTo) {
			break
		}
		changes = append(changes, end)
		c = end
	}
	return changes[r.IntN(len(changes))]
}

// nearChange returns the date and time of day that the clock shows within 90 minutes of
// change, either side, so that schedules land in the times the clocks skip or repeat.
func nearChange(r *rand.Rand, change time.Time) (day, int) {
	c := change.Add(time.Duration(r.IntN(181)-90) * time.Minute)
	if r.IntN(2) == 0 {
		c = c.Add(-time.Nanosecond)
	}
	return dateOf(c), c.Hour()*60 + c.Minute()
}

// randomClock returns minutes after midnight, often one near where clocks change.
func randomClock(r *rand.Rand) int {
	special := []int{0, 30, 60, 90, 105, 120, 150, 180, 210, 240, 23*60 + 30, 23*60 + 59}
	if r.IntN(2) == 0 {
		return special[r.IntN(len(special))]
	}
	return r.IntN(minutesPerDay)
}

// readings holds the clock's reading, as wall seconds, at every whole minute from first on.
type readings struct {
	first time.Time
	wall  []int64
}

func readClock(loc *time.Location, from time.Time, minutes int) readings {
	rd := readings{first: from.Truncate(time.Minute), wall: make([]int64, minutes)}
	for i := range rd.wall {
		rd.wall[i] = wallSeconds(rd.first.Add(time.Duration(i) * time.Minute).In(loc))
	}
	return rd
}

func (rd readings) at(i int) time.Time { return rd.first.Add(time.Duration(i) * time.Minute) }

func (rd readings) index(t time.Time) int { return int(t.Sub(rd.first) / time.Minute) }

// runningMax[i] is the highest reading up to minute i, runningMin[i] the lowest from
// minute i on.
func (rd readings) extremes() (runningMax, runningMin []int64) {
	runningMax = make([]int64, len(rd.wall))
	runningMin = make([]int64, len(rd.wall))
	for i, w := range rd.wall {
		runningMax[i] = w
		if i > 0 {
			runningMax[i] = max(runningMax[i-1], w)
		}
	}
	for i := len(rd.wall) - 1; i >= 0; i-- {
		runningMin[i] = rd.wall[i]
		if i < len(rd.wall)-1 {
			runningMin[i] = min(runningMin[i+1], rd.wall[i])
		}
	}
	return runningMax, runningMin
}

func wallDate(wall int64) day { return time.Unix(wall, 0).UTC().Truncate(24 * time.Hour) }

// isRunDate is Frequency's calendar rule, written out again.
func isRunDate(f Frequency, d day) bool {
	switch f.kind {
	case daily:
		return true
	case weekly:
		return d.Weekday() == f.weekday
	case monthly:
		lastDay := d.AddDate(0, 0, 1).Day() == 1
		return d.Day() == f.day || lastDay && d.Day() < f.day
	}
	return false
}

func TestFrequencyNextProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	samples := 400
	if testing.Short() {
		samples = 50
	}
	for range samples {
		loc := mustLoc(t, propertyZones[r.IntN(len(propertyZones))])
		at, after := randomClock(r), randomInstant(r, loc)
		runDay := dateOf(after)
		if r.IntN(2) == 0 {
			// A run on the day the clocks change, near the time they change.
			change := randomChange(r, loc)
			runDay, at = nearChange(r, change)
			after = roundRandomly(r, change.Add(-time.Duration(r.Int64N(int64(36*time.Hour))))).In(loc)
		}
		var f Frequency
		switch r.IntN(3) {
		case 0:
			f = Daily(at/60, at%60, loc)
		case 1:
			f = Weekly(runDay.Weekday(), at/60, at%60, loc)
		default:
			f = Monthly([]int{runDay.Day(), runDay.Day(), 28, 29, 30, 31, 1 + r.IntN(31)}[r.IntN(7)], at/60, at%60, loc)
		}
		next := f.Next(after)
		if !next.After(after) {
			t.Fatalf("%v in %s: Next(%s) = %s, not after it", f, loc, after, next)
		}
		if next.Sub(after) > 32*24*time.Hour || next.Truncate(time.Minute) != next {
			t.Fatalf("%v in %s: Next(%s) = %s", f, loc, after, next)
		}
		// A run is the first minute at which the clock reaches a run date's start time.
		rd := readClock(loc, after.Add(-3*time.Hour), int(next.Sub(after)/time.Minute)+3*60+2)
		highest, _ := rd.extremes()
		isRun := func(i int) bool {
			for _, d := range []day{wallDate(rd.wall[i]), wallDate(rd.wall[i]).AddDate(0, 0, -1)} {
				w := d.Unix() + int64(f.at)*60
				if isRunDate(f, d) && rd.wall[i] >= w && highest[i-1] < w {
					return true
				}
			}
			return false
		}
		last := rd.index(next)
		if rd.at(last) != next || !isRun(last) {
			t.Fatalf("%v in %s: Next(%s) = %s, which is no run", f, loc, after, next.Format(time.RFC3339))
		}
		for i := rd.index(after) + 1; i < last; i++ {
			if rd.at(i).After(after) && isRun(i) {
				t.Fatalf("%v in %s: Next(%s) = %s, but %s is a run", f, loc, after, next.Format(time.RFC3339), rd.at(i).In(loc).Format(time.RFC3339))
			}
		}
	}
}

func TestWindowProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	samples := 150
	if testing.Short() {
		samples = 30
	}
	for range samples {
		loc := mustLoc(t, propertyZones[r.IntN(len(propertyZones))])
		w := Window{days: uint8(1 + r.IntN(allDays)), start: randomClock(r), loc: loc}
		switch r.IntN(4) {
		case 0:
			w.length = minutesPerDay
		case 1:
			w.length = (randomClock(r)-w.start+minutesPerDay)%minutesPerDay + 1
		default:
			w.length = 1 + r.IntN(minutesPerDay)
		}
		at := randomInstant(r, loc)
		if r.IntN(2) == 0 {
			// A window that opens or closes near a change of the clocks, on that day.
			change := randomChange(r, loc)
			d, clock := nearChange(r, change)
			if r.IntN(2) == 0 {
				w.start = clock
			} else {
				w.start = (clock - w.length%minutesPerDay + minutesPerDay) % minutesPerDay
				if w.start > clock {
					d = d.AddDate(0, 0, -1)
				}
			}
			w.days |= 1 << d.Weekday()
			at = roundRandomly(r, change.Add(time.Duration(r.Int64N(int64(48*time.Hour)))-36*time.Hour)).In(loc)
		}

		// The window of date d opens at the first minute the clock reaches its start, and
		// closes after the last minute the clock shows a time before its end.
		rd := readClock(loc, at.Add(-9*24*time.Hour), 26*24*60)
		highest, lowest := rd.extremes()
		open := func(i int) bool {
			for k := range 3 {
				d := wallDate(rd.wall[i]).AddDate(0, 0, -k)
				if w.days&(1<<d.Weekday()) == 0 {
					continue
				}
				start := d.Unix() + int64(w.start)*60
				end := start + int64(w.length)*60
				if highest[i] >= start && lowest[i] < end {
					return true
				}
			}
			return false
		}

		// Open, minute by minute over two days.
		for i := rd.index(at); i < rd.index(at)+2*24*60; i++ {
			if got := w.Open(rd.at(i)); got != open(i) {
				t.Fatalf("%v in %s: Open(%s) = %v, want %v", w, loc, rd.at(i).In(loc).Format(time.RFC3339), got, !got)
			}
		}

		start, end := w.Next(at)
		if w.alwaysOpen() {
			if !start.Equal(at) || !end.IsZero() || !w.Open(at) {
				t.Fatalf("%v in %s: Next(%s) = %s, %s", w, loc, at, start, end)
			}
			continue
		}
		fail := func(why string, args ...any) {
			t.Helper()
			t.Fatalf("%v in %s: Next(%s) = %s, %s: "+why, append([]any{w, loc, at.Format(time.RFC3339), start.In(loc).Format(time.RFC3339), end.In(loc).Format(time.RFC3339)}, args...)...)
		}
		if !end.After(start) || !end.After(at) {
			fail("not a window after t")
		}
		if w.Open(at) != !start.After(at) {
			fail("Open(t) = %v", w.Open(at))
		}
		if start.Truncate(time.Minute) != start || end.Truncate(time.Minute) != end {
			fail("not on whole minutes")
		}
		i, j := rd.index(start), rd.index(end)
		if i < 1 || j >= len(rd.wall) {
			fail("outside the days read")
		}
		if open(i - 1) {
			fail("the window is already open a minute before")
		}
		if open(j) {
			fail("the window is still open at the end")
		}
		for k := max(i, rd.index(at)-24*60); k < j; k++ {
			if !open(k) {
				fail("closed at %s", rd.at(k).In(loc).Format(time.RFC3339))
			}
		}
		for k := rd.index(at) + 1; k < i; k++ {
			if open(k) {
				fail("open earlier, at %s", rd.at(k).In(loc).Format(time.RFC3339))
			}
		}
	}
}

func TestGridNextChangeProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	samples := 300
	if testing.Short() {
		samples = 40
	}
	rates := []string{"off", "unlimited", "20Mbit", "5MB"}
	for range samples {
		loc := mustLoc(t, propertyZones[r.IntN(len(propertyZones))])
		var text string
		for range r.IntN(4) {
			days := formatDays(uint8(1 + r.IntN(allDays)))
			text += days + " " + twoDigits(r.IntN(24)) + "-" + twoDigits(r.IntN(25)) + " " + rates[r.IntN(len(rates))] + "\n"
		}
		g, err := ParseGrid(text, loc)
		if err != nil {
			t.Fatalf("ParseGrid(%q): %v", text, err)
		}
		at := randomInstant(r, loc)
		rate, next := g.At(at), g.NextChange(at)
		if next.IsZero() {
			if !g.uniform() {
				t.Fatalf("%q in %s: NextChange(%s) is zero, but the rate varies", text, loc, at)
			}
			continue
		}
		if !next.After(at) || next.Sub(at) > 15*24*time.Hour || g.At(next) == rate {
			t.Fatalf("%q in %s: NextChange(%s) = %s, with rate %d, was %d", text, loc, at, next, g.At(next), rate)
		}
		for m := at.Truncate(time.Minute).Add(time.Minute); m.Before(next); m = m.Add(time.Minute) {
			if g.At(m) != rate {
				t.Fatalf("%q in %s: NextChange(%s) = %s, but the rate is %d at %s", text, loc, at, next, g.At(m), m.In(loc))
			}
		}
	}
}

func twoDigits(n int) string { return string([]byte{byte('0' + n/10), byte('0' + n%10)}) }
