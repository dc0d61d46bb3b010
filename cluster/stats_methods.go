package cluster

import (
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// MethodStats are the counts and latencies of one method, as Stats and
// the leader's Status report them. Latencies are those of two-way calls
// (a one-way call ends when it was sent); the quantiles come from a
// histogram of power-of-two buckets of microseconds, so each is an upper
// bound within a factor of two (never above Max).
type MethodStats struct {
	Calls  uint64        `json:"calls"`  // two-way and one-way calls
	Errors uint64        `json:"errors"` // of which failed
	Oneway uint64        `json:"oneway"` // of which one-way
	Mean   time.Duration `json:"meanNs"`
	P50    time.Duration `json:"p50Ns"`
	P90    time.Duration `json:"p90Ns"`
	P99    time.Duration `json:"p99Ns"`
	Max    time.Duration `json:"maxNs"`
}

// MaxMethodStats bounds the methods a Client keeps figures for on each
// side (a follower can name any method): calls of further methods are
// counted under OtherMethods.
const MaxMethodStats = 256

// OtherMethods is the name under which calls beyond MaxMethodStats
// methods are counted.
const OtherMethods = "(other)"

// latencyBuckets: bucket i holds durations of [2^(i-1), 2^i) µs (bucket 0:
// under 1 µs); the last one everything longer.
const latencyBuckets = 40

type methodStat struct {
	calls, errors, oneway atomic.Uint64
	sum, max              atomic.Int64 // ns, two-way calls
	buckets               [latencyBuckets]atomic.Uint64
}

// methodTable holds the figures of the methods called (or served) by one
// Client. Goroutines that touch it: every caller (record, lock-free for a
// method seen before), Stats (snapshot). mu serialises adding a method
// (copy on write); it is a leaf.
type methodTable struct {
	m  atomic.Pointer[map[string]*methodStat]
	mu sync.Mutex
}

// record counts one call of method that took d.
func (t *methodTable) record(method string, d time.Duration, err error, oneway bool) {
	s := t.get(method)
	s.calls.Add(1)
	if err != nil {
		s.errors.Add(1)
	}
	if oneway {
		s.oneway.Add(1)
		return
	}
	ns := int64(d)
	s.sum.Add(ns)
	for {
		m := s.max.Load()
		if ns <= m || s.max.CompareAndSwap(m, ns) {
			break
		}
	}
	s.buckets[min(bits.Len64(uint64(d.Microseconds())), latencyBuckets-1)].Add(1)
}

func (t *methodTable) get(method string) *methodStat {
	if m := t.m.Load(); m != nil {
		if s := (*m)[method]; s != nil {
			return s
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.m.Load()
	if old != nil {
		if s := (*old)[method]; s != nil {
			return s
		}
		if len(*old) >= MaxMethodStats {
			if s := (*old)[OtherMethods]; s != nil {
				return s
			}
			method = OtherMethods
		}
	}
	m := make(map[string]*methodStat, 1+lenOf(old))
	if old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	s := new(methodStat)
	m[method] = s
	t.m.Store(&m)
	return s
}

func lenOf(m *map[string]*methodStat) int {
	if m == nil {
		return 0
	}
	return len(*m)
}

// snapshot returns the figures of every method (nil if none).
func (t *methodTable) snapshot() map[string]MethodStats {
	m := t.m.Load()
	if m == nil {
		return nil
	}
	out := make(map[string]MethodStats, len(*m))
	for name, s := range *m {
		out[name] = s.stats()
	}
	return out
}

func (s *methodStat) stats() MethodStats {
	ms := MethodStats{Calls: s.calls.Load(), Errors: s.errors.Load(), Oneway: s.oneway.Load(), Max: time.Duration(s.max.Load())}
	var counts [latencyBuckets]uint64
	var n uint64
	for i := range counts {
		counts[i] = s.buckets[i].Load()
		n += counts[i]
	}
	if n == 0 {
		return ms
	}
	ms.Mean = time.Duration(s.sum.Load() / int64(n))
	q := func(p float64) time.Duration {
		rank := max(1, uint64(math.Ceil(p*float64(n))))
		var seen uint64
		for i, c := range counts {
			seen += c
			if seen >= rank {
				return min(time.Duration(uint64(1)<<i)*time.Microsecond, ms.Max)
			}
		}
		return ms.Max
	}
	ms.P50, ms.P90, ms.P99 = q(0.50), q(0.90), q(0.99)
	return ms
}
