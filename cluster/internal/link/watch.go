package link

import (
	"sync"
	"sync/atomic"
	"time"
)

// watchTick is the watchdog's period.
const watchTick = time.Millisecond

// watchIdleTicks: the watchdog stops after this many ticks in a row with
// nothing to watch, and starts again when something needs it.
const watchIdleTicks = 100

// watch is the process's watchdog.
var watch = newWatchdog(watchTick)

// watcher is something the watchdog looks at every tick: a serving link
// (is a job running long on its reader?) or a calling link (has
// nobody read its connection for a while?). watch reports whether it has
// anything to watch right now.
type watcher interface {
	watch(now time.Time) (busy bool)
}

// watchdog runs the watch of every registered watcher once per tick, on
// one timer for the whole process, and only while some watcher is busy:
// hot paths note the time in an atomic and call wake, instead of arming
// a timer per call (a timer reset per call costs more than the loopback
// round trip it guards: it wakes the poller thread). An idle process
// does not tick.
//
// Concurrency: safe for concurrent use. Watchers are called from the
// timer's goroutine, one tick at a time, without the watchdog's lock.
type watchdog struct {
	tick  time.Duration
	mu    sync.Mutex
	set   map[watcher]struct{}
	list  atomic.Pointer[[]watcher] // a copy of set, rebuilt on change
	armed atomic.Bool
	idle  int // ticks in a row with nothing busy (timer goroutine only)
	timer *time.Timer
}

func newWatchdog(tick time.Duration) *watchdog {
	d := &watchdog{tick: tick, set: make(map[watcher]struct{})}
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

// wake starts ticking if the watchdog sleeps. A watcher calls it after it
// became busy.
func (d *watchdog) wake() {
	if !d.armed.Load() && d.armed.CompareAndSwap(false, true) {
		d.timer.Reset(d.tick)
	}
}

// scan runs every watcher's watch and reports whether one was busy.
func (d *watchdog) scan(now time.Time) bool {
	busy := false
	for _, w := range *d.list.Load() {
		if w.watch(now) {
			busy = true
		}
	}
	return busy
}

func (d *watchdog) run() {
	if d.scan(time.Now()) {
		d.idle = 0
	} else {
		d.idle++
	}
	if d.idle < watchIdleTicks {
		d.timer.Reset(d.tick)
		return
	}
	d.idle = 0
	d.armed.Store(false)
	// A watcher that became busy after its watch above saw armed still
	// true and did not wake us: look once more.
	if d.scan(time.Now()) {
		d.wake()
	}
}

// moment is when something watched began (unix nanos), 0 while nothing
// runs: a caller marks it, the watchdog reads it.
type moment struct{ atomic.Int64 }

func (m *moment) mark()  { m.Store(time.Now().UnixNano()) }
func (m *moment) clear() { m.Store(0) }

// check reports whether something runs, and whether it began more than d
// before now.
func (m *moment) check(now time.Time, d time.Duration) (busy, late bool) {
	at := m.Load()
	return at != 0, at != 0 && now.UnixNano()-at > int64(d)
}
