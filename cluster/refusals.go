package cluster

import (
	"fmt"
	"sync"
	"time"
)

// refusalInterval is how often a leader tells of one kind of refusal.
const refusalInterval = 10 * time.Second

// refusals counts what a leader refuses its peers (a connection dropped
// before its proof, a subscribe over a bound, a forged key, ...) and
// tells of each kind at most once per refusalInterval, with how many
// there were: a peer that repeats a refused request a million times costs
// a million increments, not a million log lines and events.
//
// Concurrency: safe for concurrent use; its lock is a leaf.
type refusals struct {
	mu    sync.Mutex
	kinds map[string]*refusalCount
}

type refusalCount struct {
	told time.Time // when this kind was last told
	n    int       // refusals since
}

// note counts one refusal of kind at now. It reports whether to tell of
// it now and, if so, how many refusals of that kind this one stands for
// (itself and those not told since the last time).
func (r *refusals) note(kind string, now time.Time) (n int, tell bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.kinds == nil {
		r.kinds = make(map[string]*refusalCount)
	}
	c := r.kinds[kind]
	if c == nil {
		c = new(refusalCount)
		r.kinds[kind] = c
	}
	c.n++
	if !c.told.IsZero() && now.Sub(c.told) < refusalInterval {
		return 0, false
	}
	n, c.n, c.told = c.n, 0, now
	return n, true
}

// refuse reports err, a refusal of kind, unless one of that kind was
// reported less than refusalInterval ago; the next report counts those.
func (lt *leaderTerm) refuse(kind string, err *Error) {
	n, tell := lt.refused.note(kind, time.Now())
	if !tell {
		return
	}
	if n > 1 {
		err.Err = fmt.Errorf("%w (and %d more such refusals in the last %v)", err.Err, n-1, refusalInterval)
	}
	lt.c.report(lt.num, RoleLeader, err)
}
