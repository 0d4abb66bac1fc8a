package smb

import (
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// sendTimeout is how long sent data may stay unacknowledged before the connection is
// given up: without it, writing to a server that vanished waits for the kernel's
// retransmissions, about a quarter of an hour.
const sendTimeout = 45 * time.Second

func userTimeout(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(sendTimeout.Milliseconds()))
	})
	if err != nil {
		return err
	}
	return serr
}
