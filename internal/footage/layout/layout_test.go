package layout_test

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the DST cases must not depend on the machine's zone files

	"github.com/vigil-backup/vigil/internal/footage"
	"github.com/vigil-backup/vigil/internal/footage/layout"
)

func zone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("LoadLocation(%q): %v", name, err)
	}
	return loc
}

func ms(y int, mo time.Month, d, h, mi, s, milli int) time.Time {
	return time.Date(y, mo, d, h, mi, s, milli*1e6, time.UTC)
}

type parseCase struct {
	rel  string
	want footage.Chunk // Path is filled in from rel
}

// checkParse runs the valid cases, which must give exactly want (starts in UTC), and the
// invalid ones, which must not parse.
func checkParse(t *testing.T, l footage.Layout, valid []parseCase, invalid []string) {
	t.Helper()
	for _, c := range valid {
		got, ok := l.Parse(c.rel)
		want := c.want
		want.Path = c.rel
		if !ok || got != want {
			t.Fatalf("%s: Parse(%q) = %+v, %v; want %+v, true", l.Name(), c.rel, got, ok, want)
		}
	}
	for _, rel := range invalid {
		if got, ok := l.Parse(rel); ok {
			t.Fatalf("%s: Parse(%q) = %+v, true; want false", l.Name(), rel, got)
		}
	}
}

// checkRoundTrip checks that c, with Path set to where the layout puts it, reads back
// as itself.
func checkRoundTrip(t *testing.T, l footage.Layout, c footage.Chunk) {
	t.Helper()
	c.Path = l.Path(c)
	got, ok := l.Parse(c.Path)
	if !ok || got != c {
		t.Fatalf("%s: Parse(Path(c)) = %+v, %v; want %+v", l.Name(), got, ok, c)
	}
}

var cameras = []string{
	"e0ab1234cdef",
	"{5f3c9a7e-0b1d-4c2e-8f6a-9b8c7d6e5f40}",
	"front door",
	"cam_1",
	"hi-lo",
	"x.y",
	"Einfahrt-Süd",
	"1792888200",
	"..a",
}

// randomStart is a start within 2000–2199, truncated to precision.
func randomStart(r *rand.Rand, precision time.Duration) time.Time {
	lo, hi := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
	return lo.Add(time.Duration(r.Int64N(int64(hi.Sub(lo))))).Truncate(precision)
}

// randomDuration is up to 24 hours in whole units, often a typical chunk length, and
// sometimes unknown.
func randomDuration(r *rand.Rand, unit time.Duration) time.Duration {
	switch r.IntN(4) {
	case 0:
		return 0
	case 1:
		return (time.Duration(r.Int64N(int64(time.Minute))) + 10*time.Second).Truncate(unit)
	}
	return time.Duration(r.Int64N(int64(24*time.Hour/unit)+1)) * unit
}

// transitionStarts are starts every 10 minutes around Berlin's clock changes in 2026,
// and over the leap day of 2028.
func transitionStarts() []time.Time {
	var starts []time.Time
	for _, day := range []time.Time{
		time.Date(2026, 3, 28, 22, 0, 0, 0, time.UTC),
		time.Date(2026, 10, 24, 22, 0, 0, 0, time.UTC),
		time.Date(2028, 2, 28, 22, 0, 0, 0, time.UTC),
	} {
		for i := range 6 * 30 {
			starts = append(starts, day.Add(time.Duration(i)*10*time.Minute))
		}
	}
	return starts
}

func TestNames(t *testing.T) {
	p, err := layout.NewPattern("{camera}/{start_unix}.mp4", nil)
	if err != nil {
		t.Fatalf("NewPattern: %v", err)
	}
	for l, want := range map[footage.Layout]string{layout.NewNx(nil): "nx", layout.NewFrigate(): "frigate", p: "{camera}/{start_unix}.mp4"} {
		if got := l.Name(); got != want {
			t.Fatalf("Name() = %q, want %q", got, want)
		}
	}
}

func TestByName(t *testing.T) {
	berlin := zone(t, "Europe/Berlin")
	nx, err := layout.ByName("nx", berlin)
	if err != nil {
		t.Fatalf("ByName(nx): %v", err)
	}
	// The zone must reach the layout: 09:30Z lies in Berlin's 10 o'clock folder.
	if _, ok := nx.Parse("hi_quality/cam/2026/01/15/10/1768469400000.mkv"); !ok {
		t.Fatalf("ByName(nx, Berlin) does not read Berlin's folders")
	}
	if l, err := layout.ByName("frigate", berlin); err != nil || l.Name() != "frigate" {
		t.Fatalf("ByName(frigate) = %v, %v", l, err)
	}
	const pattern = "{camera}/{start_unix}.mp4"
	if l, err := layout.ByName(pattern, berlin); err != nil || l.Name() != pattern {
		t.Fatalf("ByName(%q) = %v, %v", pattern, l, err)
	}
	for _, name := range []string{"", "NX", "nx ", "milestone", "camera/start_unix.mp4"} {
		_, err := layout.ByName(name, berlin)
		if err == nil || !strings.Contains(err.Error(), "nx, frigate, or a pattern") {
			t.Fatalf("ByName(%q) = %v, want an error listing the choices", name, err)
		}
	}
	if _, err := layout.ByName("{cam}/{start_unix}.mp4", berlin); err == nil || !strings.Contains(err.Error(), "unknown placeholder {cam}") {
		t.Fatalf("ByName of a bad pattern = %v, want the pattern's error", err)
	}
}

func TestNxParse(t *testing.T) {
	const server = "{b4d2e0b5-6c1f-4d8a-9e3b-7a2c1d0e9f8b}"
	valid := []parseCase{
		{"hi_quality/e0ab1234cdef/2026/01/15/10/1768469400000_60000.mkv",
			footage.Chunk{Camera: "e0ab1234cdef", Stream: footage.High, Start: ms(2026, 1, 15, 9, 30, 0, 0), Duration: time.Minute}},
		{"low_quality/e0ab1234cdef/2026/07/01/23/1782943199999_1.mkv",
			footage.Chunk{Camera: "e0ab1234cdef", Stream: footage.Low, Start: ms(2026, 7, 1, 21, 59, 59, 999), Duration: time.Millisecond}},
		{server + "/hi_quality/{5f3c9a7e-0b1d-4c2e-8f6a-9b8c7d6e5f40}/2027/01/01/00/1798759800000_59999.mkv",
			footage.Chunk{Camera: "{5f3c9a7e-0b1d-4c2e-8f6a-9b8c7d6e5f40}", Stream: footage.High, Start: ms(2026, 12, 31, 23, 30, 0, 0), Duration: 59999 * time.Millisecond}},
		{"b4d2e0b56c1f4d8a/low_quality/cam 1/2026/01/15/10/1768469400000.mkv",
			footage.Chunk{Camera: "cam 1", Stream: footage.Low, Start: ms(2026, 1, 15, 9, 30, 0, 0)}},
		{"hi_quality/cam/2026/01/15/10/1768469400000.mkv",
			footage.Chunk{Camera: "cam", Stream: footage.High, Start: ms(2026, 1, 15, 9, 30, 0, 0)}},
		{"hi_quality/cam/2026/01/15/10/1768469400000_0.mkv",
			footage.Chunk{Camera: "cam", Stream: footage.High, Start: ms(2026, 1, 15, 9, 30, 0, 0)}},
		{"hi_quality/cam/2026/01/15/10/1768469400000_86400000.mkv",
			footage.Chunk{Camera: "cam", Stream: footage.High, Start: ms(2026, 1, 15, 9, 30, 0, 0), Duration: 24 * time.Hour}},
		// When summer time ends, 02:00–03:00 happens twice and both hours share a folder.
		{"hi_quality/cam/2026/10/25/02/1792888200000_60000.mkv",
			footage.Chunk{Camera: "cam", Stream: footage.High, Start: ms(2026, 10, 25, 0, 30, 0, 0), Duration: time.Minute}},
		{"hi_quality/cam/2026/10/25/02/1792889999999_60000.mkv",
			footage.Chunk{Camera: "cam", Stream: footage.High, Start: ms(2026, 10, 25, 0, 59, 59, 999), Duration: time.Minute}},
		{"hi_quality/cam/2026/10/25/02/1792890000000_60000.mkv",
			footage.Chunk{Camera: "cam", Stream: footage.High, Start: ms(2026, 10, 25, 1, 0, 0, 0), Duration: time.Minute}},
		{"hi_quality/cam/2026/10/25/02/1792891800000_60000.mkv",
			footage.Chunk{Camera: "cam", Stream: footage.High, Start: ms(2026, 10, 25, 1, 30, 0, 0), Duration: time.Minute}},
		// When it begins, 01:59:59.999 is followed by 03:00.
		{"hi_quality/cam/2026/03/29/01/1774745999999_60000.mkv",
			footage.Chunk{Camera: "cam", Stream: footage.High, Start: ms(2026, 3, 29, 0, 59, 59, 999), Duration: time.Minute}},
		{"hi_quality/cam/2026/03/29/03/1774746000000_60000.mkv",
			footage.Chunk{Camera: "cam", Stream: footage.High, Start: ms(2026, 3, 29, 1, 0, 0, 0), Duration: time.Minute}},
		{"hi_quality/cam/2028/02/29/13/1835438400000_60000.mkv",
			footage.Chunk{Camera: "cam", Stream: footage.High, Start: ms(2028, 2, 29, 12, 0, 0, 0), Duration: time.Minute}},
		{"hi_quality/cam/2199/12/31/23/7258114799999.mkv",
			footage.Chunk{Camera: "cam", Stream: footage.High, Start: ms(2199, 12, 31, 22, 59, 59, 999)}},
	}
	invalid := []string{
		"",
		"hi_quality/cam/2026/01/15/09/1768469400000_60000.mkv", // the UTC hour, not Berlin's
		"hi_quality/cam/2026/01/16/10/1768469400000_60000.mkv",
		"hi_quality/cam/2026/02/15/10/1768469400000_60000.mkv",
		"hi_quality/cam/2025/01/15/10/1768469400000_60000.mkv",
		"hi_quality/cam/2026/03/29/02/1774746000000_60000.mkv", // an hour that did not happen
		"hi_quality/cam/2026/10/25/03/1792891800000_60000.mkv",
		"hi_quality/cam/2026/10/25/01/1792888200000_60000.mkv",
		"hi_quality/cam/2026/1/15/10/1768469400000_60000.mkv",
		"hi_quality/cam/26/01/15/10/1768469400000_60000.mkv",
		"hi_quality/cam/2026/01/15/1O/1768469400000_60000.mkv",
		"hi_quality/cam/2026/01/15/10/abc.mkv",
		"hi_quality/cam/2026/01/15/10/1768469400000x.mkv",
		"hi_quality/cam/2026/01/15/10/+1768469400000.mkv",
		"hi_quality/cam/2026/01/15/10/-1768469400000.mkv",
		"hi_quality/cam/2026/01/15/10/01768469400000.mkv",
		"hi_quality/cam/2026/01/15/10/1768469400000_-60000.mkv",
		"hi_quality/cam/2026/01/15/10/1768469400000_060000.mkv",
		"hi_quality/cam/2026/01/15/10/1768469400000_6e4.mkv",
		"hi_quality/cam/2026/01/15/10/1768469400000_.mkv",
		"hi_quality/cam/2026/01/15/10/1768469400000_60000_1.mkv",
		"hi_quality/cam/2026/01/15/10/_60000.mkv",
		"hi_quality/cam/2026/01/15/10/1768469400000_86400001.mkv",
		"hi_quality/cam/2026/01/15/10/1768469400000_99999999999999999999.mkv",
		"hi_quality/cam/2026/01/15/10/99999999999999999999_60000.mkv",
		"hi_quality/cam/1999/12/31/23/946681199999_60000.mkv",
		"hi_quality/cam/2200/01/01/01/7258118400000_60000.mkv",
		"hi_quality/cam/1970/01/01/01/0.mkv",
		"hi_quality/cam/2026/01/15/10/1768469400000_60000.mp4",
		"hi_quality/cam/2026/01/15/10/1768469400000_60000.MKV",
		"hi_quality/cam/2026/01/15/10/1768469400000_60000.mkv.tmp",
		"hi_quality/cam/2026/01/15/10/1768469400000_60000",
		"hi_quality/cam/2026/01/15/10/.mkv",
		"hi_quality/cam/2026/01/15/10/1768469400000_60000.mkv/x.mkv",
		"hi_quality/cam/2026/01/15/10/extra/1768469400000_60000.mkv",
		"a/b/hi_quality/cam/2026/01/15/10/1768469400000_60000.mkv",
		"hi_quality/2026/01/15/10/1768469400000_60000.mkv",
		"mid_quality/cam/2026/01/15/10/1768469400000_60000.mkv",
		"Hi_Quality/cam/2026/01/15/10/1768469400000_60000.mkv",
		"server/cam/hi_quality/2026/01/15/10/1768469400000_60000.mkv",
		"hi_quality/../2026/01/15/10/1768469400000_60000.mkv",
		"hi_quality/./2026/01/15/10/1768469400000_60000.mkv",
		"../hi_quality/cam/2026/01/15/10/1768469400000_60000.mkv",
		"./hi_quality/cam/2026/01/15/10/1768469400000_60000.mkv",
		"hi_quality//2026/01/15/10/1768469400000_60000.mkv",
		"/hi_quality/cam/2026/01/15/10/1768469400000_60000.mkv",
		"hi_quality/cam/2026/01/15/10/1768469400000_60000.mkv/",
		"hi_quality/cam/2026/01/15/10//1768469400000_60000.mkv",
		`hi_quality\cam\2026\01\15\10\1768469400000_60000.mkv`,
	}
	checkParse(t, layout.NewNx(zone(t, "Europe/Berlin")), valid, invalid)
}

func TestNxPathLeavesOutTheServer(t *testing.T) {
	nx := layout.NewNx(zone(t, "Europe/Berlin"))
	c, ok := nx.Parse("srv/low_quality/cam/2026/01/15/10/1768469400000_60000.mkv")
	if !ok {
		t.Fatalf("Parse: false")
	}
	if got, want := nx.Path(c), "low_quality/cam/2026/01/15/10/1768469400000_60000.mkv"; got != want {
		t.Fatalf("Path = %q, want %q", got, want)
	}
	c.Duration = 0
	if got, want := nx.Path(c), "low_quality/cam/2026/01/15/10/1768469400000.mkv"; got != want {
		t.Fatalf("Path with an unknown duration = %q, want %q", got, want)
	}
}

func TestNxRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, name := range []string{"UTC", "Europe/Berlin", "America/St_Johns", "Australia/Lord_Howe", "Asia/Kathmandu", "Pacific/Apia"} {
		nx := layout.NewNx(zone(t, name))
		starts := transitionStarts()
		for range 5000 {
			starts = append(starts, randomStart(r, time.Millisecond))
		}
		for _, start := range starts {
			stream := footage.High
			if r.IntN(2) == 0 {
				stream = footage.Low
			}
			checkRoundTrip(t, nx, footage.Chunk{
				Camera:   cameras[r.IntN(len(cameras))],
				Stream:   stream,
				Start:    start,
				Duration: randomDuration(r, time.Millisecond),
			})
		}
	}
}

func TestFrigateParse(t *testing.T) {
	valid := []parseCase{
		{"recordings/2026-11-22/04/front_door/05.09.mp4",
			footage.Chunk{Camera: "front_door", Stream: footage.High, Start: ms(2026, 11, 22, 4, 5, 9, 0)}},
		{"recordings/2026-01-01/00/Einfahrt-Süd/00.00.mp4",
			footage.Chunk{Camera: "Einfahrt-Süd", Stream: footage.High, Start: ms(2026, 1, 1, 0, 0, 0, 0)}},
		{"recordings/2028-02-29/23/yard/59.59.mp4",
			footage.Chunk{Camera: "yard", Stream: footage.High, Start: ms(2028, 2, 29, 23, 59, 59, 0)}},
		{"recordings/2000-01-01/00/yard/00.00.mp4",
			footage.Chunk{Camera: "yard", Stream: footage.High, Start: ms(2000, 1, 1, 0, 0, 0, 0)}},
		{"recordings/2199-12-31/23/yard/59.59.mp4",
			footage.Chunk{Camera: "yard", Stream: footage.High, Start: ms(2199, 12, 31, 23, 59, 59, 0)}},
	}
	invalid := []string{
		"",
		"recordings/2027-02-29/04/cam/05.09.mp4",
		"recordings/2100-02-29/04/cam/05.09.mp4",
		"recordings/2026-04-31/04/cam/05.09.mp4",
		"recordings/2026-13-01/04/cam/05.09.mp4",
		"recordings/2026-00-10/04/cam/05.09.mp4",
		"recordings/2026-01-00/04/cam/05.09.mp4",
		"recordings/1999-12-31/23/cam/59.59.mp4",
		"recordings/2200-01-01/00/cam/00.00.mp4",
		"recordings/2026-11-22/24/cam/05.09.mp4",
		"recordings/2026-11-22/4/cam/05.09.mp4",
		"recordings/2026-11-22/04/cam/60.09.mp4",
		"recordings/2026-11-22/04/cam/05.60.mp4",
		"recordings/2026-11-22/04/cam/5.09.mp4",
		"recordings/2026-11-22/04/cam/05:09.mp4",
		"recordings/2026-11-22/04/cam/05.09.mkv",
		"recordings/2026-11-22/04/cam/05.09.mp4.part",
		"recordings/2026-11-22/04/cam/05.09",
		"recordings/2026-11-22/04/cam/-5.09.mp4",
		"recordings/2026-11-22/04/cam/+5.09.mp4",
		"recordings/2026-1-22/04/cam/05.09.mp4",
		"recordings/2026_11_22/04/cam/05.09.mp4",
		"recordings/2026/11/22/04/cam/05.09.mp4",
		"recordings/20261122/04/cam/05.09.mp4",
		"Recordings/2026-11-22/04/cam/05.09.mp4",
		"clips/2026-11-22/04/cam/05.09.mp4",
		"2026-11-22/04/cam/05.09.mp4",
		"frigate/recordings/2026-11-22/04/cam/05.09.mp4",
		"recordings/2026-11-22/04/cam/sub/05.09.mp4",
		"recordings/2026-11-22/04/05.09.mp4",
		"recordings/2026-11-22/04//05.09.mp4",
		"recordings/2026-11-22/04/../05.09.mp4",
		"recordings/2026-11-22/04/./05.09.mp4",
		"/recordings/2026-11-22/04/cam/05.09.mp4",
		"recordings/2026-11-22/04/cam/05.09.mp4/",
	}
	checkParse(t, layout.NewFrigate(), valid, invalid)
}

func TestFrigateRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	fr := layout.NewFrigate()
	starts := transitionStarts()
	for range 20000 {
		starts = append(starts, randomStart(r, time.Second))
	}
	for _, start := range starts {
		checkRoundTrip(t, fr, footage.Chunk{Camera: cameras[r.IntN(len(cameras))], Stream: footage.High, Start: start})
	}
}

func TestPatternParse(t *testing.T) {
	berlin := zone(t, "Europe/Berlin")
	cases := []struct {
		pattern string
		valid   []parseCase
		invalid []string
	}{
		{
			pattern: "{camera}/{yyyy}-{mm}-{dd}/{HH}/{start_unix}.mp4",
			valid: []parseCase{
				{"front door/2026-01-15/10/1768469400.mp4",
					footage.Chunk{Camera: "front door", Stream: footage.High, Start: ms(2026, 1, 15, 9, 30, 0, 0)}},
				{"cam/2026-10-25/02/1792888200.mp4",
					footage.Chunk{Camera: "cam", Stream: footage.High, Start: ms(2026, 10, 25, 0, 30, 0, 0)}},
				{"cam/2026-10-25/02/1792891800.mp4",
					footage.Chunk{Camera: "cam", Stream: footage.High, Start: ms(2026, 10, 25, 1, 30, 0, 0)}},
				{"cam/2026-03-29/03/1774746000.mp4",
					footage.Chunk{Camera: "cam", Stream: footage.High, Start: ms(2026, 3, 29, 1, 0, 0, 0)}},
				{"cam/2028-02-29/13/1835438400.mp4",
					footage.Chunk{Camera: "cam", Stream: footage.High, Start: ms(2028, 2, 29, 12, 0, 0, 0)}},
			},
			invalid: []string{
				"cam/2026-01-15/09/1768469400.mp4",
				"cam/2026-03-29/02/1774746000.mp4",
				"cam/2026-01-15/10/01768469400.mp4",
				"cam/2026-01-15/10/1768469400000.mp4",
				"cam/2026-01-15/10/1768469400.mp4.tmp",
				"cam/2026-01-15/10/1768469400.MP4",
				"cam/2026-01-15/10/1768469400xmp4",
				"cam/extra/2026-01-15/10/1768469400.mp4",
				"../2026-01-15/10/1768469400.mp4",
				"./2026-01-15/10/1768469400.mp4",
				"/2026-01-15/10/1768469400.mp4",
				"cam/2026-1-15/10/1768469400.mp4",
			},
		},
		{
			pattern: "{camera}/{stream}/{start_ms}_{duration_ms}.mkv",
			valid: []parseCase{
				{"cam/lo/1782943199999_1500.mkv",
					footage.Chunk{Camera: "cam", Stream: footage.Low, Start: ms(2026, 7, 1, 21, 59, 59, 999), Duration: 1500 * time.Millisecond}},
				{"cam/hi/1782943199999_0.mkv",
					footage.Chunk{Camera: "cam", Stream: footage.High, Start: ms(2026, 7, 1, 21, 59, 59, 999)}},
			},
			invalid: []string{
				"cam/mid/1782943199999_1500.mkv",
				"cam/hi_quality/1782943199999_1500.mkv",
				"cam/HI/1782943199999_1500.mkv",
				"cam/lo/1782943199999_86400001.mkv",
				"cam/lo/946681199999_1500.mkv",
				"cam/lo/1782943199999_-1.mkv",
				"cam/lo/1782943199999.mkv",
				"cam/lo/_1500.mkv",
			},
		},
		{
			// Without an absolute start the date fields give it, in Berlin time.
			pattern: "rec/{yyyy}/{yyyy}{mm}{dd}/{camera}_{stream}-{HH}h{MM}m{SS}s_{duration_s}.{*}.mp4",
			valid: []parseCase{
				{"rec/2026/20260115/cam_1_hi-10h30m00s_60.x.mp4",
					footage.Chunk{Camera: "cam_1", Stream: footage.High, Start: ms(2026, 1, 15, 9, 30, 0, 0), Duration: time.Minute}},
				{"rec/2026/20260115/cam_lo-10h30m05s_0..mp4",
					footage.Chunk{Camera: "cam", Stream: footage.Low, Start: ms(2026, 1, 15, 9, 30, 5, 0)}},
				{"rec/2028/20280229/cam_lo-13h00m00s_86400.a.b.mp4",
					footage.Chunk{Camera: "cam", Stream: footage.Low, Start: ms(2028, 2, 29, 12, 0, 0, 0), Duration: 24 * time.Hour}},
				// 02:30 happens twice: the earlier instant, in summer time, is the one.
				{"rec/2026/20261025/cam_hi-02h30m00s_60.x.mp4",
					footage.Chunk{Camera: "cam", Stream: footage.High, Start: ms(2026, 10, 25, 0, 30, 0, 0), Duration: time.Minute}},
				{"rec/2026/20260329/cam_hi-03h00m00s_60.x.mp4",
					footage.Chunk{Camera: "cam", Stream: footage.High, Start: ms(2026, 3, 29, 1, 0, 0, 0), Duration: time.Minute}},
			},
			invalid: []string{
				"rec/2026/20260329/cam_hi-02h30m00s_60.x.mp4", // never happened in Berlin
				"rec/2025/20260115/cam_hi-10h30m00s_60.x.mp4",
				"rec/2027/20270229/cam_hi-10h30m00s_60.x.mp4",
				"rec/2026/20261301/cam_hi-10h30m00s_60.x.mp4",
				"rec/2026/20260115/cam_hi-24h30m00s_60.x.mp4",
				"rec/2026/20260115/cam_hi-10h60m00s_60.x.mp4",
				"rec/2026/20260115/cam_hi-10h30m60s_60.x.mp4",
				"rec/2026/20260115/cam_hi-10h30m00s_86401.x.mp4",
				"rec/2026/20260115/cam_hi-10h30m00s_60.x/y.mp4",
				"rec/2026/20260115/_hi-10h30m00s_60.x.mp4",
				"rec/2026/20260115/.._hi-10h30m00s_60.x.mp4",
				"rec/2026/20260115/cam_hi-10h30m00s_60.mp4",
				"rec/1999/19991231/cam_hi-10h30m00s_60.x.mp4",
			},
		},
		{
			// Regular-expression characters in the pattern are literal.
			pattern: "rec+(1)/{*}/{camera}/[{start_unix}].mp4",
			valid: []parseCase{
				{"rec+(1)/{b4d2e0b5}/cam/[1768469400].mp4",
					footage.Chunk{Camera: "cam", Stream: footage.High, Start: ms(2026, 1, 15, 9, 30, 0, 0)}},
			},
			invalid: []string{
				"recc(1)/x/cam/[1768469400].mp4",
				"rec+(1)/x/cam/[1768469400]xmp4",
				"rec+1/x/cam/[1768469400].mp4",
				"rec+(1)//cam/[1768469400].mp4",
				"rec+(1)/../cam/[1768469400].mp4",
			},
		},
		{
			// A camera sharing its part with other fields takes all it can.
			pattern: "{camera}_{start_unix}.mp4",
			valid: []parseCase{
				{"front_door_1_1768469400.mp4",
					footage.Chunk{Camera: "front_door_1", Stream: footage.High, Start: ms(2026, 1, 15, 9, 30, 0, 0)}},
			},
			invalid: []string{"_1768469400.mp4", "cam_.mp4", "cam.mp4"},
		},
		{
			pattern: "{camera}/{yyyy}{mm}{dd}{HH}.ts",
			valid: []parseCase{
				{"cam/2026011510.ts",
					footage.Chunk{Camera: "cam", Stream: footage.High, Start: ms(2026, 1, 15, 9, 0, 0, 0)}},
			},
			invalid: []string{"cam/202601151.ts", "cam/20260115100.ts"},
		},
	}
	for _, c := range cases {
		p, err := layout.NewPattern(c.pattern, berlin)
		if err != nil {
			t.Fatalf("NewPattern(%q): %v", c.pattern, err)
		}
		checkParse(t, p, c.valid, c.invalid)
	}
}

func TestPatternPath(t *testing.T) {
	berlin := zone(t, "Europe/Berlin")
	c := footage.Chunk{Camera: "cam", Stream: footage.Low, Start: ms(2026, 1, 15, 9, 30, 5, 250), Duration: 1500 * time.Millisecond}
	for pattern, want := range map[string]string{
		"{camera}/{yyyy}-{mm}-{dd}/{HH}/{start_unix}.mp4":      "cam/2026-01-15/10/1768469405.mp4",
		"{camera}/{stream}/{start_ms}_{duration_ms}.mkv":       "cam/lo/1768469405250_1500.mkv",
		"{camera}/{yyyy}{mm}{dd}/{HH}{MM}{SS}_{duration_s}.ts": "cam/20260115/103005_1.ts",
		"{*}/{camera}/x{*}/{*}./{start_unix}.{*}":              "_/cam/x/_./1768469405.",
	} {
		p, err := layout.NewPattern(pattern, berlin)
		if err != nil {
			t.Fatalf("NewPattern(%q): %v", pattern, err)
		}
		if got := p.Path(c); got != want {
			t.Fatalf("%s: Path = %q, want %q", pattern, got, want)
		}
	}
}

func TestPatternRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	patterns := []struct {
		pattern   string
		precision time.Duration // of the start
		unit      time.Duration // of the duration; 0: none
		streams   bool
	}{
		{"{camera}/{yyyy}-{mm}-{dd}/{HH}/{start_unix}.mp4", time.Second, 0, false},
		{"{camera}/{stream}/{start_ms}_{duration_ms}.mkv", time.Millisecond, time.Millisecond, true},
		{"rec/{yyyy}/{yyyy}{mm}{dd}/{camera}_{stream}-{HH}h{MM}m{SS}s_{duration_s}.{*}.mp4", time.Second, time.Second, true},
		{"{*}/{camera}/{yyyy}{mm}{dd}{HH}/{start_unix}-{duration_s}", time.Second, time.Second, false},
		{"{camera}_{start_ms}.mp4", time.Millisecond, 0, false},
		{"{stream}{camera}/{yyyy}/{mm}/{dd}/{HH}{MM}.avi", time.Minute, 0, true},
		{"{camera}/{yyyy}-{mm}-{dd}/{HH}", time.Hour, 0, false},
	}
	for _, name := range []string{"UTC", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kathmandu"} {
		loc := zone(t, name)
		for _, pc := range patterns {
			p, err := layout.NewPattern(pc.pattern, loc)
			if err != nil {
				t.Fatalf("NewPattern(%q): %v", pc.pattern, err)
			}
			starts := transitionStarts()
			for range 2000 {
				starts = append(starts, randomStart(r, pc.precision))
			}
			for _, start := range starts {
				start, ok := truncateLocal(start, loc, pc.precision)
				if !ok {
					continue
				}
				c := footage.Chunk{Camera: cameras[r.IntN(len(cameras))], Stream: footage.High, Start: start}
				if pc.streams && r.IntN(2) == 0 {
					c.Stream = footage.Low
				}
				if pc.unit != 0 {
					c.Duration = randomDuration(r, pc.unit)
				}
				c.Path = p.Path(c)
				want := c
				if !strings.Contains(pc.pattern, "{start_") {
					want.Start = earliestWithSameClock(c.Start, loc)
				}
				got, ok := p.Parse(c.Path)
				if !ok || got != want {
					t.Fatalf("%s in %s: Parse(Path(c)) = %+v, %v; want %+v", pc.pattern, name, got, ok, want)
				}
			}
		}
	}
}

// truncateLocal truncates t to precision as the clock in loc reads it (a zone may be
// ahead of UTC by a part of an hour), and reports false when the clock changed in
// between.
func truncateLocal(t time.Time, loc *time.Location, precision time.Duration) (time.Time, bool) {
	lt := t.In(loc)
	sinceMidnight := time.Duration(lt.Hour())*time.Hour + time.Duration(lt.Minute())*time.Minute +
		time.Duration(lt.Second())*time.Second + time.Duration(lt.Nanosecond())
	tt := t.Add(-(sinceMidnight % precision))
	_, before := tt.In(loc).Zone()
	_, after := lt.Zone()
	return tt, before == after
}

// earliestWithSameClock is where a pattern without an absolute start puts a chunk that
// starts at t: the first instant at which the clock in loc reads what it read at t.
func earliestWithSameClock(t time.Time, loc *time.Location) time.Time {
	wall := t.In(loc).Format(time.DateTime)
	for _, back := range []time.Duration{2 * time.Hour, time.Hour, 30 * time.Minute} {
		if e := t.Add(-back); e.In(loc).Format(time.DateTime) == wall {
			return e
		}
	}
	return t
}

func TestPatternErrors(t *testing.T) {
	cases := []struct{ pattern, want string }{
		{"{cam}/{start_unix}.mp4", `pattern "{cam}/{start_unix}.mp4": unknown placeholder {cam}; known: {camera} {stream}`},
		{"{yyyy}/{start_unix}.mp4", `pattern "{yyyy}/{start_unix}.mp4": needs {camera}`},
		{"{camera}/{yyyy}-{mm}-{dd}/x.mp4", `pattern "{camera}/{yyyy}-{mm}-{dd}/x.mp4": needs {start_unix}, {start_ms} or all of {yyyy}, {mm}, {dd} and {HH}`},
		{"{camera}/x.mp4", `pattern "{camera}/x.mp4": needs {start_unix}, {start_ms} or all of`},
		{"{camera}/{camera}/{start_unix}.mp4", `pattern "{camera}/{camera}/{start_unix}.mp4": {camera} appears twice`},
		{"{camera}/{stream}/{stream}/{start_unix}.mp4", `pattern "{camera}/{stream}/{stream}/{start_unix}.mp4": {stream} appears twice`},
		{"{camera}/{start_unix}_{start_unix}.mp4", `pattern "{camera}/{start_unix}_{start_unix}.mp4": {start_unix} appears twice`},
		{"{camera}/{start_unix}_{start_ms}.mp4", `pattern "{camera}/{start_unix}_{start_ms}.mp4": has both {start_unix} and {start_ms}`},
		{"{camera}/{start_unix}_{duration_s}_{duration_ms}.mp4", `pattern "{camera}/{start_unix}_{duration_s}_{duration_ms}.mp4": has both {duration_s} and {duration_ms}`},
		{"{camera}/{yyyy}{mm}{dd}{HH}{SS}.mp4", `pattern "{camera}/{yyyy}{mm}{dd}{HH}{SS}.mp4": has {SS} but no {MM}`},
		{"{camera}{start_unix}.mp4", `pattern "{camera}{start_unix}.mp4": {camera} and {start_unix} need text between them`},
		{"{camera}/{*}{start_unix}.mp4", `pattern "{camera}/{*}{start_unix}.mp4": {*} and {start_unix} need text between them`},
		{"{camera}/{start_unix}.mp4{", `pattern "{camera}/{start_unix}.mp4{": "{start_unix}.mp4{" has a { without a }`},
		{"{camera/{start_unix}.mp4", `pattern "{camera/{start_unix}.mp4": "{camera" has a { without a }`},
		{"{camera}/{}.mp4", `pattern "{camera}/{}.mp4": unknown placeholder {}`},
		{"{camera}/{{start_unix}}.mp4", `pattern "{camera}/{{start_unix}}.mp4": unknown placeholder {{start_unix}`},
		{"{camera}/../{start_unix}.mp4", `pattern "{camera}/../{start_unix}.mp4": has a ".." part`},
		{"../{camera}/{start_unix}.mp4", `pattern "../{camera}/{start_unix}.mp4": has a ".." part`},
		{"./{camera}/{start_unix}.mp4", `pattern "./{camera}/{start_unix}.mp4": has a "." part`},
		{"/rec/{camera}/{start_unix}.mp4", `pattern "/rec/{camera}/{start_unix}.mp4": is absolute`},
		{"C:/rec/{camera}/{start_unix}.mp4", `pattern "C:/rec/{camera}/{start_unix}.mp4": is absolute`},
		{`rec\{camera}\{start_unix}.mp4`, `pattern "rec\\{camera}\\{start_unix}.mp4": has a backslash`},
		{"", `pattern "": empty`},
		{"{camera}//{start_unix}.mp4", `pattern "{camera}//{start_unix}.mp4": has an empty path part`},
		{"{camera}/{start_unix}.mp4/", `pattern "{camera}/{start_unix}.mp4/": has an empty path part`},
	}
	for _, c := range cases {
		p, err := layout.NewPattern(c.pattern, time.UTC)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Fatalf("NewPattern(%q) = %v, %v; want an error starting %q", c.pattern, p, err, c.want)
		}
	}
}

// The fuzz targets check that whatever Parse accepts is a chunk the layout can write
// again: Path gives a path that parses to the same chunk.

func FuzzNxParse(f *testing.F) {
	for _, rel := range []string{
		"hi_quality/e0ab1234cdef/2026/01/15/10/1768469400000_60000.mkv",
		"{b4d2e0b5-6c1f-4d8a-9e3b-7a2c1d0e9f8b}/low_quality/{5f3c9a7e}/2026/10/25/02/1792891800000.mkv",
		"hi_quality/cam/2026/03/29/03/1774746000000_0.mkv",
		"hi_quality/cam/2026/01/15/10/1768469400000_-60000.mkv",
		"hi_quality/cam/2026/01/15/10/99999999999999999999_60000.mkv",
		"hi_quality//2026/01/15/10/_.mkv",
	} {
		f.Add(rel)
	}
	nx := layout.NewNx(zone(f, "Europe/Berlin"))
	f.Fuzz(func(t *testing.T, rel string) {
		c, ok := nx.Parse(rel)
		if !ok {
			return
		}
		if c.Path != rel || c.Camera == "" || strings.Contains(c.Camera, "/") || c.Duration < 0 || c.Duration > 24*time.Hour {
			t.Fatalf("Parse(%q) = %+v", rel, c)
		}
		again := nx.Path(c)
		// Path writes no server folder, and an unknown duration without "_0".
		want := rel
		if parts := strings.Split(rel, "/"); len(parts) == 8 {
			want = strings.Join(parts[1:], "/")
		}
		if short, ok := strings.CutSuffix(want, "_0.mkv"); ok {
			want = short + ".mkv"
		}
		if again != want {
			t.Fatalf("Path(Parse(%q)) = %q, want %q", rel, again, want)
		}
		c2, ok := nx.Parse(again)
		c2.Path = rel
		if !ok || c2 != c {
			t.Fatalf("Parse(%q) = %+v, %v; want %+v", again, c2, ok, c)
		}
	})
}

func FuzzFrigateParse(f *testing.F) {
	for _, rel := range []string{
		"recordings/2026-11-22/04/front_door/05.09.mp4",
		"recordings/2028-02-29/23/yard/59.59.mp4",
		"recordings/2027-02-29/23/yard/59.59.mp4",
		"recordings/2026-11-22/24/cam/60.60.mp4",
	} {
		f.Add(rel)
	}
	fr := layout.NewFrigate()
	f.Fuzz(func(t *testing.T, rel string) {
		c, ok := fr.Parse(rel)
		if !ok {
			return
		}
		if again := fr.Path(c); again != rel {
			t.Fatalf("Path(Parse(%q)) = %q", rel, again)
		}
	})
}

// fuzzPatterns are the fixed patterns FuzzPatternParse reads paths with: an absolute
// start checked against date folders, a start from date fields alone, and fields that
// share a path part with the camera and with {*}.
var fuzzPatterns = []string{
	"{*}/{camera}_{stream}/{yyyy}-{mm}-{dd}/{HH}/{start_ms}_{duration_s}.{*}.mp4",
	"rec/{yyyy}/{yyyy}{mm}{dd}/{camera}_{stream}-{HH}h{MM}m{SS}s_{duration_s}.{*}.mp4",
}

func FuzzPatternParse(f *testing.F) {
	f.Add(uint8(0), "srv/cam_1_lo/2026-01-15/10/1768469400000_60.x.mp4")
	f.Add(uint8(0), "srv/cam_hi_lo/2026-10-25/02/1792891800000_0..mp4")
	f.Add(uint8(1), "rec/2026/20261025/cam_hi-02h30m00s_60.x.mp4")
	f.Add(uint8(1), "rec/2026/20260115/a_hi-01h02m03s_5.q_hi-10h30m00s_60.x.mp4")
	berlin := zone(f, "Europe/Berlin")
	var patterns []*layout.Pattern
	for _, s := range fuzzPatterns {
		p, err := layout.NewPattern(s, berlin)
		if err != nil {
			f.Fatalf("NewPattern(%q): %v", s, err)
		}
		patterns = append(patterns, p)
	}
	f.Fuzz(func(t *testing.T, which uint8, rel string) {
		p := patterns[int(which)%len(patterns)]
		c, ok := p.Parse(rel)
		if !ok {
			return
		}
		if c.Path != rel || c.Camera == "" || strings.Contains(c.Camera, "/") || c.Duration < 0 || c.Duration > 24*time.Hour {
			t.Fatalf("%s: Parse(%q) = %+v", p.Name(), rel, c)
		}
		again := p.Path(c)
		c2, ok := p.Parse(again)
		c2.Path = rel
		if !ok || c2 != c {
			t.Fatalf("%s: Parse(Path(Parse(%q))) = Parse(%q) = %+v, %v; want %+v", p.Name(), rel, again, c2, ok, c)
		}
		if twice := p.Path(c2); twice != again {
			t.Fatalf("%s: Path is not stable: %q, then %q", p.Name(), again, twice)
		}
	})
}

// BenchmarkNxParse measures one Parse; a scan of a large archive does 100,000 of them.
func BenchmarkNxParse(b *testing.B) {
	nx := layout.NewNx(zone(b, "Europe/Berlin"))
	start := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	var paths []string
	for i := range 1000 {
		c := footage.Chunk{
			Camera:   cameras[i%len(cameras)],
			Stream:   footage.High,
			Start:    start.Add(time.Duration(i) * time.Minute),
			Duration: time.Minute,
		}
		rel := nx.Path(c)
		if i%3 == 0 {
			rel = "{b4d2e0b5-6c1f-4d8a-9e3b-7a2c1d0e9f8b}/" + rel
		}
		paths = append(paths, rel)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok := nx.Parse(paths[i%len(paths)]); !ok {
			b.Fatalf("Parse(%q): false", paths[i%len(paths)])
		}
		i++
	}
}
