package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/auth"
	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/protocol"
	"github.com/go-clusterclient/clusterclient/transport"
)

// rawPeer speaks the protocol by hand, to play a misbehaving follower or
// leader. It authenticates as the Clients of the tests do (the default
// auth.Handshake), so only what it does on purpose is misbehaviour.
type rawPeer struct {
	t    testing.TB
	conn net.Conn
	r    *protocol.Reader
	mu   sync.Mutex
	tr   string // transport name and address, for the handshake
	addr string
}

func newRawPeer(t testing.TB, conn net.Conn, tr transport.Transport, addr string) *rawPeer {
	return &rawPeer{t: t, conn: conn, r: protocol.NewReader(conn, protocol.Limits{}), tr: tr.Name(), addr: addr}
}

func dialRaw(t testing.TB, tr transport.Transport, addr string) *rawPeer {
	t.Helper()
	conn, err := tr.Dial(tctx(t, wait), addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return newRawPeer(t, conn, tr, addr)
}

// rawAuth is the default authentication, which every Client of the tests
// uses unless told otherwise.
var rawAuth = sync.OnceValue(func() *auth.Handshake {
	h, err := auth.New(auth.Config{})
	if err != nil {
		panic(err)
	}
	return h
})

func (p *rawPeer) info(channel string) auth.PeerInfo {
	return auth.PeerInfo{Channel: channel, Transport: p.tr, Addr: p.addr, Conn: p.conn}
}

func (p *rawPeer) send(resp bool, id int64, timeout int32, co protocol.ConnObject, app []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, err := p.conn.Write(protocol.AppendPacket(nil, &protocol.Packet{
		Response: resp, ID: id, Timeout: timeout, Conn: protocol.AppendConn(nil, &co), App: app}))
	return err
}

// next reads one frame (bounded in time).
func (p *rawPeer) next() (protocol.Packet, protocol.ConnObject, error) {
	p.conn.SetReadDeadline(time.Now().Add(wait))
	pk, err := p.r.Next()
	if err != nil {
		return pk, protocol.ConnObject{}, err
	}
	co, err := protocol.ParseConn(pk.Conn)
	pk.App = append([]byte(nil), pk.App...)
	return pk, co, err
}

// expect reads frames until one of type typ, answering the leader's pushes
// unless told not to.
func (p *rawPeer) expect(typ string) (protocol.Packet, protocol.ConnObject) {
	p.t.Helper()
	for {
		pk, co, err := p.next()
		if err != nil {
			p.t.Fatalf("waiting for %s: %v", typ, err)
		}
		if co.Type == typ {
			return pk, co
		}
	}
}

// register joins channel as a follower, authenticating both ways.
func (p *rawPeer) register(channel string) { p.registerWith(channel, nil) }

// registerWith is register with more members in register_channel's conn
// object; it returns the leader's reply.
func (p *rawPeer) registerWith(channel string, more map[string]json.RawMessage) protocol.ConnObject {
	p.t.Helper()
	ctx := context.Background()
	hello, err := rawAuth().Hello(ctx, p.info(channel))
	if err != nil {
		p.t.Fatal(err)
	}
	maps.Copy(hello, more)
	if err := p.send(false, 1, 3000, protocol.ConnObject{Type: protocol.KindRegisterChannel, ChannelName: channel, Ext: hello}, nil); err != nil {
		p.t.Fatal(err)
	}
	_, co := p.expect(protocol.KindRegisterChannelRes)
	confirm, err := rawAuth().Confirm(ctx, p.info(channel), hello, co.Ext)
	if err != nil {
		p.t.Fatal(err)
	}
	if err := p.send(false, 2, 3000, protocol.ConnObject{Type: "register_confirm", Ext: confirm}, nil); err != nil {
		p.t.Fatal(err)
	}
	pk, _ := p.expect("register_confirm_res")
	if !strings.Contains(string(pk.App), `"success":true`) {
		p.t.Fatalf("register_confirm answered %s", pk.App)
	}
	return co
}

// fakeLeader holds addr with a hand-written leader: serve runs per
// connection.
func fakeLeader(t *testing.T, tr transport.Transport, addr string, serve func(n int, p *rawPeer)) *atomic.Int32 {
	t.Helper()
	ln, err := tr.Listen(tctx(t, wait), addr)
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int32
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			n := int(conns.Add(1))
			mu.Lock()
			open = append(open, conn)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				serve(n, newRawPeer(t, conn, tr, addr))
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return &conns
}

var okReply = []byte(`{"success":true}`)

// fakeAnswers are the optional parts of answerLoop.
type fakeAnswers struct {
	skipRegister func(i int) bool                                 // register_channel i (from 1) gets no answer
	mute         *atomic.Bool                                     // nothing is answered while it is set
	replyExt     func(ext map[string]json.RawMessage)             // adds members to a register reply
	other        func(pk protocol.Packet, co protocol.ConnObject) // every other frame
}

// answerLoop answers register (unless a.skipRegister says otherwise),
// heartbeats and echo invokes like a leader.
func answerLoop(p *rawPeer, a fakeAnswers) {
	regs := 0
	for {
		pk, co, err := p.next()
		if err != nil {
			return
		}
		if a.mute != nil && a.mute.Load() {
			continue
		}
		switch co.Type {
		case protocol.KindRegisterChannel:
			regs++
			if a.skipRegister != nil && a.skipRegister(regs) {
				continue
			}
			reply, err := rawAuth().Admit(context.Background(), p.info(co.ChannelName), co.Ext)
			if err != nil {
				p.t.Errorf("fake leader: %v", err)
				return
			}
			if a.replyExt != nil {
				a.replyExt(reply)
			}
			p.send(true, pk.ID, pk.Timeout, protocol.ConnObject{Type: protocol.KindRegisterChannelRes, Ext: reply}, okReply)
		case "register_confirm": // the follower's proof; a fake leader takes it as it is
			p.send(true, pk.ID, pk.Timeout, protocol.ConnObject{Type: "register_confirm_res"}, okReply)
		case protocol.KindHeartbeat:
			p.send(true, pk.ID, pk.Timeout, protocol.ConnObject{Type: protocol.KindHeartbeatRes}, nil)
		case protocol.KindInvoke:
			if co.Oneway {
				continue
			}
			args, _ := protocol.SplitArgs(pk.App, co.ArgLength)
			var res []byte = []byte("null")
			if len(args) > 0 {
				res = args[0]
			}
			p.send(true, pk.ID, pk.Timeout, protocol.ConnObject{Type: protocol.KindInvokeResult, Success: true}, res)
		default:
			if a.other != nil {
				a.other(pk, co)
			}
		}
	}
}

// Scenario 13 (CC-045): the leader ignores the first register_channel; the
// follower asks again on the same connection after the response timeout
// and the retry pause, and becomes ready.
func TestCC045_RegisterRetriedOnSameConnection(t *testing.T) {
	tr, addr := memNet(t)
	conns := fakeLeader(t, tr, addr, func(_ int, p *rawPeer) {
		answerLoop(p, fakeAnswers{skipRegister: func(i int) bool { return i == 1 }})
	})
	start := time.Now()
	f := newClient(t, "RegisterError", newWorld(), cluster.WithTransport(tr), cluster.WithAddr(addr),
		cluster.WithResponseTimeout(150*time.Millisecond), cluster.WithRegisterRetry(50*time.Millisecond))
	ready(t, f)
	if el := time.Since(start); el < 200*time.Millisecond {
		t.Fatalf("ready after %v: the first register cannot have been answered", el)
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections: the retry must use the same one", n)
	}
	if got := mustInvoke[string](t, f, "echo", "x"); got != "x" {
		t.Fatalf("echo %q", got)
	}
}

// CC-046: an answer with an id nobody asked for is ignored; the register
// is retried and succeeds.
func TestCC046_UnknownResponseIDIgnored(t *testing.T) {
	tr, addr := memNet(t)
	fakeLeader(t, tr, addr, func(_ int, p *rawPeer) {
		first := true
		answerLoop(p, fakeAnswers{skipRegister: func(int) bool {
			if first {
				first = false
				p.send(true, 0, 3000, protocol.ConnObject{Type: protocol.KindRegisterChannelRes}, nil)
				return true
			}
			return false
		}})
	})
	f := newClient(t, "RegisterError", newWorld(), cluster.WithTransport(tr), cluster.WithAddr(addr),
		cluster.WithResponseTimeout(150*time.Millisecond), cluster.WithRegisterRetry(50*time.Millisecond))
	ready(t, f)
	if got := mustInvoke[string](t, f, "echo", "y"); got != "y" {
		t.Fatalf("echo %q", got)
	}
}

// CC-047, RG-12, UI-08: a leader socket that dies during registration is
// never written to again: no register retry on it; the Client elects again
// with a new connection instead.
func TestRG12_NoRegisterRetryOnDeadSocket(t *testing.T) {
	tr, addr := memNet(t)
	var regsPerConn sync.Map
	conns := fakeLeader(t, tr, addr, func(n int, p *rawPeer) {
		var regs atomic.Int32
		regsPerConn.Store(n, &regs)
		if _, co, err := p.next(); err == nil && co.Type == protocol.KindRegisterChannel {
			regs.Add(1)
		}
		p.conn.Close() // destroy the socket on its first data
		for {
			if _, _, err := p.next(); err != nil {
				return
			}
			regs.Add(1)
		}
	})
	rec := newRecorder()
	f := newClient(t, "Dying", newWorld(), cluster.WithTransport(tr), cluster.WithAddr(addr),
		cluster.WithResponseTimeout(100*time.Millisecond), cluster.WithRegisterRetry(20*time.Millisecond), rec.opt())
	eventually(t, wait, "three connections", func() bool { return conns.Load() >= 3 })
	regsPerConn.Range(func(k, v any) bool {
		if n := v.(*atomic.Int32).Load(); n > 1 {
			t.Errorf("connection %v got %d registers", k, n)
		}
		return true
	})
	if err := f.Ready(tctx(t, 50*time.Millisecond)); err == nil {
		t.Fatal("ready against a leader that hangs up")
	}
	if n := rec.count(func(ev cluster.Event) bool { return ev.Kind == cluster.EventReady }); n != 0 {
		t.Fatalf("the dead socket settled readiness %d times", n)
	}
}

// Hung leader (UI-02, SRC-16): a leader that still holds its connection
// but answers nothing (stopped, deadlocked) is detected by heartbeats;
// calls fail; the follower recovers when the leader answers again.
func TestHungLeaderDetectedAndRecovered(t *testing.T) {
	tr, addr := memNet(t)
	var mute atomic.Bool
	fakeLeader(t, tr, addr, func(_ int, p *rawPeer) { answerLoop(p, fakeAnswers{mute: &mute}) })
	rec := newRecorder()
	f := newClient(t, "Hung", newWorld(), cluster.WithTransport(tr), cluster.WithAddr(addr),
		cluster.WithHeartbeatInterval(50*time.Millisecond), cluster.WithResponseTimeout(100*time.Millisecond), rec.opt())
	ready(t, f)
	mute.Store(true)
	ev := rec.wait(t, wait, "leader unresponsive", func(ev cluster.Event) bool {
		return ev.Kind == cluster.EventLeaderLost && errors.Is(ev.Err, cluster.ErrLeaderUnresponsive)
	})
	if !strings.Contains(ev.Err.Error(), "nothing received from the leader") {
		t.Fatalf("event %v", ev)
	}
	if _, err := f.Invoke(tctx(t, 300*time.Millisecond), "echo", 1); err == nil {
		t.Fatal("a call succeeded against a hung leader")
	}
	mute.Store(false)
	eventually(t, wait, "ready again", func() bool { return f.Stats().Ready })
	if got := mustInvoke[string](t, f, "echo", "back"); got != "back" {
		t.Fatalf("echo %q", got)
	}
}

// startLeader starts a real leader and returns it with its address.
func startLeader(t *testing.T, name string, opts ...cluster.Option) (*cluster.Client, transport.Transport, string) {
	t.Helper()
	tr, addr := memNet(t)
	l := newClient(t, name, newWorld(), append([]cluster.Option{cluster.WithTransport(tr), cluster.WithAddr(addr)}, opts...)...)
	ready(t, l)
	return l, tr, addr
}

// CC-048, UI-20: a follower that does not acknowledge a pushed value makes
// the leader report which follower and which key.
func TestCC048_PushWithoutAck(t *testing.T) {
	rec := newRecorder()
	l, tr, addr := startLeader(t, "Conn", cluster.WithResponseTimeout(100*time.Millisecond), rec.opt())
	p := dialRaw(t, tr, addr)
	p.register("Conn")
	raw := json.RawMessage(`{"key":"k"}`)
	p.send(false, 2, 3000, protocol.ConnObject{Type: protocol.KindSubscribe, Key: protocol.SubscriptionKey(raw), Reg: raw}, nil)
	p.expect(protocol.KindSubscribeResult) // the initial push; never acknowledged
	ev := rec.wait(t, wait, "ack timeout", isErr(cluster.ErrAckTimeout))
	if !strings.Contains(ev.Err.Error(), `$$inner$$__{"key":"k"}`) || !strings.Contains(ev.Err.Error(), "follower") {
		t.Fatalf("event %v", ev.Err)
	}
	_ = l
}

// CC-049, CC-050, RG-23, SRC-04, UI-09: bad peers cost the leader one
// connection each, never an error event for the cluster, and never its
// other followers: garbage, an HTTP request, a 2 GB length, bad JSON in a
// frame, a follower that vanishes mid-call. An unknown request type is
// reported and its connection kept.
func TestCC050_BadPeersDropOnlyThemselves(t *testing.T) {
	rec := newRecorder()
	w := newWorld()
	l, tr, addr := startLeaderWorld(t, "Robust", w, rec.opt())
	f := newClient(t, "Robust", newWorld(), cluster.WithTransport(tr), cluster.WithAddr(addr))
	ready(t, f)

	header := func(connLen, appLen uint32) []byte {
		b := protocol.AppendPacket(nil, &protocol.Packet{ID: 1, Timeout: 1000})
		b[16], b[17], b[18], b[19] = byte(connLen>>24), byte(connLen>>16), byte(connLen>>8), byte(connLen)
		b[20], b[21], b[22], b[23] = byte(appLen>>24), byte(appLen>>16), byte(appLen>>8), byte(appLen)
		return b
	}
	badJSON := append(header(13, 0), `{"foo":"bar"|`...)
	cases := map[string][]byte{
		"http":      []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		"2GB":       header(20, 0x7fffffff),
		"negative":  header(0xffffffff, 0),
		"bad json":  badJSON,
		"garbage":   []byte{0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21},
		"reg+bad":   nil, // registered first, then bad JSON
		"vanishing": nil, // registered, invokes, hangs up
	}
	for name, b := range cases {
		p := dialRaw(t, tr, addr)
		switch name {
		case "reg+bad":
			p.register("Robust")
			b = badJSON
		case "vanishing":
			p.register("Robust")
			args, _ := protocol.AppendArg(nil, protocol.JSON, 200)
			p.send(false, 5, 3000, protocol.ConnObject{Type: protocol.KindInvoke, Method: "sleep", ArgLength: 1}, args)
			p.conn.Close()
			continue
		}
		p.conn.Write(b)
		p.conn.SetReadDeadline(time.Now().Add(wait))
		if _, err := io.ReadAll(p.conn); err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "closed") {
			t.Errorf("%s: the leader did not hang up: %v", name, err)
		}
	}
	// Unknown request type: reported, connection kept.
	p := dialRaw(t, tr, addr)
	p.register("Robust")
	p.send(false, 7, 3000, protocol.ConnObject{Type: "foo"}, nil)
	ev := rec.wait(t, wait, "unknown type", isErr(cluster.ErrProtocol))
	if !strings.Contains(ev.Err.Error(), `unsupported request type "foo"`) {
		t.Fatalf("event %v", ev.Err)
	}
	p.send(false, 8, 3000, protocol.ConnObject{Type: protocol.KindHeartbeat}, nil)
	p.expect(protocol.KindHeartbeatRes)

	eventually(t, wait, "the vanished follower's call finishes", func() bool { return w.sleepEnd.Load() != 0 })
	if got := mustInvoke[string](t, f, "echo", "still"); got != "still" {
		t.Fatalf("echo %q", got)
	}
	if n := rec.count(func(ev cluster.Event) bool { return ev.Kind == cluster.EventError }); n != 1 {
		t.Fatalf("%d error events, want only the unknown type: %v", n, rec.all())
	}
	if l.Stats().Followers != 2 {
		t.Fatalf("followers %d, want the real follower and the one with the unknown type", l.Stats().Followers)
	}
}

// A Go follower speaking another codec is refused with an error naming
// both codecs, not fed undecodable bytes.
func TestCodecMismatchRefused(t *testing.T) {
	_, tr, addr := startLeader(t, "Codec")
	rec := newRecorder()
	f := newClient(t, "Codec", newWorld(), cluster.WithTransport(tr), cluster.WithAddr(addr),
		cluster.WithCodec(protocol.SerializeJSON), rec.opt())
	ev := rec.wait(t, wait, "codec mismatch", isErr(cluster.ErrProtocol))
	if msg := ev.Err.Error(); !strings.Contains(msg, `codec mismatch: leader speaks "json"`) || !strings.Contains(msg, `"serialize-json"`) {
		t.Fatalf("event %v", ev.Err)
	}
	if err := f.Ready(tctx(t, 100*time.Millisecond)); err == nil {
		t.Fatal("ready with the wrong codec")
	}
}

// testHandshake is a toy session layer: followers present a token, the
// leader checks it and answers with its own, the follower checks that and
// repeats its token, which the leader checks again.
type testHandshake struct {
	token, want string
	admits      atomic.Int32
	verifies    atomic.Int32
}

func (h *testHandshake) Hello(_ context.Context, info cluster.PeerInfo) (cluster.Ext, error) {
	return cluster.Ext{"token": json.RawMessage(fmt.Sprintf("%q", h.token+"@"+info.Channel))}, nil
}

func (h *testHandshake) Admit(_ context.Context, info cluster.PeerInfo, hello cluster.Ext) (cluster.Ext, error) {
	h.admits.Add(1)
	if string(hello["token"]) != fmt.Sprintf("%q", h.want+"@"+info.Channel) {
		return nil, fmt.Errorf("bad token %s", hello["token"])
	}
	return cluster.Ext{"leader": json.RawMessage(`"ok"`)}, nil
}

func (h *testHandshake) Confirm(_ context.Context, _ cluster.PeerInfo, hello, reply cluster.Ext) (cluster.Ext, error) {
	if string(reply["leader"]) != `"ok"` {
		return nil, errors.New("leader did not prove itself")
	}
	return cluster.Ext{"confirm": hello["token"]}, nil
}

func (h *testHandshake) Verify(_ context.Context, _ cluster.PeerInfo, hello, _, confirm cluster.Ext) error {
	h.verifies.Add(1)
	if string(confirm["confirm"]) != string(hello["token"]) {
		return errors.New("the confirmation does not match the hello")
	}
	return nil
}

// badConfirm confirms with another token than its hello's.
type badConfirm struct{ *testHandshake }

func (b badConfirm) Confirm(ctx context.Context, info cluster.PeerInfo, hello, reply cluster.Ext) (cluster.Ext, error) {
	if _, err := b.testHandshake.Confirm(ctx, info, hello, reply); err != nil {
		return nil, err
	}
	return cluster.Ext{"confirm": json.RawMessage(`"forged"`)}, nil
}

// The Handshake seam: extension fields travel in register_channel and its
// reply; a refusal reaches the follower as ErrHandshake and nothing else is
// served to it.
func TestHandshakeSeam(t *testing.T) {
	hs := &testHandshake{token: "s3cret", want: "s3cret"}
	l, tr, addr := startLeader(t, "Auth", cluster.WithHandshake(hs))
	good := newClient(t, "Auth", newWorld(), cluster.WithTransport(tr), cluster.WithAddr(addr), cluster.WithHandshake(hs))
	ready(t, good)
	// Ready means admitted: the leader verified the follower already.
	if n, v := l.Stats().Followers, hs.verifies.Load(); n != 1 || v != 1 {
		t.Fatalf("a ready follower: the leader counts %d followers after %d verifications", n, v)
	}
	if got := mustInvoke[string](t, good, "echo", "in"); got != "in" {
		t.Fatalf("echo %q", got)
	}
	// A follower whose last step fails gets the leader's reason.
	rec2 := newRecorder()
	newClient(t, "Auth", newWorld(), cluster.WithTransport(tr), cluster.WithAddr(addr),
		cluster.WithHandshake(badConfirm{hs}), rec2.opt())
	ev2 := rec2.wait(t, wait, "confirmation refused", isErr(cluster.ErrHandshake))
	if !strings.Contains(ev2.Err.Error(), "the confirmation does not match the hello") {
		t.Fatalf("event %v", ev2.Err)
	}
	rec := newRecorder()
	bad := newClient(t, "Auth", newWorld(), cluster.WithTransport(tr), cluster.WithAddr(addr),
		cluster.WithHandshake(&testHandshake{token: "guess", want: "s3cret"}), rec.opt())
	ev := rec.wait(t, wait, "handshake refused", isErr(cluster.ErrHandshake))
	if !strings.Contains(ev.Err.Error(), "bad token") {
		t.Fatalf("event %v", ev.Err)
	}
	if err := bad.Ready(tctx(t, 100*time.Millisecond)); err == nil {
		t.Fatal("refused follower is ready")
	}
	if hs.admits.Load() < 1 || l.Stats().Followers != 1 {
		t.Fatalf("admits %d followers %d", hs.admits.Load(), l.Stats().Followers)
	}
}

// A connection that does not register in time (silent, or a valid header
// and then nothing) is dropped by the leader; registered followers are not
// affected.
func TestRegisterDeadlineDropsSilentConnections(t *testing.T) {
	l, tr, addr := startLeader(t, "Deadline", cluster.WithRegisterDeadline(100*time.Millisecond))
	silent := dialRaw(t, tr, addr)
	partial := dialRaw(t, tr, addr)
	hdr := protocol.AppendPacket(nil, &protocol.Packet{ID: 1, Timeout: 1000, Conn: []byte(`{"type":"register_channel","channelName":"Deadline"}`)})
	partial.conn.Write(hdr[:30]) // the header and part of the conn object
	for name, p := range map[string]*rawPeer{"silent": silent, "partial": partial} {
		p.conn.SetReadDeadline(time.Now().Add(wait))
		start := time.Now()
		if _, err := io.ReadAll(p.conn); err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "closed") {
			t.Fatalf("%s: %v", name, err)
		}
		if el := time.Since(start); el >= wait {
			t.Fatalf("%s connection kept for %v", name, el)
		}
	}
	f := newClient(t, "Deadline", newWorld(), cluster.WithTransport(tr), cluster.WithAddr(addr))
	ready(t, f)
	if got := mustInvoke[string](t, f, "echo", "ok"); got != "ok" || l.Stats().Followers != 1 {
		t.Fatalf("echo %q, followers %d", got, l.Stats().Followers)
	}
}

// A follower that stops reading cannot make the leader buffer without
// bound: past the write-buffer limit the leader drops it (ErrOverloaded)
// and keeps serving the others.
func TestSlowFollowerDroppedAtWriteBufferLimit(t *testing.T) {
	rec := newRecorder()
	tr, addr := memNet(t)
	l, err := cluster.New("DataClient", nodeDataClient, append(fastOpts(), cluster.WithTransport(tr), cluster.WithAddr(addr),
		cluster.WithMaxWriteBuffer(64<<10), cluster.WithResponseTimeout(10*time.Second), rec.opt())...)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(context.Background())
	ready(t, l)
	p := dialRaw(t, tr, addr)
	p.register("DataClient")
	raw := json.RawMessage(`{"dataId":"big"}`)
	p.send(false, 2, 3000, protocol.ConnObject{Type: protocol.KindSubscribe, Key: protocol.SubscriptionKey(raw), Reg: raw}, nil)
	subscribersOn(t, l, raw, 1)
	blob := strings.Repeat("x", 8<<10)
	for i := 0; i < 400 && rec.count(isErr(cluster.ErrOverloaded)) == 0; i++ {
		if err := l.Publish(map[string]any{"dataId": "big", "i": i, "blob": blob}); err != nil {
			t.Fatal(err)
		}
	}
	ev := rec.wait(t, wait, "overloaded follower dropped", isErr(cluster.ErrOverloaded))
	if !strings.Contains(ev.Err.Error(), "does not read") {
		t.Fatalf("event %v", ev.Err)
	}
	eventually(t, wait, "follower gone", func() bool { return l.Stats().Followers == 0 })
	if n := rec.count(isErr(cluster.ErrOverloaded)); n != 1 {
		t.Fatalf("%d overload events, want 1", n)
	}
	if got := mustInvoke[[]byte](t, l, "echo", []byte("still serving")); string(got) != "still serving" {
		t.Fatalf("echo %q", got)
	}
}
