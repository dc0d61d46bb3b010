package interop

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/election"
	"github.com/go-clusterclient/clusterclient/internal/childproc"
)

// member is a process of a mixed cluster, Go or Node, as the scenarios
// drive it alike: subscriptions, publications and its event log (ready,
// lost, data, rc, error events in the same shapes).
type member interface {
	String() string
	events() *eventLog
	subscribe(t testing.TB, sub string, reg dataReg)
	publish(t testing.TB, reg pubReg)
}

var (
	_ member = (*nodeProc)(nil)
	_ member = (*goPeer)(nil)
)

// goOptions configure a Go member.
type goOptions struct {
	mode            cluster.Mode
	heartbeat       time.Duration // 0: cluster's default
	responseTimeout time.Duration // 0: cluster's default
}

func (o goOptions) clusterOptions(port int) []cluster.Option {
	opts := []cluster.Option{
		cluster.WithNodeCompat(),
		cluster.WithPort(port),
		cluster.WithMode(o.mode),
		// Its own table of listeners: this Client behaves as if it were
		// alone in its process.
		cluster.WithRegistry(election.NewRegistry()),
		cluster.WithElectionBackoff(20*time.Millisecond, 200*time.Millisecond),
	}
	if o.heartbeat > 0 {
		opts = append(opts, cluster.WithHeartbeatInterval(o.heartbeat))
	}
	if o.responseTimeout > 0 {
		opts = append(opts, cluster.WithResponseTimeout(o.responseTimeout))
	}
	return opts
}

// goPeer is an in-process Go member: a cluster.Client with its own
// election registry, whose deliveries, events and (while it leads) real
// client calls are recorded in its log the way the Node peer prints them.
type goPeer struct {
	name string
	c    *cluster.Client
	log  *eventLog
}

// startGo creates a Go member and waits until it is ready. It is closed
// by t.Cleanup.
func startGo(t testing.TB, name string, port int, channel string, o goOptions) *goPeer {
	t.Helper()
	g := launchGo(t, name, port, channel, o)
	ctx, cancel := context.WithTimeout(context.Background(), readyWithin)
	defer cancel()
	if err := g.c.Ready(ctx); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	// Events reach the log after Ready returns: wait for this one, so
	// that marks taken from now on come after it.
	g.waitReady(t, 0)
	return g
}

// launchGo creates a Go member without waiting for it.
func launchGo(t testing.TB, name string, port int, channel string, o goOptions, extra ...cluster.Option) *goPeer {
	t.Helper()
	g := &goPeer{name: name, log: newEventLog(name)}
	opts := append(o.clusterOptions(port),
		cluster.WithLogger(testLogger(t).With("member", name)),
		cluster.WithEventHandler(func(ev cluster.Event) { recordEvent(g.log.add, ev) }))
	opts = append(opts, extra...)
	c, err := cluster.New(channel, newDataFactory(g.log.add), opts...)
	if err != nil {
		t.Fatal(err)
	}
	g.c = c
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), stopWithin)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Errorf("close %s: %v", name, err)
		}
		if t.Failed() {
			t.Logf("%s events:\n%s", name, g.log.dump())
		}
	})
	return g
}

// sentinels are the errors recordEvent names in error events.
var sentinels = map[string]error{
	"ErrTimeout": cluster.ErrTimeout, "ErrLeaderLost": cluster.ErrLeaderLost,
	"ErrLeaderUnresponsive": cluster.ErrLeaderUnresponsive, "ErrFollowerIdle": cluster.ErrFollowerIdle,
	"ErrLeaderTimeout": cluster.ErrLeaderTimeout, "ErrAckTimeout": cluster.ErrAckTimeout,
	"ErrProtocol": cluster.ErrProtocol, "ErrUnknownMethod": cluster.ErrUnknownMethod,
	"ErrNoChannel": cluster.ErrNoChannel, "ErrListener": cluster.ErrListener,
}

// recordEvent turns a cluster event into the Node peer's vocabulary:
// ready {leader, err}, lost {err}, error {err, kinds}, role, closed.
func recordEvent(add func(string, any), ev cluster.Event) {
	errText := ""
	var kinds []string
	if ev.Err != nil {
		errText = ev.Err.Error()
		for name, s := range sentinels {
			if errors.Is(ev.Err, s) {
				kinds = append(kinds, name)
			}
		}
	}
	switch ev.Kind {
	case cluster.EventRole:
		add("role", map[string]any{"role": ev.Role.String(), "term": ev.Term})
	case cluster.EventReady:
		add("ready", map[string]any{"leader": ev.Role == cluster.RoleLeader, "err": errText})
	case cluster.EventLeaderLost:
		add("lost", map[string]any{"err": errText, "kinds": kinds})
	case cluster.EventError:
		add("error", map[string]any{"err": errText, "kinds": kinds})
	case cluster.EventClosed:
		add("closed", map[string]any{})
	}
}

func (g *goPeer) String() string { return g.name }

func (g *goPeer) events() *eventLog { return g.log }

func (g *goPeer) subscribe(t testing.TB, sub string, reg dataReg) {
	t.Helper()
	_, err := g.c.Subscribe(reg, func(v cluster.Value) {
		var dv dataValue
		if err := v.Decode(&dv); err != nil {
			g.log.add("data", map[string]any{"sub": sub, "decodeError": err.Error()})
			return
		}
		g.log.add("data", map[string]any{"sub": sub, "value": dv})
	})
	if err != nil {
		t.Fatalf("%s: subscribe %+v: %v", g.name, reg, err)
	}
}

func (g *goPeer) unsubscribe(t testing.TB, _ string, reg dataReg) {
	t.Helper()
	if err := g.c.Unsubscribe(reg); err != nil {
		t.Fatalf("%s: unsubscribe %+v: %v", g.name, reg, err)
	}
}

func (g *goPeer) publish(t testing.TB, reg pubReg) {
	t.Helper()
	if err := g.c.Publish(reg); err != nil {
		t.Fatalf("%s: publish %+v: %v", g.name, reg, err)
	}
}

// waitReady waits for a successful ready event at or after from and
// returns whether the member leads.
func (g *goPeer) waitReady(t testing.TB, from int) bool {
	t.Helper()
	ev, _ := g.log.waitFor(t, "ready", from, readyWithin, func(ev event) bool {
		return ev.Name == "ready" && ev.str("err") == ""
	})
	var d struct {
		Leader bool `json:"leader"`
	}
	if err := ev.decode(&d); err != nil {
		t.Fatal(err)
	}
	return d.Leader
}

// goChild is a Go member in a process of its own (the test binary run
// again in mode "member"), for the scenarios that SIGKILL a Go leader.
// Its events arrive over childproc's event stream into log.
type goChild struct {
	name string
	ch   *childproc.Child
	log  *eventLog
	done chan struct{}
}

// startGoChild starts a Go member process and waits until it is ready.
func startGoChild(t testing.TB, name string, port int, channel string, o goOptions) *goChild {
	t.Helper()
	requireNode(t) // the child serves Node peers: pointless without them
	g := &goChild{name: name, log: newEventLog(name), done: make(chan struct{})}
	g.ch = childproc.Start(t, "member", strconv.Itoa(port), channel, strconv.Itoa(int(o.mode)),
		o.heartbeat.String(), o.responseTimeout.String())
	go func() {
		defer close(g.done)
		for {
			ev, err := g.ch.Next(context.Background())
			if err != nil {
				g.log.add("exited", map[string]any{"err": err.Error()})
				return
			}
			g.log.add(ev.Name, ev.Data)
		}
	}()
	t.Cleanup(func() {
		_ = g.ch.Kill()
		<-g.done
		if t.Failed() {
			t.Logf("%s events:\n%s\nstderr:\n%s", name, g.log.dump(), g.ch.Stderr())
		}
	})
	g.log.waitFor(t, "ready", 0, readyWithin, func(ev event) bool {
		return ev.Name == "ready" && ev.str("err") == "" || ev.Name == "exited"
	})
	if _, i := g.log.find(0, named("exited")); i >= 0 {
		t.Fatalf("%s exited before it was ready: %s", name, g.ch.Stderr())
	}
	return g
}

// kill SIGKILLs the child and waits until its event stream ended.
func (g *goChild) kill(t testing.TB) {
	t.Helper()
	if err := g.ch.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-g.done:
	case <-time.After(stopWithin):
		t.Fatalf("%s: still running %v after SIGKILL", g.name, stopWithin)
	}
}

// memberMode is the child side of goChild: a Go member that leads or
// follows until it is killed (or its parent goes away), reporting on
// stdout what it does. Arguments: port, channel, mode, heartbeat,
// response timeout.
func memberMode(args []string) int {
	if len(args) != 5 {
		childproc.Fatalf("member: want 5 arguments, got %q", args)
	}
	port, err := strconv.Atoi(args[0])
	if err != nil {
		childproc.Fatalf("member: port %q: %v", args[0], err)
	}
	mode, err := strconv.Atoi(args[2])
	if err != nil {
		childproc.Fatalf("member: mode %q: %v", args[2], err)
	}
	var o goOptions
	o.mode = cluster.Mode(mode)
	if o.heartbeat, err = time.ParseDuration(args[3]); err != nil {
		childproc.Fatalf("member: heartbeat %q: %v", args[3], err)
	}
	if o.responseTimeout, err = time.ParseDuration(args[4]); err != nil {
		childproc.Fatalf("member: response timeout %q: %v", args[4], err)
	}
	opts := append(o.clusterOptions(port), cluster.WithEventHandler(func(ev cluster.Event) { recordEvent(childproc.Emit, ev) }))
	// The client lives until the parent kills the process or says
	// "close" (Client.Close: a leader hands over).
	c, err := cluster.New(args[1], newDataFactory(childproc.Emit), opts...)
	if err != nil {
		childproc.Fatalf("member: %v", err)
	}
	for {
		// Nothing to do but serve; Receive exits the process when the
		// parent closes stdin or dies.
		if ev := childproc.Receive(); ev.Name == "close" {
			ctx, cancel := context.WithTimeout(context.Background(), stopWithin)
			err := c.Close(ctx)
			cancel()
			if err != nil {
				childproc.Fatalf("member: close: %v", err)
			}
			return 0
		}
	}
}

// close closes the child's Client (a leader hands over) and waits until
// the process exited.
func (g *goChild) close(t testing.TB) {
	t.Helper()
	if err := g.ch.Send("close", nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-g.done:
	case <-time.After(stopWithin):
		t.Fatalf("%s: still running %v after close", g.name, stopWithin)
	}
}
