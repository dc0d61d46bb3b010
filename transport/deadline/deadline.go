// Package deadline implements the deadlines of a net.Conn whose own calls
// cannot carry them: a conn that blocks on its own channels (the in-memory
// and KCP conns of this repository), or a conn wrapped around a socket
// that must never see a write deadline of its own (crypto/tls: once a
// write to its socket times out, a *tls.Conn is corrupt for good).
//
// Deadline is a settable point in time with a channel that is closed when
// it passes, the pattern of net.Pipe: a blocked Read or Write selects on
// Done, and SetReadDeadline and SetWriteDeadline call Set, which wakes it
// when the new deadline has passed already. Writer builds on it: it gives
// any io.Writer the write deadline of a net.Conn, so a wrapped conn's
// SetWriteDeadline never reaches its socket.
package deadline

import (
	"sync"
	"time"
)

// Deadline is a point in time, or none, with a channel closed when it
// passes. The zero value has no deadline and is ready to use.
//
// Concurrency: safe for concurrent use. Set may run while others wait on
// a channel Done returned: a waiter holding the channel of an older
// setting is woken when that setting passes (or never, if it had none),
// so a waiter that must see moved deadlines waits in a loop that calls
// Done again after each wake-up.
type Deadline struct {
	mu    sync.Mutex
	timer *time.Timer
	done  chan struct{} // closed when the deadline has passed
}

// Set moves the deadline to t; the zero time removes it. A t that has
// passed closes Done's channel at once. Each channel is closed by exactly
// one party: the timer armed for it, or Set itself.
func (d *Deadline) Set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		// The timer fired or is firing: it closes its channel.
		d.done = nil
	}
	d.timer = nil
	if d.done == nil || isClosed(d.done) {
		d.done = make(chan struct{})
	}
	if t.IsZero() {
		return
	}
	wait := time.Until(t)
	if wait <= 0 {
		close(d.done)
		return
	}
	done := d.done
	d.timer = time.AfterFunc(wait, func() { close(done) })
}

// Done returns a channel closed when the current deadline passes.
func (d *Deadline) Done() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done == nil {
		d.done = make(chan struct{})
	}
	return d.done
}

// Passed reports whether the current deadline has passed.
func (d *Deadline) Passed() bool { return isClosed(d.Done()) }

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
