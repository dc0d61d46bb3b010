package tcp

import (
	"errors"
	"syscall"

	"golang.org/x/sys/windows"
)

// soExclusiveAddrUse is SO_EXCLUSIVEADDRUSE, defined by winsock2.h as
// ~SO_REUSEADDR.
const soExclusiveAddrUse = ^windows.SO_REUSEADDR

// exclusiveAddrControl sets SO_EXCLUSIVEADDRUSE before bind, so no other
// socket can bind the address while the listener holds it (Windows would
// otherwise let a socket with SO_REUSEADDR take it over).
func exclusiveAddrControl(network, address string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = windows.SetsockoptInt(windows.Handle(fd), windows.SOL_SOCKET, soExclusiveAddrUse, 1)
	}); err != nil {
		return err
	}
	return serr
}

func isAddrInUse(err error) bool { return errors.Is(err, windows.WSAEADDRINUSE) }

func isRefused(err error) bool { return errors.Is(err, windows.WSAECONNREFUSED) }
