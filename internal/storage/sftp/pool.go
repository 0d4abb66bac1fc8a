package sftp

import (
	"context"
	"fmt"
	"strconv"

	"github.com/vigil-backup/vigil/internal/storage"
)

const (
	// defaultConnections is how many SSH connections the calls of one storage spread over.
	// A server decrypts and writes the traffic of one connection in one process (OpenSSH:
	// one sshd, and its sftp-server), and the client encrypts it in one goroutine, so
	// concurrent transfers over one connection go at the speed of one core. More
	// connections are not always better: each adds to the server's CPU time per byte (its
	// processes wake up for smaller shares of the traffic). A footage backup (4 copies at
	// once) to a server on the same 2-core machine took a quarter less time over 2
	// connections than over 4, and the server about half the CPU time.
	defaultConnections = 2
	// maxConnections bounds the connections option: servers limit the sessions they accept
	// (OpenSSH's MaxStartups takes 10 unauthenticated ones at once by default).
	maxConnections = 16
)

// connectionsOption reads the connections option of loc.
func connectionsOption(loc storage.Location) (int, error) {
	v := loc.Option("connections", "")
	if v == "" {
		return defaultConnections, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxConnections {
		return 0, storage.NewError("open", loc.String(), nil, fmt.Errorf("connections=%q: give a number from 1 to %d", v, maxConnections))
	}
	return n, nil
}

// client returns a connection for one call, which must give it back with release. It is
// the live connection with the fewest calls in progress, unless all have one and fewer
// than the storage's limit are open: then it dials another. When that dial fails while
// other connections are up, the call shares one of them and the limit drops to the
// connections open, since the server may accept no more from this user.
//
// The temporary files that Puts on a broken connection could not remove are removed
// through the connection the next call gets.
func (s *Storage) client(ctx context.Context) (*conn, error) {
	c, err := s.connect(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	orphans := s.orphans
	s.orphans = nil
	s.mu.Unlock()
	for _, o := range orphans {
		// Best effort: a name that is gone, or cannot go, is not this call's failure.
		_ = c.sftp.Remove(o)
	}
	return c, nil
}

func (s *Storage) connect(ctx context.Context) (*conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if c, err := s.pick(false); c != nil || err != nil {
		return c, err
	}
	s.dialMu.Lock()
	defer s.dialMu.Unlock()
	if c, err := s.pick(false); c != nil || err != nil {
		return c, err // dialled, or freed, while we waited
	}
	c, err := s.d.dial(ctx)
	if err != nil {
		if ctx.Err() == nil {
			if shared, _ := s.pick(true); shared != nil {
				s.mu.Lock()
				s.limit = max(1, len(s.conns))
				s.mu.Unlock()
				return shared, nil
			}
		}
		return nil, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.close()
		return nil, errClosed
	}
	c.calls = 1
	s.conns = append(s.conns, c)
	s.mu.Unlock()
	return c, nil
}

// pick takes the live connection with the fewest calls in progress for one more call:
// when it has none in progress or no other connection may be dialled, or, with shared,
// whatever it has. Connections found dead are dropped. It returns nil when there is no
// connection to take.
func (s *Storage) pick(shared bool) (*conn, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errClosed
	}
	var best *conn
	var dead []*conn
	live := s.conns[:0]
	for _, c := range s.conns {
		if !c.alive() {
			dead = append(dead, c)
			continue
		}
		live = append(live, c)
		if best == nil || c.calls < best.calls {
			best = c
		}
	}
	clear(s.conns[len(live):])
	s.conns = live
	if best != nil && (shared || best.calls == 0 || len(live) >= s.limit) {
		best.calls++
	} else {
		best = nil
	}
	s.mu.Unlock()
	for _, c := range dead {
		c.close()
	}
	return best, nil
}

// release gives back a connection that client returned, when the call is over.
func (s *Storage) release(c *conn) {
	s.mu.Lock()
	c.calls--
	s.mu.Unlock()
}

// discard drops c, so that calls dial again. Calls still using it fail.
func (s *Storage) discard(c *conn) {
	s.mu.Lock()
	for i, o := range s.conns {
		if o == c {
			s.conns = append(s.conns[:i], s.conns[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	c.close()
}

// Close closes the connections. Calls after Close fail.
func (s *Storage) Close() error {
	s.mu.Lock()
	conns := s.conns
	s.conns, s.closed = nil, true
	s.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	return nil
}
