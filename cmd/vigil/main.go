// Command vigil backs up the footage, databases and device configurations of
// physical-security installations. It runs as a daemon (vigil serve) and as the CLI.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/vigil-backup/vigil/internal/config"
	"github.com/vigil-backup/vigil/internal/devconf"
	"github.com/vigil-backup/vigil/internal/storage"
)

// version is set at build time: go build -ldflags "-X main.version=1.2.3".
var version = "dev"

// memoryLimit is the heap size past which the collector works harder instead of letting
// garbage pile up: without it the heap of a large run (the first backup of 100,000
// chunks, with some 50 MiB live) grows to twice what is live. GOMEMLIMIT overrides it.
const memoryLimit = 80 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	// SIGINT and SIGTERM cancel the root context: work in progress stops cleanly, leaving
	// nothing half-written, and the process exits.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCommand(os.Stdout, os.Stderr).ExecuteContext(ctx)
	stop()
	os.Exit(report(os.Stderr, err))
}

// Exit codes, documented in the README, so that scripts can tell failures apart.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitUnreachable = 3
	exitPermission  = 4
	exitNotFound    = 5
	exitNoSpace     = 6
	exitWrongPIN    = 7
	exitInterrupted = 130
)

// usageError is a mistake in the command line.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// report prints err, if any, as one line and returns the exit code for it.
func report(w io.Writer, err error) int {
	if err == nil {
		return exitOK
	}
	code := exitCode(err)
	msg := strings.ReplaceAll(err.Error(), "\n", "; ")
	var verr *config.ValidationError
	if errors.As(err, &verr) {
		// Every problem on a line of its own is easier to fix than one long line.
		msg = err.Error()
	}
	if hint := storage.Hint(err); hint != "" && code != exitInterrupted {
		msg += " (" + hint + ")"
	}
	fmt.Fprintf(w, "vigil: %s\n", msg)
	return code
}

func exitCode(err error) int {
	var uerr usageError
	var perr pinError
	switch {
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.As(err, &uerr):
		return exitUsage
	case errors.As(err, &perr):
		return exitWrongPIN
	case errors.Is(err, storage.ErrUnreachable), errors.Is(err, devconf.ErrUnreachable):
		return exitUnreachable
	case errors.Is(err, storage.ErrPermission), errors.Is(err, devconf.ErrAuth):
		return exitPermission
	case errors.Is(err, storage.ErrNotFound):
		return exitNotFound
	case errors.Is(err, storage.ErrNoSpace):
		return exitNoSpace
	}
	return exitFailure
}
