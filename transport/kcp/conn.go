package kcp

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	kcpgo "github.com/xtaci/kcp-go/v5"

	"github.com/go-clusterclient/clusterclient/transport/deadline"
)

// Conn is a KCP conversation returned by Dial and by a listener's Accept.
//
// Concurrency: all methods are safe for concurrent use, as net.Conn
// requires. Writes are atomic: a Write either queues all of b or, on
// error, none of it.
//
// Reads return the peer's bytes in order, then io.EOF once the peer has
// closed and every byte it wrote has been read. Read and Write fail with
// an error matching ErrPeerTimeout when the peer has been silent for
// Config.DeadPeerTimeout, ErrPeerReset when the peer (or the listener now
// holding its port) does not know the conversation, and net.ErrClosed
// after Close or after the listener that accepted the conn closed. Write
// fails with ErrPeerClosed once the peer has closed. Errors are
// *net.OpError values; deadline errors match os.ErrDeadlineExceeded and
// report Timeout() true.
//
// Close does not block: the conn stops at once for its caller, sends a
// FIN telling the peer how many bytes to expect, and keeps its KCP session
// for at most Config.Linger in the background, until the peer has read
// them all.
type Conn struct {
	ep    *endpoint
	cfg   *Config
	conv  uint32
	raddr *net.UDPAddr
	born  time.Time

	sess *kcpgo.UDPSession // set once by attach, before the conn is used

	rx atomic.Uint64 // datagrams received from the peer

	readable chan struct{} // cap 1: data may be ready, or a FIN arrived
	rd, wd   deadline.Deadline

	readN   atomic.Uint64 // bytes returned by Read
	written atomic.Uint64 // bytes accepted by Write
	wmu     sync.RWMutex  // held for reading by Write, for writing by Close to read a final count

	peerFin    atomic.Uint64 // bytes the peer wrote in total, once hasPeerFin
	hasPeerFin atomic.Bool

	closedCh chan struct{} // closed by Close
	failedCh chan struct{} // closed by fail

	mu          sync.Mutex
	pending     bool // admitted by a listener and not yet returned by Accept
	established bool // handshake done
	closed      bool
	lingering   bool      // Close has sent its FIN
	finValue    uint64    // what the FIN says
	lingerUntil time.Time // when a lingering conn gives up on its FIN_ACK
	torn        bool      // session closed and conn unregistered
	failErr     error
	eofSeen     bool      // Read has returned io.EOF
	lastRx      uint64    // rx at lastSeen
	lastSeen    time.Time // when rx last changed, as seen by the ticker
	lastPing    time.Time
}

var _ net.Conn = (*Conn)(nil)

func newConn(ep *endpoint, conv uint32, raddr *net.UDPAddr) *Conn {
	return &Conn{
		ep:       ep,
		cfg:      ep.cfg,
		conv:     conv,
		raddr:    raddr,
		born:     time.Now(),
		readable: make(chan struct{}, 1),
		closedCh: make(chan struct{}),
		failedCh: make(chan struct{}),
	}
}

// attach tunes s and makes it c's session. It fails if c is already torn
// down or has a session.
func (c *Conn) attach(s *kcpgo.UDPSession) bool {
	s.SetNoDelay(1, 10, 2, 1) // no delay, 10 ms internal clock, fast resend after 2 acks, no congestion window
	s.SetWindowSize(c.cfg.Window, c.cfg.Window)
	s.SetMtu(c.cfg.MTU)
	s.SetReadNotify(c.signal)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.torn || c.sess != nil {
		return false
	}
	c.sess = s
	return true
}

// signal wakes a blocked Read. kcp-go calls it with the session locked.
func (c *Conn) signal() {
	select {
	case c.readable <- struct{}{}:
	default:
	}
}

// setEstablished ends the handshake. Byte counts (which FINs compare)
// start here: the hello and hello-ack are read through Read but written
// past Write, and do not count.
func (c *Conn) setEstablished() {
	c.readN.Store(0)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.established = true
	c.lastRx = c.rx.Load()
	c.lastSeen = time.Now()
}

func (c *Conn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "kcp", Source: c.LocalAddr(), Addr: c.raddr, Err: err}
}

// failure returns why the conn failed, or nil. A refusal the ticker has
// not handled yet counts: kcp-go may report it first.
func (c *Conn) failure() error {
	c.mu.Lock()
	err := c.failErr
	c.mu.Unlock()
	if err == nil {
		err = c.ep.refusal()
	}
	return err
}

// Read implements net.Conn.
func (c *Conn) Read(b []byte) (int, error) {
	for {
		if isClosed(c.closedCh) {
			return 0, c.opErr("read", net.ErrClosed)
		}
		if c.rd.Passed() {
			return 0, c.opErr("read", os.ErrDeadlineExceeded)
		}
		if len(b) == 0 {
			return 0, nil
		}
		n, err := c.sess.TryRead(b)
		if n > 0 {
			c.readN.Add(uint64(n))
			if c.hasPeerFin.Load() {
				c.signal() // another reader may be waiting for EOF
			}
			return n, nil
		}
		if c.atEOF() {
			c.signal()
			return 0, io.EOF
		}
		if ferr := c.failure(); ferr != nil {
			return 0, c.opErr("read", ferr)
		}
		if err != nil {
			return 0, c.opErr("read", err)
		}
		select {
		case <-c.readable:
		case <-c.rd.Done():
		case <-c.closedCh:
		case <-c.failedCh:
		}
	}
}

// atEOF reports whether the peer closed and everything it wrote has been
// read; the first time, it acknowledges the FIN.
func (c *Conn) atEOF() bool {
	if !c.hasPeerFin.Load() || c.readN.Load() < c.peerFin.Load() {
		return false
	}
	c.mu.Lock()
	first := !c.eofSeen
	c.eofSeen = true
	c.mu.Unlock()
	if first {
		c.ep.sendControl(c.conv, ctlFinAck, 0, c.raddr)
	}
	return true
}

// Write implements net.Conn.
func (c *Conn) Write(b []byte) (int, error) {
	c.wmu.RLock()
	defer c.wmu.RUnlock()
	if isClosed(c.closedCh) {
		return 0, c.opErr("write", net.ErrClosed)
	}
	if err := c.failure(); err != nil {
		return 0, c.opErr("write", err)
	}
	if c.hasPeerFin.Load() {
		return 0, c.opErr("write", ErrPeerClosed)
	}
	if c.wd.Passed() {
		return 0, c.opErr("write", os.ErrDeadlineExceeded)
	}
	if len(b) == 0 {
		return 0, nil
	}
	n, err := c.sess.Write(b)
	c.written.Add(uint64(n))
	if err == nil {
		return n, nil
	}
	var ne net.Error
	switch ferr := c.failure(); {
	case isClosed(c.closedCh):
		err = net.ErrClosed
	case ferr != nil:
		err = ferr
	case errors.As(err, &ne) && ne.Timeout():
		err = os.ErrDeadlineExceeded
	}
	return n, c.opErr("write", err)
}

// Close implements net.Conn; see the type's documentation.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return c.opErr("close", net.ErrClosed)
	}
	c.closed = true
	close(c.closedCh)
	if c.sess != nil {
		c.sess.SetWriteDeadline(aLongTimeAgo) // abort blocked Writes
	}
	c.mu.Unlock()

	c.wmu.Lock() // wait for Writes in progress, so the count is final
	total := c.written.Load()
	c.wmu.Unlock()

	c.mu.Lock()
	if c.torn || c.failErr != nil {
		c.mu.Unlock()
		c.teardown()
		return nil
	}
	c.lingering = true
	c.finValue = total
	c.lingerUntil = time.Now().Add(c.cfg.Linger)
	// Nobody will read what is still on its way if the peer closed too.
	done := c.hasPeerFin.Load() || !c.established
	c.mu.Unlock()

	c.ep.sendControl(c.conv, ctlFin, total, c.raddr)
	if done {
		c.teardown()
	}
	return nil
}

// onPeerFin handles the peer's FIN: Read returns io.EOF once it has
// returned total bytes.
func (c *Conn) onPeerFin(total uint64) {
	if !c.hasPeerFin.Load() {
		c.peerFin.Store(total)
		c.hasPeerFin.Store(true)
	}
	c.mu.Lock()
	closed, ack := c.closed, c.closed || c.eofSeen
	c.mu.Unlock()
	if ack {
		c.ep.sendControl(c.conv, ctlFinAck, 0, c.raddr)
	}
	if closed {
		c.teardown()
	}
	c.signal()
}

// onFinAck handles the peer's acknowledgement of our FIN.
func (c *Conn) onFinAck() {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		c.teardown()
	}
}

// fail ends the conn with err: Read and Write return it from now on.
func (c *Conn) fail(err error) {
	c.mu.Lock()
	if c.failErr != nil || c.torn {
		c.mu.Unlock()
		return
	}
	c.failErr = err
	close(c.failedCh)
	c.mu.Unlock()
	c.teardown()
}

// reject tells the peer the conversation is over, then fails the conn.
func (c *Conn) reject(err error) {
	c.ep.sendControl(c.conv, ctlReset, 0, c.raddr)
	c.fail(err)
}

// teardown closes the KCP session and unregisters the conn.
func (c *Conn) teardown() {
	c.mu.Lock()
	if c.torn {
		c.mu.Unlock()
		return
	}
	c.torn = true
	sess := c.sess
	c.mu.Unlock()
	if sess != nil {
		sess.Close()
	}
	c.ep.remove(c)
}

// tick is run by the endpoint's ticker every Config.PingInterval/4.
func (c *Conn) tick(now time.Time) {
	var (
		ping, fin bool
		finValue  uint64
		expired   error
		teardown  bool
	)
	c.mu.Lock()
	switch {
	case c.torn:
	case c.lingering:
		if now.After(c.lingerUntil) {
			teardown = true
		} else {
			fin, finValue = true, c.finValue
		}
	case c.closed:
		// Close is between its two steps.
	case !c.established:
		if c.ep.l != nil && now.Sub(c.born) > c.cfg.HandshakeTimeout {
			expired = fmt.Errorf("%w: no hello from %s within %v", ErrHandshake, c.raddr, c.cfg.HandshakeTimeout)
		}
	default:
		if rx := c.rx.Load(); rx != c.lastRx {
			c.lastRx, c.lastSeen = rx, now
		}
		if silent := now.Sub(c.lastSeen); silent >= c.cfg.DeadPeerTimeout {
			expired = fmt.Errorf("%w: nothing from %s for %v", ErrPeerTimeout, c.raddr, silent.Round(time.Millisecond))
		} else if now.Sub(c.lastPing) >= c.cfg.PingInterval {
			ping, c.lastPing = true, now
		}
	}
	c.mu.Unlock()
	switch {
	case teardown:
		c.teardown()
	case expired != nil:
		c.reject(expired)
	case fin:
		c.ep.sendControl(c.conv, ctlFin, finValue, c.raddr)
	case ping:
		c.ep.sendControl(c.conv, ctlPing, 0, c.raddr)
	}
}

// LocalAddr implements net.Conn.
func (c *Conn) LocalAddr() net.Addr { return c.ep.pc.LocalAddr() }

// RemoteAddr implements net.Conn.
func (c *Conn) RemoteAddr() net.Addr { return c.raddr }

// SetDeadline implements net.Conn.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// SetReadDeadline implements net.Conn.
func (c *Conn) SetReadDeadline(t time.Time) error {
	if isClosed(c.closedCh) {
		return c.opErr("set", net.ErrClosed)
	}
	c.rd.Set(t)
	return nil
}

// SetWriteDeadline implements net.Conn.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.opErr("set", net.ErrClosed)
	}
	c.wd.Set(t)
	c.sess.SetWriteDeadline(t)
	return nil
}

// aLongTimeAgo is a deadline in the past, used to abort blocked calls.
var aLongTimeAgo = time.Unix(1, 0)

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
