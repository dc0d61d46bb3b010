package conformance

import (
	"fmt"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
)

var subscribeCases = []testCase{
	{name: "fan-out", run: testSubscribeFanOut},
	{name: "late-subscriber-cached", run: testSubscribeLateCached},
	{name: "broadcast-off", run: testSubscribeBroadcastOff},
	{name: "unsubscribe", run: testUnsubscribe},
}

// quiet is how long a case watches for a delivery that must not come. It
// can only make a broken transport pass by luck, never a good one fail.
const quiet = 300 * time.Millisecond

// cluster3 starts a leader and two followers of channel on addr, each in
// its own simulated process.
func (e *env) cluster3(addr, channel string, opts ...cluster.Option) (l, f1, f2 *member) {
	e.t.Helper()
	l = e.process().join(channel, addr, opts...)
	l.mustLead()
	f1 = e.process().join(channel, addr, opts...)
	f2 = e.process().join(channel, addr, opts...)
	f1.mustFollow()
	f2.mustFollow()
	return l, f1, f2
}

// settle makes each follower finish a round trip with the leader, so
// everything it sent before (a subscribe) has been received there: one
// connection carries a follower's requests in order.
func settle(ms ...*member) {
	for _, m := range ms {
		m.whoami()
	}
}

// A value reaches every listener of the key: the leader's own, each
// follower's, and two listeners of one Client; the whole host makes one
// upstream subscription.
func testSubscribeFanOut(e *env) {
	l, f1, f2 := e.cluster3(e.addr(), "FanOut")
	second := newSink()
	l.subscribe("k")
	f1.subscribe("k")
	f1.subscribeTo("k", second)
	f2.subscribe("k")
	settle(f1, f2)
	f2.publish("k", "v1")
	for _, m := range []*member{l, f1, f2} {
		m.waitValue("k", "v1")
	}
	f1.waitSnapshot(second, "k", `a value with "v1" (its second listener)`, func(s Snapshot) bool { return s.Has("v1") })
	rc := e.upstream().latest("FanOut")
	if n := rc.state().subCall["k"]; n != 1 {
		e.errorf("the real client was asked to subscribe %q %d times for four listeners, want once", "k", n)
	}
}

// A subscriber that arrives after a value was pushed gets the cached
// value at once, without a new upstream subscription or push.
func testSubscribeLateCached(e *env) {
	l, f1, f2 := e.cluster3(e.addr(), "Late")
	f1.subscribe("k")
	f1.publish("k", "cached")
	pushed := f1.waitValue("k", "cached")
	rc := e.upstream().latest("Late")
	before := rc.state()
	for _, m := range []*member{f2, l} {
		m.subscribe("k")
		got := m.waitValue("k", "cached")
		if got.Seq != pushed.Seq || got.By != pushed.By {
			e.errorf("%s got push %d of %s, want the cached push %d of %s", m.label, got.Seq, got.By, pushed.Seq, pushed.By)
		}
	}
	after := rc.state()
	if after.subCall["k"] != 1 || after.pushes != before.pushes {
		e.errorf("late subscribers made the real client subscribe %d times and push %d more values, want 1 and 0",
			after.subCall["k"], after.pushes-before.pushes)
	}
}

// With broadcast off, each value goes to exactly one subscriber (one
// connection or the leader's own Client), and every value arrives.
func testSubscribeBroadcastOff(e *env) {
	const values = 30
	l, f1, f2 := e.cluster3(e.addr(), "Unicast", cluster.WithBroadcast(false))
	members := []*member{l, f1, f2}
	for _, m := range members {
		m.subscribe("k")
	}
	settle(f1, f2)
	for i := range values {
		l.publish("k", fmt.Sprintf("v%02d", i))
	}
	rc := e.upstream().latest("Unicast")
	e.eventually(fmt.Sprintf("the real client pushed %d values", values+1), func() bool {
		return rc.state().pushes == values+1 // the first at Subscribe, then one per Publish
	})
	pushes := rc.state().pushes
	count := func() int {
		n := 0
		for _, m := range members {
			n += m.sink.n("k")
		}
		return n
	}
	e.eventually(fmt.Sprintf("%d values delivered", pushes), func() bool { return count() >= pushes })
	time.Sleep(quiet)
	seen := map[int]string{}
	receivers := 0
	for _, m := range members {
		snaps := m.sink.all("k")
		if len(snaps) > 0 {
			receivers++
		}
		for _, s := range snaps {
			if other, dup := seen[s.Seq]; dup {
				e.errorf("push %d reached both %s and %s with broadcast off", s.Seq, other, m.label)
			}
			seen[s.Seq] = m.label
		}
	}
	if len(seen) != pushes || count() != pushes {
		e.errorf("%d distinct pushes and %d deliveries for %d pushes, want each push delivered once", len(seen), count(), pushes)
	}
	// Each push picks a subscriber at random: 31 pushes all going to one
	// of three subscribers is a 1 in 3^30 event.
	if receivers < 2 {
		e.errorf("all %d pushes went to one subscriber; broadcast off picks one at random for each value", pushes)
	}
}

// Unsubscribing stops delivery to that subscriber only; the real client's
// Unsubscribe runs once, when the last subscriber on the host leaves.
func testUnsubscribe(e *env) {
	l, f1, f2 := e.cluster3(e.addr(), "Unsub")
	cancelL := l.subscribe("k")
	f1.subscribe("k")
	f2.subscribe("k")
	settle(f1, f2)
	l.publish("k", "v1")
	for _, m := range []*member{l, f1, f2} {
		m.waitValue("k", "v1")
	}
	e.stepf("%s unsubscribes", f1.label)
	if err := f1.c.Unsubscribe(Reg{Key: "k"}); err != nil {
		e.fatalf("%s: Unsubscribe: %v", f1.label, err)
	}
	settle(f1)
	before := f1.sink.n("k")
	f2.publish("k", "v2")
	l.waitValue("k", "v2")
	f2.waitValue("k", "v2")
	time.Sleep(quiet)
	if got := f1.sink.all("k")[before:]; len(got) != 0 {
		e.errorf("%s received %v after it unsubscribed", f1.label, got)
	}
	rc := e.upstream().latest("Unsub")
	if n := rc.state().unsub["k"]; n != 0 {
		e.errorf("the real client unsubscribed %d times while two subscribers remain", n)
	}
	e.stepf("the other subscribers leave")
	cancelL()
	if err := f2.c.Unsubscribe(Reg{Key: "k"}); err != nil {
		e.fatalf("%s: Unsubscribe: %v", f2.label, err)
	}
	e.eventually("the real client's Unsubscribe ran", func() bool { return rc.state().unsub["k"] > 0 })
	settle(f1, f2)
	if n := rc.state().unsub["k"]; n != 1 {
		e.errorf("the real client unsubscribed %d times, want once", n)
	}
}
