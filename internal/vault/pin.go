package vault

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// ErrPINPolicy is matched by CheckPIN's errors: the PIN is not accepted as a new one.
var ErrPINPolicy = errors.New("the Super PIN is not accepted")

const (
	minPINLength = 6
	maxPINLength = 256
)

// keyboardRows are runs of keys that make obvious PINs, read either way.
var keyboardRows = []string{"1234567890", "qwertyuiop", "qwertzuiop", "azertyuiop", "asdfghjkl", "zxcvbnm", "yxcvbnm"}

// CheckPIN tells whether pin may become a Super PIN: 6 to 256 characters, digits alone
// being fine; no control or invisible characters, which cannot be typed again reliably;
// no spaces at either end, which forms and terminals drop; and none of the first PINs a
// thief tries: one character or a short pattern repeated (000000, 121212), a straight run
// (123456, 654321, abcdef) or a row of the keyboard (qwerty). The error says what to do
// and never quotes the PIN. PINs are tried as they are, so a PIN set before a rule was
// added still works.
func CheckPIN(pin string) error {
	if !utf8.ValidString(pin) {
		return fmt.Errorf("%w: it is not valid text; type it again", ErrPINPolicy)
	}
	runes := []rune(norm.NFC.String(pin))
	switch n := len(runes); {
	case n < minPINLength:
		return fmt.Errorf("%w: it is too short; use at least %d characters", ErrPINPolicy, minPINLength)
	case n > maxPINLength:
		return fmt.Errorf("%w: it is too long; use at most %d characters", ErrPINPolicy, maxPINLength)
	}
	if unicode.IsSpace(runes[0]) || unicode.IsSpace(runes[len(runes)-1]) {
		return fmt.Errorf("%w: it starts or ends with a space; leave the space out", ErrPINPolicy)
	}
	for _, r := range runes {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return fmt.Errorf("%w: it holds a control or invisible character (a tab, a line break, …); use letters, digits, punctuation and spaces", ErrPINPolicy)
		}
	}
	lower := []rune(strings.ToLower(string(runes)))
	switch {
	case repeats(lower):
		return fmt.Errorf("%w: it repeats one character or a short pattern (like 000000 or 121212); choose one that is harder to guess", ErrPINPolicy)
	case straightRun(lower):
		return fmt.Errorf("%w: it is a straight run (like 123456 or 654321); choose one that is harder to guess", ErrPINPolicy)
	case keyboardRow(string(lower)):
		return fmt.Errorf("%w: it is a row of the keyboard (like qwerty); choose one that is harder to guess", ErrPINPolicy)
	}
	return nil
}

// repeats reports whether s is a pattern of at most half its length, repeated.
func repeats(s []rune) bool {
	for period := 1; period <= len(s)/2; period++ {
		same := true
		for i := period; i < len(s) && same; i++ {
			same = s[i] == s[i-period]
		}
		if same {
			return true
		}
	}
	return false
}

// straightRun reports whether s is consecutive digits or consecutive letters, up or down.
func straightRun(s []rune) bool {
	kind := func(r rune) int {
		switch {
		case r >= '0' && r <= '9':
			return 1
		case r >= 'a' && r <= 'z':
			return 2
		}
		return 0
	}
	step := s[1] - s[0]
	if kind(s[0]) == 0 || step != 1 && step != -1 {
		return false
	}
	for i := 1; i < len(s); i++ {
		if kind(s[i]) != kind(s[0]) || s[i]-s[i-1] != step {
			return false
		}
	}
	return true
}

func keyboardRow(s string) bool {
	for _, row := range keyboardRows {
		if strings.Contains(row, s) || strings.Contains(reverse(row), s) {
			return true
		}
	}
	return false
}

func reverse(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}
