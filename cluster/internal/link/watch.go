package link

import (
	"sync"
	"sync/atomic"
	"time"
)

// CoarseWatch is how late, at most, the watchdog looks at something it
// was asked to watch coarsely: a job of a method whose recent jobs all
// finished within the budget, a calling link that freed itself in the
// middle of a stream of calls.
//
// Why two resolutions: any timer that fires every millisecond or so in a
// process doubles the median of a loopback round trip on a small host
// (measured with a raw ping-pong beside a do-nothing 1 ms ticker: p50
// 17.7 → 35 µs over unix sockets; 10 ms and more is lost in the noise),
// whether it ticks, is pushed forward before it fires, or fires from a
// goroutine. So the check that needs 1 ms (a job on the reader past its
// budget) is armed that finely only where a slow job is likely: a
// method not yet seen to be fast, a call made alone. A stream of calls of
// a method seen to be fast, the common case, is watched every
// CoarseWatch.
const CoarseWatch = 10 * time.Millisecond

// watchIdle: the watchdog stops after this long with nothing to watch,
// and starts again when something needs it. Until then it keeps a coarse
// tick, so a stream of calls with short gaps finds it running and arms
// nothing.
const watchIdle = 100 * time.Millisecond

// watch is the process's watchdog.
var watch = newWatchdog(CoarseWatch, watchIdle)

// watcher is something the watchdog looks at: a serving link (is a job
// running long on its reader?) or a calling link (has nobody read its
// connection for a while?). watch acts on what is late, and returns when
// it wants to be looked at again (unix nanos; 0 when it has nothing to
// watch).
type watcher interface {
	watch(now int64) (next int64)
}

// watchdog looks at every registered watcher when one of them asked for
// it, on one timer for the whole process: hot paths note the time in an
// atomic (moment) and call want, instead of arming a timer per call (a
// timer reset per call costs more than the loopback round trip it
// guards: it wakes a thread). It runs only while something is watched,
// and then at the latest every coarse period; an idle process does not
// tick.
//
// Concurrency: safe for concurrent use. mu guards the set and the
// timer's schedule (next is written under it, read without it); runs
// are serialised by runMu (the timer may fire again while a run goes
// on); watchers are called from the timer's goroutine with neither lock
// of the schedule held. Both locks are leaves (runMu before mu).
type watchdog struct {
	coarse, idle time.Duration

	mu    sync.Mutex
	set   map[watcher]struct{}
	list  atomic.Pointer[[]watcher] // a copy of set, rebuilt on change
	next  atomic.Int64              // when the timer fires (unix nanos); 0 while it sleeps
	timer *time.Timer

	runMu     sync.Mutex
	idleSince int64 // the first run that found nothing to watch, 0 after one that did

	fineArms atomic.Int64 // times the timer was armed to fire within half the coarse period (tests read it)
}

func newWatchdog(coarse, idle time.Duration) *watchdog {
	d := &watchdog{coarse: coarse, idle: idle, set: make(map[watcher]struct{})}
	d.rebuild()
	d.timer = time.AfterFunc(time.Hour, d.run)
	d.timer.Stop()
	return d
}

func (d *watchdog) add(w watcher) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.set[w] = struct{}{}
	d.rebuild()
}

func (d *watchdog) remove(w watcher) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.set, w)
	d.rebuild()
}

func (d *watchdog) rebuild() {
	l := make([]watcher, 0, len(d.set))
	for w := range d.set {
		l = append(l, w)
	}
	d.list.Store(&l)
}

// want makes the watchdog look at its watchers at the latest at at (unix
// nanos). When the timer already fires by then it costs an atomic load:
// that is the hot path's case while calls flow.
func (d *watchdog) want(at int64) {
	if n := d.next.Load(); n != 0 && n <= at {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if n := d.next.Load(); n != 0 && n <= at {
		return
	}
	d.next.Store(at)
	in := time.Duration(at - time.Now().UnixNano())
	if in < d.coarse/2 {
		d.fineArms.Add(1)
	}
	d.timer.Reset(in)
}

// scan runs every watcher's watch and returns the earliest time one of
// them wants to be looked at again (0: none).
func (d *watchdog) scan(now int64) int64 {
	next := int64(0)
	for _, w := range *d.list.Load() {
		if at := w.watch(now); at != 0 && (next == 0 || at < next) {
			next = at
		}
	}
	return next
}

func (d *watchdog) run() {
	d.runMu.Lock()
	defer d.runMu.Unlock()
	// From here on a watcher that marks sees no timer armed and arms it
	// (want's slow path); one that marked before is seen by the scan.
	d.mu.Lock()
	d.next.Store(0)
	d.mu.Unlock()
	now := time.Now().UnixNano()
	if next := d.scan(now); next != 0 {
		d.idleSince = 0
		d.want(next)
		return
	}
	if d.idleSince == 0 {
		d.idleSince = now
	}
	if now-d.idleSince < int64(d.idle) {
		d.want(now + int64(d.coarse))
		return
	}
	d.idleSince = 0 // sleep until a watcher wants us
}

// moment is when something watched began (unix nanos, its lowest bit
// saying whether it is watched finely), 0 while nothing runs: a caller
// marks it, the watchdog reads it.
type moment struct{ atomic.Int64 }

// mark notes that something watched begins at now (unix nanos), and asks
// the watchdog to look at it once it ran for d (fine) or at the latest
// after its coarse period. It returns the mark, for clearMine.
func (m *moment) mark(now int64, fine bool, d time.Duration) int64 {
	v, at := now&^1, now+int64(watch.coarse)
	if fine {
		v, at = v|1, now+int64(d)
	}
	m.Store(v)
	watch.want(at)
	return v
}

func (m *moment) clear() { m.Store(0) }

// clearMine clears the moment if it is still mark v (nobody marked it
// since).
func (m *moment) clearMine(v int64) { m.CompareAndSwap(v, 0) }

// check looks at the moment at now against d: late when what it marks
// began more than d ago; else next is when to look again (0 when nothing
// runs).
func (m *moment) check(now int64, d, coarse time.Duration) (next int64, late bool) {
	at := m.Load()
	switch {
	case at == 0:
		return 0, false
	case now-at > int64(d):
		return 0, true
	case at&1 == 1:
		return at + int64(d), false
	}
	return max(at+int64(d), now+int64(coarse)), false
}
