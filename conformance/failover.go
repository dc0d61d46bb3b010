package conformance

import (
	"errors"
	"fmt"
	"strings"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/transport"
)

var failoverCases = []testCase{
	{name: "leader-closes", run: testFailoverLeaderCloses},
	{name: "leader-hangs-up", run: testFailoverLeaderHangsUp},
	{name: "leader-sigkill", needs: capMultiProcess, run: testFailoverLeaderSIGKILL},
}

// inFlight starts a MethodHold call from m in the background; the channel
// receives its error.
func (e *env) inFlight(m *member) <-chan error {
	done := make(chan error, 1)
	ctx := e.Timeout(opTimeout)
	e.Go(func() {
		_, err := m.c.Invoke(ctx, MethodHold)
		done <- err
	})
	return done
}

// expectLeaderLost waits for the in-flight call's error and checks it is
// the retryable ErrLeaderLost.
func (e *env) expectLeaderLost(m *member, done <-chan error) {
	e.t.Helper()
	e.stepf("waiting for %s's in-flight call to fail", m.label)
	select {
	case err := <-done:
		if !errors.Is(err, cluster.ErrLeaderLost) {
			e.fatalf("%s's call in flight on the lost leader: %v, want an error matching cluster.ErrLeaderLost", m.label, err)
		}
	case <-e.Timeout(opTimeout).Done():
		e.fatalf("%s's call in flight on the lost leader did not fail within %v", m.label, opTimeout)
	}
}

// callOutcomes counts the results of calls made back to back across a
// failover.
type callOutcomes struct {
	ok, lost, toNew int
	other           []string
}

// callAcross makes calls from m back to back until stop closes; the
// channel receives their outcomes. A call succeeds or, if it was in flight
// when the leader went, fails with ErrLeaderLost: anything else is wrong.
// toNew counts the calls answered by another real client than oldID.
func (e *env) callAcross(m *member, oldID string, stop <-chan struct{}) <-chan callOutcomes {
	out := make(chan callOutcomes, 1)
	e.Go(func() {
		var o callOutcomes
		defer func() { out <- o }()
		for {
			select {
			case <-stop:
				return
			case <-e.Ctx.Done():
				return
			default:
			}
			id, err := cluster.Call[string](e.Timeout(opTimeout), m.c, MethodWhoami)
			switch {
			case err == nil:
				o.ok++
				if id != oldID {
					o.toNew++
				}
			case errors.Is(err, cluster.ErrLeaderLost):
				o.lost++
			case len(o.other) < 5:
				o.other = append(o.other, err.Error())
			}
		}
	})
	return out
}

// stopCallsAcross stops the calls of callAcross, checks their outcomes
// and returns them.
func (e *env) stopCallsAcross(m *member, stop chan struct{}, out <-chan callOutcomes) callOutcomes {
	e.t.Helper()
	close(stop)
	e.stepf("waiting for %s's calls across the failover to stop", m.label)
	o := <-out
	e.t.Logf("%s's calls across the failover: %d answered (%d by the new leader), %d lost with the leader", m.label, o.ok, o.toNew, o.lost)
	if len(o.other) > 0 {
		e.errorf("%s's calls across the failover failed otherwise than with cluster.ErrLeaderLost: %q", m.label, o.other)
	}
	if o.toNew == 0 {
		e.errorf("none of %s's calls across the failover reached the new leader", m.label)
	}
	return o
}

// newLeaderAmong waits until every member is ready and exactly one of them
// leads, and returns it.
func (e *env) newLeaderAmong(ms ...*member) *member {
	e.t.Helper()
	var leader *member
	e.eventually("one ready leader among the survivors", func() bool {
		var leaders []*member
		for _, m := range ms {
			st := m.c.Stats()
			if !st.Ready {
				return false
			}
			if st.Role == cluster.RoleLeader {
				leaders = append(leaders, m)
			}
		}
		if len(leaders) != 1 {
			return false
		}
		leader = leaders[0]
		return true
	})
	return leader
}

// checkReplayed checks the survivors' state reached the new leader's real
// client only through replay: publisher's publication and subscriber's
// subscription, whose listener then gets the new real client's Snapshot.
func (e *env) checkReplayed(channel, oldID string, publisher, subscriber *member, value string) *realClient {
	e.t.Helper()
	built := e.upstream().built(channel)
	var rc *realClient
	for _, b := range built {
		if b.id != oldID {
			rc = b
		}
	}
	if rc == nil {
		e.fatalf("no new real client was built for %q", channel)
	}
	e.eventually(fmt.Sprintf("the new real client received %s's publication again", publisher.label), func() bool {
		return rc.state().publishedValue("k", value)
	})
	if n := rc.state().subCall["k"]; n != 1 {
		e.errorf("the new real client was asked to subscribe %q %d times, want once for the host", "k", n)
	}
	subscriber.waitSnapshot(subscriber.sink, "k", "the new real client's value",
		func(s Snapshot) bool { return s.By == rc.id && s.Has(value) })
	return rc
}

// closeScene is the start of the cases where the leader closes: a leader
// and two followers in their own simulated processes, a value f1 got
// through its subscription, a call from f1 held on the leader, and calls
// from f2 back to back (callAcross) until stop closes; closed receives the
// leader's Close once close was called.
type closeScene struct {
	l, f1, f2 *member
	oldID     string
	old       *realClient
	call      <-chan error
	stop      chan struct{}
	across    <-chan callOutcomes
	closed    chan error
}

func (e *env) closeScene(opts ...cluster.Option) *closeScene {
	sc := &closeScene{stop: make(chan struct{}), closed: make(chan error, 1)}
	sc.l, sc.f1, sc.f2 = e.cluster3(e.addr(), "Failover", opts...)
	sc.oldID = sc.l.whoami()
	sc.f1.subscribe("k")
	sc.f2.publish("k", "v1")
	sc.f1.waitValue("k", "v1")

	sc.call = e.inFlight(sc.f1)
	sc.old = e.upstream().latest("Failover")
	e.eventually("the call is in flight on the leader", func() bool { return sc.old.state().holding == 1 })
	sc.across = e.callAcross(sc.f2, sc.oldID, sc.stop)
	return sc
}

// close closes the leader in the background.
func (sc *closeScene) close(e *env) { e.Go(func() { sc.closed <- sc.l.close() }) }

// after checks the new term: one leader among the followers, replayed
// state, f2 reaching it, f2's calls across (returned), the old leader's
// Close, its real client closed once, and one new real client.
func (sc *closeScene) after(e *env) callOutcomes {
	e.t.Helper()
	leader := e.newLeaderAmong(sc.f1, sc.f2)
	rc := e.checkReplayed("Failover", sc.oldID, sc.f2, sc.f1, "v1")
	if got := sc.f2.whoami(); got != rc.id {
		e.errorf("%s reaches %q, the new leader %s owns %q", sc.f2.label, got, leader.label, rc.id)
	}
	o := e.stopCallsAcross(sc.f2, sc.stop, sc.across)
	e.stepf("waiting for the old leader's Close")
	if err := <-sc.closed; err != nil {
		e.errorf("the old leader's Close: %v", err)
	}
	if n := sc.old.state().closes; n != 1 {
		e.errorf("the old real client was closed %d times, want once", n)
	}
	if n := len(e.upstream().built("Failover")); n != 2 {
		e.errorf("%d real clients built, want 2 (one per term)", n)
	}
	return o
}

// The leader closes and hands over: the call in flight on it is answered
// there, while calls made meanwhile wait for the next leader and succeed
// there; none fails. One survivor leads with a new real client, and
// subscriptions and publications are replayed to it.
func testFailoverLeaderCloses(e *env) {
	sc := e.closeScene()
	f1 := sc.f1
	e.stepf("the leader closes with a call in flight: it hands over")
	term := f1.c.Stats().Term
	sc.close(e)

	// Once f1 heard the leader leave (its term ended), its calls go to the
	// next leader, while the call in flight is still held on the old one.
	// (A transport whose conns end with their listener keeps the address
	// until the hand-over is done: there the next leader comes after it.)
	e.eventually(f1.label+" hears the leader leave", func() bool { return f1.c.Stats().Term > term || !f1.c.Stats().Ready })
	if !transport.ConnsOutliveListener(e.h.NewTransport(e.t)) {
		e.upstream().releaseHolds()
	}
	if id := f1.whoami(); id == sc.oldID {
		e.fatalf("a call made during the hand-over reached the old real client %q", id)
	}
	e.upstream().releaseHolds()
	e.stepf("waiting for %s's call in flight during the hand-over", f1.label)
	select {
	case err := <-sc.call:
		if err != nil {
			e.fatalf("%s's call in flight on the leader that handed over: %v, want its answer", f1.label, err)
		}
	case <-e.Timeout(opTimeout).Done():
		e.fatalf("%s's call in flight on the leader that handed over got no answer within %v", f1.label, opTimeout)
	}
	if o := sc.after(e); o.lost != 0 {
		e.errorf("%d of %s's calls failed with cluster.ErrLeaderLost during a hand-over, want none", o.lost, sc.f2.label)
	}
}

// A leader that closes without a hand-over (cluster.WithHandoverTimeout(0))
// hangs up as a crashed one would: its in-flight calls fail with
// ErrLeaderLost, and the rest is as above (another follower calls back to
// back throughout: each call succeeds or, if it was in flight on the old
// leader, fails with ErrLeaderLost).
func testFailoverLeaderHangsUp(e *env) {
	sc := e.closeScene(cluster.WithHandoverTimeout(0))
	e.stepf("the leader hangs up with a call in flight")
	sc.close(e)
	e.expectLeaderLost(sc.f1, sc.call)
	e.upstream().releaseHolds() // the old leader's Close waits for its method

	// f1 knows the leader is gone: this call waits for the next one.
	if id := sc.f1.whoami(); id == sc.oldID {
		e.fatalf("a call after the failover reached the old real client %q", id)
	}
	sc.after(e)
}

// The leader's process is killed with SIGKILL: the same as above, seen
// also from a follower in another process.
func testFailoverLeaderSIGKILL(e *env) {
	addr := e.addr()
	const channel = "FailoverKill"
	leader := e.startProcess(ProcessConfig{Channel: channel, Addr: addr, Mode: cluster.ForceLeader})
	e.stepf("waiting for member process %d to lead", leader.Pid())
	if role, err := leader.WaitReady(e.Timeout(opTimeout)); err != nil || role != cluster.RoleLeader {
		e.fatalf("member process %d: %v, %v; want a ready leader", leader.Pid(), role, err)
	}
	other := e.startProcess(ProcessConfig{Channel: channel, Addr: addr, Mode: cluster.ForceFollower})
	f1 := e.process().join(channel, addr)
	f2 := e.process().join(channel, addr)
	f1.mustFollow()
	f2.mustFollow()
	e.stepf("waiting for member process %d to follow", other.Pid())
	if role, err := other.WaitReady(e.Timeout(opTimeout)); err != nil || role != cluster.RoleFollower {
		e.fatalf("member process %d: %v, %v; want a ready follower", other.Pid(), role, err)
	}
	oldID := f1.whoami()
	if !strings.Contains(oldID, fmt.Sprintf("pid %d ", leader.Pid())) {
		e.fatalf("the follower reaches real client %q, not the leader process %d's", oldID, leader.Pid())
	}
	f1.subscribe("k")
	e.stepf("member process %d subscribes", other.Pid())
	if err := other.Subscribe(e.Timeout(opTimeout), "k"); err != nil {
		e.fatalf("%v", err)
	}
	f2.publish("k", "v1")
	f1.waitValue("k", "v1")
	if _, err := other.WaitSnapshot(e.Timeout(opTimeout), "k", func(s Snapshot) bool { return s.Has("v1") }); err != nil {
		e.fatalf("%v", err)
	}

	call := e.inFlight(f1)
	e.stepf("waiting for the call to be in flight in member process %d", leader.Pid())
	if _, err := leader.WaitState(e.Timeout(opTimeout), "a held call", func(s ProcessState) bool { return s.Holding == 1 }); err != nil {
		e.fatalf("%v", err)
	}
	stop := make(chan struct{})
	across := e.callAcross(f2, oldID, stop)
	e.stepf("SIGKILL of the leader process %d", leader.Pid())
	if err := leader.Kill(); err != nil {
		e.fatalf("%v", err)
	}
	e.expectLeaderLost(f1, call)

	if id := f1.whoami(); id == oldID {
		e.fatalf("a call after the failover reached the killed leader's real client %q", id)
	}
	e.newLeaderAmong(f1, f2)
	rc := e.checkReplayed(channel, oldID, f2, f1, "v1")
	e.stopCallsAcross(f2, stop, across)
	e.stepf("waiting for member process %d to receive the new real client's value", other.Pid())
	if _, err := other.WaitSnapshot(e.Timeout(opTimeout), "k", func(s Snapshot) bool { return s.By == rc.id && s.Has("v1") }); err != nil {
		e.fatalf("%v", err)
	}
	e.stepf("member process %d calls the new leader", other.Pid())
	res, err := other.Invoke(e.Timeout(opTimeout), MethodWhoami)
	if err != nil {
		e.fatalf("member process %d: whoami after the failover: %v", other.Pid(), err)
	}
	if got := strings.Trim(string(res), `"`); got != rc.id {
		e.errorf("member process %d reaches %q, want the new real client %q", other.Pid(), got, rc.id)
	}
	if s := other.State(); len(s.Built) != 0 {
		e.errorf("the forced follower process %d built real clients %q", other.Pid(), s.Built)
	}
}
