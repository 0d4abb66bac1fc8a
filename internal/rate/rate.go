// Package rate reads bandwidth limits as operators write them (20Mbit, 5MiB/s).
package rate

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// rateUnits is the list shown when a unit is not understood.
const rateUnits = "use kbit, Mbit, Gbit, KB, MB, GB, KiB, MiB, GiB"

// Parse parses a bandwidth limit and returns it in bytes per second, 0
// meaning unlimited.
//
// The forms are a number (decimals allowed) and an optional unit, with or
// without a space between them and an optional "/s" or "ps" suffix:
//   - bits: bit, kbit, Mbit, Gbit, Tbit (and kbps, Mbps, …), 1000-multiples, divided by 8;
//   - bytes: B, KB, MB, GB, TB (1000-multiples) and KiB, MiB, GiB, TiB (1024-multiples);
//   - a bare number is bytes per second.
//
// "", "0" (with any unit) and "unlimited" mean no limit. A lower-case "b" alone
// (as in "5mb") is refused because it is ambiguous between bits and bytes, and
// so is a positive rate below 1 byte per second, which would otherwise round
// to 0 and silently mean unlimited.
func Parse(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if t == "" || strings.EqualFold(t, "unlimited") {
		return 0, nil
	}
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.TrimSpace(t[i:])
	if num == "" {
		if strings.HasPrefix(t, "-") {
			return 0, fmt.Errorf("%q: a rate cannot be negative", s)
		}
		return 0, fmt.Errorf("%q: a rate starts with a number, e.g. 20Mbit", s)
	}
	n, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %q is not a number", s, num)
	}
	perByte, mult, ok := rateUnit(unit)
	if !ok {
		return 0, fmt.Errorf("%q: unknown unit %q (%s)", s, unit, rateUnits)
	}
	if n == 0 {
		return 0, nil
	}
	v := n * mult / perByte
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("%q: rate is too large", s)
	}
	r := int64(math.Round(v))
	if r < 1 {
		return 0, fmt.Errorf("%q: rate is below 1 byte per second (use 0 or \"unlimited\" for no limit)", s)
	}
	return r, nil
}

// rateUnit returns how many of the unit make a byte (8 for bits, 1 for bytes)
// and the prefix multiplier.
func rateUnit(u string) (perByte, mult float64, ok bool) {
	for _, suffix := range []string{"/s", "/sec"} {
		if len(u) > len(suffix) && strings.EqualFold(u[len(u)-len(suffix):], suffix) {
			u = strings.TrimSpace(u[:len(u)-len(suffix)])
			break
		}
	}
	var prefix string
	switch lower := strings.ToLower(u); {
	case u == "":
		return 1, 1, true
	case strings.HasSuffix(lower, "bits"):
		perByte, prefix = 8, u[:len(u)-4]
	case strings.HasSuffix(lower, "bit"):
		perByte, prefix = 8, u[:len(u)-3]
	case strings.HasSuffix(u, "Bps"):
		perByte, prefix = 1, u[:len(u)-3]
	case strings.HasSuffix(lower, "bps"):
		perByte, prefix = 8, u[:len(u)-3]
	case strings.HasSuffix(u, "B"):
		perByte, prefix = 1, u[:len(u)-1]
	default:
		return 0, 0, false
	}
	switch strings.ToLower(prefix) {
	case "":
		mult = 1
	case "k":
		mult = 1e3
	case "m":
		mult = 1e6
	case "g":
		mult = 1e9
	case "t":
		mult = 1e12
	case "ki":
		mult = 1 << 10
	case "mi":
		mult = 1 << 20
	case "gi":
		mult = 1 << 30
	case "ti":
		mult = 1 << 40
	default:
		return 0, 0, false
	}
	return perByte, mult, true
}
