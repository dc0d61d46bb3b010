package cluster_test

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/protocol"
	"github.com/go-clusterclient/clusterclient/transport"
	"github.com/go-clusterclient/clusterclient/transport/tcp"
)

// statusOpts are the options an observer of tr/addr needs.
func statusOpts(tr transport.Transport, addr string, more ...cluster.Option) []cluster.Option {
	return append([]cluster.Option{cluster.WithTransport(tr), cluster.WithAddr(addr),
		cluster.WithResponseTimeout(time.Second), cluster.WithLogger(testLogger()), cluster.WithSingleMode(false)}, more...)
}

// A leader reports its process, term, followers (the observer marked),
// subscriptions with their subscribers and cached value, counters and the
// other channels it leads on the address; the snapshot survives JSON.
func TestStatusOfLeaderWithFollowers(t *testing.T) {
	start := time.Now()
	l, tr, addr := startLeader(t, "Status")
	other := newClient(t, "Other", newWorld(), cluster.WithTransport(tr), cluster.WithAddr(addr))
	ready(t, other)
	f1 := newClient(t, "Status", newWorld(), cluster.WithTransport(tr), cluster.WithAddr(addr))
	f2 := newClient(t, "Status", newWorld(), cluster.WithTransport(tr), cluster.WithAddr(addr))
	ready(t, f1)
	ready(t, f2)
	if !l.IsLeader() || f1.IsLeader() || f2.IsLeader() || !other.IsLeader() {
		t.Fatalf("roles: %v %v %v %v", l.Role(), f1.Role(), f2.Role(), other.Role())
	}
	sa, sb, sl := newSink(), newSink(), newSink()
	if _, err := f1.Subscribe(reg{Key: "a"}, sa.listener(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Subscribe(reg{Key: "a"}, sl.listener(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := f2.Subscribe(reg{Key: "b"}, sb.listener(t)); err != nil {
		t.Fatal(err)
	}
	sa.waitFor(t, wait)
	sb.waitFor(t, wait)
	sl.waitFor(t, wait)
	for range 3 {
		mustInvoke[string](t, f1, "echo", "x")
	}

	st, err := cluster.QueryStatus(tctx(t, wait), "Status", statusOpts(tr, addr)...)
	if err != nil {
		t.Fatal(err)
	}
	if st.PID != os.Getpid() || st.Program != filepath.Base(os.Args[0]) || st.Channel != "Status" ||
		st.Transport != tr.Name() || st.Addr != addr || st.Term != l.Stats().Term || !st.Ready || st.ReadyError != "" ||
		st.Codec != "json" || !st.Broadcast || st.Time.Before(start) {
		t.Fatalf("status header: %+v", st)
	}
	if len(st.Followers) != 3 {
		t.Fatalf("followers (two and the observer): %+v", st.Followers)
	}
	observers, subs := 0, 0
	for _, f := range st.Followers {
		if f.Observer {
			observers++
			if f.Subscriptions != 0 {
				t.Fatalf("the observer subscribes: %+v", f)
			}
		}
		subs += f.Subscriptions
		if f.Remote == "" || f.Idle < 0 || f.PendingAcks < 0 {
			t.Fatalf("follower %+v", f)
		}
	}
	if observers != 1 || subs != 2 {
		t.Fatalf("observers %d, follower subscriptions %d: %+v", observers, subs, st.Followers)
	}
	keyA, keyB := `$$inner$$__{"key":"a"}`, `$$inner$$__{"key":"b"}`
	want := []cluster.SubscriptionStatus{
		{Key: keyA, Subscribers: 2, Leader: true, Cached: true},
		{Key: keyB, Subscribers: 1, Leader: false, Cached: true},
	}
	if len(st.Subscriptions) != 2 {
		t.Fatalf("subscriptions %+v", st.Subscriptions)
	}
	for i, s := range st.Subscriptions {
		age := s.CacheAge
		s.CacheAge = 0
		if s != want[i] || age <= 0 || age > time.Since(start) {
			t.Fatalf("subscription %d: %+v (age %v), want %+v", i, s, age, want[i])
		}
	}
	if c := st.Counters; c.Served < 3 || c.Pushes < 2 || c.Elections != 1 || c.Deliveries < 1 {
		t.Fatalf("counters %+v", c)
	}
	if !slices.Equal(st.OtherChannels, []string{"Other"}) {
		t.Fatalf("other channels %v", st.OtherChannels)
	}

	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var back cluster.Status
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !back.Time.Equal(st.Time) {
		t.Fatalf("time %v after JSON, was %v", back.Time, st.Time)
	}
	back.Time = st.Time
	if b2, _ := json.Marshal(back); string(b2) != string(b) {
		t.Fatalf("status changed across JSON:\n%s\n%s", b, b2)
	}

	// The observer is gone once QueryStatus returned.
	eventually(t, wait, "observer disconnected", func() bool { return l.Stats().Followers == 2 })
}

// In-flight calls: a method running for a follower shows in InFlight.
func TestStatusInFlight(t *testing.T) {
	_, tr, addr := startLeader(t, "Busy")
	f := newClient(t, "Busy", newWorld(), cluster.WithTransport(tr), cluster.WithAddr(addr))
	ready(t, f)
	done := make(chan error, 1)
	go func() {
		_, err := f.Invoke(tctx(t, wait), "sleep", 300)
		done <- err
	}()
	var st *cluster.Status
	eventually(t, wait, "a call in flight", func() bool {
		var err error
		st, err = cluster.QueryStatus(tctx(t, wait), "Busy", statusOpts(tr, addr)...)
		if err != nil {
			t.Fatal(err)
		}
		return st.InFlight == 1
	})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st, err := cluster.QueryStatus(tctx(t, wait), "Busy", statusOpts(tr, addr)...)
	if err != nil {
		t.Fatal(err)
	}
	if st.InFlight != 0 || st.Counters.Served != 1 {
		t.Fatalf("after the call: in flight %d, served %d", st.InFlight, st.Counters.Served)
	}
}

// A leader whose real client failed reports nothing more than its ready
// error, to the observer as to every follower.
func TestStatusReadyError(t *testing.T) {
	tr, addr := memNet(t)
	w := newWorld()
	w.failInit = errors.New("upstream unreachable")
	l := newClient(t, "Broken", w, cluster.WithTransport(tr), cluster.WithAddr(addr))
	eventually(t, wait, "leader elected", l.IsLeader)
	_, err := cluster.QueryStatus(tctx(t, wait), "Broken", statusOpts(tr, addr)...)
	if !errors.Is(err, cluster.ErrNotReady) || !strings.Contains(err.Error(), "upstream unreachable") {
		t.Fatalf("got %v", err)
	}
}

// The observer registers through the follower's path: without the
// channel's Handshake it is refused; with it, it is admitted. The channel
// listing is refused where a channel authenticates.
func TestStatusAuthenticatesLikeAFollower(t *testing.T) {
	hs := &testHandshake{token: "s3cret", want: "s3cret"}
	_, tr, addr := startLeader(t, "Auth", cluster.WithHandshake(hs))
	_, err := cluster.QueryStatus(tctx(t, wait), "Auth", statusOpts(tr, addr)...)
	if !errors.Is(err, cluster.ErrHandshake) || !strings.Contains(err.Error(), "bad token") {
		t.Fatalf("without the handshake: %v", err)
	}
	_, err = cluster.QueryStatus(tctx(t, wait), "Auth", statusOpts(tr, addr,
		cluster.WithHandshake(&testHandshake{token: "guess", want: "s3cret"}))...)
	if !errors.Is(err, cluster.ErrHandshake) {
		t.Fatalf("wrong token: %v", err)
	}
	admits := hs.admits.Load()
	st, err := cluster.QueryStatus(tctx(t, wait), "Auth", statusOpts(tr, addr, cluster.WithHandshake(hs))...)
	if err != nil {
		t.Fatal(err)
	}
	if hs.admits.Load() != admits+1 || len(st.Followers) != 1 || !st.Followers[0].Observer {
		t.Fatalf("admits %d→%d, followers %+v", admits, hs.admits.Load(), st.Followers)
	}
	_, err = cluster.ListChannels(tctx(t, wait), statusOpts(tr, addr, cluster.WithHandshake(hs))...)
	if !errors.Is(err, cluster.ErrHandshake) || !strings.Contains(err.Error(), "register on a channel") {
		t.Fatalf("listing with authentication: %v", err)
	}
}

// The listing names every channel the process leads on the address; a
// channel it does not lead is ErrNoChannel for QueryStatus.
func TestStatusListChannelsAndNoChannel(t *testing.T) {
	// Listings are for clusters that authenticate nothing.
	_, tr, addr := startLeader(t, "B", cluster.WithInsecure())
	a := newClient(t, "A", newWorld(), cluster.WithTransport(tr), cluster.WithAddr(addr), cluster.WithInsecure())
	ready(t, a)
	ls, err := cluster.ListChannels(tctx(t, wait), statusOpts(tr, addr, cluster.WithInsecure())...)
	if err != nil {
		t.Fatal(err)
	}
	if ls.PID != os.Getpid() || ls.Addr != tr.Name()+" "+addr || !slices.Equal(ls.Channels, []string{"A", "B"}) {
		t.Fatalf("listing %+v", ls)
	}
	_, err = cluster.QueryStatus(tctx(t, wait), "Missing", statusOpts(tr, addr)...)
	if !errors.Is(err, cluster.ErrNoChannel) {
		t.Fatalf("missing channel: %v", err)
	}
}

// Against a Node leader (the recorded register reply of cluster-client
// 3.7.0, which has no extension) QueryStatus says what it saw and never
// sends the status request; a Node leader ignores a listing request, so
// ListChannels gives up after the response timeout.
func TestStatusAgainstNodeLeader(t *testing.T) {
	raw, err := os.ReadFile("testdata/node-capture.json")
	if err != nil {
		t.Fatal(err)
	}
	var cp capture
	if err := json.Unmarshal(raw, &cp); err != nil {
		t.Fatal(err)
	}
	nodeReply, err := hex.DecodeString(cp.LeaderToFollower[0].Hex)
	if err != nil {
		t.Fatal(err)
	}
	rh, err := protocol.ParseHeader(nodeReply, protocol.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	nodeApp := nodeReply[len(nodeReply)-int(rh.AppLen):]
	nodeConn := nodeReply[protocol.HeaderSize : len(nodeReply)-int(rh.AppLen)]

	tr, addr := memNet(t)
	seen := make(chan string, 16)
	fakeLeader(t, tr, addr, func(_ int, p *rawPeer) {
		for {
			pk, co, err := p.next()
			if err != nil {
				return
			}
			seen <- co.Type
			if co.Type == protocol.KindRegisterChannel {
				// Node answers with the request's id and its own bytes.
				p.conn.Write(protocol.AppendPacket(nil, &protocol.Packet{Response: true, ID: pk.ID,
					Timeout: pk.Timeout, Conn: nodeConn, App: nodeApp}))
			}
		}
	})
	// A Node leader speaks no handshake: the observers do not expect one.
	_, err = cluster.QueryStatus(tctx(t, wait), "DataClient",
		statusOpts(tr, addr, cluster.WithCodec(protocol.SerializeJSON), cluster.WithInsecure())...)
	if !errors.Is(err, cluster.ErrNoStatus) || !strings.Contains(err.Error(), "accepted the registration") {
		t.Fatalf("serialize-json observer: %v", err)
	}
	// A JSON observer cannot read Node's reply, but still learns who leads.
	_, err = cluster.QueryStatus(tctx(t, wait), "DataClient", statusOpts(tr, addr, cluster.WithInsecure())...)
	if !errors.Is(err, cluster.ErrNoStatus) || !errors.Is(err, cluster.ErrProtocol) || !strings.Contains(err.Error(), "Node") {
		t.Fatalf("json observer: %v", err)
	}
	_, err = cluster.ListChannels(tctx(t, wait), statusOpts(tr, addr, cluster.WithResponseTimeout(100*time.Millisecond), cluster.WithInsecure())...)
	if !errors.Is(err, cluster.ErrNoStatus) || !strings.Contains(err.Error(), "name a channel") {
		t.Fatalf("listing: %v", err)
	}
	var kinds []string
	for len(kinds) < 3 {
		select {
		case k := <-seen:
			kinds = append(kinds, k)
		case <-time.After(wait):
			t.Fatalf("the fake leader saw only %v", kinds)
		}
	}
	want := []string{protocol.KindRegisterChannel, protocol.KindRegisterChannel, "cluster_status"}
	if !slices.Equal(kinds, want) {
		t.Fatalf("the Node leader received %v, want %v (no status request after a Node register reply)", kinds, want)
	}
}

// Over real TCP with the library's defaults for everything but the port.
func TestStatusOverTCP(t *testing.T) {
	port := freePort(t)
	l := newClient(t, "Tcp", newWorld(), cluster.WithPort(port))
	ready(t, l)
	f := newClient(t, "Tcp", newWorld(), cluster.WithPort(port))
	ready(t, f)
	st, err := cluster.QueryStatus(tctx(t, wait), "Tcp", cluster.WithPort(port), cluster.WithLogger(testLogger()))
	if err != nil {
		t.Fatal(err)
	}
	if st.Transport != "tcp" || !strings.HasPrefix(st.Addr, "127.0.0.1:") || len(st.Followers) != 2 {
		t.Fatalf("status %+v", st)
	}
	// Nothing listening: the transport's error, naming the address.
	l2 := freePort(t)
	_, err = cluster.QueryStatus(tctx(t, wait), "Tcp", cluster.WithTransport(tcp.New(tcp.Config{})), cluster.WithPort(l2))
	if !errors.Is(err, transport.ErrNoListener) {
		t.Fatalf("nothing listening: %v", err)
	}
}

func TestStatusInvalidArguments(t *testing.T) {
	if _, err := cluster.QueryStatus(tctx(t, wait), ""); !errors.Is(err, cluster.ErrInvalidOption) {
		t.Fatalf("empty channel: %v", err)
	}
	if _, err := cluster.QueryStatus(tctx(t, wait), "X", cluster.WithSingleMode(true)); !errors.Is(err, cluster.ErrInvalidOption) {
		t.Fatalf("single mode: %v", err)
	}
	if _, err := cluster.ListChannels(tctx(t, wait), cluster.WithPort(0)); !errors.Is(err, cluster.ErrInvalidOption) {
		t.Fatalf("port 0: %v", err)
	}
}
