package yamux

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"

	hyamux "github.com/hashicorp/yamux"

	"github.com/go-clusterclient/clusterclient/transport"
)

// aLongTimeAgo is a deadline in the past, used to abort blocked calls.
var aLongTimeAgo = time.Unix(1, 0)

// stream is a yamux stream as the net.Conn this package returns.
//
// A bare yamux stream falls short of net.Conn in two ways this type fixes:
// its Close is only a half-close (a blocked Read stays blocked until the
// peer closes too), and a Write with a past deadline still succeeds while
// the send window is open. Close here ends the stream for its caller at
// once, and deadlines are checked before every call.
//
// Concurrency: all methods are safe for concurrent use.
type stream struct {
	s  *session
	st *hyamux.Stream

	mu        sync.Mutex // orders Close against deadline changes
	closed    bool
	readDL    time.Time
	writeDL   time.Time
	closeOnce sync.Once
	closedCh  chan struct{}
}

var (
	_ net.Conn             = (*stream)(nil)
	_ transport.HalfCloser = (*stream)(nil)
)

func newStream(s *session, st *hyamux.Stream) *stream {
	return &stream{s: s, st: st, closedCh: make(chan struct{})}
}

func (c *stream) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "yamux", Source: c.st.LocalAddr(), Addr: c.st.RemoteAddr(), Err: err}
}

// mapErr turns a yamux error from op into this package's shape: io.EOF
// stays itself, a closed stream reports net.ErrClosed, a deadline
// os.ErrDeadlineExceeded.
func (c *stream) mapErr(op string, err error) error {
	switch {
	case err == nil || err == io.EOF:
		return err
	case isClosed(c.closedCh):
		return c.opErr(op, net.ErrClosed)
	case errors.Is(err, hyamux.ErrTimeout):
		return c.opErr(op, os.ErrDeadlineExceeded)
	}
	return c.opErr(op, err)
}

// refuse returns the error a Read or Write (op) fails with before it
// starts: the stream is closed, or the deadline the call reads (*dl)
// has passed. It returns nil if the call may go on.
func (c *stream) refuse(op string, dl *time.Time) error {
	c.mu.Lock()
	closed, t := c.closed, *dl
	c.mu.Unlock()
	switch {
	case closed:
		return c.opErr(op, net.ErrClosed)
	case !t.IsZero() && !time.Now().Before(t):
		return c.opErr(op, os.ErrDeadlineExceeded)
	}
	return nil
}

// Read implements net.Conn.
func (c *stream) Read(b []byte) (int, error) {
	if err := c.refuse("read", &c.readDL); err != nil {
		return 0, err
	}
	n, err := c.st.Read(b)
	if n > 0 && err != io.EOF {
		// yamux reports a failure to send the window update that follows
		// a read along with the data read; the next Read tells what
		// became of the stream.
		err = nil
	}
	return n, c.mapErr("read", err)
}

// Write implements net.Conn.
func (c *stream) Write(b []byte) (int, error) {
	if err := c.refuse("write", &c.writeDL); err != nil {
		return 0, err
	}
	n, err := c.st.Write(b)
	return n, c.mapErr("write", err)
}

// CloseWrite sends the stream's FIN: the peer reads io.EOF after the data
// written so far, and may still answer. It implements transport.HalfCloser.
func (c *stream) CloseWrite() error {
	if isClosed(c.closedCh) {
		return c.opErr("close", net.ErrClosed)
	}
	return c.mapErr("close", c.st.Close())
}

// Close ends the stream: blocked and later Reads and Writes fail with
// net.ErrClosed, and the peer reads io.EOF after the data written so far.
// The session lives on while other streams use it.
func (c *stream) Close() error {
	first := false
	c.closeOnce.Do(func() {
		first = true
		c.mu.Lock()
		c.closed = true
		close(c.closedCh)
		c.st.SetDeadline(aLongTimeAgo) // wake blocked Reads and Writes
		c.mu.Unlock()
	})
	if !first {
		return c.opErr("close", net.ErrClosed)
	}
	err := c.st.Close() // FIN, once the data written so far is sent
	c.s.release()
	if err != nil && !errors.Is(err, hyamux.ErrSessionShutdown) {
		return c.opErr("close", err)
	}
	return nil
}

// LocalAddr implements net.Conn: the underlying conn's local address.
func (c *stream) LocalAddr() net.Addr { return c.st.LocalAddr() }

// RemoteAddr implements net.Conn: the underlying conn's remote address.
func (c *stream) RemoteAddr() net.Addr { return c.st.RemoteAddr() }

// SetDeadline implements net.Conn.
func (c *stream) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// SetReadDeadline implements net.Conn.
func (c *stream) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.opErr("set", net.ErrClosed)
	}
	c.readDL = t
	return c.st.SetReadDeadline(t)
}

// SetWriteDeadline implements net.Conn.
func (c *stream) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.opErr("set", net.ErrClosed)
	}
	c.writeDL = t
	return c.st.SetWriteDeadline(t)
}

// credStream is a stream whose session runs over a conn with peer
// credentials (a unix socket): every stream reports the same peer.
type credStream struct{ *stream }

var _ transport.PeerCredentials = (*credStream)(nil)

// PeerCred returns the credentials of the process at the other end of the
// session's underlying conn.
func (c *credStream) PeerCred() (transport.Cred, error) { return c.s.creds.PeerCred() }

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
