package kcp

import (
	"sync"
	"time"
)

// aLongTimeAgo is a deadline in the past, used to abort blocked calls.
var aLongTimeAgo = time.Unix(1, 0)

// deadline is a settable point in time with a channel that is closed when
// it passes (the pattern of net.Pipe). It may be set any number of times,
// concurrently with waiters: a waiter that got the channel of an older
// setting is woken when that setting passes or, if the deadline is moved,
// re-reads it after its next wake-up.
type deadline struct {
	mu    sync.Mutex
	timer *time.Timer
	done  chan struct{} // closed when the deadline has passed
}

func newDeadline() *deadline { return &deadline{done: make(chan struct{})} }

// set moves the deadline; the zero time removes it.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.done // the timer fired: wait until its callback has closed done
	}
	d.timer = nil
	passed := isClosed(d.done)
	if t.IsZero() {
		if passed {
			d.done = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if passed {
			d.done = make(chan struct{})
		}
		done := d.done
		d.timer = time.AfterFunc(dur, func() { close(done) })
		return
	}
	if !passed {
		close(d.done)
	}
}

// wait returns a channel closed when the current deadline passes.
func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.done
}

// passed reports whether the current deadline has passed.
func (d *deadline) passed() bool { return isClosed(d.wait()) }

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
