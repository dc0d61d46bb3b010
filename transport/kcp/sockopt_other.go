//go:build !windows

package kcp

import (
	"errors"
	"syscall"
)

// exclusiveBind is the Control of Listen's socket. Outside Windows a UDP
// bind is exclusive unless SO_REUSEADDR or SO_REUSEPORT is set, and Go sets
// neither on a unicast UDP socket.
var exclusiveBind func(network, address string, c syscall.RawConn) error

func isAddrInUse(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }

// isRefused reports an ICMP port unreachable, which a connected UDP socket
// reports as ECONNREFUSED.
func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
