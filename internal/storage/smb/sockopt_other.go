//go:build !linux

package smb

import "syscall"

// userTimeout does nothing where TCP_USER_TIMEOUT does not exist: keep-alive probes still
// find a vanished server while the connection is idle.
func userTimeout(network, address string, c syscall.RawConn) error { return nil }
