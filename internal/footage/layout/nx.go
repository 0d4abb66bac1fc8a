package layout

import (
	"strconv"
	"strings"
	"time"

	"github.com/vigil-backup/vigil/internal/footage"
)

// Nx is the archive of Nx Witness and its rebrands (DW Spectrum, Hanwha Wave, …):
//
//	[<server guid>/]{hi_quality,low_quality}/<camera id>/YYYY/MM/DD/HH/<start ms>_<duration ms>.mkv
//
// The date folders are in the recording server's time zone; the file name holds the
// absolute start in Unix milliseconds and the duration in milliseconds. A file named
// <start ms>.mkv has an unknown duration (0). The server folder may have any name; the
// chunk's Path keeps it, but the chunk does not otherwise record it.
//
// Path writes the form without a server folder. It cannot express a start finer than a
// millisecond or outside 2000–2199, a duration finer than a millisecond, negative or over
// 24 hours, a stream other than High or Low (it writes hi_quality), or a camera id that
// is empty, ".", ".." or holds a slash. Path writes a duration of 0 as <start ms>.mkv, so
// a file named <start ms>_0.mkv parses but is not what Path writes.
type Nx struct {
	loc *time.Location
}

var _ footage.Layout = (*Nx)(nil)

// NewNx returns the Nx layout of a server whose time zone is loc (nil means UTC).
func NewNx(loc *time.Location) *Nx { return &Nx{loc: orUTC(loc)} }

var _ footage.NamedOnClose = (*Nx)(nil)

// ClosedByName reports whether c has a duration: Nx writes a chunk as <start ms>.mkv and
// renames it to <start ms>_<duration ms>.mkv when it closes it.
func (*Nx) ClosedByName(c footage.Chunk) bool { return c.Duration > 0 }

// Name is "nx".
func (*Nx) Name() string { return "nx" }

const (
	nxHigh = "hi_quality"
	nxLow  = "low_quality"
	nxExt  = ".mkv"
)

// Parse returns the chunk at rel. The date folders must name the start's local date and
// hour: a file in another hour's folder is not where Nx would put it, so it is no chunk.
func (l *Nx) Parse(rel string) (footage.Chunk, bool) {
	var buf [8]string
	n, ok := splitParts(rel, buf[:])
	if !ok || n < 7 {
		return footage.Chunk{}, false
	}
	p := buf[n-7 : n] // without the server folder
	var stream footage.Stream
	switch p[0] {
	case nxHigh:
		stream = footage.High
	case nxLow:
		stream = footage.Low
	default:
		return footage.Chunk{}, false
	}
	y, ok1 := digits(p[2], 4)
	m, ok2 := digits(p[3], 2)
	d, ok3 := digits(p[4], 2)
	h, ok4 := digits(p[5], 2)
	name, isMKV := strings.CutSuffix(p[6], nxExt)
	if !ok1 || !ok2 || !ok3 || !ok4 || !isMKV {
		return footage.Chunk{}, false
	}
	startText, durText, hasDur := strings.Cut(name, "_")
	ms, ok := number(startText)
	if !ok || ms < minStartMS || ms >= endStartMS {
		return footage.Chunk{}, false
	}
	var dur int64
	if hasDur {
		if dur, ok = number(durText); !ok || dur > maxDuration.Milliseconds() {
			return footage.Chunk{}, false
		}
	}
	start := time.UnixMilli(ms).UTC()
	if !sameHour(start, l.loc, y, m, d, h) {
		return footage.Chunk{}, false
	}
	return footage.Chunk{
		Path:     rel,
		Camera:   p[1],
		Stream:   stream,
		Start:    start,
		Duration: time.Duration(dur) * time.Millisecond,
	}, true
}

// Path returns where Nx keeps c, without a server folder.
func (l *Nx) Path(c footage.Chunk) string {
	quality := nxHigh
	if c.Stream == footage.Low {
		quality = nxLow
	}
	ms := c.Start.UnixMilli()
	// The folders follow the millisecond the name states, not a finer start.
	local := time.UnixMilli(ms).In(l.loc)
	y, m, d := local.Date()
	b := make([]byte, 0, len(quality)+len(c.Camera)+40)
	b = append(b, quality...)
	b = append(b, '/')
	b = append(b, c.Camera...)
	b = append(b, '/')
	b = appendPadded(b, y, 4)
	b = append(b, '/')
	b = appendPadded(b, int(m), 2)
	b = append(b, '/')
	b = appendPadded(b, d, 2)
	b = append(b, '/')
	b = appendPadded(b, local.Hour(), 2)
	b = append(b, '/')
	b = strconv.AppendInt(b, ms, 10)
	if dur := c.Duration.Milliseconds(); dur != 0 {
		b = append(b, '_')
		b = strconv.AppendInt(b, dur, 10)
	}
	b = append(b, nxExt...)
	return string(b)
}
