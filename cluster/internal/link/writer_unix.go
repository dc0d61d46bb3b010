//go:build unix

package link

import (
	"net"
	"syscall"

	"github.com/go-clusterclient/clusterclient/transport"
)

// directWriter returns a write to conn's socket that never blocks: it
// writes what the socket takes at once (possibly nothing) and reports
// how much; and, where the system has writev, the same for two buffers
// in one system call (a frame's head and its app object, which is then
// not copied). Both are nil for a conn that is not a plain stream socket
// (transport.Socket).
func directWriter(conn net.Conn) (write func([]byte) (int, error), writev func(a, b []byte) (int, error)) {
	var sc syscall.Conn
	switch c := conn.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		sc = c
	case transport.Socket:
		sc = c.Socket()
	default:
		return nil, nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, nil
	}
	sw := &socketWriter{conn: conn, rc: rc}
	sw.do = sw.write
	return sw.Write, sw.vectored()
}

// socketWriter is a direct writer. Its fields carry one write's state
// into and out of the callback, made once, so a write allocates nothing;
// only the wire's owner of the socket calls it, one write at a time.
type socketWriter struct {
	conn net.Conn
	rc   syscall.RawConn
	do   func(fd uintptr) bool
	dov  func(fd uintptr) bool // writev's callback (writer_vec.go)
	b    []byte
	iov  [2][]byte // writev's buffers
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
	sw.b = nil
	return sw.result(err)
}

// result is the outcome of the write just done: what the socket took,
// nothing (not an error) when it took nothing at once.
func (sw *socketWriter) result(err error) (int, error) {
	n, werr := sw.n, sw.err
	sw.n, sw.err = 0, nil
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
