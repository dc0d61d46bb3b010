package link

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-clusterclient/clusterclient/protocol"
)

// wire is one framed connection, on either side. Frames are encoded by the
// goroutine that sends them. Whoever finds the socket free writes: a
// sender writes its frame itself, without blocking, when the conn is a
// plain socket (tcp, unix); what the socket does not take at once, and
// everything on conns of other kinds, goes to a writer goroutine, which
// writes all frames queued meanwhile in one Write. So a lone call costs
// no hand-over between goroutines, concurrent senders coalesce into few
// syscalls, and a sender never blocks on the socket. The owner runs the
// reading loop itself (readLoop).
//
// Concurrency: send and close are safe for concurrent use.
type wire struct {
	conn   net.Conn
	max    int                            // write buffer bound (under mu: see setMax)
	direct func([]byte) (int, error)      // non-blocking write to the socket; nil when the conn has none
	vec    func(a, b []byte) (int, error) // the same for two buffers in one call; nil when the conn has none
	head   []byte                         // a vectored frame's header and conn object (the socket's owner's)

	mu      sync.Mutex
	buf     []byte // frames queued, not yet written
	spare   []byte
	scratch []byte // conn object encoding
	writing bool   // a sender or the writer goroutine owns the socket
	err     error  // first write error or close reason; sticky

	draining    bool // flushClose: close once the buffer is written
	drainReason error

	wake     chan struct{} // hands the socket to the writer goroutine
	closed   chan struct{}
	done     chan struct{} // writer exited
	once     sync.Once
	lastRecv atomic.Int64 // unix nanos of the last frame read
	held     atomic.Bool  // setHeld: queue frames without writing them (written under mu)
}

// Errors of a Link.
var (
	// ErrFull: a frame was not queued because the peer has not read what
	// is queued already (Config.MaxWriteBuffer); the link stays open.
	ErrFull = errors.New("link: the peer does not read: write buffer full")
	// ErrCallsFull: a call was not made because Config.MaxCalls calls
	// are in flight already.
	ErrCallsFull = errors.New("link: too many calls in flight")
	// ErrClosed is the close reason of a link closed without one.
	ErrClosed = errors.New("link: connection closed")
)

// KeepBuf: buffers larger than this are not kept for reuse (a burst of
// large frames does not stay in memory after it).
const KeepBuf = 256 << 10

func newWire(conn net.Conn, max int) *wire {
	w := &wire{
		conn:   conn,
		max:    max,
		wake:   make(chan struct{}, 1),
		closed: make(chan struct{}),
		done:   make(chan struct{}),
	}
	w.direct, w.vec = directWriter(conn)
	w.touch()
	go w.writeLoop()
	return w
}

func (w *wire) touch() { w.lastRecv.Store(time.Now().UnixNano()) }

// idle returns how long nothing was read.
func (w *wire) idle(now time.Time) time.Duration {
	return now.Sub(time.Unix(0, w.lastRecv.Load()))
}

// send queues one frame and, if the socket is free, writes it. app is
// not kept: it is written before send returns, or copied. It fails with the close reason once the wire is closed, and
// with ErrFull (without closing) when the peer is not reading and
// the buffer is over its bound.
func (w *wire) send(response bool, id int64, timeout int32, co *protocol.ConnObject, app []byte) error {
	w.mu.Lock()
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return err
	}
	if len(w.buf) > w.max {
		w.mu.Unlock()
		return ErrFull
	}
	w.scratch = protocol.AppendConn(w.scratch[:0], co)
	if len(app) >= vecMin && w.vec != nil && len(w.buf) == 0 && !w.writing && !w.held.Load() {
		w.sendVec(response, id, timeout, app)
		return nil
	}
	w.buf = protocol.AppendPacket(w.buf, &protocol.Packet{
		Response: response, ID: id, Timeout: timeout, Conn: w.scratch, App: app,
	})
	w.flushLocked()
	return nil
}

// vecMin is the smallest app object written from where it lies, with
// the frame's head in one writev, instead of copied behind the head: the
// copy of a smaller one costs less than the second buffer.
const vecMin = 1 << 10

// sendVec writes one frame, whose app object is not copied, with w.mu
// held, nothing queued, the socket free and not held; it unlocks w.mu.
// What the socket does not take at once is copied into the buffer (in
// front of what others queued meanwhile) for the writer goroutine.
func (w *wire) sendVec(response bool, id int64, timeout int32, app []byte) {
	w.writing = true
	typ := byte(protocol.TypeRequest)
	if response {
		typ = protocol.TypeResponse
	}
	// The head is copied out of scratch, which the next sender reuses
	// once w.mu is unlocked; only the socket's owner touches w.head.
	head := append(w.head[:0], make([]byte, protocol.HeaderSize)...)
	protocol.Header{Version: protocol.Version, Type: typ, ID: id, Timeout: timeout,
		ConnLen: int32(len(w.scratch)), AppLen: int32(len(app))}.Put(head)
	head = append(head, w.scratch...)
	w.head = head
	w.mu.Unlock()
	n, err := w.vec(head, app)
	if err != nil {
		w.close(err)
		return // lost with the connection, as a frame the writer could not write
	}
	w.mu.Lock()
	if n < len(head)+len(app) {
		var rest []byte
		if n < len(head) {
			rest = append(append(rest, head[n:]...), app...)
		} else {
			rest = append(rest, app[n-len(head):]...)
		}
		w.buf = append(rest, w.buf...)
		w.mu.Unlock()
		w.handOff()
		return
	}
	if w.draining || w.err != nil {
		w.mu.Unlock()
		w.handOff()
		return
	}
	w.writing = false
	w.flushLocked() // what others queued meanwhile
}

// setMax changes the bound on queued bytes: a leader keeps a connection
// that has not proved itself to a small one.
func (w *wire) setMax(n int) {
	w.mu.Lock()
	w.max = n
	w.mu.Unlock()
}

// setHeld(true) makes sends queue their frames without writing them;
// setHeld(false) writes what was queued meanwhile. The leader's reader
// sets it from what its Reader has buffered before each read: answers to
// requests that arrived together then leave in one write. The state is
// the wire's, not the reader's: reading moves between goroutines, and
// whichever reads next acts on what is true of the connection now.
func (w *wire) setHeld(on bool) {
	if w.held.Load() == on {
		return
	}
	w.mu.Lock()
	w.held.Store(on)
	if on {
		w.mu.Unlock()
		return
	}
	w.flushLocked()
}

// flushLocked writes the queued frames, unless the wire is held or some
// other goroutine owns the socket (it writes them). It is called with
// w.mu held and unlocks it.
func (w *wire) flushLocked() {
	if w.held.Load() || w.writing || len(w.buf) == 0 || w.err != nil {
		w.mu.Unlock()
		return
	}
	w.writing = true
	if w.direct == nil {
		w.mu.Unlock()
		w.handOff()
		return
	}
	// Write directly, also what other senders queued meanwhile (a few
	// rounds: then the writer goroutine takes over, so that one sender
	// is not kept writing for everybody).
	for range directRounds {
		out := w.buf
		w.buf, w.spare = w.spare[:0], nil
		w.mu.Unlock()
		n, err := w.direct(out)
		if err != nil {
			w.close(err)
			return // lost with the connection, as a frame the writer could not write
		}
		w.mu.Lock()
		if n < len(out) {
			// The socket is full: the rest goes first, then what was
			// queued meanwhile, by the writer goroutine.
			rest := out[:copy(out, out[n:])]
			w.buf, w.spare = append(rest, w.buf...), w.buf[:0]
			break
		}
		w.keep(out)
		if w.draining || w.err != nil {
			break
		}
		if len(w.buf) == 0 || w.held.Load() {
			// Done, or held meanwhile: what was queued since waits
			// for setHeld(false).
			w.writing = false
			w.mu.Unlock()
			return
		}
	}
	w.mu.Unlock()
	w.handOff()
}

// directRounds bounds the direct writes of one sender.
const directRounds = 4

// keep makes out the spare buffer unless it grew too large. w.mu is held.
func (w *wire) keep(out []byte) {
	if cap(out) <= KeepBuf {
		w.spare = out[:0]
	}
}

// handOff gives the socket (w.writing, already set) to the writer
// goroutine.
func (w *wire) handOff() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// writeLoop writes, each time it is handed the socket, until nothing is
// queued, and then gives the socket up.
func (w *wire) writeLoop() {
	defer close(w.done)
	for {
		select {
		case <-w.wake:
		case <-w.closed:
			return
		}
		for {
			w.mu.Lock()
			if w.held.Load() && !w.draining {
				w.writing = false // setHeld(false) writes the rest
				w.mu.Unlock()
				break
			}
			out := w.buf
			w.buf, w.spare = w.spare[:0], nil
			if len(out) == 0 {
				w.spare = out
				w.writing = false
				draining, reason := w.draining, w.drainReason
				w.mu.Unlock()
				if draining {
					w.close(reason)
					return
				}
				break
			}
			w.mu.Unlock()
			if _, err := w.conn.Write(out); err != nil {
				w.close(err)
				return
			}
			w.mu.Lock()
			w.keep(out)
			w.mu.Unlock()
		}
	}
}

// close closes the connection once, recording why; later sends fail with
// that reason. Frames not yet written are dropped.
func (w *wire) close(reason error) {
	w.once.Do(func() {
		if reason == nil {
			reason = ErrClosed
		}
		w.mu.Lock()
		w.err = reason
		w.buf = nil
		w.mu.Unlock()
		close(w.closed)
		w.conn.Close()
	})
}

// flushClose writes what is queued and then closes (at the latest after
// d): used to deliver a last refusal before hanging up.
func (w *wire) flushClose(reason error, d time.Duration) {
	w.mu.Lock()
	w.draining, w.drainReason = true, reason
	idle := !w.writing
	w.writing = true
	w.mu.Unlock()
	if idle {
		w.handOff()
	} // else its owner hands the socket to the writer when done
	t := time.NewTimer(d)
	select {
	case <-w.done:
	case <-t.C:
	}
	t.Stop()
	w.close(reason)
	<-w.done
}

// reason returns why the wire closed (nil while open).
func (w *wire) reason() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// wait blocks until the writer goroutine exited (after close).
func (w *wire) wait() { <-w.done }
