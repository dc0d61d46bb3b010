package conformance

import (
	"fmt"
	"slices"

	"github.com/go-clusterclient/clusterclient/cluster"
)

var publishCases = []testCase{
	{name: "every-subscriber", run: testPublishEverySubscriber},
	{name: "child-processes", needs: capMultiProcess, run: testPublishChildProcesses},
}

// A publication from a follower reaches the real client as published and
// every subscriber of the key in every process; one from the leader does
// too.
func testPublishEverySubscriber(e *env) {
	addr := e.addr()
	l, f1, f2 := e.cluster3(addr, "Publish")
	f3 := e.process().join("Publish", addr)
	f3.mustFollow()
	subs := []*member{l, f1, f3}
	for _, m := range subs {
		m.subscribe("k")
	}
	settle(f1, f3)
	f2.publish("k", "from a follower")
	for _, m := range subs {
		m.waitValue("k", "from a follower")
	}
	l.publish("k", "from the leader")
	for _, m := range subs {
		snap := m.waitValue("k", "from the leader")
		if !snap.Has("from a follower") {
			e.errorf("%s: %v lacks the earlier value", m.label, snap)
		}
	}
	st := e.upstream().latest("Publish").state()
	for _, v := range []string{"from a follower", "from the leader"} {
		if !st.publishedValue("k", v) {
			e.errorf("the real client never received Publish(%q); it received %v", v, st.published)
		}
	}
}

// Child processes take part: a publication from one follower process
// reaches the subscribers of another and of this process, and one made
// here reaches the child processes.
func testPublishChildProcesses(e *env) {
	addr := e.addr()
	l := e.process().join("PublishProc", addr)
	l.mustLead()
	sub := e.startProcess(ProcessConfig{Channel: "PublishProc", Addr: addr, Mode: cluster.ForceFollower})
	pub := e.startProcess(ProcessConfig{Channel: "PublishProc", Addr: addr, Mode: cluster.ForceFollower})
	for _, p := range []*Process{sub, pub} {
		e.stepf("waiting for member process %d to be ready", p.Pid())
		if role, err := p.WaitReady(e.Timeout(opTimeout)); err != nil || role != cluster.RoleFollower {
			e.fatalf("member process %d: %v, %v; want a ready follower", p.Pid(), role, err)
		}
	}
	f := e.process().join("PublishProc", addr)
	f.mustFollow()
	l.subscribe("k")
	f.subscribe("k")
	e.stepf("member process %d subscribes", sub.Pid())
	if err := sub.Subscribe(e.Timeout(opTimeout), "k"); err != nil {
		e.fatalf("%v", err)
	}
	// A round trip after the subscribe, on the same connection.
	if _, err := sub.Invoke(e.Timeout(opTimeout), MethodWhoami); err != nil {
		e.fatalf("member process %d: whoami: %v", sub.Pid(), err)
	}
	settle(f)
	for i, publish := range []func(v string){
		func(v string) {
			e.stepf("member process %d publishes %q", pub.Pid(), v)
			if err := pub.Publish(e.Timeout(opTimeout), "k", v); err != nil {
				e.fatalf("%v", err)
			}
		},
		func(v string) { f.publish("k", v) },
	} {
		v := fmt.Sprintf("value %d", i)
		publish(v)
		l.waitValue("k", v)
		f.waitValue("k", v)
		e.stepf("waiting for member process %d to receive %q", sub.Pid(), v)
		if _, err := sub.WaitSnapshot(e.Timeout(opTimeout), "k", func(s Snapshot) bool { return s.Has(v) }); err != nil {
			e.fatalf("%v", err)
		}
	}
	st := e.upstream().latest("PublishProc").state()
	if !slices.Contains(st.published, Reg{Key: "k", Value: "value 0"}) {
		e.errorf("the real client never received the child process's publication; it received %v", st.published)
	}
}
