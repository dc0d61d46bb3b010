package mem

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/go-clusterclient/clusterclient/transport/deadline"
)

// ErrWriteAfterCloseWrite is returned (wrapped in a *net.OpError) by Write
// after CloseWrite.
var ErrWriteAfterCloseWrite = errors.New("mem: write after CloseWrite")

// stream is one direction of a conn: a bounded byte queue written by one
// end and read by the other.
type stream struct {
	mu      sync.Mutex
	buf     []byte // buf[off:] is unread
	off     int
	limit   int  // most unread bytes buffered at once
	eof     bool // the writer closed: the reader gets io.EOF once buf drains
	dropped bool // the reader closed: writes fail, buf is discarded

	// readable and writable each hold at most one wake-up token. A token
	// sent between a check and the wait stays in the channel, so no
	// wake-up is lost; a stale token costs one more loop.
	readable chan struct{} // data arrived or eof set
	writable chan struct{} // room freed or dropped set
}

func newStream(limit int) *stream {
	return &stream{
		limit:    limit,
		readable: make(chan struct{}, 1),
		writable: make(chan struct{}, 1),
	}
}

func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// read copies buffered bytes into p. It reports io.EOF when nothing is
// buffered and the writer closed; n == 0 and err == nil mean "wait".
func (s *stream) read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := copy(p, s.buf[s.off:])
	s.off += n
	if s.off == len(s.buf) {
		s.buf, s.off = s.buf[:0], 0
	}
	if n > 0 {
		poke(s.writable)
		return n, nil
	}
	if s.eof {
		return 0, io.EOF
	}
	return 0, nil
}

// write buffers as much of p as fits. n == 0 and err == nil mean "wait".
func (s *stream) write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.eof:
		return 0, ErrWriteAfterCloseWrite
	case s.dropped:
		return 0, io.ErrClosedPipe
	}
	n := min(len(p), s.limit-(len(s.buf)-s.off))
	if n <= 0 {
		return 0, nil
	}
	if s.off > 0 && len(s.buf)+n > cap(s.buf) {
		s.buf = s.buf[:copy(s.buf, s.buf[s.off:])]
		s.off = 0
	}
	s.buf = append(s.buf, p[:n]...)
	poke(s.readable)
	return n, nil
}

// closeWrite marks the end of the stream for the reader.
func (s *stream) closeWrite() {
	s.mu.Lock()
	s.eof = true
	s.mu.Unlock()
	poke(s.readable)
}

// closeRead discards buffered bytes and fails later writes.
func (s *stream) closeRead() {
	s.mu.Lock()
	s.dropped = true
	s.buf, s.off = nil, 0
	s.mu.Unlock()
	poke(s.writable)
}

// conn is one end of a mem connection.
//
// Reads are serialized among themselves, and so are Writes, as on a socket:
// one Write's bytes are never interleaved with another's.
type conn struct {
	rx, tx        *stream
	local, remote Addr

	readMu, writeMu sync.Mutex
	readDL, writeDL deadline.Deadline

	done      chan struct{} // closed by Close
	closeOnce sync.Once
}

var _ interface {
	net.Conn
	CloseWrite() error
} = (*conn)(nil)

// newConnPair returns the two ends of a new connection between a dialer at
// local and a listener at remote, buffering size bytes per direction.
func newConnPair(local, remote Addr, size int) (client, server *conn) {
	up, down := newStream(size), newStream(size)
	client = &conn{rx: down, tx: up, local: local, remote: remote, done: make(chan struct{})}
	server = &conn{rx: up, tx: down, local: remote, remote: local, done: make(chan struct{})}
	return client, server
}

func (c *conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "mem", Source: c.local, Addr: c.remote, Err: err}
}

func (c *conn) closed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// Read reads buffered bytes, waiting for some if none are buffered. It
// returns io.EOF after the peer closed (or half-closed) and every byte it
// wrote was read.
func (c *conn) Read(p []byte) (int, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	for {
		if c.closed() {
			return 0, c.opError("read", net.ErrClosed)
		}
		if c.readDL.Passed() {
			return 0, c.opError("read", os.ErrDeadlineExceeded)
		}
		if len(p) == 0 {
			return 0, nil
		}
		n, err := c.rx.read(p)
		if n > 0 || err != nil {
			return n, err // io.EOF is returned bare, as net conns do
		}
		select {
		case <-c.rx.readable:
		case <-c.readDL.Done():
		case <-c.done:
		}
	}
}

// Write buffers p, waiting while the peer's buffer is full. On a deadline
// or Close it returns how much was buffered. After the peer closed, it
// fails with io.ErrClosedPipe.
func (c *conn) Write(p []byte) (int, error) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	n := 0
	for {
		if c.closed() {
			return n, c.opError("write", net.ErrClosed)
		}
		if c.writeDL.Passed() {
			return n, c.opError("write", os.ErrDeadlineExceeded)
		}
		m, err := c.tx.write(p[n:])
		n += m
		if err != nil {
			return n, c.opError("write", err)
		}
		if n == len(p) {
			return n, nil
		}
		if m > 0 {
			continue
		}
		select {
		case <-c.tx.writable:
		case <-c.writeDL.Done():
		case <-c.done:
		}
	}
}

// Close closes both directions: the peer reads what was already written,
// then io.EOF, and its Writes fail. Blocked Reads and Writes return. A
// second Close returns an error matching net.ErrClosed.
func (c *conn) Close() error {
	first := false
	c.closeOnce.Do(func() {
		first = true
		close(c.done)
		c.tx.closeWrite()
		c.rx.closeRead()
		c.readDL.Set(time.Time{})
		c.writeDL.Set(time.Time{})
	})
	if !first {
		return c.opError("close", net.ErrClosed)
	}
	return nil
}

// CloseWrite half-closes the conn: the peer reads io.EOF after the bytes
// already written, while this end can still read. Later Writes fail with
// ErrWriteAfterCloseWrite.
func (c *conn) CloseWrite() error {
	if c.closed() {
		return c.opError("close", net.ErrClosed)
	}
	c.tx.closeWrite()
	return nil
}

// LocalAddr returns this end's address.
func (c *conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr returns the peer's address.
func (c *conn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline sets both the read and the write deadline.
func (c *conn) SetDeadline(t time.Time) error {
	if c.closed() {
		return c.opError("set", net.ErrClosed)
	}
	c.readDL.Set(t)
	c.writeDL.Set(t)
	return nil
}

// SetReadDeadline sets the read deadline; it also wakes a blocked Read.
func (c *conn) SetReadDeadline(t time.Time) error {
	if c.closed() {
		return c.opError("set", net.ErrClosed)
	}
	c.readDL.Set(t)
	return nil
}

// SetWriteDeadline sets the write deadline; it also wakes a blocked Write.
func (c *conn) SetWriteDeadline(t time.Time) error {
	if c.closed() {
		return c.opError("set", net.ErrClosed)
	}
	c.writeDL.Set(t)
	return nil
}
