package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/election"
	"github.com/go-clusterclient/clusterclient/protocol"
	"github.com/go-clusterclient/clusterclient/transport"
	"github.com/go-clusterclient/clusterclient/transport/tcp"
	"github.com/go-clusterclient/clusterclient/transport/transporttest"
)

// Scenario 1 (CC-025, CC-052): the first instance of a name leads, a second
// instance of the same name in the same process follows over a real
// connection; IsLeader reports it.
func TestCC025_FirstLeadsSameNameFollows(t *testing.T) {
	w := newWorld()
	tr, addr := memNet(t)
	c1 := newClient(t, "Roles", w, cluster.WithTransport(tr), cluster.WithAddr(addr))
	ready(t, c1)
	c2 := newClient(t, "Roles", w, cluster.WithTransport(tr), cluster.WithAddr(addr))
	ready(t, c2)
	if !c1.IsLeader() || c1.Role() != cluster.RoleLeader {
		t.Fatalf("first client: role %v", c1.Role())
	}
	if c2.IsLeader() || c2.Role() != cluster.RoleFollower {
		t.Fatalf("second client: role %v", c2.Role())
	}
	// The follower's calls really cross a connection: the leader counts a
	// follower and serves its call.
	if got := mustInvoke[int](t, c2, "version"); got != 1 {
		t.Fatalf("version via follower = %d", got)
	}
	if st := c1.Stats(); st.Followers != 1 || st.Served != 1 {
		t.Fatalf("leader stats: %+v", st)
	}
}

// CC-001, UI-05: a forced leader fails at once when a foreign listener holds
// the port, with the real OS error and the address; Close still works.
func TestCC001_ForcedLeaderPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	c := newClient(t, "RegistryClient", newWorld(), cluster.WithTransport(tcp.New(tcp.Config{})),
		cluster.WithPort(port), cluster.WithMode(cluster.ForceLeader))
	err = c.Ready(tctx(t, 5*time.Second))
	if !errors.Is(err, election.ErrLeaderBind) || !errors.Is(err, transport.ErrAddrInUse) {
		t.Fatalf("ready: %v", err)
	}
	if !strings.Contains(err.Error(), "127.0.0.1:"+strconv.Itoa(port)) || !strings.Contains(err.Error(), "RegistryClient") {
		t.Fatalf("error does not name the channel and address: %v", err)
	}
	if err := c.Close(tctx(t, 5*time.Second)); err != nil {
		t.Fatalf("close after failed init: %v", err)
	}
}

// CC-018, UI-03: a forced follower with no leader gives up after MaxWait,
// naming the address and the wait; the error reaches Ready and the events.
func TestCC018_ForcedFollowerMaxWait(t *testing.T) {
	tr, addr := memNet(t)
	rec := newRecorder()
	start := time.Now()
	c := newClient(t, "Waiter", newWorld(), cluster.WithTransport(tr), cluster.WithAddr(addr),
		cluster.WithMode(cluster.ForceFollower), cluster.WithMaxWait(300*time.Millisecond), rec.opt())
	err := c.Ready(tctx(t, 5*time.Second))
	if !errors.Is(err, cluster.ErrNoLeader) {
		t.Fatalf("ready: %v", err)
	}
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Fatalf("gave up after %v, before MaxWait", el)
	}
	for _, want := range []string{addr, "300ms", "Waiter"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not mention %q", err, want)
		}
	}
	rec.wait(t, 2*time.Second, "ready error", func(ev cluster.Event) bool {
		return ev.Kind == cluster.EventReady && errors.Is(ev.Err, cluster.ErrNoLeader)
	})
	// Calls fail fast with the same error meanwhile.
	if _, err := c.Invoke(tctx(t, 5*time.Second), "echo", 1); !errors.Is(err, cluster.ErrNoLeader) {
		t.Fatalf("invoke: %v", err)
	}
}

// CC-031, UI-13, UI-14: a forced follower created before its forced leader
// waits for it (and for its slow real client) and then works.
func TestCC031_FollowerBeforeLeader(t *testing.T) {
	w := newWorld()
	w.initDelay = 300 * time.Millisecond
	mtr, addr := memNet(t)
	tr := transporttest.WatchRefusals(mtr)
	opts := []cluster.Option{cluster.WithTransport(tr), cluster.WithAddr(addr), cluster.WithResponseTimeout(100 * time.Millisecond)}
	f := newClient(t, "api_client_test", w, append(opts, cluster.WithMode(cluster.ForceFollower))...)
	firstRefusal(t, tr) // the follower looked for its leader and found none
	l := newClient(t, "api_client_test", w, append(opts, cluster.WithMode(cluster.ForceLeader))...)
	ready(t, l)
	ready(t, f)
	if got := mustInvoke[string](t, f, "echo", "hello"); got != "hello" {
		t.Fatalf("echo = %q", got)
	}
	if !l.IsLeader() || f.IsLeader() {
		t.Fatalf("roles %v %v", l.Role(), f.Role())
	}
}

// CC-005, CC-051, RG-01, UI-10: many channels share one listener in a
// process, each with its own leader and follower; closing them one by one
// keeps the address until the last one closes (CC-053: then it can be
// listened on again).
func TestRG01_ManyChannelsOneListener(t *testing.T) {
	w := newWorld()
	tr, addr := memNet(t)
	const n = 21
	var leaders, followers []*cluster.Client
	for i := range n {
		name := fmt.Sprintf("Channel%02d", i)
		l := newClient(t, name, w, cluster.WithTransport(tr), cluster.WithAddr(addr))
		ready(t, l)
		f := newClient(t, name, w, cluster.WithTransport(tr), cluster.WithAddr(addr))
		ready(t, f)
		if !l.IsLeader() || f.IsLeader() {
			t.Fatalf("%s: roles %v %v", name, l.Role(), f.Role())
		}
		leaders, followers = append(leaders, l), append(followers, f)
	}
	for i, f := range followers {
		if got := mustInvoke[string](t, f, "echo", fmt.Sprint(i)); got != fmt.Sprint(i) {
			t.Fatalf("channel %d echo = %q", i, got)
		}
	}
	if b := w.builds.Load(); b != n {
		t.Fatalf("%d real clients for %d channels", b, n)
	}
	for i := range n {
		ctx := tctx(t, 5*time.Second)
		if err := followers[i].Close(ctx); err != nil {
			t.Fatal(err)
		}
		if err := leaders[i].Close(ctx); err != nil {
			t.Fatal(err)
		}
		ln, err := tr.Listen(ctx, addr)
		if i < n-1 {
			if !errors.Is(err, transport.ErrAddrInUse) {
				t.Fatalf("after closing %d of %d channels the address is free (%v)", i+1, n, err)
			}
			// The remaining channels still work.
			if got := mustInvoke[string](t, followers[n-1], "echo", "x"); got != "x" {
				t.Fatalf("echo = %q", got)
			}
			continue
		}
		if err != nil {
			t.Fatalf("after the last channel closed, listen: %v", err)
		}
		ln.Close()
	}
	if c := w.closes.Load(); c != n {
		t.Fatalf("%d real clients closed, want %d", c, n)
	}
}

// namelessCodec is a codec whose name the register handshake could not
// compare.
type namelessCodec struct{ protocol.Codec }

func (namelessCodec) Name() string { return "" }

// CC-054, RG-04, UI-04: invalid options fail at construction with a clear
// error instead of a long wait.
func TestRG04_InvalidOptions(t *testing.T) {
	f := newWorld().factory
	cases := []struct {
		name string
		opt  cluster.Option
		want string
	}{
		{"port 0", cluster.WithPort(0), "port should be a number in 1..65535, but got 0"},
		{"port too big", cluster.WithPort(70000), "but got 70000"},
		{"zero response timeout", cluster.WithResponseTimeout(0), "response timeout"},
		{"negative heartbeat", cluster.WithHeartbeatInterval(-time.Second), "heartbeat"},
		{"bad mode", cluster.WithMode(cluster.Mode(9)), "mode"},
		{"nil transport", cluster.WithTransport(nil), "transport"},
		{"nameless codec", cluster.WithCodec(namelessCodec{protocol.JSON}), "empty Name"},
	}
	for _, tc := range cases {
		_, err := cluster.New("Bad", f, tc.opt)
		if !errors.Is(err, cluster.ErrInvalidOption) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if _, err := cluster.New("", f); !errors.Is(err, cluster.ErrInvalidOption) {
		t.Errorf("empty name: %v", err)
	}
	if _, err := cluster.New("bad\xffname", f); !errors.Is(err, cluster.ErrInvalidOption) || !strings.Contains(err.Error(), "UTF-8") {
		t.Errorf("invalid UTF-8 name: %v", err)
	}
	if _, err := cluster.New("x", nil); !errors.Is(err, cluster.ErrInvalidOption) {
		t.Errorf("nil factory: %v", err)
	}
	t.Run("env", func(t *testing.T) {
		for _, v := range []string{"foo", "0", "65536", "12x"} {
			t.Setenv(cluster.EnvPort, v)
			_, err := cluster.New("Bad", f, cluster.WithSingleMode(false))
			if !errors.Is(err, cluster.ErrInvalidOption) || !strings.Contains(err.Error(), strconv.Quote(v)) {
				t.Errorf("%s=%q: %v", cluster.EnvPort, v, err)
			}
		}
	})
}

// RG-16, RP-02, RG-30, SRC-13: with no port option the port comes from
// CLUSTER_CLIENT_PORT, on the IPv4 loopback address.
func TestRG16_PortFromEnv(t *testing.T) {
	port := freePort(t)
	t.Setenv(cluster.EnvPort, strconv.Itoa(port))
	t.Setenv(cluster.EnvSingleMode, "")
	c, err := cluster.New("EnvPort", newWorld().factory, cluster.WithLogger(testLogger()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	ready(t, c)
	if st := c.Stats(); st.Addr != "127.0.0.1:"+strconv.Itoa(port) || st.Transport != "tcp" || !c.IsLeader() {
		t.Fatalf("stats: %+v", st)
	}
	if ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
		ln.Close()
		t.Fatal("the env port is not held by the leader")
	}
}

// RG-11, UI-16: single mode (by option or by CLUSTER_CLIENT_SINGLE_MODE=1)
// never touches the network.
func TestRG11_SingleModeBindsNothing(t *testing.T) {
	port := freePort(t)
	t.Setenv(cluster.EnvSingleMode, "1")
	w := newWorld()
	c, err := cluster.New("SingleEnv", w.factory, cluster.WithTransport(tcp.New(tcp.Config{})), cluster.WithPort(port),
		cluster.WithLogger(testLogger()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	ready(t, c)
	if c.Role() != cluster.RoleSingle || !c.IsLeader() {
		t.Fatalf("role %v", c.Role())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatalf("single mode holds the port: %v", err)
	}
	ln.Close()
	if got := mustInvoke[string](t, c, "echo", "x"); got != "x" {
		t.Fatalf("echo %q", got)
	}
}

// SRC-01, UI-06: another process owns the address but has no leader for
// this channel. Node drops the register and the follower retries forever;
// here the follower fails fast with ErrNoChannel naming the channel, and
// becomes ready once that process starts leading the channel.
func TestSRC01_NoLeaderForChannel(t *testing.T) {
	w := newWorld()
	tr, addr := memNet(t)
	procA, procB := election.NewRegistry(), election.NewRegistry()
	a := newClient(t, "Owner", w, cluster.WithTransport(tr), cluster.WithAddr(addr), cluster.WithRegistry(procA))
	ready(t, a)
	start := time.Now()
	b := newClient(t, "Lonely", w, cluster.WithTransport(tr), cluster.WithAddr(addr), cluster.WithRegistry(procB),
		cluster.WithResponseTimeout(3*time.Second))
	err := b.Ready(tctx(t, 5*time.Second))
	if !errors.Is(err, cluster.ErrNoChannel) || !strings.Contains(err.Error(), `"Lonely"`) {
		t.Fatalf("ready: %v", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("took %v: not fast", el)
	}
	var re interface{ Error() string }
	if !errors.As(err, &re) {
		t.Fatal("no cause")
	}
	// Process A now leads "Lonely" too: B joins it.
	a2 := newClient(t, "Lonely", w, cluster.WithTransport(tr), cluster.WithAddr(addr), cluster.WithRegistry(procA))
	ready(t, a2)
	if !a2.IsLeader() {
		t.Fatalf("a2 role %v", a2.Role())
	}
	eventually(t, 5*time.Second, "B ready as a follower of A's Lonely", func() bool {
		return b.Role() == cluster.RoleFollower && b.Stats().Ready
	})
	if got := mustInvoke[string](t, b, "echo", "late"); got != "late" {
		t.Fatalf("echo %q", got)
	}
}
