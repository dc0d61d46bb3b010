package interop

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
)

// TestNodeMisbehaviour pins down, with evidence in the log (go test -v),
// where Node's cluster-client 3.7.0 itself misbehaves in a mixed cluster,
// and checks that the Go side copes. (A failed re-election attempt that
// leaves Node's ready() rejecting is logged by TestFailover.)
func TestNodeMisbehaviour(t *testing.T) {
	requireNode(t)

	t.Run("a Node leader dies on a method its class lacks", func(t *testing.T) {
		port := freePort(t)
		const channel = "CrashClient"
		leader := startNode(t, "node leader", port, "leader", channel, nodeOpts())
		g := startGo(t, "go follower", port, channel, goOpts(cluster.Auto))
		from := g.log.mark()
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		_, err := g.c.Invoke(ctx, "noSuchMethod")
		if !errors.Is(err, cluster.ErrLeaderLost) {
			t.Fatalf("invoke of a missing method on the Node leader: %v, want ErrLeaderLost (Node crashes)", err)
		}
		select {
		case <-leader.exited:
		case <-time.After(ioTimeout):
			t.Fatal("the Node leader is still alive")
		}
		t.Logf("evidence: the Node leader exited (%v); its stderr:\n%s", leader.waitErr, firstLines(leader.stderr.String(), 6))
		if !strings.Contains(leader.stderr.String(), "TypeError") {
			t.Errorf("the Node leader died without a TypeError: %s", leader.stderr.String())
		}
		// The Go follower takes over; the cluster lives on.
		if !g.waitReady(t, from) {
			t.Errorf("the Go follower did not take over")
		}
	})

	t.Run("a Node follower sends no heartbeat while a call is pending", func(t *testing.T) {
		port := freePort(t)
		const channel = "SlowCallClient"
		const hb = 300 * time.Millisecond
		leader := startGo(t, "go leader", port, channel, goOptions{mode: cluster.ForceLeader, heartbeat: hb, responseTimeout: 5 * time.Second})
		n := startNode(t, "node follower", port, "follower", channel, nodeOptions{HeartbeatInterval: int(hb.Milliseconds()), ResponseTimeout: 5000})
		g := startGo(t, "go follower", port, channel, goOptions{mode: cluster.ForceFollower, heartbeat: hb, responseTimeout: 5 * time.Second})
		from := leader.log.mark()
		const sleep = 10 * hb // well beyond the leader's limit of 3 intervals

		// The same slow call from both followers at once.
		goDone := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
			defer cancel()
			_, err := g.c.Invoke(ctx, "sleep", sleep.Milliseconds())
			goDone <- err
		}()
		r := n.invoke(t, "sleep", jsInt(sleep.Milliseconds()))
		t.Logf("evidence: node follower's call: ok=%v error=%+v", r.OK, r.Error)
		for _, ev := range n.log.all(0, func(ev event) bool { return ev.Name == "lost" || ev.Name == "log" }) {
			t.Logf("evidence: node follower: %s", ev)
		}
		for _, ev := range leader.log.all(from, named("error")) {
			t.Logf("evidence: go leader: %s", ev)
		}
		if r.OK {
			t.Errorf("the Node follower's call succeeded: it was not dropped, so Node heartbeats during calls now")
		}
		// The drop reaches the Node follower (its call fails) and the
		// leader's event log by different paths: wait for the event.
		leader.log.waitFor(t, "the Go leader dropping the idle follower", from, ioTimeout, errorKind("ErrFollowerIdle"))
		// The Go follower keeps heartbeating under its call.
		if err := <-goDone; err != nil {
			t.Errorf("the Go follower's call failed: %v", err)
		}
		noLost(t, g, 0)
	})
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}
