package cluster

import (
	"errors"
	"syscall"
)

// Winsock's errors for too many open sockets and for no buffer space.
const (
	wsaEMFILE  = syscall.Errno(10024)
	wsaENOBUFS = syscall.Errno(10055)
)

// outOfFiles reports whether an accept failed for want of socket handles
// or buffers.
func outOfFiles(err error) bool {
	return errors.Is(err, wsaEMFILE) || errors.Is(err, wsaENOBUFS)
}
