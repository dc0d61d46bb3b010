//go:build !windows

package sockopt

import (
	"errors"
	"syscall"
)

// ExclusiveAddr is the net.ListenConfig.Control that makes a bind
// exclusive. It is nil outside Windows: there a bind is exclusive unless
// SO_REUSEPORT is set, which the transports never do. (Go sets
// SO_REUSEADDR on TCP listeners; that only allows rebinding over
// TIME_WAIT leftovers, never while another socket listens.)
var ExclusiveAddr func(network, address string, c syscall.RawConn) error

// IsAddrInUse reports whether err says the address is bound already.
func IsAddrInUse(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }

// IsRefused reports whether err says nobody listens at the address.
func IsRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// IsPortUnreachable reports whether err is the ICMP port unreachable
// that a connected UDP socket reports when nobody is bound at its peer's
// port: ECONNREFUSED.
func IsPortUnreachable(err error) bool { return IsRefused(err) }
