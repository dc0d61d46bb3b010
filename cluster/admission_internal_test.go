package cluster

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-clusterclient/clusterclient/protocol"
)

// The admission of one connection, fed sequences of what happens, with
// and without a Handshake: every way in and every refusal.
func TestAdmissionSequences(t *testing.T) {
	type ev struct {
		do   string // a request kind (gate), "registered", "confirmed", "expire"
		want any    // the step (gate), or whether it changed the state
	}
	hb, reg, conf, inv, sub := protocol.KindHeartbeat, protocol.KindRegisterChannel, protocol.KindRegisterConfirm,
		protocol.KindInvoke, protocol.KindSubscribe
	for _, tc := range []struct {
		name   string
		auth   bool
		events []ev
		member bool
	}{
		{"insecure: register makes a member", false, []ev{
			{hb, stepAnswer}, {inv, stepIgnore}, {reg, stepRegister}, {"registered", true},
			{inv, stepServe}, {sub, stepServe}, {conf, stepIgnore}, {reg, stepRegister}, {"expire", false},
		}, true},
		{"auth: register, then the proof", true, []ev{
			{hb, stepAnswer}, {reg, stepRegister}, {"registered", false}, {inv, stepDrop},
			{reg, stepRegister}, {conf, stepConfirm}, {"confirmed", true}, {inv, stepServe}, {conf, stepIgnore},
			{"expire", false},
		}, true},
		{"auth: a request before the proof", true, []ev{{inv, stepDrop}, {sub, stepDrop}, {"cluster_status", stepDrop}}, false},
		{"auth: the deadline passes", true, []ev{
			{reg, stepRegister}, {"registered", false}, {"expire", true}, {conf, stepIgnore}, {"confirmed", false},
			{inv, stepIgnore}, {reg, stepIgnore}, {hb, stepAnswer},
		}, false},
		{"insecure: the deadline passes before register", false, []ev{{hb, stepAnswer}, {"expire", true}, {reg, stepIgnore}, {"registered", false}}, false},
		{"auth: confirmation before register changes nothing the peer does not check", true, []ev{{conf, stepConfirm}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAdmission(tc.auth)
			for i, e := range tc.events {
				var got any
				switch e.do {
				case "registered":
					got = a.registered()
				case "confirmed":
					got = a.confirmed()
				case "expire":
					got = a.expire()
				default:
					got = a.gate(e.do)
				}
				if got != e.want {
					t.Fatalf("event %d (%s): %v, want %v", i+1, e.do, got, e.want)
				}
			}
			if a.isMember() != tc.member {
				t.Fatalf("member %v, want %v", a.isMember(), tc.member)
			}
		})
	}
}

// The register deadline drops a connection not admitted in time, and
// only such a one; measured on the fake clock of a synctest bubble.
func TestAdmissionDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const d = 10 * time.Second
		late, inTime := newAdmission(true), newAdmission(true)
		var mu sync.Mutex
		var dropped []*admission
		drop := func(a *admission) func() {
			return func() { mu.Lock(); dropped = append(dropped, a); mu.Unlock() }
		}
		late.deadline(d, drop(late))
		tm := inTime.deadline(d, drop(inTime))
		time.Sleep(d - time.Millisecond)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(dropped) != 0 {
			t.Fatalf("dropped %d before the deadline", len(dropped))
		}
		if !inTime.confirmed() {
			t.Fatal("not admitted before the deadline")
		}
		mu.Unlock()
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		mu.Lock()
		if len(dropped) != 1 || dropped[0] != late || late.isMember() || !inTime.isMember() {
			t.Fatalf("after the deadline: dropped %v; late member %v, in time member %v", dropped, late.isMember(), inTime.isMember())
		}
		tm.Stop()
	})
}
