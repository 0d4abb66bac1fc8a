// Package footage backs up the recordings of a video management system: it finds the
// chunks a recorder writes (through a Layout), copies them to backup storages oldest
// first, and keeps, per camera, stream and storage, the time up to which every chunk is
// safely backed up.
package footage

import (
	"fmt"
	"time"
)

// Stream is the quality of a camera's recording.
type Stream string

// The streams a recorder keeps. Recorders that keep one stream call it High.
const (
	High Stream = "hi"
	Low  Stream = "lo"
)

// ParseStream accepts hi or lo.
func ParseStream(s string) (Stream, error) {
	switch Stream(s) {
	case High, Low:
		return Stream(s), nil
	}
	return "", fmt.Errorf("stream %q: use hi or lo", s)
}

// Chunk is one file of recorded footage.
type Chunk struct {
	// Path is where the chunk is, relative to the recorder's root, slash-separated. A
	// backup keeps it, so that the VMS can play footage from the backup storage.
	Path   string
	Camera string
	Stream Stream
	Start  time.Time
	// Duration is 0 when the layout does not record it.
	Duration time.Duration
}

// End is when the chunk's footage ends, or its start when the duration is unknown.
func (c Chunk) End() time.Time { return c.Start.Add(c.Duration) }

// Before orders chunks oldest first; chunks that start together are ordered by camera,
// stream and path, so the order is the same on every run.
func (c Chunk) Before(d Chunk) bool {
	if !c.Start.Equal(d.Start) {
		return c.Start.Before(d.Start)
	}
	if c.Camera != d.Camera {
		return c.Camera < d.Camera
	}
	if c.Stream != d.Stream {
		return c.Stream < d.Stream
	}
	return c.Path < d.Path
}

// Layout is one recorder's way of naming chunks. The implementations live in
// footage/layout.
type Layout interface {
	// Name is what the operator calls the layout: "nx", "frigate", or the pattern.
	Name() string
	// Parse returns the chunk at path rel (relative to the recorder's root,
	// slash-separated), and false when rel is not a chunk of this layout. It never
	// guesses: a path that matches only partly is not a chunk.
	Parse(rel string) (Chunk, bool)
	// Path returns where the layout keeps chunk c, relative to the root: Parse(Path(c))
	// gives c back.
	Path(c Chunk) string
}

// NamedOnClose is a Layout whose recorder gives a chunk a name of its own only once it has
// closed it (Nx renames <start>.mkv to <start>_<duration>.mkv). Such a chunk is closed as
// soon as it has that name, without waiting for its file to settle: what real-time backup
// needs to copy it within a second.
type NamedOnClose interface {
	ClosedByName(c Chunk) bool
}

// closedByName reports whether l names c as a closed chunk.
func closedByName(l Layout, c Chunk) bool {
	n, ok := l.(NamedOnClose)
	return ok && n.ClosedByName(c)
}
