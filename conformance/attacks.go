package conformance

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/go-clusterclient/clusterclient/auth"
	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/protocol"
)

// The attack cases of the robustness subtest: what a local process that
// is not a member of the cluster can do to it (issue 7's list). Garbage,
// HTTP, huge and negative lengths and silent connections are the stranger
// cases above; these add a stranger that speaks the protocol without
// authenticating, one that holds thousands of connections, and one that
// takes the address before the real leader.
var attackCases = []testCase{
	{name: "unauthenticated", run: testUnauthenticated},
	{name: "2000-connections", run: testManyConnections},
	{name: "squatter", run: testSquatter},
	{name: "does-not-read", run: testStrangerDoesNotRead},
}

// A stranger sends heartbeats, which the leader answers before
// registration, and never reads the answers: the leader drops it once a
// few KiB wait for it (cluster.WithUnprovenBuffer), long before the
// register deadline, and its memory does not grow with what the stranger
// sends. Its follower never notices.
func testStrangerDoesNotRead(e *env) {
	addr := e.addr()
	l, f := e.pair2(addr, "Unread", cluster.WithRegisterDeadline(time.Hour))
	before := f.whoami()
	r := e.dialRaw(addr)
	beats := bytes.Repeat(protocol.AppendPacket(nil, &protocol.Packet{ID: 1, Timeout: 3000,
		Conn: protocol.AppendConn(nil, &protocol.ConnObject{Type: protocol.KindHeartbeat})}), 1000)
	const most = 24 << 20
	e.stepf("the stranger writes up to %d MiB of heartbeats and reads nothing", most>>20)
	r.c.SetWriteDeadline(time.Now().Add(opTimeout))
	sent := 0
	var err error
	for sent < most && err == nil {
		var n int
		n, err = r.c.Write(beats)
		sent += n
	}
	switch {
	case err == nil:
		e.fatalf("the leader read %d MiB of heartbeats from a stranger that reads nothing, and kept it", sent>>20)
	case errors.Is(err, os.ErrDeadlineExceeded):
		// It stopped reading: it should have hung up too.
		e.stepf("the leader stopped reading after %d KiB; waiting for it to hang up", sent>>10)
	default:
		e.stepf("the leader hung up after %d KiB: %v", sent>>10, err)
	}
	r.c.SetReadDeadline(time.Now().Add(opTimeout))
	if _, err := io.Copy(io.Discard, r.c); errors.Is(err, os.ErrDeadlineExceeded) {
		e.fatalf("the leader kept the connection of a stranger that does not read (%d KiB sent)", sent>>10)
	}
	e.t.Logf("the leader dropped a stranger that does not read after it sent %d KiB of heartbeats (%v)", sent>>10, err)
	if got := f.whoami(); got != before {
		e.errorf("after the stranger the follower reaches %q, before it reached %q", got, before)
	}
	e.checkLeaderServes(l, f)
}

// rawConn is a stranger's connection that speaks the wire format by hand.
type rawConn struct {
	e *env
	c net.Conn
	r *protocol.Reader
}

func (e *env) dialRaw(addr string) *rawConn {
	e.t.Helper()
	c, err := e.h.NewTransport(e.t).Dial(e.Timeout(opTimeout), addr)
	if err != nil {
		e.fatalf("stranger: Dial(%q): %v", addr, err)
	}
	e.OnTeardown(func() { c.Close() })
	return &rawConn{e: e, c: c, r: protocol.NewReader(c, protocol.Limits{})}
}

func (r *rawConn) send(id int64, co protocol.ConnObject, app []byte) {
	r.c.SetWriteDeadline(time.Now().Add(opTimeout))
	// The leader may have hung up already: a failed write is no failure.
	r.c.Write(protocol.AppendPacket(nil, &protocol.Packet{ID: id, Timeout: 3000, Conn: protocol.AppendConn(nil, &co), App: app}))
}

// drain reads until the leader hangs up and returns the kinds of the
// frames it sent; it fails the case if the leader keeps the connection.
func (r *rawConn) drain(what string) []string {
	r.e.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(opTimeout))
	var kinds []string
	for {
		pk, err := r.r.Next()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				r.e.fatalf("the leader kept the connection of a stranger that %s (it sent %v)", what, kinds)
			}
			return kinds
		}
		co, err := protocol.ParseConn(pk.Conn)
		if err != nil {
			r.e.fatalf("stranger (%s): the leader sent a frame that does not parse: %v", what, err)
		}
		kinds = append(kinds, co.Type)
		if co.Type == protocol.KindRegisterChannelRes {
			var rep struct {
				Success bool                  `json:"success"`
				Error   *protocol.RemoteError `json:"error"`
			}
			if err := json.Unmarshal(pk.App, &rep); err != nil || rep.Success || rep.Error == nil || rep.Error.Code != cluster.CodeHandshake {
				r.e.errorf("stranger (%s): register answered with %s, want a refusal with code %s", what, pk.App, cluster.CodeHandshake)
			}
		}
	}
}

func invokeArgs(e *env, args ...any) []byte {
	var b []byte
	for _, a := range args {
		var err error
		if b, err = protocol.AppendArg(b, protocol.JSON, a); err != nil {
			e.fatalf("encode %v: %v", a, err)
		}
	}
	return b
}

// A process that is not authenticated tries to register, invoke, publish
// and subscribe. Everything is refused; nothing reaches the real client;
// nothing is cached or pushed to it; the members never notice.
func testUnauthenticated(e *env) {
	addr := e.addr()
	const channel, key = "Guarded", "guarded"
	l, f := e.pair2(addr, channel)
	f.subscribe(key)
	f.publish(key, "genuine")
	f.waitValue(key, "genuine")
	stolen, _ := json.Marshal(Reg{Key: "stolen"})
	injected, _ := json.Marshal(Reg{Key: key, Value: "injected"})
	attempts := []struct {
		what     string
		register bool // register first (without authentication)
		co       protocol.ConnObject
		app      []byte
	}{
		{"registers without authenticating", true, protocol.ConnObject{}, nil},
		{"registers, then invokes", true, protocol.ConnObject{Type: protocol.KindInvoke, Method: MethodRecord, ArgLength: 1}, invokeArgs(e, "stolen call")},
		{"invokes without registering", false, protocol.ConnObject{Type: protocol.KindInvoke, Method: MethodRecord, ArgLength: 1}, invokeArgs(e, "stolen call")},
		{"publishes without registering", false, protocol.ConnObject{Type: protocol.KindInvoke, Method: "publish", ArgLength: 1}, invokeArgs(e, json.RawMessage(injected))},
		{"registers, then publishes", true, protocol.ConnObject{Type: protocol.KindInvoke, Method: "publish", ArgLength: 1}, invokeArgs(e, json.RawMessage(injected))},
		{"subscribes without registering", false, protocol.ConnObject{Type: protocol.KindSubscribe, Key: protocol.SubscriptionKey(stolen), Reg: stolen}, nil},
		{"registers, then subscribes to the cached key", true, protocol.ConnObject{Type: protocol.KindSubscribe,
			Key: protocol.SubscriptionKey(json.RawMessage(`{"key":"guarded"}`)), Reg: json.RawMessage(`{"key":"guarded"}`)}, nil},
	}
	for _, a := range attempts {
		e.stepf("a stranger %s", a.what)
		r := e.dialRaw(addr)
		if a.register {
			r.send(1, protocol.ConnObject{Type: protocol.KindRegisterChannel, ChannelName: channel}, nil)
		}
		if a.co.Type != "" {
			r.send(2, a.co, a.app)
		}
		for _, k := range r.drain(a.what) {
			if k != protocol.KindRegisterChannelRes {
				e.errorf("a stranger that %s received a %s", a.what, k)
			}
		}
	}
	rc := e.upstream().latest(channel)
	st := rc.state()
	if len(st.records) != 0 {
		e.errorf("the real client ran calls of strangers: %q", st.records)
	}
	if st.publishedValue(key, "injected") {
		e.errorf("the real client received a stranger's publication")
	}
	if n := st.subCall["stolen"]; n != 0 {
		e.errorf("the real client subscribed a stranger's key %d times", n)
	}
	for _, s := range f.sink.all(key) {
		if s.Has("injected") {
			e.errorf("the member received a stranger's value: %+v", s)
		}
	}
	if n := l.c.Stats().Followers; n != 1 {
		e.errorf("the leader counts %d followers, want 1", n)
	}
	e.checkLeaderServes(l, f)
}

// One stranger opens 2,000 connections and holds them. The leader keeps
// at most its connection bound open (so its memory stays bounded), its
// follower is still served, and a new member still gets in.
func testManyConnections(e *env) {
	const strangers, bound = 2000, 64
	addr := e.addr()
	l, f := e.pair2(addr, "Crowded", cluster.WithMaxConns(bound))
	tr := e.h.NewTransport(e.t)
	held := make([]net.Conn, 0, strangers)
	e.OnTeardown(func() {
		for _, c := range held {
			c.Close()
		}
	})
	e.stepf("a stranger opens %d connections to %s", strangers, addr)
	refused := 0
	most := 0
	for range strangers {
		c, err := tr.Dial(e.Timeout(opTimeout), addr)
		if err != nil {
			refused++ // the medium may refuse some itself (a full backlog): that is fine
			continue
		}
		held = append(held, c)
		if n := l.c.Stats().Conns; n > most {
			most = n
		}
	}
	e.t.Logf("%d connections dialed, %d refused by the medium; the leader had at most %d open while they came", len(held), refused, most)
	if len(held) < strangers/2 {
		e.fatalf("only %d of %d connections could be dialed", len(held), strangers)
	}
	// A few over the bound at a time: an evicted connection is counted
	// until its reader has noticed.
	e.eventually(fmt.Sprintf("the leader to hold at most %d connections", bound), func() bool { return l.c.Stats().Conns <= bound })
	if most > 2*bound {
		e.errorf("the leader had %d connections open at once, bound %d", most, bound)
	}
	e.checkLeaderServes(l, f)
	g := e.process().join("Crowded", addr, cluster.WithMaxConns(bound))
	g.mustFollow()
	if got, want := g.whoami(), l.whoami(); got != want {
		e.errorf("the new member reaches %q, the leader owns %q", got, want)
	}
	if n := l.c.Stats().Followers; n != 2 {
		e.errorf("the leader counts %d followers, want 2", n)
	}
}

// A stranger binds the address before the real cluster: followers refuse
// it with a clear error, send it nothing beyond their hello, and keep
// trying; once it is gone the real cluster forms.
func testSquatter(e *env) {
	if e.caps.peerCred {
		e.t.Skip("on this medium the kernel vouches for the peer's uid, and a squatter of the same user is trusted by design; " +
			"another user (uid 65534) is refused in packages auth and cluster")
	}
	addr := e.addr()
	key := make([]byte, 32)
	rand.Read(key)
	squatter := e.process().join("Data", addr, cluster.WithAuth(auth.Config{Key: key}))
	squatter.mustLead()
	m := e.process().join("Data", addr)
	ev := m.waitEvent("the squatter refused", isErrorEvent(cluster.ErrHandshake))
	if !strings.Contains(ev.Err.Error(), "leader's proof does not match") {
		e.errorf("the refusal does not say why: %v", ev.Err)
	}
	e.eventually("the member to keep trying", func() bool { return m.rec.count(isErrorEvent(cluster.ErrHandshake)) >= 3 })
	if _, err := m.c.Invoke(e.Timeout(200*time.Millisecond), MethodRecord, "for the squatter"); err == nil {
		e.errorf("a call went through the squatter")
	}
	if st := e.upstream().latest("Data").state(); len(st.records) != 0 {
		e.errorf("the squatter's real client received %q", st.records)
	}
	if n := squatter.c.Stats().Followers; n != 0 {
		e.errorf("the squatter counts %d followers", n)
	}
	squatter.mustClose()
	m.mustLead()
	n := e.process().join("Data", addr)
	n.mustFollow()
	if got, want := n.whoami(), m.whoami(); got != want {
		e.errorf("the follower reaches %q, the leader owns %q", got, want)
	}
}
