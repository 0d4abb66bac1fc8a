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
	until := map[Key]time.Time{}
	blocked := map[Key]bool{}
	for _, f := range files {
		k := KeyOf(f.Chunk)
		if blocked[k] {
			continue
		}
		if !done(f) {
			blocked[k] = true
			if _, any := until[k]; any {
				// Up to this chunk's start, all is there.
				until[k] = f.Start
			}
			continue
		}
		if end := f.end(); end.After(until[k]) {
			until[k] = end
		}
	}
	return until
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
