package transport

import (
	"errors"
	"syscall"

	"golang.org/x/sys/windows"
)

// soExclusiveAddrUse is SO_EXCLUSIVEADDRUSE, defined by winsock2.h as
// ~SO_REUSEADDR.
const soExclusiveAddrUse = ^windows.SO_REUSEADDR

// ExclusiveAddr is the net.ListenConfig.Control that makes a bind
// exclusive: it sets SO_EXCLUSIVEADDRUSE before bind, so no other socket
// can bind the address while this one holds it (Windows would otherwise
// let a socket with SO_REUSEADDR take it over).
func ExclusiveAddr(network, address string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = windows.SetsockoptInt(windows.Handle(fd), windows.SOL_SOCKET, soExclusiveAddrUse, 1)
	}); err != nil {
		return err
	}
	return serr
}

// IsAddrInUse reports whether err, from a bind or listen of the OS
// (package net), says the address is bound already: the OpError.Kind is
// then ErrAddrInUse.
func IsAddrInUse(err error) bool {
	return errors.Is(err, windows.WSAEADDRINUSE) || errors.Is(err, syscall.EADDRINUSE)
}

// IsRefused reports whether err, from a connect of the OS (package net),
// says nobody listens at the address: the OpError.Kind is then
// ErrNoListener.
func IsRefused(err error) bool {
	return errors.Is(err, windows.WSAECONNREFUSED) || errors.Is(err, syscall.ECONNREFUSED)
}

// IsPortUnreachable reports whether err, from a read or write of a
// connected UDP socket, is the ICMP port unreachable
// that a connected UDP socket reports when nobody is bound at its peer's
// port: Winsock reports it as WSAECONNRESET (when SIO_UDP_CONNRESET is
// on, the default).
func IsPortUnreachable(err error) bool {
	return IsRefused(err) || errors.Is(err, windows.WSAECONNRESET)
}
