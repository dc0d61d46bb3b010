package link

import (
	"sync"
	"time"
)

// call is one request waiting for its response: an invoke or a register
// on a follower, or a pushed value waiting for its acknowledgement on the
// leader. Calls are pooled; ch is reused.
type call struct {
	id     int64
	push   bool   // a leader's push: nobody waits, expiry is reported
	key    string // push: the subscription key
	method string // invoke: the method (for messages)
	ch     chan struct{}
	ok     bool   // invoke_result success
	data   []byte // response app object (owned)
	err    error
}

var callPool = sync.Pool{New: func() any { return &call{ch: make(chan struct{}, 1)} }}

func getCall(id int64) *call {
	c := callPool.Get().(*call)
	c.id = id
	return c
}

func putCall(c *call) {
	*c = call{ch: c.ch}
	callPool.Put(c)
}

// pending is the table of requests in flight on one connection, with one
// timer for all of them. Every request of a table has the same timeout, so
// deadlines arrive in the order requests were made: a FIFO of (id,
// deadline) is the whole timer structure, and a single time.Timer is armed
// for its head. Answered requests are removed from the map at once and
// skipped lazily when their FIFO entry comes up.
//
// Concurrency: safe for concurrent use.
type pending struct {
	timeout   time.Duration
	max       int                      // calls at most (0: no bound); add fails with ErrCallsFull beyond
	onPush    func(c *call, err error) // a push expired or was failed (no waiter)
	onTimeout func(c *call) error      // the error a waiter gets on expiry
	onExpired func()                   // after calls expired (optional; set before use)

	mu     sync.Mutex
	m      map[int64]*call
	fifo   []deadline
	head   int
	timer  *time.Timer
	armed  bool
	closed error
}

type deadline struct {
	id int64
	c  *call
	at time.Time
}

func newPending(timeout time.Duration, onTimeout func(*call) error, onPush func(*call, error)) *pending {
	p := &pending{timeout: timeout, m: make(map[int64]*call), onTimeout: onTimeout, onPush: onPush}
	p.timer = time.AfterFunc(time.Hour, p.expire)
	p.timer.Stop()
	return p
}

// add registers c, with the table's timeout if timed (else its caller
// bounds it). It fails with the table's close reason once closed, and
// with ErrCallsFull when it holds max calls.
func (p *pending) add(c *call, timed bool) error {
	at := time.Now().Add(p.timeout)
	p.mu.Lock()
	if p.closed != nil {
		err := p.closed
		p.mu.Unlock()
		return err
	}
	if p.max > 0 && len(p.m) >= p.max {
		p.mu.Unlock()
		return ErrCallsFull
	}
	p.m[c.id] = c
	if !timed {
		p.mu.Unlock()
		return nil
	}
	p.fifo = append(p.fifo, deadline{c.id, c, at})
	if !p.armed {
		p.armed = true
		p.timer.Reset(p.timeout)
	}
	p.mu.Unlock()
	return nil
}

// settle completes the request id with a response. It reports false for
// an id that is not pending (answered, expired, or never ours).
func (p *pending) settle(id int64, ok bool, data []byte) bool {
	p.mu.Lock()
	c := p.m[id]
	if c == nil {
		p.mu.Unlock()
		return false
	}
	delete(p.m, id)
	p.mu.Unlock()
	if c.push {
		putCall(c)
		return true
	}
	c.ok, c.data = ok, data
	c.ch <- struct{}{}
	return true
}

// remove takes c out of the table before it completes (its caller gave
// up). It reports false when c already completed (or is completing): the
// caller must then drain c.ch.
func (p *pending) remove(c *call) bool { return p.removeID(c.id, c) }

// removeID is remove for a notification, whose call the table puts back
// in the pool itself when it fails it: the caller gives the id it added c
// with, and c's fields are not read (they may be another call's by then).
func (p *pending) removeID(id int64, c *call) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m[id] != c {
		return false
	}
	delete(p.m, id)
	return true
}

// len returns the number of requests in flight.
func (p *pending) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.m)
}

// expire fails every request whose deadline passed and re-arms the timer
// for the next one.
func (p *pending) expire() {
	now := time.Now()
	var due []*call
	p.mu.Lock()
	for p.head < len(p.fifo) {
		d := p.fifo[p.head]
		if d.at.After(now) {
			break
		}
		p.fifo[p.head] = deadline{}
		p.head++
		if p.m[d.id] == d.c {
			delete(p.m, d.id)
			due = append(due, d.c)
		}
	}
	if p.head == len(p.fifo) {
		p.fifo, p.head = p.fifo[:0], 0
	} else if p.head > len(p.fifo)/2 {
		n := copy(p.fifo, p.fifo[p.head:])
		clear(p.fifo[n:])
		p.fifo, p.head = p.fifo[:n], 0
	}
	if p.head < len(p.fifo) && p.closed == nil {
		p.timer.Reset(p.fifo[p.head].at.Sub(now))
	} else {
		p.armed = false
	}
	p.mu.Unlock()
	for _, c := range due {
		if c.push {
			p.onPush(c, nil)
			putCall(c)
			continue
		}
		c.err = p.onTimeout(c)
		c.ch <- struct{}{}
	}
	if len(due) > 0 && p.onExpired != nil {
		p.onExpired()
	}
}

// fail completes every request with err and refuses new ones.
func (p *pending) fail(err error) {
	p.mu.Lock()
	if p.closed != nil {
		p.mu.Unlock()
		return
	}
	p.closed = err
	calls := p.m
	p.m = make(map[int64]*call)
	p.fifo, p.head = nil, 0
	p.timer.Stop()
	p.armed = false
	p.mu.Unlock()
	for _, c := range calls {
		if c.push {
			putCall(c)
			continue
		}
		c.err = err
		c.ch <- struct{}{}
	}
}
