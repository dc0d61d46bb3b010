package cluster

import (
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
)

// dispatcher is a Client's callback goroutine: it runs subscription
// listeners and the event handler, one at a time, in the order things
// happened, and never on a caller's goroutine (so a listener is never
// called inside Subscribe, and never under a lock of ours). A value read
// from the leader while nothing waits or runs is run on the goroutine
// that read it instead (tryRun): no hand-over between goroutines on the
// way from the socket to the listener.
//
// Concurrency: push, tryRun and stop may be called from any goroutine;
// mu guards the queue and busy (a leaf lock). busy is held by whoever
// runs tasks: the loop while it drains the queue, or a tryRun caller.
//
// Values are never dropped (the queue grows); events beyond the event
// buffer are dropped and counted, so a stuck event handler cannot grow
// memory without bound.
type dispatcher struct {
	mu      sync.Mutex
	q       []task
	events  int // events in q
	max     int // event buffer
	stopped bool
	busy    bool // tasks run now: by the loop or by a tryRun caller
	wake    chan struct{}
	done    chan struct{}
	inCall  atomic.Bool
	dropped atomic.Uint64
	run     func(task)
}

// task is one unit of callback work.
type task struct {
	ev   *Event // an event for the handler
	key  string // a value for every listener of key...
	data []byte
	only *listener // ...or only for this listener (cache replay)
	// cached: data is a cached value replayed by the leader to a new
	// subscriber; stream listeners (Stream) skip it.
	cached bool
}

func newDispatcher(max int, run func(task)) *dispatcher {
	d := &dispatcher{max: max, wake: make(chan struct{}, 1), done: make(chan struct{}), run: run}
	go d.loop()
	return d
}

// push queues t; it never blocks. It reports false when the task was
// dropped (stopped, or an event over the buffer).
func (d *dispatcher) push(t task) bool {
	d.mu.Lock()
	if d.stopped {
		d.mu.Unlock()
		return false
	}
	if t.ev != nil {
		if d.events >= d.max {
			d.mu.Unlock()
			d.dropped.Add(1)
			return false
		}
		d.events++
	}
	d.q = append(d.q, t)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
	return true
}

// stop makes the goroutine exit after the tasks already queued. It waits
// for the goroutine unless it is called from a callback (which would wait
// for itself).
func (d *dispatcher) stop() {
	d.mu.Lock()
	d.stopped = true
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
	if !d.inCall.Load() {
		<-d.done
	}
}

// tryRun runs t on the calling goroutine if nothing is queued or runs,
// and reports whether it did; else the caller pushes it.
func (d *dispatcher) tryRun(t task) bool {
	d.mu.Lock()
	if d.busy || d.stopped || len(d.q) > 0 {
		d.mu.Unlock()
		return false
	}
	d.busy = true
	d.mu.Unlock()
	d.call(t)
	d.mu.Lock()
	d.busy = false
	queued := len(d.q) > 0 || d.stopped
	d.mu.Unlock()
	if queued {
		// Pushed while we ran: the loop, which found us busy, runs them.
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
	return true
}

func (d *dispatcher) loop() {
	defer close(d.done)
	var batch []task
	for {
		<-d.wake
		for {
			d.mu.Lock()
			if d.busy {
				// A tryRun caller runs a task: it wakes us when done.
				d.mu.Unlock()
				break
			}
			batch, d.q = d.q, batch[:0]
			stopped := d.stopped
			d.events = 0
			d.busy = len(batch) > 0
			d.mu.Unlock()
			if len(batch) == 0 {
				if stopped {
					return
				}
				break
			}
			for i := range batch {
				d.call(batch[i])
				batch[i] = task{}
			}
			d.mu.Lock()
			d.busy = false
			d.mu.Unlock()
		}
	}
}

// call runs one task, turning a panic into an error event.
func (d *dispatcher) call(t task) {
	d.inCall.Store(true)
	defer func() {
		d.inCall.Store(false)
		if r := recover(); r != nil {
			if t.ev != nil {
				// The event handler itself panicked: do not recurse.
				return
			}
			err := &Error{Op: "deliver", Key: t.key, Kind: ErrListenerPanic,
				Err: fmt.Errorf("%v\n%s", r, debug.Stack())}
			d.push(task{ev: &Event{Kind: EventError, Err: err}})
		}
	}()
	d.run(t)
}
