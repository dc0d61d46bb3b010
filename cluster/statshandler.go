package cluster

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster/internal/link"
	"github.com/go-clusterclient/clusterclient/transport"
)

// StatsHandler observes a Client: its calls on the caller's side and, on
// the leader, on the side that serves a follower's call; its
// subscriptions, publications and pushes; its terms; and the followers
// that join and leave its leader. It is the hook a metrics or tracing
// library builds on (package clusterclient/otel is one), in the spirit of
// grpc-go's stats.Handler. Install it with WithStatsHandler; without one
// the Client pays a single nil test per call and allocates nothing more.
//
// The methods run synchronously on the goroutine of what they observe,
// some with the Client's or the host's lock held (subscriptions, pushes):
// they must be quick, must not block, and must not call the Client. They
// may run concurrently with each other. The *CallInfo and *StatsEvent
// they get belong to the Client: a handler must not keep them after it
// returned (copy what it needs).
type StatsHandler interface {
	// TagCall is called when a call starts: on the caller's side when
	// Invoke or InvokeOneway is called (before it waits for a ready
	// leader), and on the leader when a follower's call starts to run.
	// The returned context is the one the call goes on with: on the
	// caller's side its metadata (WithMetadata) crosses to the leader,
	// and on the leader the method's handler runs with it. A tracer
	// starts its span here and injects the trace context into the
	// metadata (caller) or extracts it from Metadata(ctx) (leader).
	// Returning ctx itself is always correct.
	TagCall(ctx context.Context, info *CallInfo) context.Context
	// HandleCall is called once when the call ended, with the context
	// TagCall returned and the same info, now with its end fields set.
	HandleCall(ctx context.Context, info *CallInfo)
	// HandleEvent is called for everything else the Client observes:
	// see StatsKind.
	HandleEvent(ev *StatsEvent)
}

// CallSide says on which side of a call a CallInfo was observed.
type CallSide int

const (
	// SideCaller: the process that called Invoke or InvokeOneway, in any
	// role (a leader's own calls run in its process; a follower's cross).
	SideCaller CallSide = iota + 1
	// SideServer: the leader running a follower's call.
	SideServer
)

func (s CallSide) String() string {
	switch s {
	case SideCaller:
		return "caller"
	case SideServer:
		return "server"
	}
	return "CallSide(" + strconv.Itoa(int(s)) + ")"
}

// CallInfo describes one call to a StatsHandler. The fields above End are
// set when TagCall is called; End and those after it when HandleCall is.
type CallInfo struct {
	Channel string
	Method  string // the method's name (publish and unPublish from a follower are methods too)
	Side    CallSide
	// Role is the role of the Client that observed the call: on the
	// caller's side the role of the term that ran it (RoleNone in TagCall
	// while no leader is ready, and in HandleCall when it never ran),
	// RoleLeader on the server side.
	Role   Role
	Oneway bool
	// Remote is the follower's address (server side only).
	Remote string
	Start  time.Time

	End time.Time
	// BytesOut and BytesIn count the encoded arguments and result as
	// they crossed the connection: on a follower's side, the arguments
	// sent and the reply received; on the server side, the reply sent
	// and the arguments received. A call that never crossed (the
	// leader's own, single mode's) counts 0 for both, and so does a
	// one-way call on the caller's side (it may wait in a queue for the
	// next leader; the leader's side counts what it received).
	BytesOut, BytesIn int
	// Err is the call's error (nil on success); Code says what kind of
	// failure it is (see ErrorKind), "" on success.
	Err  error
	Code string
}

// Duration is End - Start (0 before HandleCall).
func (ci *CallInfo) Duration() time.Duration {
	if ci.End.IsZero() {
		return 0
	}
	return ci.End.Sub(ci.Start)
}

// StatsKind says what a StatsEvent reports.
type StatsKind int

const (
	// StatsRole: a new term started with Role (an election was won or
	// joined).
	StatsRole StatsKind = iota + 1
	// StatsReady: the term became ready (Err nil) or failed to (Err is
	// the ready error). Elapsed is the time to ready: since the leader
	// was lost when LeaderLost is set, else since New.
	StatsReady
	// StatsLeaderLost: a ready term ended; Err says why.
	StatsLeaderLost
	// StatsFollowerJoined / StatsFollowerLeft: on the leader, a
	// follower's connection was admitted to the channel, or an admitted
	// one went away. Remote and PID say who (PID when the transport
	// reports it, else 0).
	StatsFollowerJoined
	StatsFollowerLeft
	// StatsSubscribe / StatsUnsubscribe: this Client subscribed to a new
	// key, or dropped its last listener of Key.
	StatsSubscribe
	StatsUnsubscribe
	// StatsPublish: this Client published (Unpublish: Unpublish set) a
	// registration of Bytes encoded bytes.
	StatsPublish
	// StatsPush: the real client of this Client's leader (or single
	// mode's shared one) pushed a value of Key (Bytes encoded bytes)
	// and it went to Count subscribers (the fan-out: the leader's own
	// Client, followers' connections; 1 when broadcast is off, 0 when
	// nobody subscribes).
	StatsPush
)

func (k StatsKind) String() string {
	switch k {
	case StatsRole:
		return "role"
	case StatsReady:
		return "ready"
	case StatsLeaderLost:
		return "leader-lost"
	case StatsFollowerJoined:
		return "follower-joined"
	case StatsFollowerLeft:
		return "follower-left"
	case StatsSubscribe:
		return "subscribe"
	case StatsUnsubscribe:
		return "unsubscribe"
	case StatsPublish:
		return "publish"
	case StatsPush:
		return "push"
	}
	return "StatsKind(" + strconv.Itoa(int(k)) + ")"
}

// StatsEvent is what a StatsHandler's HandleEvent gets. Which fields are
// set depends on Kind (see StatsKind).
type StatsEvent struct {
	Kind    StatsKind
	Time    time.Time
	Channel string
	Role    Role
	Term    uint64
	Err     error

	Key       string // subscribe, unsubscribe, push
	Bytes     int    // publish, push
	Count     int    // push: subscribers it went to
	Unpublish bool   // publish
	Remote    string // follower joined / left
	PID       int    // follower joined / left, when known

	Elapsed    time.Duration // ready: time to ready
	LeaderLost bool          // ready: Elapsed counts from a lost leader
}

// WithStatsHandler installs h, which observes the Client's calls and
// events (see StatsHandler). Default: none. Only one handler is kept (the
// last given); to feed several, fan out in your own handler.
func WithStatsHandler(h StatsHandler) Option {
	return func(c *config) error {
		if h == nil {
			return optErr("nil stats handler")
		}
		c.stats = h
		return nil
	}
}

// ErrorKind returns a short, stable name for the kind of err, for a
// metric's attribute: "" for nil; "timeout", "leader_lost",
// "leader_unresponsive", "unknown_method", "panic", "overloaded",
// "closed", "not_ready", "no_leader", "no_channel", "protocol",
// "handshake", "leader_timeout", "canceled", "deadline_exceeded" for the
// package's sentinels and the context errors; else the error's code
// (ErrorCode) if it has one; else "error".
func ErrorKind(err error) string {
	if err == nil {
		return ""
	}
	for _, k := range errorKinds {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	if code := ErrorCode(err); code != "" {
		return code
	}
	return "error"
}

var errorKinds = []struct {
	err  error
	name string
}{
	{ErrTimeout, "timeout"},
	{ErrLeaderLost, "leader_lost"},
	{ErrLeaderUnresponsive, "leader_unresponsive"},
	{ErrUnknownMethod, "unknown_method"},
	{ErrPanic, "panic"},
	{ErrOverloaded, "overloaded"},
	{ErrClosed, "closed"},
	{ErrNotReady, "not_ready"},
	{ErrNoLeader, "no_leader"},
	{ErrNoChannel, "no_channel"},
	{ErrHandshake, "handshake"},
	{ErrProtocol, "protocol"},
	{ErrLeaderTimeout, "leader_timeout"},
	{context.Canceled, "canceled"},
	{context.DeadlineExceeded, "deadline_exceeded"},
}

// callInfoKey is the context key under which a hooked call's *CallInfo
// travels down to the follower's session (which counts the bytes).
type callInfoKey struct{}

// hookedCall returns the *CallInfo of a hooked call's ctx (nil if none).
func hookedCall(ctx context.Context) *CallInfo {
	ci, _ := ctx.Value(callInfoKey{}).(*CallInfo)
	return ci
}

// callCtxInfo is a hooked call's context and its CallInfo in one
// allocation: its Value answers callInfoKey with the info.
type callCtxInfo struct {
	context.Context
	ci CallInfo
}

func (c *callCtxInfo) Value(key any) any {
	if key == (callInfoKey{}) {
		return &c.ci
	}
	return c.Context.Value(key)
}

// newCallInfo returns ctx carrying a new caller's CallInfo, and the info.
func newCallInfo(ctx context.Context, ci CallInfo) (context.Context, *CallInfo) {
	cc := &callCtxInfo{Context: ctx, ci: ci}
	return cc, &cc.ci
}

// noteBytes records a follower's call's bytes out in its CallInfo (only
// called when a handler is installed).
func noteBytesOut(ctx context.Context, n int) {
	if ci := hookedCall(ctx); ci != nil {
		ci.BytesOut = n
	}
}

// invokeObserved is Invoke with a handler installed.
func (c *Client) invokeObserved(ctx context.Context, h StatsHandler, method string, args []any) (Result, error) {
	ctx, ci := newCallInfo(ctx, CallInfo{Channel: c.name, Method: method, Side: SideCaller, Role: c.Role(), Start: time.Now()})
	ctx = h.TagCall(ctx, ci)
	res, role, err := c.invoke(ctx, method, args)
	ci.End = time.Now()
	c.methods.record(method, ci.End.Sub(ci.Start), err, false)
	ci.Role, ci.Err, ci.Code = role, err, ErrorKind(err)
	if !res.local {
		ci.BytesIn = len(res.data)
	}
	h.HandleCall(ctx, ci)
	return res, err
}

// onewayObserved is oneway with a handler installed: the call ends when
// it was sent (or queued for the next leader).
func (c *Client) onewayObserved(h StatsHandler, md map[string]string, method string, args []any) error {
	ctx, ci := newCallInfo(withMetadata(context.Background(), md),
		CallInfo{Channel: c.name, Method: method, Side: SideCaller, Role: c.Role(), Oneway: true, Start: time.Now()})
	ctx = h.TagCall(ctx, ci)
	md = Metadata(ctx) // a tracer added its trace context
	err := c.oneway(md, method, args)
	ci.End = time.Now()
	c.methods.record(method, ci.End.Sub(ci.Start), err, true)
	ci.Role, ci.Err, ci.Code = c.Role(), err, ErrorKind(err)
	h.HandleCall(ctx, ci)
	return err
}

// serveObserved is peer.serve with a handler installed.
func (p *peer) serveObserved(h StatsHandler, ctx context.Context, cc *callCtx, id int64, timeout int32, method string, argc int, app []byte, oneway bool) {
	lt := p.lt
	ci := &CallInfo{Channel: lt.c.name, Method: method, Side: SideServer, Role: RoleLeader, Oneway: oneway,
		Remote: p.remoteAddr(), Start: time.Now(), BytesIn: len(app)}
	ctx = h.TagCall(ctx, ci)
	out, err := p.run(ctx, cc, id, timeout, method, argc, app, oneway)
	ci.End = time.Now()
	ci.BytesOut, ci.Err, ci.Code = out, err, ErrorKind(err)
	h.HandleCall(ctx, ci)
}

// hookState is a Client's state for its StatsHandler. Goroutines that touch
// it: whoever raises an event (c.event); it is atomics only.
type hookState struct {
	born   time.Time    // New
	lostAt atomic.Int64 // unix ns of the last lost leader, 0 once ready again
}

// observeEvent turns a Client event into the handler's (h installed).
func (c *Client) observeEvent(h StatsHandler, ev *Event) {
	se := StatsEvent{Time: ev.Time, Channel: c.name, Role: ev.Role, Term: ev.Term, Err: ev.Err}
	switch ev.Kind {
	case EventRole:
		se.Kind = StatsRole
	case EventReady:
		se.Kind = StatsReady
		if ev.Err == nil {
			if lost := c.obs.lostAt.Swap(0); lost != 0 {
				se.Elapsed, se.LeaderLost = ev.Time.Sub(time.Unix(0, lost)), true
			} else {
				se.Elapsed = ev.Time.Sub(c.obs.born)
			}
		}
	case EventLeaderLost:
		se.Kind = StatsLeaderLost
		c.obs.lostAt.CompareAndSwap(0, ev.Time.UnixNano())
	case EventFollowerJoined, EventFollowerLeft:
		se.Kind = StatsFollowerJoined
		if ev.Kind == EventFollowerLeft {
			se.Kind = StatsFollowerLeft
		}
		se.Remote, se.PID = ev.Remote, ev.PID
	default:
		return
	}
	h.HandleEvent(&se)
}

// observe raises a handler event of this Client (h installed).
func (c *Client) observe(h StatsHandler, se StatsEvent) {
	se.Channel = c.name
	if se.Time.IsZero() {
		se.Time = time.Now()
	}
	h.HandleEvent(&se)
}

// observeSub reports a new or dropped subscription key (c.mu held).
func (c *Client) observeSub(key string, sub bool) {
	if h := c.cfg.stats; h != nil {
		kind := StatsSubscribe
		if !sub {
			kind = StatsUnsubscribe
		}
		c.observe(h, StatsEvent{Kind: kind, Key: key, Role: c.cur.role, Term: c.cur.num})
	}
}

// observePush reports a pushed value's fan-out (h.mu held).
func (h *host) observePush(key string, bytes, count int) {
	if sh := h.stats; sh != nil {
		sh.HandleEvent(&StatsEvent{Kind: StatsPush, Time: time.Now(), Channel: h.name, Key: key, Bytes: bytes, Count: count})
	}
}

// fanout is how many of n subscribers a pushed value goes to.
func fanout(n int, broadcast bool) int {
	if broadcast || n == 0 {
		return n
	}
	return 1
}

// followerEvent raises EventFollowerJoined once when p is admitted, and
// EventFollowerLeft once when an admitted p closes.
func (p *peer) followerEvent(kind EventKind, reason error) {
	switch kind {
	case EventFollowerJoined:
		if !p.joined.CompareAndSwap(false, true) {
			return
		}
	case EventFollowerLeft:
		if !p.joined.CompareAndSwap(true, false) {
			return
		}
		if reason == ErrClosed || link.IsEOF(reason) {
			reason = nil // a hang-up or the term's end is not news
		}
	}
	lt := p.lt
	conn := p.l.Conn()
	ev := Event{Kind: kind, Role: RoleLeader, Term: lt.num, Remote: p.remoteAddr(), Err: reason}
	if pc, ok := conn.(transport.PeerCredentials); ok {
		if cred, err := pc.PeerCred(); err == nil {
			ev.PID = int(cred.PID)
		}
	}
	lt.c.event(ev)
}

// remoteAddr returns the follower's address as text, computed once.
func (p *peer) remoteAddr() string {
	if r := p.remote.Load(); r != nil {
		return *r
	}
	r := p.l.Conn().RemoteAddr().String()
	p.remote.Store(&r)
	return r
}
