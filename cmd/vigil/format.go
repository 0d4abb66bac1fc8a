package main

import (
	"fmt"
	"time"
)

// bytes formats a size in binary units, as operators read them off their disks.
func bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// speed formats bytes per second, with the bits per second network people think in.
func speed(bps float64) string {
	return fmt.Sprintf("%s/s (%.0f Mbit/s)", bytes(int64(bps)), bps*8/1e6)
}

// duration rounds to what is worth reading.
func duration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%d µs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
}
