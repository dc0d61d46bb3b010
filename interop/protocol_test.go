package interop

import (
	"bytes"
	"encoding/json"
	"net"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/protocol"
)

// This test speaks the wire protocol by hand, with nothing but the protocol
// package and net, to a real Node cluster-client 3.7.0 leader: it registers,
// invokes, subscribes, publishes, heartbeats, and checks that Node ignores
// the extension members and rejects the unknown kinds the way spec.md says.

const wireChannel = "DataClient"

// peer is a hand-written follower: packets in, packets out.
type peer struct {
	t      *testing.T
	conn   net.Conn
	r      *protocol.Reader
	ids    protocol.IDs
	out    []byte
	pushes []push // subscribe_result requests received while waiting for something else
}

type push struct {
	id      int64
	timeout int32
	key     string
	app     []byte
}

type packet struct {
	protocol.Packet
	conn protocol.ConnObject
}

func dialPeer(t *testing.T, port int) *peer {
	t.Helper()
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), ioTimeout)
	if err != nil {
		t.Fatalf("dial node leader: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return &peer{t: t, conn: conn, r: protocol.NewReader(conn, protocol.Limits{})}
}

func (p *peer) send(response bool, id int64, timeout int32, c *protocol.ConnObject, app []byte) {
	p.t.Helper()
	p.out = p.out[:0]
	p.out = append(p.out, make([]byte, protocol.HeaderSize)...)
	p.out = protocol.AppendConn(p.out, c)
	connEnd := len(p.out)
	p.out = append(p.out, app...)
	typ := byte(protocol.TypeRequest)
	if response {
		typ = protocol.TypeResponse
	}
	protocol.Header{Version: protocol.Version, Type: typ, ID: id, Timeout: timeout,
		ConnLen: int32(connEnd - protocol.HeaderSize), AppLen: int32(len(p.out) - connEnd)}.Put(p.out)
	_ = p.conn.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := p.conn.Write(p.out); err != nil {
		p.t.Fatalf("write %s: %v", c.Type, err)
	}
}

// request sends a request and returns its id.
func (p *peer) request(c *protocol.ConnObject, app []byte) int64 {
	p.t.Helper()
	id := p.ids.Next()
	p.send(false, id, 3000, c, app)
	return id
}

// next reads one packet (copied out of the reader's buffer).
func (p *peer) next() packet {
	p.t.Helper()
	_ = p.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	pk, err := p.r.Next()
	if err != nil {
		p.t.Fatalf("read from node leader: %v", err)
	}
	c, err := protocol.ParseConn(pk.Conn)
	if err != nil {
		p.t.Fatalf("node sent a conn object we cannot parse: %v", err)
	}
	pk.Conn = bytes.Clone(pk.Conn)
	pk.App = bytes.Clone(pk.App)
	return packet{pk, c}
}

// response waits for the response to request id; pushes that come first
// are acknowledged and kept.
func (p *peer) response(id int64) packet {
	p.t.Helper()
	for {
		pk := p.next()
		if pk.Response && pk.ID == id {
			return pk
		}
		if !pk.Response && pk.conn.Type == protocol.KindSubscribeResult {
			p.ack(pk)
			continue
		}
		p.t.Fatalf("waiting for the response to request %d, got %+v %s", id, pk.conn, pk.Conn)
	}
}

func (p *peer) ack(pk packet) {
	p.t.Helper()
	p.pushes = append(p.pushes, push{id: pk.ID, timeout: pk.Timeout, key: pk.conn.Key, app: pk.App})
	p.send(true, pk.ID, pk.Timeout, &protocol.ConnObject{Type: protocol.KindSubscribeResultRes}, nil)
}

// nextPush returns the oldest push not yet taken, reading if needed.
func (p *peer) nextPush() push {
	p.t.Helper()
	for len(p.pushes) == 0 {
		pk := p.next()
		if pk.Response || pk.conn.Type != protocol.KindSubscribeResult {
			p.t.Fatalf("waiting for a push, got %+v %s", pk.conn, pk.Conn)
		}
		p.ack(pk)
	}
	ps := p.pushes[0]
	p.pushes = p.pushes[1:]
	return ps
}

// invoke calls method with args (serialize-json) and returns the
// invoke_result; oneway calls return nothing.
func (p *peer) invoke(method string, oneway bool, args ...any) (packet, bool) {
	p.t.Helper()
	var app []byte
	for _, a := range args {
		var err error
		if app, err = protocol.AppendArg(app, protocol.SerializeJSON, a); err != nil {
			p.t.Fatalf("encode argument of %s: %v", method, err)
		}
	}
	id := p.request(&protocol.ConnObject{Type: protocol.KindInvoke, Method: method, ArgLength: len(args), Oneway: oneway}, app)
	if oneway {
		return packet{}, false
	}
	res := p.response(id)
	if res.conn.Type != protocol.KindInvokeResult {
		p.t.Fatalf("invoke %s: answered by %s", method, res.conn.Type)
	}
	return res, res.conn.Success
}

func decode(t *testing.T, data []byte, v any) {
	t.Helper()
	if err := protocol.SerializeJSON.Decode(data, v); err != nil {
		t.Fatalf("decode %q: %v", data, err)
	}
}

type echoValue struct {
	Text   string         `json:"text"`
	Int    int            `json:"int"`
	Neg    int64          `json:"neg"`
	Float  float64        `json:"float"`
	Yes    bool           `json:"yes"`
	Bytes  []byte         `json:"bytes"`
	When   time.Time      `json:"when"`
	List   []any          `json:"list"`
	Nested map[string]any `json:"nested"`
	Absent *string        `json:"absent"`
}

func TestNodeLeaderByHand(t *testing.T) {
	port := freePort(t)
	leader := startNode(t, "node leader", port, "leader", wireChannel, nodeOptions{})
	p := dialPeer(t, port)

	t.Run("register", func(t *testing.T) {
		p.t = t
		// An extension member, which Node must ignore.
		id := p.request(&protocol.ConnObject{Type: protocol.KindRegisterChannel, ChannelName: wireChannel,
			Ext: map[string]json.RawMessage{"goClusterId": json.RawMessage(`"interop-test"`)}}, nil)
		res := p.response(id)
		if res.conn.Type != protocol.KindRegisterChannelRes {
			t.Fatalf("register answered by %s", res.conn.Type)
		}
		var reply struct {
			Success bool                  `json:"success"`
			Error   *protocol.RemoteError `json:"error"`
		}
		decode(t, res.App, &reply)
		if !reply.Success || reply.Error != nil {
			t.Fatalf("register failed: %+v", reply)
		}
	})

	t.Run("invoke echo", func(t *testing.T) {
		p.t = t
		in := echoValue{
			Text:   "héllo wörld <&> | ^ % + \n\"quoted\" 😀",
			Int:    42,
			Neg:    -1 << 40,
			Float:  1.5e-7,
			Yes:    true,
			Bytes:  []byte{0, 1, 127, 128, 255},
			When:   time.UnixMilli(1700000000123).UTC(),
			List:   []any{"a", int64(1), 2.5, false, nil},
			Nested: map[string]any{"k": "v", "n": int64(-3)},
		}
		res, ok := p.invoke("echo", false, in)
		if !ok {
			t.Fatalf("echo failed: %q", res.App)
		}
		var out echoValue
		decode(t, res.App, &out)
		if !out.When.Equal(in.When) {
			t.Errorf("time: sent %v, got %v", in.When, out.When)
		}
		out.When = in.When
		if !reflect.DeepEqual(in, out) {
			t.Errorf("echo changed the value:\nsent %+v\ngot  %+v", in, out)
		}
	})

	t.Run("invoke add", func(t *testing.T) {
		p.t = t
		res, ok := p.invoke("add", false, 2, 40)
		if !ok {
			t.Fatalf("add failed: %q", res.App)
		}
		var sum int
		decode(t, res.App, &sum)
		if sum != 42 {
			t.Errorf("add(2, 40) = %d", sum)
		}
	})

	t.Run("invoke fail", func(t *testing.T) {
		p.t = t
		res, ok := p.invoke("fail", false, "Error", "boom", "E_FAIL")
		if ok {
			t.Fatalf("fail succeeded: %q", res.App)
		}
		// Node sends the failure as a plain object {stack, name, message, code}.
		re := new(protocol.RemoteError)
		decode(t, res.App, re)
		if re.Name != "Error" || re.Message != "boom" || re.Code != "E_FAIL" || !strings.Contains(re.Stack, "Error: boom") {
			t.Errorf("remote error %+v", re)
		}
	})

	reg, err := protocol.NormalizeJSON(nil, []byte(`{"dataId":"demo"}`))
	if err != nil {
		t.Fatal(err)
	}
	key := protocol.SubscriptionKey(reg)

	t.Run("subscribe", func(t *testing.T) {
		p.t = t
		p.request(&protocol.ConnObject{Type: protocol.KindSubscribe, Key: key, Reg: reg}, nil)
		ps := p.nextPush()
		if ps.key != key {
			t.Fatalf("push key %q, want %q (Node computes it from reg)", ps.key, key)
		}
		var v dataValue
		decode(t, ps.app, &v)
		if v.DataID != "demo" || v.N != 0 || v.Last != nil {
			t.Errorf("first push %+v", v)
		}
	})

	t.Run("publish", func(t *testing.T) {
		p.t = t
		p.invoke("publish", true, map[string]any{"dataId": "demo", "value": "x"})
		ps := p.nextPush()
		var v dataValue
		decode(t, ps.app, &v)
		if ps.key != key || v.DataID != "demo" || v.N != 1 || v.Last == nil || *v.Last != "x" {
			t.Errorf("push after publish: key %q, value %+v", ps.key, v)
		}
	})

	t.Run("heartbeat", func(t *testing.T) {
		p.t = t
		id := p.request(&protocol.ConnObject{Type: protocol.KindHeartbeat}, nil)
		if res := p.response(id); res.conn.Type != protocol.KindHeartbeatRes || res.App != nil {
			t.Errorf("heartbeat answered by %s with app %q", res.conn.Type, res.App)
		}
	})

	t.Run("unknown kind", func(t *testing.T) {
		p.t = t
		// spec.md: a Node leader reports an unknown kind as an error event
		// and does not answer; the connection stays usable.
		p.request(&protocol.ConnObject{Type: "goHello", Ext: map[string]json.RawMessage{"version": json.RawMessage(`2`)}}, nil)
		leader.log.waitFor(t, "ClusterRequestTypeError", 0, ioTimeout, func(ev event) bool {
			return nodeError("ClusterRequestTypeError")(ev) && ev.str("message") == "unsupport data type: goHello"
		})
		id := p.request(&protocol.ConnObject{Type: protocol.KindHeartbeat}, nil)
		if res := p.response(id); res.conn.Type != protocol.KindHeartbeatRes {
			t.Errorf("after the unknown kind, heartbeat answered by %s", res.conn.Type)
		}
	})

	t.Run("unSubscribe", func(t *testing.T) {
		p.t = t
		p.request(&protocol.ConnObject{Type: protocol.KindUnsubscribe, Key: key, Reg: reg}, nil)
		p.invoke("publish", true, map[string]any{"dataId": "demo", "value": "y"})
		leader.log.waitFor(t, "publish y", 0, ioTimeout, func(ev event) bool {
			var d struct {
				Op  string `json:"op"`
				Reg pubReg `json:"reg"`
			}
			return ev.Name == "rc" && ev.decode(&d) == nil && d.Op == "publish" && d.Reg.Value == "y"
		})
		// The leader handles one connection's packets in order: a push
		// for "y" would come before this heartbeat's answer.
		id := p.request(&protocol.ConnObject{Type: protocol.KindHeartbeat}, nil)
		p.response(id)
		if len(p.pushes) != 0 {
			t.Errorf("pushed after unSubscribe: %d pushes, first %q", len(p.pushes), p.pushes[0].app)
		}
	})

	// Nothing went wrong on the Node side except the errors we provoked
	// (the leader also reports a failed invoke as an error event).
	for _, ev := range leader.log.all(0, named("error")) {
		if ev.str("message") != "unsupport data type: goHello" && ev.str("message") != "boom" {
			t.Errorf("node leader reported: %s", ev)
		}
	}
}
