package vault

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckPIN(t *testing.T) {
	for _, tc := range []struct {
		pin  string
		ok   bool
		says string // part of the error
	}{
		{"480916", true, ""},
		{"4711-0815", true, ""},
		{"correct horse battery staple", true, ""},
		{"Grüße aus Köln", true, ""},
		{"caf\u0065\u0301-1988", true, ""}, // decomposed é: one character once normalised
		{strings.Repeat("x7", 128), false, "repeats"},
		{strings.Repeat("x7y", 85) + "z", true, ""}, // 256 characters
		{strings.Repeat("x7y", 85) + "zz", false, "at most 256"},
		{"", false, "at least 6"},
		{"48091", false, "at least 6"},
		{"caf\u0065\u0301", false, "at least 6"}, // 5 characters, though 6 code points
		{" 480916", false, "space"},
		{"480916 ", false, "space"},
		{"480916\u00a0", false, "space"},
		{"4809\t16", false, "control"},
		{"4809\n16", false, "control"},
		{"4809\u200b16", false, "invisible"},
		{"480\x00916", false, "control"},
		{"\xff\xfe480916", false, "not valid text"},
		{"777777", false, "repeats"},
		{"11111111", false, "repeats"},
		{"aaaaaa", false, "repeats"},
		{"343434", false, "repeats"},
		{"1212121", false, "repeats"},
		{"123123", false, "repeats"},
		{"abcabc", false, "repeats"},
		{"012345", false, "straight run"},
		{"876543", false, "straight run"},
		{"0123456789", false, "straight run"},
		{"345678", false, "straight run"},
		{"abcdef", false, "straight run"},
		{"FEDCBA", false, "straight run"},
		{"1234567890", false, "keyboard"},
		{"0987654321", false, "keyboard"},
		{"wertyu", false, "keyboard"},
		{"QWERTZ", false, "keyboard"},
		{"ytrewq", false, "keyboard"},
		{"asdfgh", false, "keyboard"},
		{"123457", true, ""},
		{"135791", true, ""},
		{"qwerty7", true, ""},
	} {
		err := CheckPIN(tc.pin)
		if tc.ok {
			if err != nil {
				t.Errorf("CheckPIN(%q) = %v, want nil", tc.pin, err)
			}
			continue
		}
		if !errors.Is(err, ErrPINPolicy) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("CheckPIN(%q) = %v, want ErrPINPolicy saying %q", tc.pin, err, tc.says)
			continue
		}
		if len(tc.pin) >= 3 && strings.Contains(err.Error(), tc.pin) {
			t.Errorf("CheckPIN(%q)'s error quotes the PIN: %v", tc.pin, err)
		}
	}
}
