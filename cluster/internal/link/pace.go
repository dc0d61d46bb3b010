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

// FastRuns is how many jobs of a method in a row must finish within the
// inline budget before its jobs on the reader are watched at the coarse
// period (CoarseWatch) instead of the budget's: until then a slow job is
// noticed after about the budget, afterwards within about CoarseWatch.
const FastRuns = 16

// MaxPaces bounds the methods a Paces remembers: a member naming ever new
// methods does not grow the leader. A method beyond it is not
// remembered: its jobs run on the reader, watched finely, and never move
// off it for good.
const MaxPaces = 1024

// Paces remembers, by method, which methods ran long lately and which
// have been fast. The zero value is ready to use; a leader shares one
// among the links of a term.
//
// Concurrency: safe for concurrent use.
type Paces struct {
	m sync.Map     // method → *pace
	n atomic.Int32 // entries in m
}

// pace is what is known of one method.
type pace struct {
	strikes atomic.Int32 // jobs in a row that ran past the budget
	fast    atomic.Int32 // jobs in a row within the budget, up to FastRuns
	until   atomic.Int64 // unix nanos until which its jobs get their own goroutine
}

// look reports whether jobs of method run on the reader (it has not run
// past the budget lately), and whether they are watched finely there (it
// has not yet run FastRuns jobs in a row within the budget).
func (p *Paces) look(method string) (inline, fine bool) {
	v, ok := p.m.Load(method)
	if !ok {
		return true, true
	}
	mp := v.(*pace)
	return time.Now().UnixNano() > mp.until.Load(), mp.fast.Load() < FastRuns
}

// ran notes how long a job of method ran, against budget.
func (p *Paces) ran(method string, d, budget time.Duration) {
	v, ok := p.m.Load(method)
	if !ok {
		if p.n.Load() >= MaxPaces {
			return
		}
		var loaded bool
		if v, loaded = p.m.LoadOrStore(method, new(pace)); !loaded {
			p.n.Add(1)
		}
	}
	mp := v.(*pace)
	if d <= budget {
		if mp.strikes.Load() != 0 {
			mp.strikes.Store(0)
		}
		if mp.fast.Load() < FastRuns {
			mp.fast.Add(1)
		}
		return
	}
	mp.fast.Store(0)
	if mp.strikes.Add(1) >= slowStrikes {
		mp.until.Store(time.Now().Add(slowFor).UnixNano())
	}
}
