package cluster

import (
	"context"
	"sync"
	"time"
)

// callCtx is the context a follower's call runs with on the leader: its
// parent's values and cancellation plus the caller's deadline. Unlike
// context.WithDeadline it arms no timer until somebody asks for Done, so a
// method that never waits on its context costs no timer and no channel
// (most methods answer from memory; the response timeout on the follower
// and the late-reply check on the leader do not need the timer).
//
// It honours the context contract: Err is nil until Done is closed (or,
// when Done was never asked for, until the deadline passed or the parent
// ended, in which case a later Done is returned closed).
type callCtx struct {
	parent   context.Context
	deadline time.Time

	once    sync.Once
	mu      sync.Mutex
	done    chan struct{}
	err     error
	armed   bool
	aborted bool // abort came before anybody asked for Done
	timer   *time.Timer
	stop    func() bool // detaches from parent
}

func newCallCtx(parent context.Context, deadline time.Time) *callCtx {
	return &callCtx{parent: parent, deadline: deadline}
}

func (c *callCtx) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *callCtx) Value(key any) any { return c.parent.Value(key) }

func (c *callCtx) Done() <-chan struct{} {
	c.once.Do(c.arm)
	return c.done
}

func (c *callCtx) arm() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done = make(chan struct{})
	c.armed = true
	if err := c.lazyErr(); err != nil {
		c.err = err
		close(c.done)
		return
	}
	c.timer = time.AfterFunc(time.Until(c.deadline), func() { c.cancel(context.DeadlineExceeded) })
	c.stop = context.AfterFunc(c.parent, func() { c.cancel(context.Cause(c.parent)) })
}

func (c *callCtx) cancel(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = err
	close(c.done)
}

// abort cancels the call: its caller gave up (a follower's cancellation
// reached the leader).
func (c *callCtx) abort() {
	c.mu.Lock()
	armed := c.armed
	c.aborted = true
	c.mu.Unlock()
	if armed {
		c.cancel(context.Canceled)
	}
}

// lazyErr is the error a context that was never armed has now (c.mu
// held).
func (c *callCtx) lazyErr() error {
	if c.aborted {
		return context.Canceled
	}
	if err := c.parent.Err(); err != nil {
		return err
	}
	if !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

func (c *callCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.armed {
		return c.err
	}
	return c.lazyErr()
}

// release stops the timer and the parent watch, if armed.
func (c *callCtx) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timer != nil {
		c.timer.Stop()
	}
	if c.stop != nil {
		c.stop()
	}
}
