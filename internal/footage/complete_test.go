package footage

import (
	"testing"
	"time"
)

func TestCompleteUntil(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)
	at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }
	chunk := func(cam string, start, dur int) File {
		return File{Chunk: Chunk{Path: cam + "/" + at(start).Format(time.TimeOnly), Camera: cam, Stream: High, Start: at(start), Duration: time.Duration(dur) * time.Second}}
	}
	cases := []struct {
		name  string
		files []File
		done  []bool
		want  map[string]time.Time // by camera; absent: no entry
	}{
		{"all done", []File{chunk("a", 0, 10), chunk("a", 10, 10)}, []bool{true, true}, map[string]time.Time{"a": at(20)}},
		{"gap in recording", []File{chunk("a", 0, 10), chunk("a", 100, 10)}, []bool{true, true}, map[string]time.Time{"a": at(110)}},
		{"hole in the backup", []File{chunk("a", 0, 10), chunk("a", 10, 10), chunk("a", 20, 10)}, []bool{true, false, true}, map[string]time.Time{"a": at(10)}},
		{"first missing", []File{chunk("a", 0, 10), chunk("a", 10, 10)}, []bool{false, true}, map[string]time.Time{}},
		{"hole after a gap stops at the hole's start", []File{chunk("a", 0, 10), chunk("a", 100, 10)}, []bool{true, false}, map[string]time.Time{"a": at(100)}},
		{"cameras apart", []File{chunk("a", 0, 10), chunk("b", 0, 10), chunk("a", 10, 10), chunk("b", 10, 10)}, []bool{true, true, true, false}, map[string]time.Time{"a": at(20), "b": at(10)}},
		{"overlap is not claimed", []File{chunk("a", 0, 15), chunk("a", 10, 10)}, []bool{true, false}, map[string]time.Time{"a": at(10)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			done := map[string]bool{}
			for i, f := range c.files {
				done[f.Path] = c.done[i]
			}
			got := CompleteUntil(c.files, func(f File) bool { return done[f.Path] })
			if len(got) != len(c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
			for cam, w := range c.want {
				if g := got[Key{cam, High}]; !g.Equal(w) {
					t.Fatalf("%s: got %v, want %v", cam, g, w)
				}
			}
		})
	}
	// Unknown durations end at the file's modification time.
	f := chunk("a", 0, 0)
	f.ModTime = at(9)
	if got := CompleteUntil([]File{f}, func(File) bool { return true }); !got[Key{"a", High}].Equal(at(9)) {
		t.Fatalf("unknown duration: %v", got)
	}
	if o, ok := Oldest(map[Key]time.Time{{"a", High}: at(5), {"b", Low}: at(3)}); !ok || !o.Equal(at(3)) {
		t.Fatalf("oldest: %v %v", o, ok)
	}
}
