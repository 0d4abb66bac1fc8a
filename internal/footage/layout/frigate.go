package layout

import (
	"strings"
	"time"

	"github.com/vigil-backup/vigil/internal/footage"
)

// Frigate is the recordings folder of the Frigate NVR, relative to its media folder:
//
//	recordings/YYYY-MM-DD/HH/<camera>/MM.SS.mp4
//
// all in UTC. Frigate keeps one stream per camera (High). Its segments last ten seconds
// by default, but the name does not say so, and the duration is unknown (0).
//
// Path cannot express a start finer than a second or outside 2000–2199, a duration, the
// Low stream, or a camera name that is empty, ".", ".." or holds a slash.
type Frigate struct{}

var _ footage.Layout = (*Frigate)(nil)

// NewFrigate returns the Frigate layout.
func NewFrigate() *Frigate { return &Frigate{} }

// Name is "frigate".
func (*Frigate) Name() string { return "frigate" }

const (
	frigateRoot = "recordings"
	frigateExt  = ".mp4"
)

// Parse returns the chunk at rel.
func (*Frigate) Parse(rel string) (footage.Chunk, bool) {
	var p [5]string
	n, ok := splitParts(rel, p[:])
	if !ok || n != 5 || p[0] != frigateRoot {
		return footage.Chunk{}, false
	}
	date, name := p[1], p[4]
	if len(date) != len("2006-01-02") || date[4] != '-' || date[7] != '-' {
		return footage.Chunk{}, false
	}
	y, ok1 := digits(date[:4], 4)
	m, ok2 := digits(date[5:7], 2)
	d, ok3 := digits(date[8:], 2)
	h, ok4 := digits(p[2], 2)
	clock, isMP4 := strings.CutSuffix(name, frigateExt)
	if !ok1 || !ok2 || !ok3 || !ok4 || !isMP4 || len(clock) != len("04.05") || clock[2] != '.' {
		return footage.Chunk{}, false
	}
	mi, ok5 := digits(clock[:2], 2)
	s, ok6 := digits(clock[3:], 2)
	if !ok5 || !ok6 || !validDate(y, m, d) || h > 23 || mi > 59 || s > 59 {
		return footage.Chunk{}, false
	}
	start := time.Date(y, time.Month(m), d, h, mi, s, 0, time.UTC)
	if !plausible(start) {
		return footage.Chunk{}, false
	}
	return footage.Chunk{Path: rel, Camera: p[3], Stream: footage.High, Start: start}, true
}

// Path returns where Frigate keeps c.
func (*Frigate) Path(c footage.Chunk) string {
	t := c.Start.UTC()
	y, m, d := t.Date()
	b := make([]byte, 0, len(c.Camera)+40)
	b = append(b, frigateRoot...)
	b = append(b, '/')
	b = appendPadded(b, y, 4)
	b = append(b, '-')
	b = appendPadded(b, int(m), 2)
	b = append(b, '-')
	b = appendPadded(b, d, 2)
	b = append(b, '/')
	b = appendPadded(b, t.Hour(), 2)
	b = append(b, '/')
	b = append(b, c.Camera...)
	b = append(b, '/')
	b = appendPadded(b, t.Minute(), 2)
	b = append(b, '.')
	b = appendPadded(b, t.Second(), 2)
	b = append(b, frigateExt...)
	return string(b)
}
