package cluster_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
)

func leaders(cs ...*cluster.Client) []*cluster.Client {
	var out []*cluster.Client
	for _, c := range cs {
		if c.Role() == cluster.RoleLeader {
			out = append(out, c)
		}
	}
	return out
}

// settled waits until every client is ready and exactly one leads.
func settled(t *testing.T, cs ...*cluster.Client) *cluster.Client {
	t.Helper()
	var leader *cluster.Client
	eventually(t, 10*time.Second, "exactly one leader, everyone ready", func() bool {
		for _, c := range cs {
			if !c.Stats().Ready {
				return false
			}
		}
		ls := leaders(cs...)
		if len(ls) != 1 {
			return false
		}
		leader = ls[0]
		return true
	})
	return leader
}

// Scenario 7 (CC-017, RP-03, SRC-09): the leader's listener closes under
// it: the survivors elect exactly one new leader, which builds a new real
// client; every Client subscribes again and publishes again what it
// published; a subscription made during the election works.
func TestCC017_ListenerClosedFailover(t *testing.T) {
	w := newWorld()
	tr, addr := memNet(t)
	opts := []cluster.Option{cluster.WithTransport(tr), cluster.WithAddr(addr)}
	c1 := newClient(t, "ServerClose", w, opts...)
	c2 := newClient(t, "ServerClose", w, opts...)
	c3 := newClient(t, "ServerClose", w, opts...)
	all := []*cluster.Client{c1, c2, c3}
	old := settled(t, all...)
	s1, s2, s3 := newSink(), newSink(), newSink()
	if _, err := c1.Subscribe(reg{Key: "svc"}, s1.listener(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Subscribe(reg{Key: "svc"}, s2.listener(t)); err != nil {
		t.Fatal(err)
	}
	if err := c2.Publish(reg{Key: "svc", Value: "299"}); err != nil {
		t.Fatal(err)
	}
	s1.waitFor(t, wait, "299")
	s2.waitFor(t, wait, "299")

	if !cluster.CloseListenerForTest(old) {
		t.Fatal("no listener to close")
	}
	// While the election runs: a new subscription and a new publication.
	if _, err := c3.Subscribe(reg{Key: "svc"}, s3.listener(t)); err != nil {
		t.Fatal(err)
	}
	if err := old.Publish(reg{Key: "svc", Value: "300"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, wait, "a new real client", func() bool { return w.builds.Load() == 2 })
	settled(t, all...)
	// The new real client knows both values only through the replays of
	// c2 (299) and of the old leader (300).
	eventually(t, wait, "replayed publications", func() bool {
		w.mu.Lock()
		rc := w.clients[1]
		w.mu.Unlock()
		rc.mu.Lock()
		defer rc.mu.Unlock()
		return slices.Equal(rc.list("svc"), []string{"299", "300"})
	})
	for _, s := range []*sink{s1, s2, s3} {
		s.waitFor(t, wait, "299", "300")
	}
	if b := w.builds.Load(); b != 2 {
		t.Fatalf("%d real clients built, want 2 (one per term)", b)
	}
	eventually(t, wait, "the old real client closed", func() bool { return w.closes.Load() == 1 })
}

// Failover after the leader hangs up (its hand-over off, as a crash looks
// to followers): calls in flight on it fail at once
// with the retryable ErrLeaderLost; calls made during the election wait and
// succeed on the new leader; a removed publication stays removed (SRC-08).
func TestFailoverInFlightLostQueuedRun(t *testing.T) {
	w := newWorld()
	tr, addr := memNet(t)
	// The leader hangs up as a crashed one would (no hand-over).
	opts := []cluster.Option{cluster.WithTransport(tr), cluster.WithAddr(addr), cluster.WithResponseTimeout(10 * time.Second),
		cluster.WithHandoverTimeout(0)}
	l := newClient(t, "Failover", w, opts...)
	ready(t, l)
	f1 := newClient(t, "Failover", w, opts...)
	f2 := newClient(t, "Failover", w, opts...)
	ready(t, f1)
	ready(t, f2)
	watch := newSink()
	if _, err := f2.Subscribe(reg{Key: "k"}, watch.listener(t)); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"a", "b"} {
		if err := f1.Publish(reg{Key: "k", Value: v}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f1.Unpublish(reg{Key: "k", Value: "a"}); err != nil {
		t.Fatal(err)
	}
	watch.waitFor(t, wait, "b")

	inflight := make(chan error, 1)
	go func() {
		_, err := f1.Invoke(tctx(t, 20*time.Second), "sleep", 1500)
		inflight <- err
	}()
	eventually(t, wait, "call in flight", func() bool { return f1.Stats().InFlight == 1 })
	seen := watch.n() // values delivered before the failover
	start := time.Now()
	closed := make(chan error, 1)
	go func() { closed <- l.Close(tctx(t, 20*time.Second)) }()
	select {
	case err := <-inflight:
		if !errors.Is(err, cluster.ErrLeaderLost) {
			t.Fatalf("in-flight call: %v", err)
		}
		// Issue 18: the message says it once, in Go words.
		if msg := err.Error(); strings.Count(msg, "connection to the leader lost") != 1 || strings.Count(msg, "cluster:") != 1 ||
			!strings.Contains(msg, `cluster: invoke "sleep" on channel "Failover" (follower at mem `) {
			t.Errorf("in-flight call's error reads %q", msg)
		}
		if el := time.Since(start); el >= 1500*time.Millisecond {
			t.Fatalf("in-flight call failed only after %v: it waited for the method", el)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("in-flight call did not fail")
	}
	// A call made now waits for the next leader.
	if got := mustInvoke[string](t, f1, "echo", "queued"); got != "queued" {
		t.Fatalf("echo %q", got)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	settled(t, f1, f2)
	// The new leader's subscription and replay deliver again (sometimes []
	// first, then b); wait for b among them, then check it stays.
	eventually(t, wait, "b delivered after the failover", func() bool {
		v := watch.values()
		return len(v) > seen && slices.Equal(v[len(v)-1], []string{"b"})
	})
	holdsFor(t, 50*time.Millisecond, "after failover the registry holds only b: the unpublished value does not come back", func() bool {
		return slices.Equal(watch.last(), []string{"b"})
	})
	if st := f1.Stats(); st.LeaderLost != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// Scenario 10 (CC-007, UI-01): the leader drops a follower that sends
// nothing for three heartbeat intervals and reports it; the dropped
// follower reconnects by itself with its subscriptions; a heartbeating
// follower is never dropped.
func TestCC007_IdleFollowerDropped(t *testing.T) {
	w := newWorld()
	tr, addr := memNet(t)
	lrec, arec, brec := newRecorder(), newRecorder(), newRecorder()
	base := []cluster.Option{cluster.WithTransport(tr), cluster.WithAddr(addr)}
	l := newClient(t, "Heartbeat", w, append(base, cluster.WithMode(cluster.ForceLeader), cluster.WithHeartbeatInterval(100*time.Millisecond), lrec.opt())...)
	ready(t, l)
	a := newClient(t, "Heartbeat", w, append(base, cluster.WithMode(cluster.ForceFollower), cluster.WithHeartbeatInterval(0), arec.opt())...)
	b := newClient(t, "Heartbeat", w, append(base, cluster.WithMode(cluster.ForceFollower), cluster.WithHeartbeatInterval(50*time.Millisecond), brec.opt())...)
	ready(t, a)
	ready(t, b)
	sa := newSink()
	if _, err := a.Subscribe(reg{Key: "hb"}, sa.listener(t)); err != nil {
		t.Fatal(err)
	}
	ev := lrec.wait(t, 5*time.Second, "idle follower", isErr(cluster.ErrFollowerIdle))
	if ev.Role != cluster.RoleLeader {
		t.Fatalf("event %v", ev)
	}
	arec.wait(t, 5*time.Second, "follower A dropped", func(ev cluster.Event) bool { return ev.Kind == cluster.EventLeaderLost })
	// A comes back by itself and its subscription works again.
	eventually(t, 5*time.Second, "A ready again", func() bool { return a.Stats().Ready })
	if err := l.Publish(reg{Key: "hb", Value: "again"}); err != nil {
		t.Fatal(err)
	}
	sa.waitFor(t, wait, "again")
	if n := brec.count(func(ev cluster.Event) bool { return ev.Kind == cluster.EventLeaderLost }); n != 0 {
		t.Fatalf("heartbeating follower dropped %d times", n)
	}
}

// RG-06: with the idle check off, a silent follower is never dropped.
func TestRG06_IdleCheckOff(t *testing.T) {
	w := newWorld()
	tr, addr := memNet(t)
	lrec, arec := newRecorder(), newRecorder()
	base := []cluster.Option{cluster.WithTransport(tr), cluster.WithAddr(addr)}
	l := newClient(t, "NoCheck", w, append(base, cluster.WithHeartbeatInterval(50*time.Millisecond), cluster.WithIdleCheck(false), lrec.opt())...)
	ready(t, l)
	a := newClient(t, "NoCheck", w, append(base, cluster.WithHeartbeatInterval(0), arec.opt())...)
	ready(t, a)
	holdsFor(t, 400*time.Millisecond, "eight heartbeat intervals without an idle error or a dropped follower", func() bool {
		return lrec.count(isErr(cluster.ErrFollowerIdle)) == 0 &&
			arec.count(func(ev cluster.Event) bool { return ev.Kind == cluster.EventLeaderLost }) == 0
	})
	if l.Stats().Followers != 1 {
		t.Fatalf("leader stats %+v", l.Stats())
	}
}

// RG-21: a follower that talks every 2.5 intervals (no heartbeats) is not
// dropped: the limit is three intervals, not one.
func TestRG21_IdleLimitIsThreeIntervals(t *testing.T) {
	w := newWorld()
	tr, addr := memNet(t)
	lrec := newRecorder()
	base := []cluster.Option{cluster.WithTransport(tr), cluster.WithAddr(addr)}
	l := newClient(t, "ThreeIntervals", w, append(base, cluster.WithHeartbeatInterval(400*time.Millisecond), lrec.opt())...)
	ready(t, l)
	a := newClient(t, "ThreeIntervals", w, append(base, cluster.WithHeartbeatInterval(0))...)
	ready(t, a)
	for range 2 {
		time.Sleep(1000 * time.Millisecond)
		mustInvoke[string](t, a, "echo", "x")
	}
	if n := lrec.count(isErr(cluster.ErrFollowerIdle)); n != 0 {
		t.Fatalf("dropped a follower idle for 2.5 intervals")
	}
}
