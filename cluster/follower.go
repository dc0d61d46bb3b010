package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/go-clusterclient/clusterclient/cluster/internal/link"
	"io"
	"log/slog"
	"math"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-clusterclient/clusterclient/protocol"
)

// errNotSent means a call never left this process because the term it was
// made in ended; the Client retries it in the next term (it was queued,
// not lost).
var errNotSent = errors.New("cluster: call not sent (term ended)")

// session is a follower's connection to its leader: registration, the
// Handshake's confirmation, calls, pushed values, heartbeats. It is the
// Handler of its link, which reads the connection and waits for answers
// (see package link for which goroutine reads when).
//
// Goroutines that touch it: the link's reader (Request, Response, Ended,
// and the listeners of a pushed value, run by the job Request returns),
// the Client's goroutines that call (register, invoke, sendSub), its
// heartbeat goroutine, and whoever ends it (die).
//
// Concurrency: safe for concurrent use. regMu is a leaf.
type session struct {
	c    *Client
	num  uint64
	l    *link.Link
	addr string
	log  *slog.Logger

	dead  chan struct{}
	once  sync.Once
	cause error // why it died (read after dead)
	kind  error // ErrLeaderLost, ErrLeaderUnresponsive, ...

	regMu  sync.Mutex
	regIDs []int64
	regCh  chan regAnswer
	hello  Ext         // the Handshake's hello (register reads and writes it)
	authed atomic.Bool // the leader proved itself (always, without a Handshake)
	wg     sync.WaitGroup

	reply *protocol.ConnObject // the register reply that answer checked (nil before one arrived)
	idem  map[string]bool      // the leader's idempotent methods (set by answer, read-only after)

	// The leader's hand-over (see handover.go): leaving is closed when the
	// leader said it is leaving; from then on calls are not sent on this
	// session (errNotSent: they go to the next leader), and once the calls
	// that were sent are answered, leaving_res tells the leader that
	// nothing more comes.
	leaving   chan struct{}
	leaveOnce sync.Once
	draining  atomic.Bool
	active    atomic.Int64  // calls being sent or awaiting their answer
	settled   chan struct{} // a call ended while draining (capacity 1)

	// Listeners run on the link's reader (see Request): running counts
	// those that run now, closing is set by close before it looks at it.
	// A listener may close the Client, which closes this session: close
	// then must not wait for the goroutine that runs it.
	running atomic.Int32
	closing atomic.Bool

	// noack: the leader pushes without waiting for acknowledgements
	// (its register reply said so, extInfo.NoAck); set by answer, before
	// any push.
	noack atomic.Bool
}

type regAnswer struct {
	co  protocol.ConnObject
	app []byte
}

func newSession(c *Client, num uint64, conn net.Conn) *session {
	s := &session{
		c:       c,
		num:     num,
		addr:    c.addrString(),
		dead:    make(chan struct{}),
		regCh:   make(chan regAnswer, 1),
		leaving: make(chan struct{}),
		settled: make(chan struct{}, 1),
	}
	s.authed.Store(c.cfg.handshake == nil)
	s.log = c.log.With(slog.String("role", RoleFollower.String()), slog.Uint64("term", num))
	s.l = link.New(conn, link.Config{
		MaxWriteBuffer: c.cfg.maxWriteBuffer, Limits: c.cfg.limits, Timeout: c.cfg.responseTimeout,
		MaxCalls: c.cfg.maxPending, TimeoutError: s.timeoutErr,
	}, s)
	s.l.StartReading() // the register reply
	if iv := c.cfg.heartbeat; iv > 0 {
		s.wg.Add(1)
		go s.heartbeatLoop(iv)
	}
	return s
}

func (s *session) timeoutErr(method string, id int64) error {
	d := s.c.cfg.responseTimeout
	return &Error{Op: "invoke", Channel: s.c.name, Addr: s.addr, Role: RoleFollower, Method: method,
		Kind: ErrTimeout, Elapsed: d,
		Err: fmt.Errorf("request %d unanswered", id)}
}

// die ends the session once: the connection closes, every call in flight
// fails with ErrLeaderLost, and dead is closed.
func (s *session) die(kind, cause error) {
	s.once.Do(func() {
		s.kind, s.cause = kind, cause
		err := &Error{Op: "connection", Channel: s.c.name, Addr: s.addr, Role: RoleFollower, Kind: kind, Err: cause}
		s.l.Close(err) // fails every call in flight with err
		close(s.dead)
	})
}

// close ends the session on purpose and waits for its goroutines, unless
// a listener runs on its reader (it may be the one closing the Client):
// they end once it returns.
func (s *session) close(reason error) {
	s.closing.Store(true)
	s.die(ErrClosed, reason)
	if s.running.Load() > 0 {
		return
	}
	s.wg.Wait()
	s.l.Wait()
}

// listen runs the listeners of a pushed value on the calling goroutine
// (the link's reader, or the goroutine the link gave the job) when the
// Client's callback goroutine has nothing to do, else queues the value
// for it.
func (s *session) listen(t task) {
	s.running.Add(1)
	defer s.running.Add(-1)
	if s.closing.Load() || !s.c.disp.tryRun(t) {
		s.c.disp.push(t)
	}
}

func (s *session) err() error {
	return &Error{Op: "connection", Channel: s.c.name, Addr: s.addr, Role: RoleFollower, Kind: s.kind, Err: s.cause}
}

// listenersJob names the job of a pushed value for the link's record of
// slow work (link.Paces).
const listenersJob = "listeners"

// Request handles a request of the leader: a pushed value.
func (s *session) Request(pk protocol.Packet, co protocol.ConnObject) link.Job {
	if !s.authed.Load() {
		// Nothing but the register reply may come from a leader that
		// has not proven itself yet (a stranger on the address).
		s.die(ErrHandshake, fmt.Errorf("the leader sent %q before proving itself", co.Type))
		return link.Job{}
	}
	switch co.Type {
	case protocol.KindSubscribeResult:
		// The acknowledgement first (to a leader that wants one): a
		// listener that runs long does not hold it. The listeners then
		// run on this goroutine (no hand-over between goroutines on the
		// way from the socket to them) when nothing else waits to run,
		// as a job of the link: one that runs long gives reading up
		// (see link.Link.inline). A leader that is leaving may still
		// push: its values are not delivered, the next leader's are.
		if !s.noack.Load() {
			s.l.Send(true, pk.ID, 0, &protocol.ConnObject{Type: protocol.KindSubscribeResultRes}, nil)
		}
		if !s.draining.Load() {
			_, cached := co.Ext[cachedMember]
			key := co.Key
			return link.Job{Method: listenersJob, Ordered: true, App: pk.App, Run: func(app []byte) {
				s.listen(task{key: key, data: append([]byte(nil), app...), cached: cached})
			}}
		}
	case protocol.KindLeaving:
		s.leave(pk.ID)
	default:
		s.c.report(s.num, RoleFollower, &Error{Op: "request", Channel: s.c.name, Addr: s.addr, Role: RoleFollower,
			Kind: ErrProtocol, Err: fmt.Errorf("unsupported request type %q from the leader", co.Type)})
	}
	return link.Job{}
}

// Response handles a response that answers none of the link's calls: a
// register reply goes to register; the rest (heartbeat replies, late
// answers) is dropped.
func (s *session) Response(pk protocol.Packet, co protocol.ConnObject) {
	if co.Type != protocol.KindRegisterChannelRes {
		return
	}
	s.regMu.Lock()
	ours := slices.Contains(s.regIDs, pk.ID)
	s.regMu.Unlock()
	if ours {
		select {
		case s.regCh <- regAnswer{co: co, app: append([]byte(nil), pk.App...)}:
		default: // an answer is already waiting: the first one counts
		}
	}
}

// Ended is the connection to the leader failing under the reader.
func (s *session) Ended(err error) {
	switch {
	case errors.Is(err, io.EOF):
		s.die(ErrLeaderLost, fmt.Errorf("leader closed the connection: %w", err))
	case isProtocolErr(err):
		s.die(ErrProtocol, err)
	default:
		s.die(ErrLeaderLost, err)
	}
}

// isProtocolErr reports whether err is the leader breaking the protocol
// (a malformed frame), rather than its connection failing.
func isProtocolErr(err error) bool {
	for _, e := range []error{protocol.ErrVersion, protocol.ErrPacketType, protocol.ErrNegativeLength,
		protocol.ErrTooLarge, protocol.ErrConnObject} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// heartbeatLoop sends a heartbeat every interval and declares the leader
// hung when nothing at all arrived since the previous heartbeat.
func (s *session) heartbeatLoop(iv time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(iv)
	defer t.Stop()
	var sent time.Time
	for {
		select {
		case <-s.dead:
			return
		case now := <-t.C:
			if s.l.HandOver() {
				// A listener has held the reader (its method seemed
				// fast, so nothing watched it): reading moves on, and
				// the leader is not to blame for the silence.
				sent = time.Time{}
			}
			if !sent.IsZero() && s.l.Idle(now) > now.Sub(sent) {
				s.die(ErrLeaderUnresponsive, fmt.Errorf("nothing received from the leader for %v (heartbeat every %v)",
					s.l.Idle(now).Round(time.Millisecond), iv))
				return
			}
			s.l.Send(false, ids.Next(), s.c.cfg.timeoutMS(), &protocol.ConnObject{Type: protocol.KindHeartbeat}, nil)
			sent = now
		}
	}
}

// register joins the channel: register_channel, resent every
// responseTimeout+registerRetry while the connection lives (as Node); any
// answer to any of the requests counts, so a leader that answers late
// (its real client was slow to start) costs no extra wait. It returns the
// leader's ready error as readyErr; err is a failure of the session itself
// (dead connection, refused handshake, malformed answer).
func (s *session) register(ctx context.Context) (readyErr, err error) {
	cfg := &s.c.cfg
	ext := Ext{extKey: ourExt(cfg.codec)}
	info := PeerInfo{Channel: s.c.name, Transport: cfg.transport.Name(), Addr: cfg.addr, Conn: s.l.Conn()}
	if hs := cfg.handshake; hs != nil {
		hctx, cancel := context.WithTimeout(ctx, cfg.responseTimeout)
		hello, err := hs.Hello(hctx, info)
		cancel()
		if err != nil {
			return nil, s.regErr(ErrHandshake, err)
		}
		s.hello = hello
		for k, v := range hello {
			ext[k] = v
		}
	}
	co := protocol.ConnObject{Type: protocol.KindRegisterChannel, ChannelName: s.c.name, Ext: ext}
	for attempt := 1; ; attempt++ {
		id := ids.Next()
		s.regMu.Lock()
		s.regIDs = append(s.regIDs, id)
		s.regMu.Unlock()
		if err := s.l.Send(false, id, cfg.timeoutMS(), &co, nil); err != nil {
			return nil, s.regErr(ErrLeaderLost, err)
		}
		ans, got, err := s.awaitReg(ctx, cfg.responseTimeout)
		if err != nil {
			return nil, err
		}
		if !got {
			s.c.noteWhy(s.regErr(ErrLeaderUnresponsive, fmt.Errorf("no answer to register_channel within %v (attempt %d)", cfg.responseTimeout, attempt)))
			s.log.Warn("register timed out; will retry", slog.Int("attempt", attempt),
				slog.Duration("timeout", cfg.responseTimeout), slog.Duration("retry", cfg.registerRetry))
			if ans, got, err = s.awaitReg(ctx, cfg.registerRetry); err != nil {
				return nil, err
			}
			if !got {
				continue
			}
		}
		return s.answer(ctx, info, ans)
	}
}

// awaitReg waits up to d for a reply to any register request. got
// reports a reply; err is set when the connection died or ctx ended, and
// is nil when d merely passed.
func (s *session) awaitReg(ctx context.Context, d time.Duration) (ans regAnswer, got bool, err error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case ans = <-s.regCh:
		return ans, true, nil
	case <-t.C:
	case <-s.dead:
	case <-ctx.Done():
	}
	if ans, got = s.answered(); got {
		return ans, true, nil
	}
	select {
	case <-s.dead:
		return ans, false, s.err()
	case <-ctx.Done():
		return ans, false, s.regErr(ErrClosed, ctx.Err())
	default:
		return ans, false, nil
	}
}

// answered returns a register reply already delivered, if any: a leader
// that refuses answers and then hangs up, and a select that sees both
// ready may pick the hang-up.
func (s *session) answered() (regAnswer, bool) {
	select {
	case a := <-s.regCh:
		return a, true
	default:
		return regAnswer{}, false
	}
}

func (s *session) regErr(kind, err error) error {
	return &Error{Op: "register", Channel: s.c.name, Addr: s.addr, Role: RoleFollower, Kind: kind, Err: err}
}

// answer checks the leader's register reply.
func (s *session) answer(ctx context.Context, info PeerInfo, ans regAnswer) (readyErr, err error) {
	cfg := &s.c.cfg
	s.reply = &ans.co
	if raw, ok := ans.co.Ext[extKey]; ok {
		var li extInfo
		if json.Unmarshal(raw, &li) == nil && li.Codec != "" && li.Codec != cfg.codec.Name() {
			return nil, s.regErr(ErrProtocol, fmt.Errorf("codec mismatch: leader speaks %q, this follower %q", li.Codec, cfg.codec.Name()))
		}
		s.noack.Store(li.NoAck)
		if len(li.Idempotent) > 0 {
			s.idem = make(map[string]bool, len(li.Idempotent))
			for _, m := range li.Idempotent {
				s.idem[m] = true
			}
		}
	}
	var rep regReply
	if len(ans.app) == 0 {
		return nil, s.regErr(ErrProtocol, errors.New("register reply without a body"))
	}
	if err := cfg.codec.Decode(ans.app, &rep); err != nil {
		return nil, s.regErr(ErrProtocol, fmt.Errorf("register reply: %w", err))
	}
	if !rep.Success {
		re := rep.Error
		if re == nil {
			re = &protocol.RemoteError{Name: "Error", Message: "register refused without a reason"}
		}
		kind := sentinelOf(re)
		switch kind {
		case ErrHandshake, ErrProtocol:
			return nil, s.regErr(kind, re)
		case ErrNoChannel, ErrLeaderLeft:
			// Answered before any handshake; it only makes the Client
			// try again later.
			return &Error{Op: "ready", Channel: s.c.name, Addr: s.addr, Role: RoleFollower, Kind: kind, Err: re}, nil
		case nil:
			kind = ErrNotReady
		}
		readyErr = &Error{Op: "ready", Channel: s.c.name, Addr: s.addr, Role: RoleFollower, Kind: kind, Err: re}
	}
	if hs := cfg.handshake; hs != nil {
		// The leader must prove itself before its answer, even a ready
		// error, is believed; then this follower proves itself, first.
		hctx, cancel := context.WithTimeout(ctx, cfg.responseTimeout)
		confirm, err := hs.Confirm(hctx, info, s.hello, ans.co.Ext)
		cancel()
		if err != nil {
			return nil, s.regErr(ErrHandshake, err)
		}
		s.authed.Store(true)
		if err := s.confirm(confirm); err != nil {
			return nil, err
		}
	}
	return readyErr, nil
}

// confirm sends the Handshake's proof (register_confirm) and waits until
// the leader admitted the connection, for at most the response timeout.
func (s *session) confirm(ext Ext) error {
	cfg := &s.c.cfg
	ans, err := s.l.Call(context.Background(), ids.Next(), cfg.timeoutMS(), protocol.KindRegisterConfirm,
		&protocol.ConnObject{Type: protocol.KindRegisterConfirm, Ext: ext}, nil)
	switch {
	case errors.Is(err, link.ErrNotSent), errors.Is(err, link.ErrFull), errors.Is(err, link.ErrCallsFull):
		return s.regErr(ErrLeaderLost, err)
	case err != nil: // timed out, or failed with the connection
		return s.regErr(ErrHandshake, fmt.Errorf("no admission after register_confirm: %w", err))
	}
	var rep regReply
	if err := cfg.codec.Decode(ans.Data, &rep); err != nil {
		return s.regErr(ErrProtocol, fmt.Errorf("register_confirm reply: %w", err))
	}
	if !rep.Success {
		re := rep.Error
		if re == nil {
			re = &protocol.RemoteError{Name: "Error", Message: "register_confirm refused without a reason"}
		}
		return s.regErr(ErrHandshake, re)
	}
	return nil
}

// invoke sends one call; oneway calls return once queued.
func (s *session) invoke(ctx context.Context, method string, args []any, oneway bool) (Result, error) {
	if !s.enter() {
		return Result{}, errNotSent // the leader is leaving: the next one gets it
	}
	defer s.exit()
	cfg := &s.c.cfg
	buf := getBuf()
	defer putBuf(buf)
	for i, a := range args {
		var err error
		if *buf, err = protocol.AppendArg(*buf, cfg.codec, a); err != nil {
			return Result{}, &Error{Op: "invoke", Channel: s.c.name, Addr: s.addr, Role: RoleFollower, Method: method,
				Kind: ErrProtocol, Err: fmt.Errorf("argument %d: %w", i, err)}
		}
	}
	if s.c.cfg.stats != nil {
		noteBytesOut(ctx, len(*buf))
	}
	co := protocol.ConnObject{Type: protocol.KindInvoke, Method: method, ArgLength: len(args), Oneway: oneway}
	ext, err := metadataExt(ctx)
	if err != nil {
		return Result{}, &Error{Op: "invoke", Channel: s.c.name, Addr: s.addr, Role: RoleFollower, Method: method, Err: err}
	}
	co.Ext = ext
	id := ids.Next()
	// The call's deadline: its context's, else the response timeout. The
	// leader gives the method the same deadline (the request's timeout).
	timeout := cfg.timeoutMS()
	if dl, ok := ctx.Deadline(); ok {
		timeout = timeoutUntil(dl)
	}
	if oneway {
		return Result{}, s.sendErr(method, s.l.Send(false, id, timeout, &co, *buf))
	}
	// Direct calls, not through a func value: co stays on the stack.
	var ans link.Answer
	if _, ok := ctx.Deadline(); ok {
		ans, err = s.l.CallUntil(ctx, id, timeout, method, &co, *buf) // its own deadline, which the leader gives the method too
	} else {
		ans, err = s.l.Call(ctx, id, timeout, method, &co, *buf)
	}
	if err != nil {
		var e *Error
		switch {
		case errors.Is(err, link.ErrCallsFull):
			return Result{}, &Error{Op: "invoke", Channel: s.c.name, Addr: s.addr, Role: RoleFollower, Method: method,
				Kind: ErrOverloaded, Err: fmt.Errorf("%d calls already in flight to the leader (WithMaxPending)", cfg.maxPending)}
		case errors.Is(err, link.ErrFull), errors.Is(err, link.ErrNotSent):
			return Result{}, s.sendErr(method, err)
		case errors.Is(err, link.ErrAbandoned):
			s.cancel(id)
			return Result{}, &Error{Op: "invoke", Channel: s.c.name, Addr: s.addr, Role: RoleFollower, Method: method, Err: ctx.Err()}
		case errors.As(err, &e) && e.Op == "connection":
			// The session died with the call in flight.
			return Result{}, &Error{Op: "invoke", Channel: s.c.name, Addr: s.addr, Role: RoleFollower, Method: method,
				Kind: ErrLeaderLost, Err: connCause(e)}
		}
		return Result{}, err // no answer within the response timeout
	}
	ok, data := ans.OK, ans.Data
	if ok {
		return Result{codec: cfg.codec, data: data}, nil
	}
	re := new(protocol.RemoteError)
	if derr := cfg.codec.Decode(data, re); derr != nil || (re.Message == "" && re.Name == "") {
		re = &protocol.RemoteError{Name: "Error", Message: fmt.Sprintf("undecodable error reply (%d bytes): %v", len(data), derr)}
	}
	return Result{}, &Error{Op: "invoke", Channel: s.c.name, Addr: s.addr, Role: RoleFollower, Method: method,
		Kind: sentinelOf(re), Err: fromRemote(re)}
}

// cancel tells a Go leader that the caller of request id gave up, so that
// the method's context ends there too. A Node leader knows no such
// request (it would report it): it is not told.
func (s *session) cancel(id int64) {
	if s.reply == nil || s.reply.Ext[extKey] == nil {
		return
	}
	s.l.Send(false, id, 0, &protocol.ConnObject{Type: protocol.KindInvokeCancel}, nil)
}

// timeoutUntil returns a request timeout (ms, as the header carries it)
// that ends at dl: at least 1 ms, at most what the header holds.
func timeoutUntil(dl time.Time) int32 {
	ms := (time.Until(dl) + time.Millisecond - 1) / time.Millisecond
	return int32(max(1, min(ms, math.MaxInt32)))
}

// sendErr maps a send failure: a closed connection means the call was not
// sent (retried in the next term); a full buffer fails the call.
func (s *session) sendErr(method string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, link.ErrFull):
		return &Error{Op: "invoke", Channel: s.c.name, Addr: s.addr, Role: RoleFollower, Method: method, Kind: ErrOverloaded,
			Err: fmt.Errorf("more than %d bytes wait to be sent: the leader does not read", s.c.cfg.maxWriteBuffer)}
	default:
		return errNotSent
	}
}

func (s *session) sendSub(key string, reg json.RawMessage, sub bool) {
	typ := protocol.KindSubscribe
	if !sub {
		typ = protocol.KindUnsubscribe
	}
	s.l.Send(false, ids.Next(), s.c.cfg.timeoutMS(), &protocol.ConnObject{Type: typ, Key: key, Reg: reg}, nil)
}

// idempotent reports whether the leader declared method safe to send again
// (Service.Idempotent).
func (s *session) idempotent(method string) bool { return s.idem[method] }

// enter counts a call about to be sent, unless the leader is leaving.
func (s *session) enter() bool {
	s.active.Add(1)
	if s.draining.Load() {
		s.exit()
		return false
	}
	return true
}

// exit counts a call that ended; while draining, it wakes the drain.
func (s *session) exit() {
	if s.active.Add(-1) == 0 && s.draining.Load() {
		select {
		case s.settled <- struct{}{}:
		default:
		}
	}
}

// leave handles the leader's leaving request (id), on the reader: from now
// on calls go to the next leader; once the calls sent here are answered
// (or gave up), leaving_res tells the leader nothing more comes. The
// leader then closes the connection; the Client has moved on already.
func (s *session) leave(id int64) {
	s.leaveOnce.Do(func() {
		s.draining.Store(true)
		close(s.leaving)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for s.active.Load() > 0 {
				select {
				case <-s.settled:
				case <-s.dead:
					return
				}
			}
			s.l.Send(true, id, 0, &protocol.ConnObject{Type: protocol.KindLeavingRes}, nil)
		}()
	})
}
