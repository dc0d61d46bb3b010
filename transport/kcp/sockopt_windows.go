//go:build windows

package kcp

import (
	"errors"
	"syscall"

	"golang.org/x/sys/windows"
)

// soExclusiveAddrUse is SO_EXCLUSIVEADDRUSE, defined by Winsock as
// ~SO_REUSEADDR.
const soExclusiveAddrUse = ^windows.SO_REUSEADDR

// exclusiveBind sets SO_EXCLUSIVEADDRUSE: without it, Windows lets another
// socket that sets SO_REUSEADDR bind the same UDP port.
func exclusiveBind(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = windows.SetsockoptInt(windows.Handle(fd), windows.SOL_SOCKET, soExclusiveAddrUse, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

func isAddrInUse(err error) bool {
	return errors.Is(err, windows.WSAEADDRINUSE) || errors.Is(err, syscall.EADDRINUSE)
}

// isRefused reports an ICMP port unreachable, which Winsock reports on a
// connected UDP socket as WSAECONNRESET (when SIO_UDP_CONNRESET is on).
func isRefused(err error) bool {
	return errors.Is(err, windows.WSAECONNREFUSED) || errors.Is(err, windows.WSAECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED)
}
