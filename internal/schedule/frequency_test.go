package schedule

import (
	"strings"
	"testing"
	"time"
)

func TestParseFrequency(t *testing.T) {
	loc := mustLoc(t, "Europe/Berlin")
	tests := []struct {
		kind, day, at string
		want          Frequency
	}{
		{"weekly", "Sunday", "04:00", DefaultFrequency(loc)},
		{" Weekly ", "sun", "4:00", Weekly(time.Sunday, 4, 0, loc)},
		{"weekly", "Wed", "23:59", Weekly(time.Wednesday, 23, 59, loc)},
		{"monthly", "31", "04:00", Monthly(31, 4, 0, loc)},
		{"monthly", " 1 ", "00:00", Monthly(1, 0, 0, loc)},
		{"daily", "", "02:30", Daily(2, 30, loc)},
		{"DAILY", "", "00:00", Daily(0, 0, loc)},
	}
	for _, tt := range tests {
		got, err := ParseFrequency(tt.kind, tt.day, tt.at, loc)
		if err != nil {
			t.Fatalf("ParseFrequency(%q, %q, %q): %v", tt.kind, tt.day, tt.at, err)
		}
		if got != tt.want {
			t.Fatalf("ParseFrequency(%q, %q, %q) = %v, want %v", tt.kind, tt.day, tt.at, got, tt.want)
		}
	}
	if got := DefaultFrequency(loc).String(); got != "weekly Sunday 04:00" {
		t.Fatalf("DefaultFrequency = %q, want weekly Sunday 04:00", got)
	}
}

func TestParseFrequencyErrors(t *testing.T) {
	tests := []struct {
		kind, day, at, want string
	}{
		{"hourly", "", "04:00", `frequency: unknown kind "hourly" (use daily, weekly or monthly)`},
		{"", "", "04:00", "missing kind"},
		{"now", "", "", `"now" is not a schedule`},
		{"weekly", "", "04:00", "weekly needs a day of the week"},
		{"weekly", "Funday", "04:00", `unknown day "Funday"`},
		{"weekly", "Mon-Fri", "04:00", `unknown day "Mon-Fri"`},
		{"monthly", "", "04:00", "monthly needs a day of the month"},
		{"monthly", "0", "04:00", `day of month "0" is not 1-31`},
		{"monthly", "32", "04:00", `day of month "32" is not 1-31 (31 means the last day of every month)`},
		{"monthly", "last", "04:00", `day of month "last" is not 1-31`},
		{"daily", "Sunday", "04:00", `daily runs every day; leave the day ("Sunday") empty`},
		{"daily", "", "", "missing start time"},
		{"daily", "", "4", `start time: "4" is not a time of day`},
		{"daily", "", "25:00", `start time: "25:00": hour 25 is out of range`},
		{"daily", "", "04:75", `minute 75 is out of range`},
		{"daily", "", "24:00", "start time 24:00 is the next day's 00:00"},
		{"daily", "", "4pm", "is not a time of day"},
	}
	for _, tt := range tests {
		f, err := ParseFrequency(tt.kind, tt.day, tt.at, time.UTC)
		if err == nil {
			t.Fatalf("ParseFrequency(%q, %q, %q) = %v, want an error containing %q", tt.kind, tt.day, tt.at, f, tt.want)
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Fatalf("ParseFrequency(%q, %q, %q) error = %q, want it to contain %q", tt.kind, tt.day, tt.at, err, tt.want)
		}
	}
}

func TestFrequencyConstructorsPanic(t *testing.T) {
	for name, f := range map[string]func(){
		"hour 24":      func() { Daily(24, 0, nil) },
		"minute 60":    func() { Daily(0, 60, nil) },
		"weekday 7":    func() { Weekly(7, 4, 0, nil) },
		"day 0":        func() { Monthly(0, 4, 0, nil) },
		"day 32":       func() { Monthly(32, 4, 0, nil) },
		"negative min": func() { Weekly(time.Sunday, 4, -1, nil) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Fatalf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

func TestFrequencyNext(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	newYork := mustLoc(t, "America/New_York")
	santiago := mustLoc(t, "America/Santiago")
	tests := []struct {
		f           Frequency
		after, want string
	}{
		// 4 January 2026 is a Sunday.
		{DefaultFrequency(berlin), "2026-01-01T00:00:00+01:00", "2026-01-04T04:00:00+01:00"},
		{DefaultFrequency(berlin), "2026-01-04T03:59:59+01:00", "2026-01-04T04:00:00+01:00"},
		{DefaultFrequency(berlin), "2026-01-04T04:00:00+01:00", "2026-01-11T04:00:00+01:00"},
		{DefaultFrequency(berlin), "2026-12-31T12:00:00+01:00", "2027-01-03T04:00:00+01:00"},
		{DefaultFrequency(berlin), "2026-01-04T03:30:00Z", "2026-01-11T04:00:00+01:00"},
		{Weekly(time.Saturday, 23, 0, berlin), "2026-01-03T23:00:00+01:00", "2026-01-10T23:00:00+01:00"},
		{Daily(23, 30, berlin), "2026-12-31T23:30:00+01:00", "2027-01-01T23:30:00+01:00"},
		{Daily(0, 0, berlin), "2026-12-31T23:59:59+01:00", "2027-01-01T00:00:00+01:00"},
		// Month ends: 31 is the last day of every month; 29 and 30 clamp in February.
		{Monthly(31, 4, 0, berlin), "2026-01-31T04:00:00+01:00", "2026-02-28T04:00:00+01:00"},
		{Monthly(31, 4, 0, berlin), "2026-02-28T04:00:00+01:00", "2026-03-31T04:00:00+02:00"},
		{Monthly(31, 4, 0, berlin), "2026-04-01T00:00:00+02:00", "2026-04-30T04:00:00+02:00"},
		{Monthly(31, 4, 0, berlin), "2026-12-31T04:00:00+01:00", "2027-01-31T04:00:00+01:00"},
		{Monthly(31, 4, 0, berlin), "2028-01-31T04:00:00+01:00", "2028-02-29T04:00:00+01:00"},
		{Monthly(30, 4, 0, berlin), "2026-01-30T04:00:00+01:00", "2026-02-28T04:00:00+01:00"},
		{Monthly(30, 4, 0, berlin), "2028-01-30T04:00:00+01:00", "2028-02-29T04:00:00+01:00"},
		{Monthly(29, 4, 0, berlin), "2026-01-29T04:00:00+01:00", "2026-02-28T04:00:00+01:00"},
		{Monthly(29, 4, 0, berlin), "2028-01-29T04:00:00+01:00", "2028-02-29T04:00:00+01:00"},
		{Monthly(29, 4, 0, berlin), "2100-01-29T04:00:00+01:00", "2100-02-28T04:00:00+01:00"},
		{Monthly(15, 4, 0, berlin), "2026-01-15T03:59:00+01:00", "2026-01-15T04:00:00+01:00"},
		{Monthly(15, 4, 0, berlin), "2026-01-15T04:00:00+01:00", "2026-02-15T04:00:00+01:00"},
		{Monthly(1, 0, 0, berlin), "2026-01-31T23:59:00+01:00", "2026-02-01T00:00:00+01:00"},
		// Spring forward in Berlin (29 March 2026): 02:30 runs at 03:00, once.
		{Daily(2, 30, berlin), "2026-03-29T00:00:00+01:00", "2026-03-29T03:00:00+02:00"},
		{Daily(2, 30, berlin), "2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"},
		{Weekly(time.Sunday, 2, 0, berlin), "2026-03-28T12:00:00+01:00", "2026-03-29T03:00:00+02:00"},
		// Fall back in Berlin (25 October 2026): 02:30 runs once, the first time.
		{Daily(2, 30, berlin), "2026-10-25T00:00:00+02:00", "2026-10-25T02:30:00+02:00"},
		{Daily(2, 30, berlin), "2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"},
		{Monthly(25, 2, 30, berlin), "2026-10-25T02:30:00+02:00", "2026-11-25T02:30:00+01:00"},
		// New York (8 March and 1 November 2026).
		{Daily(2, 30, newYork), "2026-03-08T00:00:00-05:00", "2026-03-08T03:00:00-04:00"},
		{Daily(2, 30, newYork), "2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"},
		{Daily(1, 30, newYork), "2026-11-01T00:00:00-04:00", "2026-11-01T01:30:00-04:00"},
		{Daily(1, 30, newYork), "2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"},
		{Weekly(time.Sunday, 2, 30, newYork), "2026-03-01T02:30:00-05:00", "2026-03-08T03:00:00-04:00"},
		// Santiago skips midnight on 6 September 2026 and repeats 23:00 on 4 April.
		{Daily(0, 0, santiago), "2026-09-05T12:00:00-04:00", "2026-09-06T01:00:00-03:00"},
		{Daily(23, 30, santiago), "2026-04-04T12:00:00-03:00", "2026-04-04T23:30:00-03:00"},
		{Daily(23, 30, santiago), "2026-04-04T23:30:00-03:00", "2026-04-05T23:30:00-04:00"},
	}
	for _, tt := range tests {
		got := tt.f.Next(instant(t, tt.after))
		if !got.Equal(instant(t, tt.want)) {
			t.Fatalf("%v in %s: Next(%s) = %s, want %s", tt.f, tt.f.Location(), tt.after, got.In(tt.f.Location()).Format(time.RFC3339), tt.want)
		}
	}
	var zero Frequency
	if got := zero.Next(instant(t, "2026-01-01T00:00:00Z")); !got.IsZero() {
		t.Fatalf("zero Frequency: Next = %s, want the zero time", got)
	}
}

func TestFrequencyMissed(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	sunday := DefaultFrequency(berlin)
	tests := []struct {
		f         Frequency
		last, now string
		want      bool
	}{
		// Off from Saturday to Monday: Sunday's run was missed.
		{sunday, "2026-01-03T12:00:00+01:00", "2026-01-05T10:00:00+01:00", true},
		{sunday, "2026-01-04T04:00:00+01:00", "2026-01-04T10:00:00+01:00", false},
		{sunday, "2026-01-04T04:00:00+01:00", "2026-01-11T03:59:00+01:00", false},
		{sunday, "2026-01-04T04:00:00+01:00", "2026-01-11T04:00:00+01:00", true},
		// Off for a month: still one run.
		{sunday, "2026-01-04T04:00:00+01:00", "2026-02-10T04:00:00+01:00", true},
		{sunday, "2026-01-11T04:00:00+01:00", "2026-01-04T04:00:00+01:00", false},
		{Monthly(31, 4, 0, berlin), "2026-01-31T04:00:00+01:00", "2026-02-27T23:00:00+01:00", false},
		{Monthly(31, 4, 0, berlin), "2026-01-31T04:00:00+01:00", "2026-02-28T05:00:00+01:00", true},
		// Spring forward: the 02:30 run is due at 03:00.
		{Daily(2, 30, berlin), "2026-03-28T02:30:00+01:00", "2026-03-29T01:59:00+01:00", false},
		{Daily(2, 30, berlin), "2026-03-28T02:30:00+01:00", "2026-03-29T03:00:00+02:00", true},
		// Fall back: the second 02:30 is no run.
		{Daily(2, 30, berlin), "2026-10-25T02:30:00+02:00", "2026-10-25T02:45:00+01:00", false},
	}
	for _, tt := range tests {
		if got := tt.f.Missed(instant(t, tt.last), instant(t, tt.now)); got != tt.want {
			t.Fatalf("%v: Missed(%s, %s) = %v, want %v", tt.f, tt.last, tt.now, got, tt.want)
		}
	}
	if sunday.Missed(time.Time{}, instant(t, "2026-01-05T10:00:00+01:00")) {
		t.Fatalf("Missed with no last run = true, want false")
	}
}

func TestParseSpec(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		spec, want, err string
	}{
		{spec: "weekly sun 04:00", want: "weekly Sunday 04:00"},
		{spec: "  Weekly   Sunday 4:00 ", want: "weekly Sunday 04:00"},
		{spec: "monthly 31 04:00", want: "monthly 31 04:00"},
		{spec: "daily 23:59", want: "daily 23:59"},
		{spec: "now", err: "on demand"},
		{spec: "", err: "write it as"},
		{spec: "weekly sun", err: "write it as"},
		{spec: "weekly xyz 04:00", err: "xyz"},
		{spec: "monthly 32 04:00", err: "1-31"},
		{spec: "daily 25:00", err: "start time"},
		{spec: "daily mon 04:00", err: "leave the day"},
		{spec: "weekly sun 04:00 extra", err: "write it as"},
	} {
		f, err := ParseSpec(tc.spec, berlin)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseSpec(%q) = %v, %v; want error with %q", tc.spec, f, err, tc.err)
			}
			continue
		}
		if err != nil || f.String() != tc.want || f.Location() != berlin {
			t.Errorf("ParseSpec(%q) = %v, %v; want %s", tc.spec, f, err, tc.want)
		}
	}
}
