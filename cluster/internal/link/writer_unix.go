//go:build unix

package link

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
	sw := &socketWriter{conn: conn, rc: rc}
	sw.do = sw.write
	return sw.Write
}

// socketWriter is a direct writer. Its fields carry one write's state
// into and out of the callback, made once, so a write allocates nothing;
// only the wire's owner of the socket calls it, one write at a time.
type socketWriter struct {
	conn net.Conn
	rc   syscall.RawConn
	do   func(fd uintptr) bool
	b    []byte
	n    int
	err  error
}

func (sw *socketWriter) write(fd uintptr) bool {
	for {
		sw.n, sw.err = syscall.Write(int(fd), sw.b)
		if sw.err != syscall.EINTR {
			return true // done, even on EAGAIN: never wait for the socket
		}
	}
}

func (sw *socketWriter) Write(b []byte) (int, error) {
	sw.b = b
	err := sw.rc.Write(sw.do)
	n, werr := sw.n, sw.err
	sw.b, sw.n, sw.err = nil, 0, nil
	switch {
	case err != nil:
		return 0, err
	case werr == syscall.EAGAIN:
		return 0, nil
	case werr != nil:
		c := sw.conn
		return 0, &net.OpError{Op: "write", Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: werr}
	}
	return n, nil
}
