package cluster

import (
	"errors"
	"fmt"
	"log/slog"
)

// A failed start recovers (issue 16, point 5). The host retries a failed
// factory while its term lives (WithStartRetry); the Client follows each
// outcome here: every failure is the term's ready error (the latest one:
// Ready and calls fail fast with it), and the start that succeeds makes
// the term ready. A leader also tells the followers it answered with an
// older outcome (see leaderTerm.retell).

// followStart follows the factory's outcomes on h for the local term t
// (a leader's or single mode's) until a start succeeded (it returns the
// ready term then) or the term ends (ended closed, or Close). Each
// outcome is also passed to told, if set. It returns the Client's term
// for this leadership: t, or the fresh term that replaced a failed t.
func (c *Client) followStart(t *term, h *host, ended <-chan struct{}, told func()) *term {
	first := true
	for {
		st, changed := h.watch()
		if st.err == nil {
			if !first {
				n := c.recoverTerm(t)
				if n == nil {
					return t
				}
				t = n
			}
			c.replayAndReady(t)
			if told != nil {
				told()
			}
			return t
		}
		err := &Error{Op: "ready", Channel: c.name, Addr: c.addrString(), Role: t.role, Kind: ErrNotReady, Err: st.err}
		if first {
			c.settle(t, err)
		} else {
			c.refail(t, err)
		}
		first = false
		if told != nil {
			told()
		}
		select {
		case <-changed:
		case <-ended:
			return t
		case <-c.ctx.Done():
			return t
		}
	}
}

// refail replaces the ready error of the failed term t by a later
// failure, and reports it (an EventReady with the error, like the first).
func (c *Client) refail(t *term, err error) {
	c.mu.Lock()
	if c.cur != t || t.phase != termFailed || c.closed {
		c.mu.Unlock()
		return
	}
	t.err = err
	c.mu.Unlock()
	c.log.Warn("still not ready", slog.String("role", t.role.String()), slog.Uint64("term", t.num), slog.Any("error", err))
	c.event(Event{Kind: EventReady, Role: t.role, Term: t.num, Err: err})
}

// recoverTerm replaces the failed term t by a fresh one of the same
// number, role and inner, now replaying: the retried start succeeded.
// Calls waiting on t see it end and find the new one. It returns nil if t
// is no longer current.
func (c *Client) recoverTerm(t *term) *term {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur != t || c.closed {
		return nil
	}
	n := newTermState(t.num, t.role)
	n.inner, n.phase = t.inner, termReplaying
	c.cur = n
	close(t.ended)
	return n
}

// retell closes the connection of every follower whose register reply
// carried a ready error other than the real client's latest outcome: it
// sees EOF, registers again (after an election that this process wins no
// more than before) and gets the latest outcome. A Node follower does the
// same on EOF, so no new message is needed on the wire; a follower told
// the current error is left alone, so a factory failing the same way each
// time costs no reconnection.
func (lt *leaderTerm) retell() {
	st := lt.host.current()
	lt.mu.Lock()
	peers := make([]*peer, 0, len(lt.peers))
	for p := range lt.peers {
		peers = append(peers, p)
	}
	lt.mu.Unlock()
	for _, p := range peers {
		p.mu.Lock()
		told := p.toldErr
		p.mu.Unlock()
		if told == nil || (st.err != nil && sameReadyErr(told, st.err)) {
			continue
		}
		why := errors.New("the real client started")
		if st.err != nil {
			why = fmt.Errorf("the real client failed again: %w", st.err)
		}
		p.close(why)
	}
}

// sameReadyErr reports whether two ready errors read the same to a
// follower (it receives only their remote form).
func sameReadyErr(a, b error) bool {
	if a == b {
		return true
	}
	ra, rb := toRemote(a), toRemote(b)
	return ra.Name == rb.Name && ra.Code == rb.Code && ra.Message == rb.Message
}
