package footage

import "time"

// Key names one series of footage: one stream of one camera.
type Key struct {
	Camera string
	Stream Stream
}

// KeyOf is the series a chunk belongs to.
func KeyOf(c Chunk) Key { return Key{c.Camera, c.Stream} }

func (k Key) String() string { return k.Camera + "/" + string(k.Stream) }

// CompleteUntil says, for each series in files (oldest first, still-recording chunks
// included), the time up to which every one of its chunks is backed up, by done: the
// start of its oldest chunk not done, or, when all are, the end of its newest. Gaps
// between chunks, when the camera did not record, do not hold it back; a chunk that is
// missing or still being recorded does. A series with no chunk done has no entry.
func CompleteUntil(files []File, done func(File) bool) map[Key]time.Time {
	items := map[Key][]item{}
	for i, f := range files {
		k := KeyOf(f.Chunk)
		items[k] = append(items[k], item{start: f.Start, end: f.end(), file: i})
	}
	until := map[Key]time.Time{}
	for k, its := range items {
		var c cursor
		if u := c.advance(its, func(it item) bool { return done(files[it.file]) }); !u.IsZero() {
			until[k] = u
		}
	}
	return until
}

// cursor works out a series' complete-until as its chunks get backed up, without going
// over those it has already passed: a run flushes its index every few dozen chunks, and
// an archive has hundreds of thousands.
type cursor struct {
	next  int       // items before it are done
	until time.Time // the latest end among them
}

// advance moves past the items (oldest first) that are done now and returns the
// complete-until, zero when no item is done. Items it passed must stay done.
func (c *cursor) advance(items []item, done func(item) bool) time.Time {
	for c.next < len(items) && done(items[c.next]) {
		if items[c.next].end.After(c.until) {
			c.until = items[c.next].end
		}
		c.next++
	}
	switch {
	case c.next == 0:
		return time.Time{}
	case c.next < len(items):
		// Up to this chunk's start, all is there.
		return items[c.next].start
	}
	return c.until
}

// Oldest is the system-wide figure: the earliest of the times, which holds for every
// series; ok is false when there is none.
func Oldest(until map[Key]time.Time) (t time.Time, ok bool) {
	for _, u := range until {
		if !ok || u.Before(t) {
			t, ok = u, true
		}
	}
	return t, ok
}
