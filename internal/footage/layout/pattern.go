package layout

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-backup/vigil/internal/footage"
)

// Pattern is a layout the operator writes out, for recorders Vigil does not know, such
// as
//
//	{camera}/{yyyy}-{mm}-{dd}/{HH}/{start_unix}.mp4
//
// These placeholders stand for text in the path; everything else is literal:
//
//	{camera}       the camera: any text without a slash (required, once)
//	{stream}       hi or lo (at most once); without it every chunk is High. Recorders
//	               that write hi_quality/low_quality are the nx layout.
//	{yyyy} {mm} {dd} {HH} {MM} {SS}
//	               year, month, day, hour, minute, second of the start, in the
//	               recording server's time zone, zero-padded. Each may appear more than
//	               once; every occurrence must then say the same.
//	{start_unix}   the start in Unix seconds, {start_ms} in Unix milliseconds (one of them
//	               at most)
//	{duration_s}   the duration in seconds, {duration_ms} in milliseconds (one of them at
//	               most); without either the duration is unknown (0)
//	{*}            any text within one path part, not kept
//
// The start comes from {start_unix} or {start_ms} when the pattern has one; then the
// date fields present must agree with it, as in the Nx layout. Otherwise the pattern
// needs {yyyy}, {mm}, {dd} and {HH}; {MM} and {SS} default to 0. A literal "{" cannot be
// written: match such text with {*}.
//
// Path writes {*} as nothing, or as "_" where a path part would otherwise be empty, "."
// or "..". It cannot express a start finer than the pattern's fields (milliseconds with
// {start_ms}, seconds with {start_unix} or {SS}, …) or outside 2000–2199, a duration
// finer than the pattern's unit, negative or over 24 hours (nor any duration without a
// duration placeholder), Low without {stream}, a camera that is empty, ".", "..", holds a
// slash, or runs into the text around it so that the two cannot be told apart (such as a
// camera ending in "_1" before "_{start_unix}"). Without {start_unix} or {start_ms}, a
// wall-clock time that occurs twice when daylight saving time ends parses as the earlier
// instant, and a time that does not occur when it begins is not a chunk.
type Pattern struct {
	pattern string
	loc     *time.Location
	re      *regexp.Regexp
	groups  []field   // the placeholder of each capturing group of re, in order
	parts   [][]token // the pattern's path parts
	count   [numFields]int
}

var _ footage.Layout = (*Pattern)(nil)

type field int

const (
	literal field = iota
	fieldCamera
	fieldStream
	fieldYear
	fieldMonth
	fieldDay
	fieldHour
	fieldMinute
	fieldSecond
	fieldStartUnix
	fieldStartMS
	fieldDurationMS
	fieldDurationS
	fieldAny
	numFields
)

// fieldSpecs lists the placeholders in the order an error message names them.
var fieldSpecs = [numFields]struct {
	name string
	// re matches the field's text within one path part. Unbounded numbers take any digits
	// so that leading zeros and overlong numbers are refused by number, not by a
	// mismatch that hides why.
	re string
	// once marks fields that give one answer, so that a second occurrence is a mistake.
	once bool
	// variable marks fields of no fixed width: two side by side cannot be told apart.
	variable bool
}{
	fieldCamera:     {"camera", `([^/]+)`, true, true},
	fieldStream:     {"stream", `(hi|lo)`, true, false},
	fieldYear:       {"yyyy", `([0-9]{4})`, false, false},
	fieldMonth:      {"mm", `([0-9]{2})`, false, false},
	fieldDay:        {"dd", `([0-9]{2})`, false, false},
	fieldHour:       {"HH", `([0-9]{2})`, false, false},
	fieldMinute:     {"MM", `([0-9]{2})`, false, false},
	fieldSecond:     {"SS", `([0-9]{2})`, false, false},
	fieldStartUnix:  {"start_unix", `([0-9]+)`, true, true},
	fieldStartMS:    {"start_ms", `([0-9]+)`, true, true},
	fieldDurationMS: {"duration_ms", `([0-9]+)`, true, true},
	fieldDurationS:  {"duration_s", `([0-9]+)`, true, true},
	// Lazy, so that the text {*} stands for gives way to the fields around it, and a
	// path that Path wrote with {*} empty reads back the same.
	fieldAny: {"*", `[^/]*?`, false, true},
}

func (f field) String() string { return "{" + fieldSpecs[f].name + "}" }

func lookupField(name string) (field, bool) {
	for f := fieldCamera; f < numFields; f++ {
		if fieldSpecs[f].name == name {
			return f, true
		}
	}
	return literal, false
}

func knownFields() string {
	var names []string
	for f := fieldCamera; f < numFields; f++ {
		names = append(names, f.String())
	}
	return strings.Join(names, " ")
}

// token is a placeholder, or literal text.
type token struct {
	field field
	text  string
}

// NewPattern compiles pattern; loc is the recording server's time zone, in which the date
// fields are written (nil means UTC). The error says what is wrong with the pattern.
func NewPattern(pattern string, loc *time.Location) (*Pattern, error) {
	fail := func(format string, args ...any) (*Pattern, error) {
		return nil, fmt.Errorf("pattern %q: %s", pattern, fmt.Sprintf(format, args...))
	}
	switch {
	case pattern == "":
		return fail("empty")
	case strings.Contains(pattern, `\`):
		return fail(`has a backslash: separate folders with "/"`)
	case strings.HasPrefix(pattern, "/") || isVolume(pattern):
		return fail("is absolute: write it relative to the recorder's folder")
	}
	p := &Pattern{pattern: pattern, loc: orUTC(loc)}
	var re strings.Builder
	re.WriteString("^")
	for i, part := range strings.Split(pattern, "/") {
		if part == "" {
			return fail(`has an empty path part (a doubled or trailing "/")`)
		}
		if part == "." || part == ".." {
			return fail("has a %q part: write the path from the recorder's folder down", part)
		}
		tokens, err := tokenize(part)
		if err != nil {
			return fail("%v", err)
		}
		if i > 0 {
			re.WriteByte('/')
		}
		for _, t := range tokens {
			if t.field == literal {
				re.WriteString(regexp.QuoteMeta(t.text))
				continue
			}
			if fieldSpecs[t.field].once && p.count[t.field] > 0 {
				return fail("%v appears twice", t.field)
			}
			p.count[t.field]++
			re.WriteString(fieldSpecs[t.field].re)
			if t.field != fieldAny {
				p.groups = append(p.groups, t.field)
			}
		}
		p.parts = append(p.parts, tokens)
	}
	re.WriteString("$")
	has := func(f field) bool { return p.count[f] > 0 }
	absolute := has(fieldStartUnix) || has(fieldStartMS)
	switch {
	case !has(fieldCamera):
		return fail("needs {camera}")
	case has(fieldStartUnix) && has(fieldStartMS):
		return fail("has both {start_unix} and {start_ms}: keep one")
	case has(fieldDurationS) && has(fieldDurationMS):
		return fail("has both {duration_s} and {duration_ms}: keep one")
	case !absolute && !(has(fieldYear) && has(fieldMonth) && has(fieldDay) && has(fieldHour)):
		return fail("needs {start_unix}, {start_ms} or all of {yyyy}, {mm}, {dd} and {HH}")
	case !absolute && has(fieldSecond) && !has(fieldMinute):
		return fail("has {SS} but no {MM}, so the start would lack its minute")
	}
	var err error
	if p.re, err = regexp.Compile(re.String()); err != nil {
		return fail("%v", err)
	}
	return p, nil
}

// isVolume reports whether pattern starts with a Windows drive, which is as absolute as
// a leading slash.
func isVolume(pattern string) bool {
	return len(pattern) >= 2 && pattern[1] == ':' &&
		('a' <= pattern[0] && pattern[0] <= 'z' || 'A' <= pattern[0] && pattern[0] <= 'Z')
}

// tokenize cuts one path part of a pattern into literals and placeholders.
func tokenize(part string) ([]token, error) {
	var tokens []token
	for rest := part; rest != ""; {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			tokens = append(tokens, token{text: rest})
			break
		}
		if open > 0 {
			tokens = append(tokens, token{text: rest[:open]})
		}
		n := strings.IndexByte(rest[open:], '}')
		if n < 0 {
			return nil, fmt.Errorf("%q has a { without a } in the same path part", part)
		}
		name := rest[open+1 : open+n]
		f, ok := lookupField(name)
		if !ok {
			return nil, fmt.Errorf("unknown placeholder {%s}; known: %s", name, knownFields())
		}
		if k := len(tokens); k > 0 && fieldSpecs[tokens[k-1].field].variable && fieldSpecs[f].variable {
			return nil, fmt.Errorf("%v and %v need text between them, or a path cannot say where one ends", tokens[k-1].field, f)
		}
		tokens = append(tokens, token{field: f})
		rest = rest[open+n+1:]
	}
	return tokens, nil
}

// Name is the pattern.
func (p *Pattern) Name() string { return p.pattern }

// Parse returns the chunk at rel.
func (p *Pattern) Parse(rel string) (footage.Chunk, bool) {
	if !cleanRel(rel) {
		return footage.Chunk{}, false
	}
	m := p.re.FindStringSubmatchIndex(rel)
	if m == nil {
		return footage.Chunk{}, false
	}
	c := footage.Chunk{Path: rel, Stream: footage.High}
	// wall holds year, month, day, hour, minute and second; -1 where the pattern has none.
	wall := [6]int{-1, -1, -1, -1, -1, -1}
	var start time.Time
	for i, f := range p.groups {
		text := rel[m[2+2*i]:m[3+2*i]]
		switch f {
		case fieldCamera:
			if !cleanPart(text) {
				return footage.Chunk{}, false
			}
			c.Camera = text
		case fieldStream:
			c.Stream = footage.Stream(text)
		case fieldYear, fieldMonth, fieldDay, fieldHour, fieldMinute, fieldSecond:
			v, _ := digits(text, len(text))
			k := f - fieldYear
			if wall[k] >= 0 && wall[k] != v {
				return footage.Chunk{}, false
			}
			wall[k] = v
		case fieldStartUnix:
			n, ok := number(text)
			if start = time.Unix(n, 0).UTC(); !ok || !plausible(start) {
				return footage.Chunk{}, false
			}
		case fieldStartMS:
			n, ok := number(text)
			if start = time.UnixMilli(n).UTC(); !ok || !plausible(start) {
				return footage.Chunk{}, false
			}
		case fieldDurationS, fieldDurationMS:
			unit := time.Second
			if f == fieldDurationMS {
				unit = time.Millisecond
			}
			n, ok := number(text)
			if !ok || n > int64(maxDuration/unit) {
				return footage.Chunk{}, false
			}
			c.Duration = time.Duration(n) * unit
		}
	}
	y, mo, d, h, mi, s := wall[0], wall[1], wall[2], wall[3], wall[4], wall[5]
	if mo == 0 || mo > 12 || d == 0 || d > 31 || h > 23 || mi > 59 || s > 59 {
		return footage.Chunk{}, false
	}
	if !start.IsZero() {
		lt := start.In(p.loc)
		ly, lmo, ld := lt.Date()
		for k, v := range [6]int{ly, int(lmo), ld, lt.Hour(), lt.Minute(), lt.Second()} {
			if wall[k] >= 0 && wall[k] != v {
				return footage.Chunk{}, false
			}
		}
		c.Start = start
		return c, true
	}
	if !validDate(y, mo, d) {
		return footage.Chunk{}, false
	}
	var ok bool
	if c.Start, ok = wallInstant(y, mo, d, h, max(mi, 0), max(s, 0), p.loc); !ok || !plausible(c.Start) {
		return footage.Chunk{}, false
	}
	return c, true
}

// wallInstant returns the earliest instant at which a clock in loc reads the given
// time, and false when it never does (the hour skipped when daylight saving time begins).
func wallInstant(y, mo, d, h, mi, s int, loc *time.Location) (time.Time, bool) {
	asUTC := time.Date(y, time.Month(mo), d, h, mi, s, 0, time.UTC)
	guess := time.Date(y, time.Month(mo), d, h, mi, s, 0, loc)
	var best time.Time
	// A clock change happens at most once around a given day in any zone in use, so the
	// offsets a day before and after are the only ones the wall time can have.
	for _, probe := range [3]time.Time{guess.Add(-24 * time.Hour), guess, guess.Add(24 * time.Hour)} {
		_, offset := probe.Zone()
		t := asUTC.Add(-time.Duration(offset) * time.Second)
		lt := t.In(loc)
		ly, lmo, ld := lt.Date()
		if ly == y && int(lmo) == mo && ld == d && lt.Hour() == h && lt.Minute() == mi && lt.Second() == s &&
			(best.IsZero() || t.Before(best)) {
			best = t
		}
	}
	return best.UTC(), !best.IsZero()
}

// Path returns where the pattern puts c.
func (p *Pattern) Path(c footage.Chunk) string {
	b := make([]byte, 0, len(p.pattern)+len(c.Camera)+32)
	local := c.Start.In(p.loc)
	for i, part := range p.parts {
		if i > 0 {
			b = append(b, '/')
		}
		mark := len(b)
		b = p.appendPart(b, part, c, local, "")
		if !cleanPart(string(b[mark:])) {
			b = p.appendPart(b[:mark], part, c, local, "_")
		}
	}
	return string(b)
}

// appendPart writes one part of the pattern for c, with wildcard for each {*}.
func (p *Pattern) appendPart(b []byte, part []token, c footage.Chunk, local time.Time, wildcard string) []byte {
	for _, t := range part {
		switch t.field {
		case literal:
			b = append(b, t.text...)
		case fieldCamera:
			b = append(b, c.Camera...)
		case fieldStream:
			if c.Stream == footage.Low {
				b = append(b, footage.Low...)
			} else {
				b = append(b, footage.High...)
			}
		case fieldYear:
			b = appendPadded(b, local.Year(), 4)
		case fieldMonth:
			b = appendPadded(b, int(local.Month()), 2)
		case fieldDay:
			b = appendPadded(b, local.Day(), 2)
		case fieldHour:
			b = appendPadded(b, local.Hour(), 2)
		case fieldMinute:
			b = appendPadded(b, local.Minute(), 2)
		case fieldSecond:
			b = appendPadded(b, local.Second(), 2)
		case fieldStartUnix:
			b = strconv.AppendInt(b, c.Start.Unix(), 10)
		case fieldStartMS:
			b = strconv.AppendInt(b, c.Start.UnixMilli(), 10)
		case fieldDurationMS:
			b = strconv.AppendInt(b, c.Duration.Milliseconds(), 10)
		case fieldDurationS:
			b = strconv.AppendInt(b, int64(c.Duration/time.Second), 10)
		case fieldAny:
			b = append(b, wildcard...)
		}
	}
	return b
}
