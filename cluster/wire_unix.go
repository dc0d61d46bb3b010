//go:build unix

package cluster

import (
	"net"
	"syscall"

	"github.com/go-clusterclient/clusterclient/transport"
)

// directWriter returns a write to conn's socket that never blocks: it
// writes what the socket takes at once (possibly nothing) and reports
// how much. It returns nil for a conn that is not a plain stream socket
// (transport.Socket).
func directWriter(conn net.Conn) func([]byte) (int, error) {
	var sc syscall.Conn
	switch c := conn.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		sc = c
	case transport.Socket:
		sc = c.Socket()
	default:
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return func(b []byte) (int, error) {
		var n int
		var werr error
		err := rc.Write(func(fd uintptr) bool {
			for {
				n, werr = syscall.Write(int(fd), b)
				if werr != syscall.EINTR {
					return true // done, even on EAGAIN: never wait for the socket
				}
			}
		})
		switch {
		case err != nil:
			return 0, err
		case werr == syscall.EAGAIN:
			return 0, nil
		case werr != nil:
			return 0, &net.OpError{Op: "write", Net: conn.LocalAddr().Network(), Source: conn.LocalAddr(), Addr: conn.RemoteAddr(), Err: werr}
		}
		return n, nil
	}
}
