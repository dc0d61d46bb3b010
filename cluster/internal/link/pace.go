package link

import (
	"sync"
	"sync/atomic"
	"time"
)

// A method whose jobs ran longer than the inline budget, by their own
// clock (not a job merely delayed by the OS scheduler), slowStrikes times
// in a row runs on goroutines of its own for slowFor: once could be the
// scheduler's doing on a loaded host, and every slow job on the reader
// costs a hand-over.
const (
	slowFor     = 10 * time.Second
	slowStrikes = 3
)

// Paces remembers, by method, which methods ran long lately. The zero
// value is ready to use; a leader shares one among the links of a term.
//
// Concurrency: safe for concurrent use.
type Paces struct{ m sync.Map } // method → *pace

// pace is what is known of one method that ran long.
type pace struct {
	strikes atomic.Int32 // jobs in a row that ran past the budget
	until   atomic.Int64 // unix nanos until which its jobs get their own goroutine
}

// inline reports whether jobs of method run on the reader (it has not
// run past the budget lately).
func (p *Paces) inline(method string) bool {
	mp, ok := p.m.Load(method)
	return !ok || time.Now().UnixNano() > mp.(*pace).until.Load()
}

// ran notes how long a job of method ran, against budget.
func (p *Paces) ran(method string, d, budget time.Duration) {
	v, ok := p.m.Load(method)
	if d <= budget {
		if ok {
			v.(*pace).strikes.Store(0)
		}
		return
	}
	if !ok {
		v, _ = p.m.LoadOrStore(method, new(pace))
	}
	mp := v.(*pace)
	if mp.strikes.Add(1) >= slowStrikes {
		mp.until.Store(time.Now().Add(slowFor).UnixNano())
	}
}
