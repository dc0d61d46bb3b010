package cluster_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/protocol"
)

// capture is testdata/node-capture.json: a real session between a Node
// cluster-client 3.7.0 leader and follower (channel DataClient), recorded
// on the wire (copied from the project's golden fixtures).
type capture struct {
	FollowerToLeader []capturedPacket `json:"followerToLeader"`
	LeaderToFollower []capturedPacket `json:"leaderToFollower"`
}

type capturedPacket struct {
	Hex     string          `json:"hex"`
	Decoded capturedDecoded `json:"decoded"`
}

type capturedDecoded struct {
	Type    int            `json:"type"`
	ID      int64          `json:"id"`
	Timeout int32          `json:"timeout"`
	ConnObj map[string]any `json:"connObj"`
	AppHex  string         `json:"appHex"`
}

// nodeDataClient is the real client of the capture: echo, echoArgs, fail,
// publish pushing to the subscribers of its dataId.
func nodeDataClient(context.Context, cluster.Emit) (*cluster.Service, error) {
	var mu sync.Mutex
	subs := map[string]func(any){}
	type dataReg struct {
		DataID string `json:"dataId"`
	}
	return &cluster.Service{
		Subscribe: func(r cluster.Reg, push func(any)) error {
			var g dataReg
			if err := r.Decode(&g); err != nil {
				return err
			}
			mu.Lock()
			subs[g.DataID] = push
			mu.Unlock()
			return nil
		},
		Publish: func(_ context.Context, r cluster.Reg) error {
			var v map[string]any
			if err := r.Decode(&v); err != nil {
				return err
			}
			id, _ := v["dataId"].(string)
			mu.Lock()
			push := subs[id]
			mu.Unlock()
			if push != nil {
				push(v)
			}
			return nil
		},
		Methods: map[string]cluster.Handler{
			"echo": func(_ context.Context, a cluster.Args) (any, error) { return a.Raw(0) },
			"echoArgs": func(_ context.Context, a cluster.Args) (any, error) {
				out := make([]any, a.Len())
				for i := range out {
					if err := a.Decode(i, &out[i]); err != nil {
						return nil, err
					}
				}
				return out, nil
			},
			"fail": func(_ context.Context, a cluster.Args) (any, error) {
				var msg string
				a.Decode(0, &msg)
				return nil, &protocol.RemoteError{Name: "Error", Message: msg}
			},
		},
	}, nil
}

// RP-04, RP-05, CC-015: a Node follower's recorded bytes, replayed against a
// Go leader speaking serialize-json, get the answers the Node leader gave:
// same kinds, ids, timeouts and app bytes (the error reply's stack and the
// Node-only trailing callback argument aside).
func TestRP04_NodeFollowerCaptureAgainstGoLeader(t *testing.T) {
	raw, err := os.ReadFile("testdata/node-capture.json")
	if err != nil {
		t.Fatal(err)
	}
	var cp capture
	if err := json.Unmarshal(raw, &cp); err != nil {
		t.Fatal(err)
	}
	tr, addr := memNet(t)
	l, err := cluster.New("DataClient", nodeDataClient, append(fastOpts(), cluster.WithTransport(tr), cluster.WithAddr(addr),
		cluster.WithCodec(protocol.SerializeJSON), cluster.WithResponseTimeout(3*time.Second),
		cluster.WithInsecure())...) // a Node follower speaks no handshake
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(context.Background())
	ready(t, l)
	p := dialRaw(t, tr, addr)

	type answer struct {
		pk protocol.Packet
		co protocol.ConnObject
	}
	var got []answer
	read := func() answer {
		t.Helper()
		pk, co, err := p.next()
		if err != nil {
			t.Fatalf("after %d answers: %v", len(got), err)
		}
		a := answer{pk, co}
		got = append(got, a)
		return a
	}
	for i, f := range cp.FollowerToLeader {
		b, err := hex.DecodeString(f.Hex)
		if err != nil {
			t.Fatal(err)
		}
		if f.Decoded.Type == 1 { // the follower's ack of the pushed value: use our push's id
			var push *answer
			for push == nil {
				if a := read(); a.co.Type == protocol.KindSubscribeResult {
					push = &a
				}
			}
			b = protocol.AppendPacket(nil, &protocol.Packet{Response: true, ID: push.pk.ID,
				Conn: []byte(`{"type":"subscribe_result_res"}`)})
		}
		if _, err := p.conn.Write(b); err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
	}
	for len(got) < len(cp.LeaderToFollower) {
		read()
	}
	// Answers are matched by id (requests from the leader by kind): the
	// Go leader runs calls concurrently, so a heartbeat may be answered
	// before an earlier call, which a Node follower handles by id too.
	find := func(wd capturedDecoded) (answer, bool) {
		for _, g := range got {
			if wd.Type == 1 && g.pk.Response && g.pk.ID == wd.ID {
				return g, true
			}
			if wd.Type == 0 && !g.pk.Response && g.co.Type == wd.ConnObj["type"] {
				return g, true
			}
		}
		return answer{}, false
	}
	for i, want := range cp.LeaderToFollower {
		wd := want.Decoded
		g, ok := find(wd)
		if !ok {
			t.Fatalf("no answer like Node's %d: %v", i, wd.ConnObj)
		}
		if g.co.Type != wd.ConnObj["type"] || g.pk.Response != (wd.Type == 1) || g.pk.Timeout != wd.Timeout {
			t.Fatalf("answer %d: %s response=%v timeout=%d, Node sent %v type=%d timeout=%d", i,
				g.co.Type, g.pk.Response, g.pk.Timeout, wd.ConnObj, wd.Type, wd.Timeout)
		}
		if g.pk.Response && g.pk.ID != wd.ID {
			t.Fatalf("answer %d (%s): id %d, Node answered id %d", i, g.co.Type, g.pk.ID, wd.ID)
		}
		if s, ok := wd.ConnObj["success"].(bool); ok && s != g.co.Success {
			t.Fatalf("answer %d: success %v", i, g.co.Success)
		}
		if k, ok := wd.ConnObj["key"].(string); ok && k != g.co.Key {
			t.Fatalf("answer %d: key %q, Node %q", i, g.co.Key, k)
		}
		wantApp, _ := hex.DecodeString(wd.AppHex)
		switch {
		case g.co.Type == protocol.KindInvokeResult && !g.co.Success:
			var re protocol.RemoteError
			if err := protocol.SerializeJSON.Decode(g.pk.App, &re); err != nil || re.Message != "boom" || re.Name != "Error" {
				t.Fatalf("answer %d: error reply %+v %v", i, re, err)
			}
		case g.co.Type == protocol.KindInvokeResult && bytes.HasPrefix(wantApp, []byte("abc|a|b")):
			// Node's leader hands the method a trailing callback argument
			// (SRC-14), echoed as a 4th element; compare the three real ones.
			var gv, wv []any
			if err := protocol.SerializeJSON.Decode(g.pk.App, &gv); err != nil {
				t.Fatal(err)
			}
			protocol.SerializeJSON.Decode(wantApp, &wv)
			if len(gv) != 3 || len(wv) != 4 || jsonString(gv) != jsonString(wv[:3]) {
				t.Fatalf("answer %d: echoArgs %v, Node %v", i, gv, wv)
			}
		default:
			if !bytes.Equal(g.pk.App, wantApp) {
				t.Fatalf("answer %d (%s): app %q, Node %q", i, g.co.Type, g.pk.App, wantApp)
			}
		}
	}
	if len(got) != len(cp.LeaderToFollower) {
		t.Fatalf("%d answers, Node gave %d", len(got), len(cp.LeaderToFollower))
	}
	// The Go leader adds only its extension to the register reply.
	reg, _ := find(cp.LeaderToFollower[0].Decoded)
	if ext := reg.co.Ext; len(ext) != 1 || ext["clusterclient"] == nil {
		t.Fatalf("register reply extension: %v", ext)
	}
}
