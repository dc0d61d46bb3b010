//go:build !windows

package tcp

import (
	"errors"
	"syscall"
)

// exclusiveAddrControl is nil: on unix-like systems a listening socket is
// exclusive as long as nobody sets SO_REUSEPORT, and this package never
// does.
var exclusiveAddrControl func(network, address string, c syscall.RawConn) error

func isAddrInUse(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }

func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
