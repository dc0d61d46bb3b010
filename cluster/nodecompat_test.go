package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/election"
	"github.com/go-clusterclient/clusterclient/protocol"
	"github.com/go-clusterclient/clusterclient/transport/mem"
)

// These tests play the Node side by hand, byte for byte as cluster-client
// 3.7.0 writes it (interop/ runs the real one), so that what
// WithNodeCompat promises is checked on a clean clone without Node.

const ncWait = 10 * time.Second

// ncChannel is a channel name as Node allows it: any text.
const ncChannel = "数据Client ✓"

// ncHandshake counts its calls and refuses everything: WithNodeCompat
// must have removed it.
type ncHandshake struct{ calls atomic.Int32 }

var errNCHandshake = errors.New("this handshake must not run")

func (h *ncHandshake) Hello(context.Context, cluster.PeerInfo) (cluster.Ext, error) {
	h.calls.Add(1)
	return nil, errNCHandshake
}

func (h *ncHandshake) Admit(context.Context, cluster.PeerInfo, cluster.Ext) (cluster.Ext, error) {
	h.calls.Add(1)
	return nil, errNCHandshake
}

func (h *ncHandshake) Confirm(context.Context, cluster.PeerInfo, cluster.Ext, cluster.Ext) (cluster.Ext, error) {
	h.calls.Add(1)
	return nil, errNCHandshake
}

func (h *ncHandshake) Verify(context.Context, cluster.PeerInfo, cluster.Ext, cluster.Ext, cluster.Ext) error {
	h.calls.Add(1)
	return errNCHandshake
}

// ncConn is one end of a connection driven by hand.
type ncConn struct {
	t    *testing.T
	conn net.Conn
	r    *protocol.Reader
}

func newNCConn(t *testing.T, conn net.Conn) *ncConn {
	t.Cleanup(func() { conn.Close() })
	return &ncConn{t: t, conn: conn, r: protocol.NewReader(conn, protocol.Limits{})}
}

func (c *ncConn) send(response bool, id int64, co protocol.ConnObject, app []byte) {
	c.t.Helper()
	_ = c.conn.SetWriteDeadline(time.Now().Add(ncWait))
	_, err := c.conn.Write(protocol.AppendPacket(nil, &protocol.Packet{
		Response: response, ID: id, Timeout: 3000, Conn: protocol.AppendConn(nil, &co), App: app}))
	if err != nil {
		c.t.Fatalf("write %s: %v", co.Type, err)
	}
}

// next reads one packet, copied out of the reader's buffer.
func (c *ncConn) next() (protocol.Packet, protocol.ConnObject, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(ncWait))
	pk, err := c.r.Next()
	if err != nil {
		return pk, protocol.ConnObject{}, err
	}
	pk.Conn, pk.App = bytes.Clone(pk.Conn), bytes.Clone(pk.App)
	co, err := protocol.ParseConn(pk.Conn)
	return pk, co, err
}

// expect reads packets until one of kind, skipping heartbeats.
func (c *ncConn) expect(kind string) (protocol.Packet, protocol.ConnObject) {
	c.t.Helper()
	for {
		pk, co, err := c.next()
		if err != nil {
			c.t.Fatalf("waiting for %s: %v", kind, err)
		}
		if co.Type == kind {
			return pk, co
		}
		if co.Type != protocol.KindHeartbeat {
			c.t.Fatalf("waiting for %s, got %s", kind, pk.Conn)
		}
	}
}

func sjEncode(t *testing.T, v any) []byte {
	t.Helper()
	b, err := protocol.SerializeJSON.Append(nil, v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sjDecode(t *testing.T, data []byte, v any) {
	t.Helper()
	if err := protocol.SerializeJSON.Decode(data, v); err != nil {
		t.Fatalf("not serialize-json: %q: %v", data, err)
	}
}

// ncReg keeps its members in the order a Node program would write them.
type ncReg struct {
	Zone   string `json:"zone"`
	DataID string `json:"dataId"`
}

type ncValue struct {
	DataID string    `json:"dataId"`
	When   time.Time `json:"when"`
	Buf    []byte    `json:"buf"`
}

var ncDate = time.UnixMilli(1700000000123).UTC()

func ncLogger() cluster.Option { return cluster.WithLogger(slog.New(slog.DiscardHandler)) }

// TestNodeCompatFollower: a Go follower with WithNodeCompat, and a Node
// leader played by hand.
func TestNodeCompatFollower(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	hs := &ncHandshake{}
	c, err := cluster.New(ncChannel, func(context.Context, cluster.Emit) (*cluster.Service, error) {
		return nil, errors.New("a follower never builds the real client")
	}, cluster.WithHandshake(hs), cluster.WithNodeCompat(), cluster.WithPort(port),
		cluster.WithMode(cluster.ForceFollower), cluster.WithRegistry(election.NewRegistry()), ncLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())

	// The election may probe the port with connections that send
	// nothing; the follower's session is the one that registers.
	var leader *ncConn
	var pk protocol.Packet
	var co protocol.ConnObject
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(ncWait))
	for leader == nil {
		conn, err := ln.Accept()
		if err != nil {
			t.Fatalf("no follower connection: %v", err)
		}
		nc := newNCConn(t, conn)
		if pk, co, err = nc.next(); err == nil {
			leader = nc
		}
	}

	t.Run("register as Node does, without authentication", func(t *testing.T) {
		if co.Type != protocol.KindRegisterChannel || co.ChannelName != ncChannel {
			t.Fatalf("first packet %s", pk.Conn)
		}
		// JSON.stringify writes the name's UTF-8 as is.
		if !bytes.Contains(pk.Conn, []byte(`"channelName":"`+ncChannel+`"`)) {
			t.Errorf("channel name not written as Node writes it: %s", pk.Conn)
		}
		for k := range co.Ext {
			if k != "clusterclient" {
				t.Errorf("register_channel carries member %q: %s", k, pk.Conn)
			}
		}
		leader.send(true, pk.ID, protocol.ConnObject{Type: protocol.KindRegisterChannelRes}, sjEncode(t, map[string]bool{"success": true}))
		ctx, cancel := context.WithTimeout(context.Background(), ncWait)
		defer cancel()
		if err := c.Ready(ctx); err != nil {
			t.Fatalf("ready: %v", err)
		}
		if n := hs.calls.Load(); n != 0 {
			t.Errorf("the handshake given before WithNodeCompat ran %d times", n)
		}
	})

	t.Run("subscription keys are Node's", func(t *testing.T) {
		got := make(chan ncValue, 1)
		if _, err := c.Subscribe(ncReg{Zone: "z<&>", DataID: "x"}, func(v cluster.Value) {
			var d ncValue
			if err := v.Decode(&d); err != nil {
				t.Errorf("decode pushed value: %v", err)
			}
			got <- d
		}); err != nil {
			t.Fatal(err)
		}
		_, sub := leader.expect(protocol.KindSubscribe)
		const key = `$$inner$$__{"zone":"z<&>","dataId":"x"}` // Node: '$$inner$$__' + JSON.stringify(reg)
		if sub.Key != key || string(sub.Reg) != `{"zone":"z<&>","dataId":"x"}` {
			t.Errorf("subscribe key %q reg %s, want key %q", sub.Key, sub.Reg, key)
		}
		// Node's leader pushes under the key it computes itself.
		leader.send(false, 7, protocol.ConnObject{Type: protocol.KindSubscribeResult, Key: key},
			sjEncode(t, ncValue{DataID: "x", When: ncDate, Buf: []byte{0, 255}}))
		if ack, _ := leader.expect(protocol.KindSubscribeResultRes); ack.ID != 7 || !ack.Response {
			t.Errorf("ack: id %d, response %v", ack.ID, ack.Response)
		}
		select {
		case d := <-got:
			if !d.When.Equal(ncDate) || !bytes.Equal(d.Buf, []byte{0, 255}) || d.DataID != "x" {
				t.Errorf("delivered %+v", d)
			}
		case <-time.After(ncWait):
			t.Fatal("the pushed value was not delivered")
		}
		// A map has no member order: its key has sorted members, which
		// matches a Node reg only if Node wrote them sorted too.
		if _, err := c.Subscribe(map[string]string{"zone": "z", "dataId": "y"}, func(cluster.Value) {}); err != nil {
			t.Fatal(err)
		}
		if _, sub := leader.expect(protocol.KindSubscribe); sub.Key != `$$inner$$__{"dataId":"y","zone":"z"}` {
			t.Errorf("map reg: key %q", sub.Key)
		}
	})

	t.Run("publish and invoke in serialize-json", func(t *testing.T) {
		if err := c.Publish(map[string]any{"dataId": "x", "when": ncDate}); err != nil {
			t.Fatal(err)
		}
		pk, inv := leader.expect(protocol.KindInvoke)
		if inv.Method != "publish" || inv.ArgLength != 1 || !inv.Oneway {
			t.Fatalf("publish sent as %s", pk.Conn)
		}
		args, err := protocol.SplitArgs(pk.App, inv.ArgLength)
		if err != nil {
			t.Fatal(err)
		}
		var pub struct {
			DataID string    `json:"dataId"`
			When   time.Time `json:"when"`
		}
		sjDecode(t, args[0], &pub)
		if pub.DataID != "x" || !pub.When.Equal(ncDate) {
			t.Errorf("published %+v", pub)
		}

		type result struct {
			buf []byte
			err error
		}
		done := make(chan result, 1)
		call := func(method string) {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), ncWait)
				defer cancel()
				b, err := cluster.Call[[]byte](ctx, c, method, []byte{1, 2, 3}, ncDate)
				done <- result{b, err}
			}()
		}
		call("echo")
		pk, inv = leader.expect(protocol.KindInvoke)
		if args, err = protocol.SplitArgs(pk.App, inv.ArgLength); err != nil || inv.Method != "echo" || inv.Oneway {
			t.Fatalf("invoke %s: %v", pk.Conn, err)
		}
		var buf []byte
		var when time.Time
		sjDecode(t, args[0], &buf)
		sjDecode(t, args[1], &when)
		if !bytes.Equal(buf, []byte{1, 2, 3}) || !when.Equal(ncDate) {
			t.Errorf("arguments %v %v: a Buffer and a Date expected", buf, when)
		}
		leader.send(true, pk.ID, protocol.ConnObject{Type: protocol.KindInvokeResult, Success: true}, args[0])
		if r := <-done; r.err != nil || !bytes.Equal(r.buf, []byte{1, 2, 3}) {
			t.Errorf("echo: %v, %v", r.buf, r.err)
		}

		call("fail")
		pk, _ = leader.expect(protocol.KindInvoke)
		leader.send(true, pk.ID, protocol.ConnObject{Type: protocol.KindInvokeResult, Success: false},
			sjEncode(t, map[string]any{"stack": "ValidationError: bad\n    at x.js:1", "name": "ValidationError", "message": "bad", "code": "E_BAD"}))
		r := <-done
		var re *protocol.RemoteError
		if !errors.As(r.err, &re) || re.Name != "ValidationError" || re.Message != "bad" || re.Code != "E_BAD" {
			t.Errorf("failure: %v", r.err)
		}
	})
}

// TestNodeCompatLeader: a Go leader with WithNodeCompat, and a Node
// follower played by hand.
func TestNodeCompatLeader(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	hs := &ncHandshake{}
	pushes := make(chan func(any), 1)
	c, err := cluster.New(ncChannel, func(context.Context, cluster.Emit) (*cluster.Service, error) {
		return &cluster.Service{
			Subscribe: func(_ cluster.Reg, push func(any)) error { pushes <- push; return nil },
			Methods: map[string]cluster.Handler{
				"echo": func(_ context.Context, a cluster.Args) (any, error) {
					var buf []byte
					var when time.Time
					if err := a.Decode(0, &buf); err != nil {
						return nil, err
					}
					if err := a.Decode(1, &when); err != nil {
						return nil, err
					}
					return ncValue{DataID: "echo", When: when, Buf: buf}, nil
				},
			},
		}, nil
	}, cluster.WithHandshake(hs), cluster.WithNodeCompat(), cluster.WithPort(port),
		cluster.WithMode(cluster.ForceLeader), cluster.WithRegistry(election.NewRegistry()), ncLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), ncWait)
	defer cancel()
	if err := c.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), ncWait)
	if err != nil {
		t.Fatal(err)
	}
	f := newNCConn(t, conn)

	// Node's register_channel: no extension, no proof.
	f.send(false, 1, protocol.ConnObject{Type: protocol.KindRegisterChannel, ChannelName: ncChannel}, nil)
	pk, _ := f.expect(protocol.KindRegisterChannelRes)
	var reply struct {
		Success bool `json:"success"`
	}
	sjDecode(t, pk.App, &reply)
	if !reply.Success || pk.ID != 1 {
		t.Fatalf("register: %q", pk.App)
	}
	if n := hs.calls.Load(); n != 0 {
		t.Errorf("the handshake given before WithNodeCompat ran %d times", n)
	}

	// invoke with serialize-json arguments, as Node frames them.
	var app []byte
	for _, a := range []any{[]byte{9, 8}, ncDate} {
		if app, err = protocol.AppendArg(app, protocol.SerializeJSON, a); err != nil {
			t.Fatal(err)
		}
	}
	f.send(false, 2, protocol.ConnObject{Type: protocol.KindInvoke, Method: "echo", ArgLength: 2}, app)
	pk, res := f.expect(protocol.KindInvokeResult)
	var v ncValue
	sjDecode(t, pk.App, &v)
	if !res.Success || pk.ID != 2 || !bytes.Equal(v.Buf, []byte{9, 8}) || !v.When.Equal(ncDate) {
		t.Errorf("echo: %s %q", pk.Conn, pk.App)
	}

	// subscribe with Node's key and reg; the push comes under that key.
	const key = `$$inner$$__{"zone":"z","dataId":"x"}`
	f.send(false, 3, protocol.ConnObject{Type: protocol.KindSubscribe, Key: key, Reg: []byte(`{"zone":"z","dataId":"x"}`)}, nil)
	var push func(any)
	select {
	case push = <-pushes:
	case <-time.After(ncWait):
		t.Fatal("the real client was not subscribed")
	}
	push(ncValue{DataID: "x", When: ncDate})
	pk, sr := f.expect(protocol.KindSubscribeResult)
	sjDecode(t, pk.App, &v)
	if sr.Key != key || v.DataID != "x" || !v.When.Equal(ncDate) {
		t.Errorf("push: %s %q", pk.Conn, pk.App)
	}
	f.send(true, pk.ID, protocol.ConnObject{Type: protocol.KindSubscribeResultRes}, nil)
}

// WithNodeCompat on every Go process of a cluster that Node processes
// share. Here a Go leader and a Go follower stand in for a mixed cluster
// (real processes use the default TCP transport and the Node clients' port,
// WithPort); what crosses between them is what Node would send: a Buffer
// comes back a []byte, a Date a time.Time.
func ExampleWithNodeCompat() {
	tr, _ := mem.New(mem.Config{})
	opts := []cluster.Option{
		cluster.WithNodeCompat(),
		cluster.WithTransport(tr), cluster.WithAddr("example-node-compat"),
		cluster.WithLogger(slog.New(slog.DiscardHandler)),
	}
	realClient := func(context.Context, cluster.Emit) (*cluster.Service, error) {
		return &cluster.Service{Methods: map[string]cluster.Handler{
			"echo": func(_ context.Context, a cluster.Args) (any, error) { return a.Raw(0) },
		}}, nil
	}
	ctx := context.Background()
	leader, err := cluster.New("DataClient", realClient, opts...) // Node: class DataClient
	if err != nil {
		panic(err)
	}
	defer leader.Close(ctx)
	if err := leader.Ready(ctx); err != nil { // the first Client leads
		panic(err)
	}
	follower, err := cluster.New("DataClient", realClient, opts...)
	if err != nil {
		panic(err)
	}
	defer follower.Close(ctx)

	when, err := cluster.Call[time.Time](ctx, follower, "echo", time.UnixMilli(1700000000123))
	if err != nil {
		panic(err)
	}
	raw, err := cluster.Call[protocol.Raw](ctx, follower, "echo", []byte("hi"))
	if err != nil {
		panic(err)
	}
	var natural any
	_ = protocol.SerializeJSON.Decode(raw, &natural)
	fmt.Println(follower.IsLeader(), when.UTC())
	fmt.Printf("%q on the wire, %T in Go\n", raw, natural)
	// Output:
	// false 2023-11-14 22:13:20.123 +0000 UTC
	// "^2W|2X^^^*0|1]" on the wire, []uint8 in Go
}
