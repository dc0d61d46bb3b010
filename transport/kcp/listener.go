package kcp

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	kcpgo "github.com/xtaci/kcp-go/v5"

	"github.com/go-clusterclient/clusterclient/transport"
)

// errListenerClosed is how the conns of a closed listener fail.
var errListenerClosed = fmt.Errorf("kcp: listener closed: %w", net.ErrClosed)

// listener is the net.Listener returned by Transport.Listen.
//
// Concurrency: all methods are safe for concurrent use. Close releases the
// UDP port at once; since every accepted conn uses that socket, they fail
// too (net.ErrClosed), and their peers get a RESET.
type listener struct {
	tr *Transport
	ep *endpoint
	kl *kcpgo.Listener

	acceptCh chan *Conn // handshaken conns; capacity AcceptBacklog

	mu        sync.Mutex
	pending   int   // conns admitted and not yet returned by Accept
	brokenErr error // why the socket failed, once broken is closed

	broken    chan struct{}
	done      chan struct{} // closed by Close
	closeOnce sync.Once
	wg        sync.WaitGroup // accept loop and handshakes
}

func newListener(tr *Transport, pc *net.UDPConn) (*listener, error) {
	l := &listener{
		tr:       tr,
		acceptCh: make(chan *Conn, tr.cfg.AcceptBacklog),
		broken:   make(chan struct{}),
		done:     make(chan struct{}),
	}
	l.ep = newEndpoint(&tr.cfg, pc, nil, l)
	kl, err := kcpgo.ServeConn(nil, 0, 0, packetConn{l.ep})
	if err != nil {
		return nil, err
	}
	l.kl = kl
	l.ep.start()
	l.wg.Add(1)
	go l.acceptLoop()
	return l, nil
}

// admit registers a new conversation whose hello packet just arrived, or
// returns nil if the backlog is full or the listener closing. It runs on
// the read loop, before kcp-go sees the packet.
func (l *listener) admit(conv uint32, from *net.UDPAddr) *Conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	if isClosed(l.done) || l.pending >= l.tr.cfg.AcceptBacklog {
		return nil
	}
	raddr := &net.UDPAddr{IP: append(net.IP(nil), from.IP...), Port: from.Port, Zone: from.Zone}
	c := newConn(l.ep, conv, raddr)
	c.pending = true
	if !l.ep.add(c) {
		return nil // conversation id taken by another peer
	}
	l.pending++
	return c
}

// release frees c's backlog slot, once, when Accept returns it or it is
// torn down before.
func (l *listener) release(c *Conn) {
	c.mu.Lock()
	was := c.pending
	c.pending = false
	c.mu.Unlock()
	if was {
		l.mu.Lock()
		l.pending--
		l.mu.Unlock()
	}
}

// acceptLoop takes the sessions kcp-go creates for admitted conversations
// and runs a handshake for each.
func (l *listener) acceptLoop() {
	defer l.wg.Done()
	for {
		s, err := l.kl.AcceptKCP()
		if err != nil {
			if !isClosed(l.done) {
				l.mu.Lock()
				l.brokenErr = err
				l.mu.Unlock()
				close(l.broken)
			}
			return
		}
		c := l.ep.get(s.GetConv())
		if c == nil || !sameAddr(c.raddr, s.RemoteAddr()) || !c.attach(s) {
			s.Close()
			continue
		}
		l.wg.Add(1)
		go l.handshake(c)
	}
}

// handshake reads c's hello, answers it and queues c for Accept.
func (l *listener) handshake(c *Conn) {
	defer l.wg.Done()
	c.rd.Set(c.born.Add(l.tr.cfg.HandshakeTimeout))
	var hello [helloLen]byte
	if _, err := io.ReadFull(c, hello[:]); err != nil {
		c.reject(fmt.Errorf("%w: no hello from %s: %w", ErrHandshake, c.raddr, err))
		return
	}
	nonce, err := parseHandshake(hello[:], helloMagic)
	if err != nil {
		c.reject(fmt.Errorf("hello from %s: %w", c.raddr, err))
		return
	}
	if _, err := c.sess.Write(appendHandshake(make([]byte, 0, ackLen), ackMagic, nonce)); err != nil {
		c.reject(fmt.Errorf("%w: answer %s: %w", ErrHandshake, c.raddr, err))
		return
	}
	c.rd.Set(time.Time{})
	c.setEstablished()
	select {
	case l.acceptCh <- c:
	case <-l.done:
		c.fail(errListenerClosed)
	}
}

func (l *listener) opErr(op string, kind, err error) error {
	return &transport.OpError{Op: op, Transport: l.tr.Name(), Addr: l.Addr().String(), Kind: kind, Err: err}
}

// Accept waits for the next conn whose handshake completed. After Close it
// returns an error matching both transport.ErrClosed and net.ErrClosed.
func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.acceptCh:
		if isClosed(l.done) {
			break // Close failed c already
		}
		l.release(c)
		return c, nil
	case <-l.done:
	case <-l.broken:
		l.mu.Lock()
		err := l.brokenErr
		l.mu.Unlock()
		return nil, l.opErr("accept", nil, err)
	}
	return nil, l.opErr("accept", transport.ErrClosed, net.ErrClosed)
}

// Close releases the address: it tells every peer (RESET), closes the
// socket and waits for the listener's goroutines. Accepted conns fail.
func (l *listener) Close() error {
	first := false
	l.closeOnce.Do(func() {
		first = true
		l.mu.Lock() // no admit after this
		close(l.done)
		l.mu.Unlock()
	})
	if !first {
		return l.opErr("close", transport.ErrClosed, net.ErrClosed)
	}
	kerr := l.kl.Close()
	for _, c := range l.ep.snapshot() {
		c.reject(errListenerClosed)
	}
	l.ep.close()
	l.ep.wg.Wait()
	l.wg.Wait()
	if kerr != nil && !errors.Is(kerr, io.ErrClosedPipe) {
		return l.opErr("close", nil, kerr)
	}
	return nil
}

// Addr returns the bound UDP address.
func (l *listener) Addr() net.Addr { return l.ep.pc.LocalAddr() }
