package yamux

import (
	"context"
	"net"
	"sync"

	hyamux "github.com/hashicorp/yamux"

	"github.com/go-clusterclient/clusterclient/transport"
)

// listener is the net.Listener returned by Transport.Listen.
//
// One goroutine accepts underlying conns and starts a server session on
// each; one goroutine per session accepts its streams and queues them for
// Accept. Backpressure: a stream is acknowledged as soon as it arrives, so
// a slow Accept never holds up a session (nor makes the dialer's session
// time out waiting for acknowledgements); when AcceptBacklog streams wait
// for Accept, a new stream is closed at once (the dialer reads io.EOF)
// instead of queued.
//
// Concurrency: all methods are safe for concurrent use.
type listener struct {
	t        *Transport
	inner    net.Listener
	acceptCh chan net.Conn

	ctx    context.Context // ends with Close: stops the session goroutines
	cancel context.CancelFunc

	mu        sync.Mutex
	sessions  map[*session]struct{}
	brokenErr error // why the underlying Accept failed, once broken is closed

	broken    chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

func newListener(t *Transport, inner net.Listener) *listener {
	ctx, cancel := context.WithCancel(context.Background())
	l := &listener{
		t:        t,
		inner:    inner,
		acceptCh: make(chan net.Conn, t.cfg.AcceptBacklog),
		ctx:      ctx,
		cancel:   cancel,
		sessions: make(map[*session]struct{}),
		broken:   make(chan struct{}),
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

func (l *listener) acceptLoop() {
	defer l.wg.Done()
	for {
		nc, err := l.inner.Accept()
		if err != nil {
			if l.ctx.Err() == nil {
				l.mu.Lock()
				l.brokenErr = err
				l.mu.Unlock()
				close(l.broken)
			}
			return
		}
		ys, err := hyamux.Server(nc, l.t.ycfg)
		if err != nil {
			nc.Close()
			continue
		}
		s := newSession(ys, nc, false, &l.t.cfg)
		l.mu.Lock()
		if l.ctx.Err() != nil {
			l.mu.Unlock()
			ys.Close()
			return
		}
		l.sessions[s] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go l.serve(s)
	}
}

// serve queues the streams of s for Accept until s or the listener ends.
func (l *listener) serve(s *session) {
	defer l.wg.Done()
	defer func() {
		l.mu.Lock()
		delete(l.sessions, s)
		l.mu.Unlock()
	}()
	for {
		st, err := s.ys.AcceptStreamWithContext(l.ctx)
		if err != nil {
			return
		}
		if s.acquire() != nil {
			st.Close()
			continue
		}
		c := s.wrap(st)
		select {
		case l.acceptCh <- c:
		default:
			c.Close() // backlog full
		}
	}
}

func (l *listener) closedErr(op string) error {
	return &transport.OpError{Op: op, Transport: l.t.Name(), Addr: l.inner.Addr().String(), Kind: transport.ErrClosed, Err: net.ErrClosed}
}

// Accept waits for the next stream of any session. After Close it returns
// an error matching both transport.ErrClosed and net.ErrClosed.
func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.acceptCh:
		if l.ctx.Err() != nil {
			c.Close()
			break
		}
		return c, nil
	case <-l.ctx.Done():
	case <-l.broken:
		l.mu.Lock()
		err := l.brokenErr
		l.mu.Unlock()
		return nil, &transport.OpError{Op: "accept", Transport: l.t.Name(), Addr: l.inner.Addr().String(), Err: err}
	}
	return nil, l.closedErr("accept")
}

// Close releases the address (it closes the underlying listener) and ends
// every session once its streams are closed: streams already accepted keep
// working, the dialers are told to open no more on these sessions (yamux
// GoAway), and streams not yet accepted are closed.
func (l *listener) Close() error {
	first := false
	l.closeOnce.Do(func() { first = true })
	if !first {
		return l.closedErr("close")
	}
	l.mu.Lock()
	l.cancel() // under mu: no session is added after the snapshot
	sessions := make([]*session, 0, len(l.sessions))
	for s := range l.sessions {
		sessions = append(sessions, s)
	}
	l.mu.Unlock()
	err := l.inner.Close()
	l.wg.Wait()
	for _, s := range sessions {
		s.ys.GoAway()
		s.retire()
	}
	l.drain()
	if err != nil {
		return &transport.OpError{Op: "close", Transport: l.t.Name(), Addr: l.inner.Addr().String(), Err: err}
	}
	return nil
}

// drain closes the streams queued for Accept.
func (l *listener) drain() {
	for {
		select {
		case c := <-l.acceptCh:
			c.Close()
		default:
			return
		}
	}
}

// Addr returns the underlying listener's address.
func (l *listener) Addr() net.Addr { return l.inner.Addr() }
