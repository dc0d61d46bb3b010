//go:build !windows

package transport

import (
	"errors"
	"syscall"
)

// ExclusiveAddr is the net.ListenConfig.Control that makes a bind
// exclusive, as Transport.Listen must be. It is nil outside Windows: there a bind is exclusive unless
// SO_REUSEPORT is set, which the transports never do. (Go sets
// SO_REUSEADDR on TCP listeners; that only allows rebinding over
// TIME_WAIT leftovers, never while another socket listens.)
var ExclusiveAddr func(network, address string, c syscall.RawConn) error

// IsAddrInUse reports whether err, from a bind or listen of the OS
// (package net), says the address is bound already: the OpError.Kind is
// then ErrAddrInUse.
func IsAddrInUse(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }

// IsRefused reports whether err, from a connect of the OS (package net),
// says nobody listens at the address: the OpError.Kind is then
// ErrNoListener.
func IsRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// IsPortUnreachable reports whether err, from a read or write of a
// connected UDP socket, is the ICMP port unreachable
// that a connected UDP socket reports when nobody is bound at its peer's
// port: ECONNREFUSED.
func IsPortUnreachable(err error) bool { return IsRefused(err) }
