package kcp

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-clusterclient/clusterclient/transport"
)

// endpoint owns one UDP socket: a listener's bound socket, shared by all the
// conns it accepts, or a dialer's connected socket, used by one conn. Its
// read loop is the only reader of the socket: it takes control datagrams
// for itself, counts every datagram towards its conn's liveness, and hands
// KCP datagrams to kcp-go through the receiver kcp-go registered (kcp-go's
// PacketPusher interface, so kcp-go starts no reader of its own). Its ticker
// sends heartbeats, retransmits FINs, and fails conns whose peer went
// silent or whose handshake is late.
type endpoint struct {
	cfg  *Config
	pc   *net.UDPConn
	peer *net.UDPAddr // dialer: the peer the socket is connected to
	l    *listener    // listener side: admits new conversations; nil for a dialer

	recv atomic.Pointer[func(b []byte, addr net.Addr, err error)]

	mu    sync.RWMutex
	conns map[uint32]*Conn // by conversation id

	refusedErr atomic.Pointer[error] // first "port unreachable" seen (dialer), as an ErrPeerReset
	wake       chan struct{}         // pokes the ticker to handle refusedErr

	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup // read loop and ticker
}

func newEndpoint(cfg *Config, pc *net.UDPConn, peer *net.UDPAddr, l *listener) *endpoint {
	return &endpoint{
		cfg:   cfg,
		pc:    pc,
		peer:  peer,
		l:     l,
		conns: make(map[uint32]*Conn),
		wake:  make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
}

// start runs the read loop and the ticker.
func (e *endpoint) start() {
	e.wg.Add(2)
	go e.readLoop()
	go e.tickLoop()
}

// close closes the socket, which ends the read loop, and stops the ticker.
// It does not wait for them (it may run on either).
func (e *endpoint) close() {
	e.closeOnce.Do(func() {
		close(e.done)
		e.pc.Close()
	})
}

func (e *endpoint) closing() bool { return isClosed(e.done) }

// add registers c; it fails if its conversation id is taken.
func (e *endpoint) add(c *Conn) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, taken := e.conns[c.conv]; taken {
		return false
	}
	e.conns[c.conv] = c
	return true
}

// remove forgets c. A dialer's endpoint exists for its one conn, so it
// closes with it.
func (e *endpoint) remove(c *Conn) {
	e.mu.Lock()
	if e.conns[c.conv] == c {
		delete(e.conns, c.conv)
	}
	e.mu.Unlock()
	if e.l == nil {
		e.close()
	} else {
		e.l.release(c)
	}
}

// get returns the conn of conversation conv, if any.
func (e *endpoint) get(conv uint32) *Conn {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.conns[conv]
}

// lookup returns the conn of conversation conv if from is its peer.
func (e *endpoint) lookup(conv uint32, from *net.UDPAddr) *Conn {
	c := e.get(conv)
	if c == nil || (e.peer == nil && !sameAddr(c.raddr, from)) {
		return nil
	}
	return c
}

func (e *endpoint) snapshot() []*Conn {
	e.mu.RLock()
	defer e.mu.RUnlock()
	cs := make([]*Conn, 0, len(e.conns))
	for _, c := range e.conns {
		cs = append(cs, c)
	}
	return cs
}

func sameAddr(a *net.UDPAddr, b net.Addr) bool {
	ub, ok := b.(*net.UDPAddr)
	return ok && a.Port == ub.Port && a.IP.Equal(ub.IP) && a.Zone == ub.Zone
}

func (e *endpoint) readLoop() {
	defer e.wg.Done()
	buf := make([]byte, MaxMTU+1)
	for {
		n, from, err := e.pc.ReadFromUDP(buf)
		if err != nil {
			if e.closing() {
				return
			}
			if e.peer != nil && transport.IsPortUnreachable(err) {
				e.refused(err)
				continue
			}
			e.broken(err)
			return
		}
		if n > MaxMTU {
			continue // larger than anything this package sends
		}
		e.handle(buf[:n], from)
	}
}

// broken handles a socket that failed for a reason other than closing:
// every conn fails, and kcp-go's listener (which reports it from Accept)
// is told.
func (e *endpoint) broken(err error) {
	err = fmt.Errorf("kcp: read %s: %w", e.pc.LocalAddr(), err)
	if fn := e.recv.Load(); fn != nil && e.l != nil {
		(*fn)(nil, nil, err)
	}
	for _, c := range e.snapshot() {
		c.fail(err)
	}
}

// refused records that the connected peer's port is closed (ICMP port
// unreachable), from the read loop or from a write inside kcp-go, and lets
// the ticker fail the conn: a write inside kcp-go holds kcp-go's locks,
// which closing the session takes too.
func (e *endpoint) refused(err error) {
	err = fmt.Errorf("%w: nothing listens at %s: %w", ErrPeerReset, e.peer, err)
	if e.refusedErr.CompareAndSwap(nil, &err) {
		select {
		case e.wake <- struct{}{}:
		default:
		}
	}
}

// refusal returns the error of a refused peer (matching ErrPeerReset), or
// nil.
func (e *endpoint) refusal() error {
	if p := e.refusedErr.Load(); p != nil {
		return *p
	}
	return nil
}

func (e *endpoint) handle(p []byte, from *net.UDPAddr) {
	if conv, kind, value, ok := parseControl(p); ok {
		e.control(conv, kind, value, from)
		return
	}
	conv, err := packetConv(p)
	if err != nil {
		return
	}
	c := e.lookup(conv, from)
	if c == nil {
		if e.l == nil {
			return // a dialer has one conversation
		}
		if !carriesHello(p, conv) {
			// A conversation this listener never admitted: a previous
			// listener's, or one already closed here. Tell the sender.
			e.sendControl(conv, ctlReset, 0, from)
			return
		}
		if c = e.l.admit(conv, from); c == nil {
			return // backlog full or closing: the dialer retransmits
		}
	}
	c.rx.Add(1)
	if fn := e.recv.Load(); fn != nil {
		(*fn)(p, from, nil)
	}
}

func (e *endpoint) control(conv uint32, kind byte, value uint64, from *net.UDPAddr) {
	c := e.lookup(conv, from)
	if c == nil {
		if e.l != nil && kind != ctlReset {
			e.sendControl(conv, ctlReset, 0, from)
		}
		return
	}
	c.rx.Add(1)
	switch kind {
	case ctlFin:
		c.onPeerFin(value)
	case ctlFinAck:
		c.onFinAck()
	case ctlReset:
		c.fail(fmt.Errorf("%w: %s does not know the conversation", ErrPeerReset, from))
	}
}

// sendControl sends a control datagram; loss is the receiver's problem
// (heartbeats repeat, FINs are retransmitted, a lost RESET becomes a
// heartbeat timeout).
func (e *endpoint) sendControl(conv uint32, kind byte, value uint64, to *net.UDPAddr) {
	var buf [controlLen]byte
	b := appendControl(buf[:0], conv, kind, value)
	var err error
	if e.peer != nil {
		_, err = e.pc.Write(b)
	} else {
		_, err = e.pc.WriteToUDP(b, to)
	}
	if err != nil && e.peer != nil && transport.IsPortUnreachable(err) {
		e.refused(err)
	}
}

// writeKCP sends a datagram for kcp-go. Losses are KCP's job: only a
// closed socket and, on a dialer, a peer whose port is closed are errors
// (kcp-go stops writing the session after any error).
func (e *endpoint) writeKCP(b []byte, addr net.Addr) (int, error) {
	var err error
	if e.peer != nil {
		_, err = e.pc.Write(b)
	} else {
		ua, ok := addr.(*net.UDPAddr)
		if !ok {
			return 0, fmt.Errorf("kcp: write to %v: not a UDP address", addr)
		}
		_, err = e.pc.WriteToUDP(b, ua)
	}
	switch {
	case err == nil:
		return len(b), nil
	case errors.Is(err, net.ErrClosed):
		return 0, err
	case e.peer != nil && transport.IsPortUnreachable(err):
		e.refused(err)
		return 0, err
	default:
		return len(b), nil
	}
}

func (e *endpoint) tickLoop() {
	defer e.wg.Done()
	t := time.NewTicker(e.cfg.tick())
	defer t.Stop()
	for {
		select {
		case <-e.done:
			return
		case <-e.wake:
			if err := e.refusal(); err != nil {
				for _, c := range e.snapshot() {
					c.fail(err)
				}
			}
		case now := <-t.C:
			for _, c := range e.snapshot() {
				c.tick(now)
			}
		}
	}
}

// packetConn is the net.PacketConn kcp-go sessions and listeners are built
// on. Reading is done by the endpoint (packetConn implements kcp-go's
// PacketPusher), and the endpoint, not kcp-go, closes the socket.
type packetConn struct{ e *endpoint }

var errPushed = errors.New("kcp: packets are pushed by the endpoint, not read")

func (p packetConn) ReadFrom([]byte) (int, net.Addr, error) { return 0, nil, errPushed }

func (p packetConn) WriteTo(b []byte, addr net.Addr) (int, error) { return p.e.writeKCP(b, addr) }

func (p packetConn) Close() error { return nil }

func (p packetConn) LocalAddr() net.Addr { return p.e.pc.LocalAddr() }

func (p packetConn) SetDeadline(time.Time) error { return nil }

func (p packetConn) SetReadDeadline(time.Time) error { return nil }

func (p packetConn) SetWriteDeadline(time.Time) error { return nil }

// SetPacketReceiver implements kcp-go's PacketPusher.
func (p packetConn) SetPacketReceiver(fn func(b []byte, addr net.Addr, err error)) {
	if fn == nil {
		p.e.recv.Store(nil)
		return
	}
	p.e.recv.Store(&fn)
}
