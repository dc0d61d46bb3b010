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
// histogram of half-octave buckets of microseconds (1, 2, 3, 4, 6, 8, 12,
// 16, 24 µs, ...), so each is the upper bound of its bucket: at most 1.5
// times the true value (and never above Max).
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

// latencyBuckets: half-octave buckets of microseconds (see bucketOf); the
// last one holds everything longer.
const latencyBuckets = 80

// bucketOf returns the bucket of a duration of us microseconds: 0 for
// [0, 1), 1 for [1, 2), then two per power of two, [2^k, 1.5*2^k) and
// [1.5*2^k, 2^(k+1)).
func bucketOf(us uint64) int {
	if us < 2 {
		return int(us)
	}
	l := bits.Len64(us)
	half := int(us>>(l-2)) & 1
	return min(2*(l-1)+half, latencyBuckets-1)
}

// bucketTop returns the upper bound of bucket i, in microseconds.
func bucketTop(i int) uint64 {
	if i < 2 {
		return uint64(i + 1)
	}
	k := uint(i / 2)
	return 1<<k + uint64(i%2+1)<<(k-1)
}

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
	s.buckets[bucketOf(uint64(max(d, 0).Microseconds()))].Add(1)
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
				return min(time.Duration(bucketTop(i))*time.Microsecond, ms.Max)
			}
		}
		return ms.Max
	}
	ms.P50, ms.P90, ms.P99 = q(0.50), q(0.90), q(0.99)
	return ms
}
