package rate

import (
	"strings"
	"testing"
)

func TestParseRate(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"", 0},
		{"0", 0},
		{"0Mbit", 0},
		{"unlimited", 0},
		{" Unlimited ", 0},
		{"20Mbit", 2_500_000},
		{"20Mbps", 2_500_000},
		{"20 Mbit/s", 2_500_000},
		{"20mbit", 2_500_000},
		{"20 Mbits", 2_500_000},
		{"500kbit", 62_500},
		{"500 kbps", 62_500},
		{"1Gbit", 125_000_000},
		{"1.5Mbit", 187_500},
		{"8bit", 1},
		{"5MB", 5_000_000},
		{"5 MB/s", 5_000_000},
		{"5MBps", 5_000_000},
		{"5MiB", 5 << 20},
		{"750KB", 750_000},
		{"750kB", 750_000},
		{"2KiB", 2048},
		{"1GB", 1_000_000_000},
		{"1GiB", 1 << 30},
		{"1TB", 1_000_000_000_000},
		{"1024", 1024},
		{"1024B", 1024},
		{"0.5KB", 500},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("Parse(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestParseRateErrors(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"20 Mbat", `"20 Mbat": unknown unit "Mbat" (use kbit, Mbit, Gbit, KB, MB, GB, KiB, MiB, GiB)`},
		{"5mb", `unknown unit "mb"`},
		{"5Mb", `unknown unit "Mb"`},
		{"5b", `unknown unit "b"`},
		{"20 Xbit", `unknown unit "Xbit"`},
		{"-5MB", "cannot be negative"},
		{"fast", "starts with a number"},
		{"Mbit", "starts with a number"},
		{"1.2.3MB", "is not a number"},
		{".", "is not a number"},
		{"1bit", "below 1 byte per second"},
		{"99999999999999999999TB", "too large"},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if err == nil {
			t.Errorf("Parse(%q) = %d, want an error containing %q", tt.in, got, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) error = %q, want it to contain %q", tt.in, err, tt.want)
		}
	}
}

func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"", "0", "20Mbit", "20 Mbit/s", "5MiB", "750KB", "unlimited", "1.5Gbps", "-1", "1e9", "9999999999999999999999TB", ".5kbit"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := Parse(s)
		if got < 0 {
			t.Fatalf("Parse(%q) = %d, want ≥ 0", s, got)
		}
		if err != nil && got != 0 {
			t.Fatalf("Parse(%q) = %d with error %v, want 0", s, got, err)
		}
	})
}
