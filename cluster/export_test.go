package cluster

import "time"

// CloseListenerForTest closes the listener of the channel c leads, from
// under it, as Node's test "server close" does (CC-017). It reports false
// if c does not lead.
func CloseListenerForTest(c *Client) bool {
	c.mu.Lock()
	li, ok := c.cur.inner.(*localInner)
	c.mu.Unlock()
	if !ok || li.lt == nil {
		return false
	}
	li.lt.srv.ln.Close()
	return true
}

// WithInlineBudgetForTest sets how long a follower's call may run on the
// leader's reading goroutine before the watchdog moves reading to a new
// goroutine. A test that hands reading over itself (HandOverForTest)
// sets it to hours, so that only the test decides when it happens.
func WithInlineBudgetForTest(d time.Duration) Option {
	return func(c *config) error { c.inlineBudget = d; return nil }
}

// HandOverForTest does what the watchdog does when a follower's call has
// run on the reader past the inline budget: a new goroutine reads that
// follower's connection. It does so for every follower connection of the
// channel c leads whose reader is running a call, and returns how many
// there were.
func HandOverForTest(c *Client) int {
	c.mu.Lock()
	li, ok := c.cur.inner.(*localInner)
	c.mu.Unlock()
	if !ok || li.lt == nil {
		return 0
	}
	lt := li.lt
	lt.mu.Lock()
	defer lt.mu.Unlock()
	n := 0
	for p := range lt.peers {
		if p.l.HandOver() {
			n++
		}
	}
	return n
}

// HoldForTest makes the follower c queue the frames it sends without
// writing them, until the returned function is called: then they leave
// in one write, and the leader reads them together. It returns nil if c
// does not follow.
func HoldForTest(c *Client) (release func()) {
	c.mu.Lock()
	s, ok := c.cur.inner.(*session)
	c.mu.Unlock()
	if !ok {
		return nil
	}
	s.l.SetHeld(true)
	return func() { s.l.SetHeld(false) }
}

// SubscribersForTest returns how many subscribers the host of the channel
// c leads has on reg's key: c itself if it subscribes it, and one per
// follower connection whose subscribe the leader has handled. It returns
// -1 if c does not lead, or if reg is not a valid registration.
func SubscribersForTest(c *Client, reg any) int {
	_, key, err := c.regJSON("subscribe", reg)
	if err != nil {
		return -1
	}
	c.mu.Lock()
	var li *localInner
	if c.cur != nil {
		li, _ = c.cur.inner.(*localInner)
	}
	c.mu.Unlock()
	if li == nil || li.lt == nil {
		return -1
	}
	h := li.h
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.topics[key]
	if t == nil || t.dead {
		return 0
	}
	return len(t.subs)
}
