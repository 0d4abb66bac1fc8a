package testenv

import (
	"fmt"
	"os"
	"sync"
)

// Program is a T for a program that is not a test, such as a benchmark command, so that it
// can start the same servers the tests do. Unlike a test, it treats a skip as a failure: a
// benchmark that silently leaves out a server would report figures nobody measured.
//
// Fatalf and Skipf run the cleanups and exit the process; the program must call Close
// when it ends in any other way, so that the servers stop and the temporary folders go.
type Program struct {
	name string

	mu       sync.Mutex
	cleanups []func()
}

var _ T = (*Program)(nil)

// NewProgram returns a Program whose messages and temporary folders carry name.
func NewProgram(name string) *Program { return &Program{name: name} }

// Name is the name given to NewProgram.
func (p *Program) Name() string { return p.name }

// Helper does nothing: messages of a Program carry no file and line.
func (p *Program) Helper() {}

// Cleanup registers f to run at Close, after the cleanups registered later.
func (p *Program) Cleanup(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cleanups = append(p.cleanups, f)
}

// TempDir makes a new folder that Close removes.
func (p *Program) TempDir() string {
	dir, err := os.MkdirTemp("", p.name+"-")
	if err != nil {
		p.Fatalf("make a temporary folder: %v", err)
	}
	p.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			p.Logf("remove %s: %v", dir, err)
		}
	})
	return dir
}

// Logf writes a line to standard error.
func (p *Program) Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s: %s\n", p.name, fmt.Sprintf(format, args...))
}

// Fatalf logs, runs the cleanups and exits with status 1.
func (p *Program) Fatalf(format string, args ...any) {
	p.Logf(format, args...)
	p.Close()
	os.Exit(1)
}

// Skipf is Fatalf: what a test may skip, a program needs.
func (p *Program) Skipf(format string, args ...any) { p.Fatalf(format, args...) }

// Close runs the registered cleanups, last registered first. Calling it again does nothing
// more, unless new cleanups were registered in between.
func (p *Program) Close() {
	for {
		p.mu.Lock()
		n := len(p.cleanups)
		if n == 0 {
			p.mu.Unlock()
			return
		}
		f := p.cleanups[n-1]
		p.cleanups = p.cleanups[:n-1]
		p.mu.Unlock()
		f()
	}
}
