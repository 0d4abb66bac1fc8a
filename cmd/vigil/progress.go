package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// liveLine shows the progress of long work: a bar redrawn on a terminal (stderr) at most
// five times a second, JSON lines on stdout with --json, and nothing otherwise, so that
// logs and cron mails stay clean.
type liveLine struct {
	stdout, stderr io.Writer
	json, tty      bool
	mu             sync.Mutex
	last           time.Time
	drawn          bool
	start          time.Time
}

func newLiveLine(stdout, stderr io.Writer, asJSON bool) *liveLine {
	tty := false
	if f, ok := stderr.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &liveLine{stdout: stdout, stderr: stderr, json: asJSON, tty: tty, start: time.Now()}
}

// show prints progress: fields as a JSON line, or on a terminal a bar of done out of
// total bytes, with what and the speed. A final update is always shown.
func (l *liveLine) show(final bool, done, total int64, what string, fields map[string]any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if !final && now.Sub(l.last) < 200*time.Millisecond {
		return
	}
	l.last = now
	switch {
	case l.json:
		fields["type"] = "progress"
		_ = json.NewEncoder(l.stdout).Encode(fields)
	case l.tty:
		frac := 1.0
		if total > 0 {
			frac = float64(done) / float64(total)
		}
		const width = 30
		bar := strings.Repeat("=", int(frac*width)) + strings.Repeat(" ", width-int(frac*width))
		speed := float64(done) / max(now.Sub(l.start).Seconds(), 0.001)
		fmt.Fprintf(l.stderr, "\r[%s] %3.0f%%  %s  %s/%s  %s/s ", bar, frac*100, what, bytes(done), bytes(total), bytes(int64(speed)))
		l.drawn = true
	}
}

// done ends the bar's line.
func (l *liveLine) done() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.drawn {
		fmt.Fprintln(l.stderr)
	}
}
