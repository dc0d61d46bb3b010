package cluster

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-clusterclient/clusterclient/election"
	"github.com/go-clusterclient/clusterclient/protocol"
)

// Errors of the cluster package. Every error a Client returns or reports is
// an *Error that wraps one of these (match with errors.Is) and, when it
// crossed the wire or came from the real client, the cause (match a
// *protocol.RemoteError with errors.As to read its Name, Code and Stack).
var (
	// ErrClosed: the Client was closed (or is closing).
	ErrClosed = errors.New("cluster: client closed")
	// ErrTimeout: a follower's call got no answer within the response
	// timeout (Node's ResponseTimeoutError). The leader drops the late reply.
	ErrTimeout = errors.New("cluster: no response within the response timeout")
	// ErrLeaderLost: the connection to the leader broke while the call was
	// in flight. The call's effect is unknown; it is safe to retry an
	// idempotent call (the retry waits for the next leader).
	ErrLeaderLost = errors.New("cluster: connection to the leader lost")
	// ErrLeaderLeft: the leader closed on purpose and handed over
	// (WithHandoverTimeout): its followers elect the next leader at once,
	// and its calls in flight are still answered. It is the reason of the
	// EventLeaderLost a follower raises then; no call fails with it. A
	// follower that registers with a leader in the middle of its hand-over
	// hears it too, and tries again shortly.
	ErrLeaderLeft = errors.New("cluster: the leader left")
	// ErrUnknownMethod: the real client does not declare the method (or does
	// not declare subscribe, publish, ...).
	ErrUnknownMethod = errors.New("cluster: method not declared by the real client")
	// ErrPanic: the real client's method panicked; the leader recovered and
	// keeps serving. The remote error's Stack holds the goroutine stack.
	ErrPanic = errors.New("cluster: real client method panicked")
	// ErrNoLeader: a forced follower found no leader within the maximum
	// wait. It is election.ErrNoLeader, so either name matches.
	ErrNoLeader = election.ErrNoLeader
	// ErrNoChannel: something leads the address, but no leader of this
	// channel lives there (Node drops such a register and
	// the follower retries forever; we answer at once).
	ErrNoChannel = errors.New("cluster: no leader for this channel on the address")
	// ErrNotReady: the real client failed to start (the factory's error is
	// wrapped alongside), so calls fail until a new leadership term starts.
	ErrNotReady = errors.New("cluster: real client not ready")
	// ErrLeaderUnresponsive: the leader answered no heartbeat for two
	// intervals (a hung leader: stopped, deadlocked, or a stranger holding
	// the address). The follower drops the connection and elects again.
	ErrLeaderUnresponsive = errors.New("cluster: leader answers no heartbeat")
	// ErrFollowerIdle: the leader dropped a follower that sent nothing for
	// three heartbeat intervals (Node's ClusterClientNoResponseError).
	ErrFollowerIdle = errors.New("cluster: follower idle beyond three heartbeat intervals")
	// ErrLeaderTimeout: a real client method took longer than the caller's
	// timeout; the leader dropped the late reply (Node's
	// ClusterLeaderTimeoutError).
	ErrLeaderTimeout = errors.New("cluster: real client method outlived the caller's timeout")
	// ErrAckTimeout: a follower did not acknowledge a pushed value within
	// the response timeout (Node's ClusterConnectionResponseTimeoutError).
	// Only Node followers acknowledge pushes to a Go leader: Go followers
	// do without (see protocol/spec.md, "noack").
	ErrAckTimeout = errors.New("cluster: follower did not acknowledge a pushed value")
	// ErrSubscribeTimeout: no value arrived for a subscription within the
	// subscribe timeout. The subscription stays; a later value is still
	// delivered.
	ErrSubscribeTimeout = errors.New("cluster: no value for the subscription within the subscribe timeout")
	// ErrOverloaded: a bound that protects a process was reached, so the
	// operation fails at once instead of waiting or growing without end:
	// the connection's write buffer is full (the peer does not read: a
	// leader drops such a follower, a follower fails the call), too many
	// calls are in flight on one connection (WithMaxPending, on either
	// side), or too many one-way calls wait for a leader
	// (DefaultMaxQueued). The wrapped cause says which.
	ErrOverloaded = errors.New("cluster: overloaded")
	// ErrProtocol: the peer sent something this side cannot use (an
	// unknown request type, a malformed reply, an undecodable value).
	ErrProtocol = errors.New("cluster: protocol error")
	// ErrHandshake: the session layer (Handshake) refused the peer.
	ErrHandshake = errors.New("cluster: handshake refused")
	// ErrInvalidOption: New was given an invalid name, factory or option.
	ErrInvalidOption = errors.New("cluster: invalid option")
	// ErrListener: the leader's listener failed (closed from outside or a
	// permanent accept error); the leader gives up its term and elects again.
	ErrListener = errors.New("cluster: leader listener failed")
	// ErrListenerPanic: a subscription listener or the event handler
	// panicked; the panic is recovered and reported as an event.
	ErrListenerPanic = errors.New("cluster: subscription listener panicked")
)

// Remote error codes: a sentinel that crosses the wire travels as a
// protocol.RemoteError with one of these codes, and the receiving side maps
// the code back to the sentinel, so errors.Is works the same on the leader
// and on a follower.
const (
	CodeUnknownMethod = "ERR_CLUSTER_UNKNOWN_METHOD"
	CodePanic         = "ERR_CLUSTER_PANIC"
	CodeNoChannel     = "ERR_CLUSTER_NO_CHANNEL"
	CodeClosed        = "ERR_CLUSTER_CLOSED"
	CodeHandshake     = "ERR_CLUSTER_HANDSHAKE"
	CodeProtocol      = "ERR_CLUSTER_PROTOCOL"
	CodeOverloaded    = "ERR_CLUSTER_OVERLOADED"
	CodeLeaderLeft    = "ERR_CLUSTER_LEADER_LEFT"
)

var codeSentinels = map[string]error{
	CodeUnknownMethod: ErrUnknownMethod,
	CodePanic:         ErrPanic,
	CodeNoChannel:     ErrNoChannel,
	CodeClosed:        ErrClosed,
	CodeHandshake:     ErrHandshake,
	CodeProtocol:      ErrProtocol,
	CodeOverloaded:    ErrOverloaded,
	CodeLeaderLeft:    ErrLeaderLeft,
}

var sentinelNames = map[error]struct{ name, code string }{
	ErrUnknownMethod: {"UnknownMethodError", CodeUnknownMethod},
	ErrPanic:         {"PanicError", CodePanic},
	ErrNoChannel:     {"NoChannelError", CodeNoChannel},
	ErrClosed:        {"ClosedError", CodeClosed},
	ErrHandshake:     {"HandshakeError", CodeHandshake},
	ErrProtocol:      {"ProtocolError", CodeProtocol},
	ErrOverloaded:    {"OverloadedError", CodeOverloaded},
	ErrLeaderLeft:    {"LeaderLeftError", CodeLeaderLeft},
}

// Error is the error type of the package. It names where it happened: the
// operation, the channel, the address, this process's role, and the method
// or subscription key when there is one.
type Error struct {
	Op      string // "invoke", "subscribe", "publish", "ready", "register", "push", ...
	Channel string
	Addr    string // "<transport> <address>", or "" in single mode
	Role    Role
	Method  string // invoke: the method
	Key     string // subscribe: the subscription key
	// Kind is the package sentinel (ErrTimeout, ErrLeaderLost, ...), or nil
	// when the cause speaks for itself (a real client's error).
	Kind error
	// Err is the cause: a *protocol.RemoteError from the other side, the
	// real client's own error on the leader, a transport error, ... or nil.
	Err error
	// Elapsed is how long the operation ran, when that matters (timeouts).
	Elapsed time.Duration
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("cluster: ")
	b.WriteString(e.Op)
	if e.Method != "" {
		b.WriteString(" ")
		b.WriteString(strconv.Quote(e.Method))
	}
	if e.Key != "" {
		b.WriteString(" key ")
		b.WriteString(e.Key)
	}
	if e.Channel != "" { // empty for what concerns no one channel (ListChannels)
		b.WriteString(" on channel ")
		b.WriteString(strconv.Quote(e.Channel))
	}
	if e.Role != RoleNone || e.Addr != "" {
		b.WriteString(" (")
		if e.Role != RoleNone {
			b.WriteString(e.Role.String())
		}
		if e.Addr != "" {
			if e.Role != RoleNone {
				b.WriteString(" at ")
			}
			b.WriteString(e.Addr)
		}
		b.WriteString(")")
	}
	if e.Kind != nil {
		b.WriteString(": ")
		b.WriteString(strings.TrimPrefix(e.Kind.Error(), "cluster: "))
		if e.Elapsed > 0 {
			b.WriteString(" (")
			b.WriteString(e.Elapsed.Round(time.Millisecond).String())
			b.WriteString(")")
		}
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the sentinel and the cause.
func (e *Error) Unwrap() []error {
	errs := make([]error, 0, 2)
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// Bounds on the strings of an error sent over the wire: an error
// with a huge message or stack is cut, never refused.
const (
	maxErrName    = 256
	maxErrCode    = 256
	maxErrMessage = 64 << 10
	maxErrStack   = 64 << 10
)

// toRemote turns any error into the bounded {name, message, code, stack}
// shape that crosses the wire. A *protocol.RemoteError in the chain is
// used as is (bounded); a package sentinel in the chain gives its name and
// code; anything else is {name: "Error", message: err.Error()}. Only those
// four strings are read, so no property of a user error (cyclic, huge,
// unencodable) can break the encoding.
func toRemote(err error) (res *protocol.RemoteError) {
	defer func() {
		// An Error method that panics (user code) must not take the
		// leader down with it: marshalling never fails.
		if r := recover(); r != nil {
			res = boundRemote(&protocol.RemoteError{Name: "Error", Code: CodePanic,
				Message: fmt.Sprintf("the %T error's Error method panicked: %v", err, r)})
		}
	}()
	var re *protocol.RemoteError
	if errors.As(err, &re) && re != nil {
		out := *re
		if out.Message == "" {
			out.Message = err.Error()
		}
		return boundRemote(&out)
	}
	out := &protocol.RemoteError{Name: "Error", Message: err.Error()}
	for sentinel, nc := range sentinelNames {
		if errors.Is(err, sentinel) {
			out.Name, out.Code = nc.name, nc.code
			break
		}
	}
	if out.Code == "" {
		out.Code = ErrorCode(err) // a Coder's, or a registered sentinel's
	}
	return boundRemote(out)
}

func boundRemote(re *protocol.RemoteError) *protocol.RemoteError {
	re.Name = truncate(re.Name, maxErrName)
	re.Code = truncate(re.Code, maxErrCode)
	re.Message = truncate(re.Message, maxErrMessage)
	re.Stack = truncate(re.Stack, maxErrStack)
	return re
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "...(truncated)"
	return s[:n-len(mark)] + mark
}

// sentinelOf maps a remote error's code back to the package sentinel.
func sentinelOf(re *protocol.RemoteError) error {
	if re == nil {
		return nil
	}
	return codeSentinels[re.Code]
}
