package cluster_test

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
)

// bothModes runs f with two Clients of one channel: a leader and a
// follower (scene "cluster"), then two single-mode Clients sharing one
// real client (scene "single"), as Node's client tests run twice.
func bothModes(t *testing.T, name string, newW func() *world, f func(t *testing.T, w *world, c1, c2 *cluster.Client)) {
	t.Run("cluster", func(t *testing.T) {
		w := newW()
		l, fl := pair(t, name, w)
		f(t, w, l, fl)
	})
	t.Run("single", func(t *testing.T) {
		w := newW()
		c1 := newClient(t, name, w, cluster.WithSingleMode(true))
		ready(t, c1)
		c2 := newClient(t, name, w, cluster.WithSingleMode(true))
		ready(t, c2)
		if c1.Role() != cluster.RoleSingle || c2.Role() != cluster.RoleSingle || !c2.IsLeader() {
			t.Fatalf("roles %v %v", c1.Role(), c2.Role())
		}
		f(t, w, c1, c2)
	})
}

const wait = 5 * time.Second

// Scenario 2 (CC-003): values published from any process reach every
// subscriber through one upstream subscription per key for the whole host;
// a late subscriber gets the cached value without a new publish.
func TestCC003_SubscribePublishOneUpstream(t *testing.T) {
	bothModes(t, "RegistryClient", newWorld, func(t *testing.T, w *world, c1, c2 *cluster.Client) {
		key := reg{Key: "com.alibaba.dubbo.demo.DemoService"}
		s1, s2, late := newSink(), newSink(), newSink()
		if _, err := c1.Subscribe(key, s1.listener(t)); err != nil {
			t.Fatal(err)
		}
		if _, err := c2.Subscribe(key, s2.listener(t)); err != nil {
			t.Fatal(err)
		}
		if err := c1.Publish(reg{Key: key.Key, Value: "30.20.78.299:20880"}); err != nil {
			t.Fatal(err)
		}
		if err := c2.Publish(reg{Key: key.Key, Value: "30.20.78.300:20880"}); err != nil {
			t.Fatal(err)
		}
		s1.waitFor(t, wait, "30.20.78.299:20880", "30.20.78.300:20880")
		s2.waitFor(t, wait, "30.20.78.299:20880", "30.20.78.300:20880")
		if _, err := c2.Subscribe(key, late.listener(t)); err != nil {
			t.Fatal(err)
		}
		late.waitFor(t, wait, "30.20.78.299:20880", "30.20.78.300:20880")
		if got := late.values(); len(got) != 1 {
			t.Fatalf("late subscriber got %q, want only the cached value", got)
		}
		if subs, _ := w.subCount(key.Key); subs != 1 {
			t.Fatalf("%d upstream subscriptions for one key", subs)
		}
	})
}

// CC-021, SRC-05, SRC-17: the full subscribe / publish / unpublish /
// unsubscribe cycle; removing one listener leaves the others; removing all
// ends the upstream subscription.
func TestCC021_FullCycle(t *testing.T) {
	bothModes(t, "Client", newWorld, func(t *testing.T, w *world, c1, c2 *cluster.Client) {
		foo := reg{Key: "foo"}
		anon1, l1, anon2, l2, again := newSink(), newSink(), newSink(), newSink(), newSink()
		must := func(cancel func(), err error) func() {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
			return cancel
		}
		must(c1.Subscribe(foo, anon1.listener(t)))
		cancel1 := must(c1.Subscribe(foo, l1.listener(t)))
		anon1.waitFor(t, wait) // []
		must(c2.Subscribe(foo, anon2.listener(t)))
		cancel2 := must(c2.Subscribe(foo, l2.listener(t)))
		anon2.waitFor(t, wait)
		must(c2.Subscribe(foo, again.listener(t)))
		again.waitFor(t, wait) // [] replayed from the cache

		if err := c2.Publish(reg{Key: "foo", Value: "bar"}); err != nil {
			t.Fatal(err)
		}
		anon1.waitFor(t, wait, "bar")
		anon2.waitFor(t, wait, "bar")

		if err := c2.Unpublish(reg{Key: "foo", Value: "bar"}); err != nil {
			t.Fatal(err)
		}
		eventually(t, wait, "listeners 1 and 2 see the unpublish", func() bool {
			a, b := l1.last(), l2.last()
			return a != nil && b != nil && len(a) == 0 && len(b) == 0 && l1.n() >= 3 && l2.n() >= 3
		})

		cancel1()
		cancel2()
		cancel2() // idempotent
		n1, n2 := l1.n(), l2.n()
		if err := c1.Publish(reg{Key: "foo", Value: "bar_1"}); err != nil {
			t.Fatal(err)
		}
		anon1.waitFor(t, wait, "bar_1")
		anon2.waitFor(t, wait, "bar_1")
		holdsFor(t, 50*time.Millisecond, "removed listeners are not called", func() bool { return l1.n() == n1 && l2.n() == n2 })

		if err := c1.Unsubscribe(foo); err != nil {
			t.Fatal(err)
		}
		if err := c2.Unsubscribe(foo); err != nil {
			t.Fatal(err)
		}
		eventually(t, wait, "real unsubscribe after the last subscriber left", func() bool {
			_, unsubs := w.subCount("foo")
			return unsubs == 1
		})
		na1, na2, nagain := anon1.n(), anon2.n(), again.n()
		if err := c2.Publish(reg{Key: "foo", Value: "bar_2"}); err != nil {
			t.Fatal(err)
		}
		holdsFor(t, 100*time.Millisecond, "no values after unsubscribe", func() bool {
			return anon1.n() == na1 && anon2.n() == na2 && again.n() == nagain
		})
		if st := c1.Stats(); st.Subscriptions != 0 {
			t.Fatalf("subscriptions left: %+v", st)
		}
	})
}

// Scenario 14 (CC-022, RG-27): a value published before subscribing is
// delivered; a second subscriber gets the cache; a listener never runs on
// the goroutine that calls Subscribe.
func TestCC022_PublishBeforeSubscribeNeverSynchronous(t *testing.T) {
	bothModes(t, "Client", newWorld, func(t *testing.T, w *world, c1, _ *cluster.Client) {
		if err := c1.Publish(reg{Key: "foo", Value: "bar"}); err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			gate := make(chan struct{})
			got := make(chan []string, 1)
			_, err := c1.Subscribe(reg{Key: "foo"}, func(v cluster.Value) {
				<-gate // would deadlock if called inside Subscribe
				var l []string
				v.Decode(&l)
				select {
				case got <- l:
				default:
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			close(gate)
			select {
			case l := <-got:
				if len(l) != 1 || l[0] != "bar" {
					t.Fatalf("subscriber %d got %q", i+1, l)
				}
			case <-time.After(wait):
				t.Fatalf("subscriber %d got nothing", i+1)
			}
		}
	})
}

// Scenario 14 (CC-039, RG-10, SRC-20): every listener decodes its own copy:
// mutating a value affects no other listener, in this process or another,
// nor the cache replayed later.
func TestCC039_EachListenerOwnCopy(t *testing.T) {
	bothModes(t, "case_1", newWorld, func(t *testing.T, w *world, c1, c2 *cluster.Client) {
		if err := c1.Publish(reg{Key: "foo", Value: "bar"}); err != nil {
			t.Fatal(err)
		}
		var bad atomic.Int32
		seen := make(chan struct{}, 16)
		mutator := func(v cluster.Value) {
			var m []string
			if err := v.Decode(&m); err != nil {
				t.Error(err)
			}
			if len(m) != 1 || m[0] != "bar" {
				bad.Add(1)
			}
			if len(m) > 0 {
				m[0] = "xxx" // the listener's own copy
			}
			seen <- struct{}{}
		}
		for _, c := range []*cluster.Client{c1, c1, c2, c2} {
			if _, err := c.Subscribe(reg{Key: "foo"}, mutator); err != nil {
				t.Fatal(err)
			}
		}
		for range 4 {
			select {
			case <-seen:
			case <-time.After(wait):
				t.Fatal("a listener got nothing")
			}
		}
		// A late subscriber gets a pristine cached copy.
		if _, err := c2.Subscribe(reg{Key: "foo"}, mutator); err != nil {
			t.Fatal(err)
		}
		select {
		case <-seen:
		case <-time.After(wait):
			t.Fatal("late listener got nothing")
		}
		if n := bad.Load(); n != 0 {
			t.Fatalf("%d listeners saw another listener's mutation", n)
		}
	})
}

// Scenario 3 (CC-016): with broadcast off each value goes to exactly one
// subscriber connection, and nothing is replayed to a late subscriber.
func TestCC016_BroadcastOffOneSubscriber(t *testing.T) {
	w := newWorld()
	w.noInitialPush = true
	tr, addr := memNet(t)
	opts := []cluster.Option{cluster.WithTransport(tr), cluster.WithAddr(addr), cluster.WithBroadcast(false)}
	l := newClient(t, "NotBroadcast", w, append(opts, cluster.WithMode(cluster.ForceLeader))...)
	ready(t, l)
	f1 := newClient(t, "NotBroadcast", w, append(opts, cluster.WithMode(cluster.ForceFollower))...)
	f2 := newClient(t, "NotBroadcast", w, append(opts, cluster.WithMode(cluster.ForceFollower))...)
	ready(t, f1)
	ready(t, f2)
	var sinks []*sink
	for _, c := range []*cluster.Client{l, f1, f2} {
		s := newSink()
		sinks = append(sinks, s)
		if _, err := c.Subscribe(reg{Key: "svc"}, s.listener(t)); err != nil {
			t.Fatal(err)
		}
	}
	subscribersOn(t, l, reg{Key: "svc"}, 3) // the leader and both followers
	total := func() int {
		n := 0
		for _, s := range sinks {
			n += s.n()
		}
		return n
	}
	const publishes = 5
	for i := range publishes {
		if err := l.Publish(reg{Key: "svc", Value: fmt.Sprintf("30.20.78.%d:20880", 299+i)}); err != nil {
			t.Fatal(err)
		}
		eventually(t, wait, "one delivery", func() bool { return total() == i+1 })
	}
	holdsFor(t, 100*time.Millisecond, "no more deliveries than values", func() bool { return total() == publishes })
	late := newSink()
	if _, err := f1.Subscribe(reg{Key: "svc"}, late.listener(t)); err != nil {
		t.Fatal(err)
	}
	late.quiet(t, 100*time.Millisecond)
	if late.n() != 0 {
		t.Fatalf("replayed with broadcast off: %q", late.values())
	}
}

// CC-019, RG-21: several subscriptions at once on a lone leader, two on one
// key; publish delivers to each.
func TestCC019_SeveralSubscriptionsOnLeader(t *testing.T) {
	tr, addr := memNet(t)
	c := newClient(t, "NotifyClient", newWorld(), cluster.WithTransport(tr), cluster.WithAddr(addr))
	ready(t, c)
	foo1, foo2, bar := newSink(), newSink(), newSink()
	for _, s := range []struct {
		key string
		s   *sink
	}{{"foo", foo1}, {"foo", foo2}, {"bar", bar}} {
		if _, err := c.Subscribe(reg{Key: s.key}, s.s.listener(t)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Publish(reg{Key: "foo", Value: "xxx"}); err != nil {
		t.Fatal(err)
	}
	foo1.waitFor(t, wait, "xxx")
	foo2.waitFor(t, wait, "xxx")
	if err := c.Publish(reg{Key: "bar", Value: "yyy"}); err != nil {
		t.Fatal(err)
	}
	bar.waitFor(t, wait, "yyy")
}

// CC-042, RG-26, SRC-21, UI-10: many listeners on one key raise nothing and
// leave nothing behind once removed (the upstream subscription ends).
func TestCC042_ManyListenersNoResidue(t *testing.T) {
	w := newWorld()
	l, f := pair(t, "Client", w)
	rec := newRecorder()
	_ = rec
	var cancels []func()
	var sinks []*sink
	for i := range 50 {
		c := l
		if i%2 == 1 {
			c = f
		}
		s := newSink()
		cancel, err := c.Subscribe(reg{Key: "foo"}, s.listener(t))
		if err != nil {
			t.Fatal(err)
		}
		cancels, sinks = append(cancels, cancel), append(sinks, s)
	}
	if err := f.Publish(reg{Key: "foo", Value: "v"}); err != nil {
		t.Fatal(err)
	}
	for _, s := range sinks {
		s.waitFor(t, wait, "v")
	}
	for _, cancel := range cancels {
		cancel()
	}
	eventually(t, wait, "upstream unsubscribed", func() bool { _, u := w.subCount("foo"); return u == 1 })
	if l.Stats().Subscriptions != 0 || f.Stats().Subscriptions != 0 {
		t.Fatalf("residue: %+v %+v", l.Stats(), f.Stats())
	}
}

// Scenario 12 (CC-043, RG-07, SRC-06): the subscribe timeout reports one
// error per key with no value in time; the value still arrives later.
func TestCC043_SubscribeTimeout(t *testing.T) {
	w := newWorld()
	w.noInitialPush = true
	rec := newRecorder()
	tr, addr := memNet(t)
	opts := []cluster.Option{cluster.WithTransport(tr), cluster.WithAddr(addr)}
	l := newClient(t, "sub_timeout", w, opts...)
	ready(t, l)
	f := newClient(t, "sub_timeout", w, append(opts, cluster.WithSubscribeTimeout(200*time.Millisecond), rec.opt())...)
	ready(t, f)
	fast, slow := newSink(), newSink()
	if _, err := f.Subscribe(reg{Key: "timeout:50"}, fast.listener(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Subscribe(reg{Key: "timeout:400"}, slow.listener(t)); err != nil {
		t.Fatal(err)
	}
	subscribersOn(t, l, reg{Key: "timeout:50"}, 1)
	subscribersOn(t, l, reg{Key: "timeout:400"}, 1)
	if err := l.Publish(reg{Key: "timeout:50", Value: "hello:50"}); err != nil {
		t.Fatal(err)
	}
	fast.waitFor(t, wait, "hello:50")
	rec.wait(t, wait, "the subscribe timeout of the slow key", isErr(cluster.ErrSubscribeTimeout))
	if err := l.Publish(reg{Key: "timeout:400", Value: "hello:400"}); err != nil {
		t.Fatal(err)
	}
	slow.waitFor(t, wait, "hello:400")
	errs := rec.count(isErr(cluster.ErrSubscribeTimeout))
	if errs != 1 {
		t.Fatalf("%d subscribe timeout errors, want 1: %v", errs, rec.all())
	}
	ev := rec.wait(t, wait, "timeout", isErr(cluster.ErrSubscribeTimeout))
	if !strings.Contains(ev.Err.Error(), `subscribe key $$inner$$__{"key":"timeout:400"} on channel`) ||
		!strings.Contains(ev.Err.Error(), "no value for the subscription within the subscribe timeout (") ||
		!strings.Contains(ev.Err.Error(), "(subscribe timeout 200ms)") {
		t.Fatalf("message: %v", ev.Err)
	}
}

// CC-044, RG-02: no subscribe timeout for a key whose value is cached.
func TestRG02_NoTimeoutWhenCached(t *testing.T) {
	w := newWorld()
	rec := newRecorder()
	tr, addr := memNet(t)
	opts := []cluster.Option{cluster.WithTransport(tr), cluster.WithAddr(addr)}
	l := newClient(t, "sub_timeout", w, opts...)
	ready(t, l)
	f := newClient(t, "sub_timeout", w, append(opts, cluster.WithSubscribeTimeout(200*time.Millisecond), rec.opt())...)
	ready(t, f)
	first, second := newSink(), newSink()
	if _, err := f.Subscribe(reg{Key: "K"}, first.listener(t)); err != nil {
		t.Fatal(err)
	}
	first.waitFor(t, wait) // the initial push: []
	if _, err := f.Subscribe(reg{Key: "K"}, second.listener(t)); err != nil {
		t.Fatal(err)
	}
	second.waitFor(t, wait)
	// Longer than the 200 ms subscribe timeout.
	holdsFor(t, 300*time.Millisecond, "no subscribe timeout for a cached key", func() bool {
		return rec.count(isErr(cluster.ErrSubscribeTimeout)) == 0
	})
}

// CC-046 (second half), UI-15: operations on a closed Client are harmless
// and say so.
func TestCC046_OperationsAfterClose(t *testing.T) {
	l, f := pair(t, "Closed", newWorld())
	for _, c := range []*cluster.Client{f, l} {
		if err := c.Close(tctx(t, wait)); err != nil {
			t.Fatal(err)
		}
		cancel, err := c.Subscribe(reg{Key: "foo"}, func(cluster.Value) { t.Error("listener called after close") })
		cancel()
		checks := map[string]error{
			"subscribe":   err,
			"unsubscribe": c.Unsubscribe(reg{Key: "foo"}),
			"publish":     c.Publish(reg{Key: "foo", Value: "x"}),
			"oneway":      c.InvokeOneway("echo", 1),
			"ready":       c.Ready(tctx(t, wait)),
		}
		_, checks["invoke"] = c.Invoke(tctx(t, wait), "echo", 1)
		for op, err := range checks {
			if !errors.Is(err, cluster.ErrClosed) {
				t.Errorf("%s after close: %v", op, err)
			}
		}
		if st := c.Stats(); !st.Closed {
			t.Errorf("stats after close: %+v", st)
		}
	}
}
