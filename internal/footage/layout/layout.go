// Package layout knows how recorders name their footage: Nx Witness / DW Spectrum,
// Frigate, and patterns given by the operator. Each maps a file's path to the camera,
// stream, start and duration of the chunk it holds, and back (footage.Layout).
//
// Every layout returns starts in UTC, so that chunks compare with == whatever the
// recorder's time zone. Parse refuses paths with empty, "." or ".." parts, numbers with a
// sign, or with leading zeros where their width is not fixed, starts outside 2000–2199
// (UTC) and durations over 24 hours: such a file is a stray, a clock gone wrong, or a
// name that only looks like a chunk.
package layout

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-backup/vigil/internal/footage"
)

// ByName returns the layout the operator named: "nx", "frigate", or a pattern (anything
// with a "{", see NewPattern). loc is the recording server's time zone, in which Nx and
// patterns name their date folders; nil means UTC.
func ByName(name string, loc *time.Location) (footage.Layout, error) {
	switch {
	case name == "nx":
		return NewNx(loc), nil
	case name == "frigate":
		return NewFrigate(), nil
	case strings.Contains(name, "{"):
		return NewPattern(name, loc)
	}
	return nil, fmt.Errorf("layout %q: use nx, frigate, or a pattern such as {camera}/{yyyy}-{mm}-{dd}/{HH}/{start_unix}.mp4", name)
}

// The bounds of a plausible start: a recorder whose clock says otherwise has lost it, and
// its footage cannot be placed in time.
var (
	minStart = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	endStart = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)

	minStartMS = minStart.UnixMilli()
	endStartMS = endStart.UnixMilli()
)

// maxDuration is longer than any recorder keeps in one file.
const maxDuration = 24 * time.Hour

func orUTC(loc *time.Location) *time.Location {
	if loc == nil {
		return time.UTC
	}
	return loc
}

// splitParts cuts rel at its slashes into parts and returns how many there are. It
// reports false when rel has more parts than fit, or an empty, "." or ".." part.
func splitParts(rel string, parts []string) (int, bool) {
	n := 0
	for {
		part, rest, more := strings.Cut(rel, "/")
		if n == len(parts) || !cleanPart(part) {
			return 0, false
		}
		parts[n] = part
		n++
		if !more {
			return n, true
		}
		rel = rest
	}
}

func cleanPart(p string) bool { return p != "" && p != "." && p != ".." }

// cleanRel reports whether rel has no empty, "." or ".." part.
func cleanRel(rel string) bool {
	for {
		part, rest, more := strings.Cut(rel, "/")
		if !cleanPart(part) {
			return false
		}
		if !more {
			return true
		}
		rel = rest
	}
}

// number parses a decimal written the one way a recorder writes it: digits only, no
// leading zeros, at most 18 of them so that it fits an int64.
func number(s string) (int64, bool) {
	if s == "" || len(s) > 18 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// digits parses s when it is exactly width digits, leading zeros included.
func digits(s string, width int) (int, bool) {
	if len(s) != width {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// appendPadded appends n in decimal, zero-padded to width.
func appendPadded(b []byte, n, width int) []byte {
	if n >= 0 {
		w := 1
		for m := n; m >= 10; m /= 10 {
			w++
		}
		for ; w < width; w++ {
			b = append(b, '0')
		}
	}
	return strconv.AppendInt(b, int64(n), 10)
}

// validDate reports whether y-m-d is a day of the calendar.
func validDate(y, m, d int) bool {
	return m >= 1 && m <= 12 && d >= 1 && d <= daysIn(y, time.Month(m))
}

// plausible reports whether t is within the bounds of a plausible start.
func plausible(t time.Time) bool { return !t.Before(minStart) && t.Before(endStart) }

func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// sameHour reports whether t, in loc, falls on y-m-d in hour h. Comparing the wall clock
// rather than building the hour's start lets both instants of the hour that repeats
// when daylight saving time ends belong to that hour's folder.
func sameHour(t time.Time, loc *time.Location, y, m, d, h int) bool {
	lt := t.In(loc)
	ly, lm, ld := lt.Date()
	return ly == y && int(lm) == m && ld == d && lt.Hour() == h
}
