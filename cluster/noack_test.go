package cluster_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/protocol"
)

// A Go follower that says it does without acknowledgements of pushed
// values ("noack" in the clusterclient member) is pushed to without the
// leader waiting for them: no ErrAckTimeout for a push it never answers,
// and later values still reach it. The leader's reply says it too. A
// follower that does not say so (Node) is still expected to answer
// (TestCC048_PushWithoutAck).
func TestLeaderPushesWithoutAckToGoFollowers(t *testing.T) {
	rec := newRecorder()
	l, tr, addr := startLeader(t, "Conn", cluster.WithResponseTimeout(100*time.Millisecond), rec.opt())
	p := dialRaw(t, tr, addr)
	reply := p.registerWith("Conn", map[string]json.RawMessage{"clusterclient": json.RawMessage(`{"v":1,"codec":"json","handover":true,"noack":true}`)})
	if !strings.Contains(string(reply.Ext["clusterclient"]), `"noack":true`) {
		t.Fatalf("the leader's register reply does not say noack: %s", reply.Ext["clusterclient"])
	}
	raw := json.RawMessage(`{"key":"k"}`)
	p.send(false, 3, 3000, protocol.ConnObject{Type: protocol.KindSubscribe, Key: protocol.SubscriptionKey(raw), Reg: raw}, nil)
	p.expect(protocol.KindSubscribeResult) // the initial push; never acknowledged
	holdsFor(t, 500*time.Millisecond, "no ack timeout for a follower that does without", func() bool {
		return rec.count(isErr(cluster.ErrAckTimeout)) == 0
	})
	if err := l.Publish(reg{Key: "k", Value: "v"}); err != nil {
		t.Fatal(err)
	}
	pk, _ := p.expect(protocol.KindSubscribeResult)
	if !strings.Contains(string(pk.App), `"v"`) {
		t.Fatalf("second push %s", pk.App)
	}
}

// A Go follower acknowledges pushed values only to a leader that wants
// it: one whose register reply does not say "noack" (Node, or a Go
// leader of an older version) gets every acknowledgement.
func TestFollowerAcksOnlyWhenTheLeaderWants(t *testing.T) {
	for _, noack := range []bool{false, true} {
		name := map[bool]string{false: "leader wants acks", true: "leader does without"}[noack]
		t.Run(name, func(t *testing.T) {
			tr, addr := memNet(t)
			acks := make(chan int64, 8)
			fakeLeader(t, tr, addr, func(_ int, p *rawPeer) {
				answerLoop(p, fakeAnswers{
					replyExt: func(ext map[string]json.RawMessage) {
						if noack {
							ext["clusterclient"] = json.RawMessage(`{"v":1,"codec":"json","noack":true}`)
						}
					},
					other: func(pk protocol.Packet, co protocol.ConnObject) {
						switch co.Type {
						case protocol.KindSubscribe:
							p.send(false, 99, 3000, protocol.ConnObject{Type: protocol.KindSubscribeResult, Key: co.Key}, []byte(`["x"]`))
						case protocol.KindSubscribeResultRes:
							acks <- pk.ID
						}
					},
				})
			})
			f := newClient(t, "Acks", newWorld(), cluster.WithTransport(tr), cluster.WithAddr(addr))
			ready(t, f)
			s := newSink()
			if _, err := f.Subscribe(reg{Key: "k"}, s.listener(t)); err != nil {
				t.Fatal(err)
			}
			s.waitFor(t, wait, "x")
			if noack {
				select {
				case id := <-acks:
					t.Fatalf("acknowledged push %d to a leader that does without", id)
				case <-time.After(300 * time.Millisecond):
				}
				return
			}
			select {
			case id := <-acks:
				if id != 99 {
					t.Fatalf("acknowledged %d, want 99", id)
				}
			case <-time.After(wait):
				t.Fatal("no acknowledgement to a leader that wants one")
			}
		})
	}
}
