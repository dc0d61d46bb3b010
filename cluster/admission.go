package cluster

import (
	"sync/atomic"
	"time"

	"github.com/go-clusterclient/clusterclient/protocol"
)

// admission is where one follower connection stands on the leader, from
// accept to membership: the leader's half of the session protocol, with
// no I/O. The peer asks it what a request means in the connection's state
// (gate) and tells it what happened (registered, confirmed, the deadline);
// it answers what to do, and the peer does it (replies, drops, serves).
//
//	unproven ──register (no Handshake)──────────────▶ member
//	unproven ──register, then confirm that verifies─▶ member
//	unproven ──register deadline, counted from accept─▶ dropped
//
// Before it is a member a connection may send heartbeats, register again,
// and (with a Handshake) its confirmation; anything else is dropped with a
// Handshake and ignored without one (as Node ignores it).
//
// Concurrency: safe for concurrent use (one atomic state): the reader
// drives it, the deadline's timer expires it, and status, pushes and the
// follower count read it.
type admission struct {
	auth bool // a Handshake checks the follower: membership needs its confirmation
	st   atomic.Int32
}

// States of an admission.
const (
	unproven int32 = iota
	member
	dropped
)

// A step is what the peer does with a request.
type step int

const (
	stepAnswer   step = iota // a heartbeat: answer it
	stepRegister             // run the register exchange
	stepConfirm              // check the follower's proof
	stepServe                // a member's request: serve it
	stepIgnore               // not for this state, and harmless: ignore it
	stepDrop                 // not a member, with a Handshake: hang up
)

func newAdmission(auth bool) *admission { return &admission{auth: auth} }

// gate says what to do with a request of kind.
func (a *admission) gate(kind string) step {
	st := a.st.Load()
	switch kind {
	case protocol.KindHeartbeat:
		return stepAnswer
	case protocol.KindRegisterChannel:
		if st == dropped {
			return stepIgnore
		}
		return stepRegister
	case protocol.KindRegisterConfirm:
		if !a.auth || st != unproven {
			return stepIgnore // nothing to confirm
		}
		return stepConfirm
	}
	switch {
	case st == member:
		return stepServe
	case st == unproven && a.auth:
		return stepDrop
	}
	return stepIgnore
}

// registered notes a register_channel the Handshake (if any) let through:
// without a Handshake the connection is a member now. It reports whether
// it became one.
func (a *admission) registered() bool {
	if a.auth {
		return false
	}
	return a.st.CompareAndSwap(unproven, member)
}

// confirmed notes the follower's proof verified: a member, unless it was
// dropped meanwhile. It reports whether it became one.
func (a *admission) confirmed() bool { return a.st.CompareAndSwap(unproven, member) }

// expire notes the register deadline passing: a connection not yet a
// member is dropped (true).
func (a *admission) expire() bool { return a.st.CompareAndSwap(unproven, dropped) }

// isMember reports whether the connection is a member.
func (a *admission) isMember() bool { return a.st.Load() == member }

// deadline calls drop after d unless the connection is a member by then:
// the register deadline, counted from accept whatever the real client's
// start is doing. Stop the timer once it is no longer needed.
func (a *admission) deadline(d time.Duration, drop func()) *time.Timer {
	return time.AfterFunc(d, func() {
		if a.expire() {
			drop()
		}
	})
}
