package cluster

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-clusterclient/clusterclient/protocol"
)

// wire is one framed connection, on either side. Frames are encoded by the
// goroutine that sends them and appended to one buffer; a single writer
// goroutine swaps the buffer out and writes everything queued in one
// Write, so concurrent senders coalesce into few syscalls and never block
// on the socket. The owner runs the reading loop itself (readLoop).
//
// Concurrency: send and close are safe for concurrent use.
type wire struct {
	conn net.Conn
	max  int // write buffer bound

	mu      sync.Mutex
	buf     []byte // frames queued, not yet handed to the writer
	spare   []byte
	scratch []byte // conn object encoding
	err     error  // first write error or close reason; sticky

	draining    bool // flushClose: close once the buffer is written
	drainReason error

	wake     chan struct{}
	closed   chan struct{}
	done     chan struct{} // writer exited
	once     sync.Once
	lastRecv atomic.Int64 // unix nanos of the last frame read
}

// errWireClosed is the close reason when the owner closes on purpose.
var errWireClosed = errors.New("connection closed")

const keepBuf = 256 << 10 // buffers larger than this are not kept for reuse

func newWire(conn net.Conn, max int) *wire {
	w := &wire{
		conn:   conn,
		max:    max,
		wake:   make(chan struct{}, 1),
		closed: make(chan struct{}),
		done:   make(chan struct{}),
	}
	w.touch()
	go w.writeLoop()
	return w
}

func (w *wire) touch() { w.lastRecv.Store(time.Now().UnixNano()) }

// idle returns how long nothing was read.
func (w *wire) idle(now time.Time) time.Duration {
	return now.Sub(time.Unix(0, w.lastRecv.Load()))
}

// send queues one frame. app is copied. It fails with the close reason
// once the wire is closed, and with ErrOverloaded (without closing) when
// the peer is not reading and the buffer is over its bound.
func (w *wire) send(response bool, id int64, timeout int32, co *protocol.ConnObject, app []byte) error {
	w.mu.Lock()
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return err
	}
	if len(w.buf) > w.max {
		w.mu.Unlock()
		return ErrOverloaded
	}
	w.scratch = protocol.AppendConn(w.scratch[:0], co)
	w.buf = protocol.AppendPacket(w.buf, &protocol.Packet{
		Response: response, ID: id, Timeout: timeout, Conn: w.scratch, App: app,
	})
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return nil
}

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
			out := w.buf
			w.buf = w.spare[:0]
			w.spare = nil
			draining := w.draining
			w.mu.Unlock()
			if len(out) == 0 {
				w.mu.Lock()
				w.spare = out
				w.mu.Unlock()
				if draining {
					w.close(w.drainReason)
					return
				}
				break
			}
			if _, err := w.conn.Write(out); err != nil {
				w.close(err)
				return
			}
			if cap(out) <= keepBuf {
				w.mu.Lock()
				w.spare = out[:0]
				w.mu.Unlock()
			}
			if !draining {
				break
			}
		}
	}
}

// close closes the connection once, recording why; later sends fail with
// that reason. Frames not yet written are dropped.
func (w *wire) close(reason error) {
	w.once.Do(func() {
		if reason == nil {
			reason = errWireClosed
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
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
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
