package interop

import (
	"fmt"
	"testing"

	"github.com/go-clusterclient/clusterclient/cluster"
)

// TestFailover SIGKILLs the leader, Node or Go, while a Go follower and a
// Node follower run: one of the survivors becomes leader, the other
// registers with it, and both get their subscriptions and publications
// back without the test subscribing again. The "go-close" leader closes
// instead (Client.Close: it hands over): its Go follower hears it leave,
// its Node follower sees its connection close, as when a Node leader
// exits, and the rest is the same.
//
// Which survivor takes over is chosen by making the other a forced
// follower (Node's isLeader: false, Go's ForceFollower), so that every
// handover between the languages is tested every time; the "either"
// cases leave both in port competition and accept whichever wins.
func TestFailover(t *testing.T) {
	requireNode(t)
	for _, leader := range []string{"node", "go", "go-close"} {
		for _, heir := range []string{"go", "node", "either"} {
			what := leader + " leader killed"
			if leader == "go-close" {
				what = "go leader closed"
			}
			t.Run(fmt.Sprintf("%s, %s follower takes over", what, heir), func(t *testing.T) {
				t.Parallel()
				failover(t, leader, heir)
			})
		}
	}
}

func failover(t *testing.T, leaderKind, heir string) {
	port := freePort(t)
	const channel = "FailoverClient"

	var leaderLog *eventLog
	var kill func()
	if leaderKind == "node" {
		n := startNode(t, "node leader", port, "leader", channel, nodeOpts())
		leaderLog, kill = n.log, func() { n.kill(t) }
	} else {
		g := startGoChild(t, "go leader (own process)", port, channel, goOpts(cluster.ForceLeader))
		leaderLog, kill = g.log, func() { g.kill(t) }
		if leaderKind == "go-close" {
			kill = func() { g.close(t) }
		}
	}

	goMode, nodeRole := cluster.Auto, "auto"
	switch heir {
	case "go":
		nodeRole = "follower"
	case "node":
		goMode = cluster.ForceFollower
	}
	gf := startGo(t, "go follower", port, channel, goOpts(goMode))
	nf := startNode(t, "node follower", port, nodeRole, channel, nodeOpts())
	if gf.c.IsLeader() || nf.isLeader(t) {
		t.Fatalf("a follower leads before the kill (go %v, node %v)", gf.c.IsLeader(), nf.isLeader(t))
	}

	reg := sub("fo")
	survivors := []member{gf, nf}
	for _, m := range survivors {
		m.subscribe(t, "F", reg)
		waitData(t, m, "F", 0, "first", anyValue)
	}
	gf.publish(t, pubReg{DataID: "fo", Value: "go before"})
	nf.publish(t, pubReg{DataID: "fo", Value: "node before"})
	for _, v := range []string{"go before", "node before"} {
		leaderLog.waitFor(t, "publish "+v, 0, ioTimeout, publishOf(v))
		for _, m := range survivors {
			waitData(t, m, "F", 0, v, lastIs(v))
		}
	}

	goMark, nodeMark := gf.log.mark(), nf.log.mark()
	kill()

	goLeads := gf.waitReady(t, goMark)
	nodeLeads := nf.waitReady(t, nodeMark)
	if goLeads == nodeLeads {
		t.Fatalf("after the kill: go leads %v, node leads %v; want exactly one leader", goLeads, nodeLeads)
	}
	var newLeader member = gf
	if nodeLeads {
		newLeader = nf
	}
	if heir != "either" && newLeader != member(map[string]member{"go": gf, "node": nf}[heir]) {
		t.Fatalf("%s took over, want the %s follower", newLeader, heir)
	}
	t.Logf("%s took over", newLeader)
	// Both still agree with what they say.
	if gf.c.IsLeader() != goLeads || nf.isLeader(t) != nodeLeads {
		t.Errorf("roles changed again: go leads %v, node leads %v", gf.c.IsLeader(), nf.isLeader(t))
	}

	// The new real client got both publications again, each survivor's
	// own.
	for _, v := range []string{"go before", "node before"} {
		newLeader.events().waitFor(t, "replayed publish "+v, 0, ioTimeout, publishOf(v))
	}

	// The subscriptions deliver again, from either side.
	for _, p := range []struct {
		from  member
		value string
	}{{gf, "go after"}, {nf, "node after"}} {
		from := []int{gf.log.mark(), nf.log.mark()}
		p.from.publish(t, pubReg{DataID: "fo", Value: p.value})
		for i, m := range survivors {
			waitData(t, m, "F", from[i], p.value, lastIs(p.value))
		}
	}
	// One upstream subscription for both subscribers: the follower
	// subscribed again under the new leader's key.
	if subs := rcEvents(newLeader, "subscribe", "fo"); len(subs) != 1 {
		t.Errorf("the new leader's real client subscribed %d times: %v", len(subs), subs)
	}
	// Node's own stumbles on the way (see notready in node/peer.js),
	// for the record.
	for _, ev := range nf.log.all(nodeMark, func(ev event) bool { return ev.Name == "notready" || ev.Name == "log" }) {
		t.Logf("node follower: %s", ev)
	}
}

// publishOf matches the real-client publication of value.
func publishOf(value string) func(event) bool {
	return func(ev event) bool {
		var d struct {
			Op  string `json:"op"`
			Reg pubReg `json:"reg"`
		}
		return ev.Name == "rc" && ev.decode(&d) == nil && d.Op == "publish" && d.Reg.Value == value
	}
}
