package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
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

// session is a follower's connection to its leader: registration, calls
// with their pending table, pushed values, heartbeats.
//
// Reading: one goroutine at a time owns the Reader (s.reading). A caller
// that finds nobody reading reads the connection itself until its own
// answer came (await): a lone call then costs no hand-over between
// goroutines, which on a small host costs more than the loopback round
// trip. It hands reading on to a background goroutine (bgLoop) when other
// calls still wait, and otherwise leaves it free; a background reader
// starts once nobody read for readerIdle (pushes, heartbeat replies and
// a dead leader are then noticed), and stops after it answered the last
// call in flight. A reading caller whose call times out or whose context
// ends is woken by kick (a past read deadline).
//
// Concurrency: safe for concurrent use; a heartbeat goroutine runs for
// its lifetime.
type session struct {
	c    *Client
	num  uint64
	w    *wire
	r    *protocol.Reader
	pend *pending
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

	rmu       sync.Mutex
	reading   bool   // a goroutine owns the Reader
	stopped   bool   // died: no background reader starts again
	freeSince moment // since when nobody reads (clear: somebody does)

	reply *protocol.ConnObject // the register reply that answer checked (nil before one arrived)
}

type regAnswer struct {
	co  protocol.ConnObject
	app []byte
}

func newSession(c *Client, num uint64, conn net.Conn) *session {
	s := &session{
		c:     c,
		num:   num,
		w:     newWire(conn, c.cfg.maxWriteBuffer),
		r:     protocol.NewReader(conn, c.cfg.limits),
		addr:  c.addrString(),
		dead:  make(chan struct{}),
		regCh: make(chan regAnswer, 1),
	}
	s.authed.Store(c.cfg.handshake == nil)
	s.log = c.log.With(slog.String("role", RoleFollower.String()), slog.Uint64("term", num))
	s.pend = newPending(c.cfg.responseTimeout, s.timeoutErr, nil)
	s.pend.max = c.cfg.maxPending
	s.pend.onExpired = s.kick
	s.reading = true
	watch.add(s)
	s.wg.Add(1)
	go s.bgLoop()
	if iv := c.cfg.heartbeat; iv > 0 {
		s.wg.Add(1)
		go s.heartbeatLoop(iv)
	}
	return s
}

func (s *session) timeoutErr(c *call) error {
	d := s.c.cfg.responseTimeout
	return &Error{Op: "invoke", Channel: s.c.name, Addr: s.addr, Role: RoleFollower, Method: c.method,
		Kind: ErrTimeout, Elapsed: d,
		Err: fmt.Errorf("server no response in %dms, address#%s (request %d)", d.Milliseconds(), s.c.cfg.addr, c.id)}
}

// die ends the session once: the connection closes, every call in flight
// fails with ErrLeaderLost, and dead is closed.
func (s *session) die(kind, cause error) {
	s.once.Do(func() {
		s.kind, s.cause = kind, cause
		err := &Error{Op: "connection", Channel: s.c.name, Addr: s.addr, Role: RoleFollower, Kind: kind, Err: cause}
		s.rmu.Lock()
		s.stopped = true
		s.freeSince.clear()
		s.rmu.Unlock()
		watch.remove(s)
		s.w.close(err)
		s.pend.fail(err)
		close(s.dead)
	})
}

// close ends the session on purpose and waits for its goroutines.
func (s *session) close(reason error) {
	s.die(ErrClosed, reason)
	s.wg.Wait()
	s.w.wait()
}

func (s *session) err() error {
	return &Error{Op: "connection", Channel: s.c.name, Addr: s.addr, Role: RoleFollower, Kind: s.kind, Err: s.cause}
}

// readerIdle is how long the connection may go unread after the last
// call was answered before a background reader starts (the watchdog
// notices within a tick).
const readerIdle = time.Millisecond

// errKicked: a read ended at a past deadline set by kick.
var errKicked = errors.New("read kicked")

// kick makes the current (or next) read return at once: a reading caller
// then checks whether its call ended some other way.
func (s *session) kick() { s.w.conn.SetReadDeadline(time.Unix(1, 0)) }

// takeReader makes the caller the reader if nobody reads.
func (s *session) takeReader() bool {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if s.reading || s.stopped {
		return false
	}
	s.reading = true
	s.freeSince.clear()
	return true
}

// handOn is a reading caller giving reading up: to a background reader
// at once when calls still wait, else after readerIdle.
func (s *session) handOn() {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	switch {
	case s.stopped:
		s.reading = false
	case s.pend.len() > 0:
		s.wg.Add(1)
		go s.bgLoop()
	default:
		s.free()
	}
}

// free leaves reading to nobody for now (s.rmu held).
func (s *session) free() {
	s.reading = false
	s.freeSince.mark()
	watch.wake()
}

// watch starts a background reader once nobody read for readerIdle.
func (s *session) watch(now time.Time) bool {
	busy, late := s.freeSince.check(now, readerIdle)
	if late {
		s.idleRead()
	}
	return busy
}

// idleRead starts a background reader if nobody reads.
func (s *session) idleRead() {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if s.reading || s.stopped {
		return
	}
	s.reading = true
	s.freeSince.clear()
	s.wg.Add(1)
	go s.bgLoop()
}

// bgLoop reads until the session dies, or until it answered the last call
// in flight (the next caller reads for itself).
func (s *session) bgLoop() {
	defer s.wg.Done()
	for {
		answered, err := s.next()
		switch {
		case err == errKicked:
			s.w.conn.SetReadDeadline(time.Time{})
			continue
		case err != nil:
			return
		case !answered:
			continue
		}
		s.rmu.Lock()
		idle := !s.stopped && s.pend.len() == 0
		if idle {
			s.free()
		}
		s.rmu.Unlock()
		if idle {
			return
		}
	}
}

// await waits for c's answer, reading the connection itself if nobody
// does. It reports false when ctx ended first and c was taken out of the
// table (c is then the caller's to put back); after true, c holds the
// answer or the error.
func (s *session) await(ctx context.Context, c *call) bool {
	if s.takeReader() && !s.readFor(ctx, c) {
		return false
	}
	select {
	case <-c.ch:
	case <-ctx.Done():
		if s.pend.remove(c) {
			return false
		}
		<-c.ch
	}
	return true
}

// readFor reads, as the reader, until c is answered (or failed), or ctx
// ended and c was taken out of the table (false); then it hands reading
// on.
func (s *session) readFor(ctx context.Context, c *call) bool {
	var stop func() bool
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, s.kick)
	}
	answered := true
	for len(c.ch) == 0 {
		_, err := s.next()
		if err == errKicked {
			s.w.conn.SetReadDeadline(time.Time{})
			if len(c.ch) == 0 && ctx.Err() != nil && s.pend.remove(c) {
				answered = false
				break
			}
			continue
		}
		if err != nil {
			break // the session died: die failed c
		}
	}
	if stop != nil {
		stop()
	}
	s.handOn()
	return answered
}

// next reads one frame and handles it. answered reports a call answered;
// err is errKicked after a kick, else an error that killed the session.
func (s *session) next() (answered bool, err error) {
	pk, err := s.r.Next()
	if err != nil {
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() && s.w.reason() == nil {
			return false, errKicked
		}
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("leader closed the connection: %w", err)
		}
		s.die(ErrLeaderLost, err)
		return false, err
	}
	s.w.touch()
	co, err := protocol.ParseConn(pk.Conn)
	if err != nil {
		s.die(ErrProtocol, err)
		return false, err
	}
	if pk.Response {
		switch co.Type {
		case protocol.KindInvokeResult, kindStatusRes, kindRegisterConfirmRes:
			var data []byte
			if len(pk.App) > 0 {
				data = append([]byte(nil), pk.App...)
			}
			answered = s.pend.settle(pk.ID, co.Success, data)
		case protocol.KindRegisterChannelRes:
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
		return answered, nil
	}
	if !s.authed.Load() {
		// Nothing but the register reply may come from a leader that
		// has not proven itself yet (a stranger on the address).
		err := fmt.Errorf("the leader sent %q before proving itself", co.Type)
		s.die(ErrHandshake, err)
		return false, err
	}
	switch co.Type {
	case protocol.KindSubscribeResult:
		// The value first: the acknowledgement's write need not delay
		// the listeners.
		s.c.deliver(co.Key, append([]byte(nil), pk.App...))
		s.w.send(true, pk.ID, 0, &protocol.ConnObject{Type: protocol.KindSubscribeResultRes}, nil)
	default:
		s.c.report(s.num, RoleFollower, &Error{Op: "request", Channel: s.c.name, Addr: s.addr, Role: RoleFollower,
			Kind: ErrProtocol, Err: fmt.Errorf("unsupported request type %q from the leader", co.Type)})
	}
	return false, nil
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
			if !sent.IsZero() && s.w.idle(now) > now.Sub(sent) {
				s.die(ErrLeaderUnresponsive, fmt.Errorf("nothing received from the leader for %v (heartbeat every %v)",
					s.w.idle(now).Round(time.Millisecond), iv))
				return
			}
			s.w.send(false, ids.Next(), s.c.cfg.timeoutMS(), &protocol.ConnObject{Type: protocol.KindHeartbeat}, nil)
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
	info := PeerInfo{Channel: s.c.name, Transport: cfg.transport.Name(), Addr: cfg.addr, Conn: s.w.conn}
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
		if err := s.w.send(false, id, cfg.timeoutMS(), &co, nil); err != nil {
			return nil, s.regErr(ErrLeaderLost, err)
		}
		ans, got, err := s.awaitReg(ctx, cfg.responseTimeout)
		if err != nil {
			return nil, err
		}
		if !got {
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
		case ErrNoChannel:
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
	id := ids.Next()
	c := getCall(id)
	c.method = kindRegisterConfirm
	if err := s.pend.add(c); err != nil {
		putCall(c)
		return s.regErr(ErrLeaderLost, err)
	}
	if err := s.w.send(false, id, cfg.timeoutMS(), &protocol.ConnObject{Type: kindRegisterConfirm, Ext: ext}, nil); err != nil {
		if !s.pend.remove(c) {
			<-c.ch // failed by die at the same moment
		}
		putCall(c)
		return s.regErr(ErrLeaderLost, err)
	}
	s.await(context.Background(), c) // answered, timed out, or failed with the connection
	data, err := c.data, c.err
	putCall(c)
	if err != nil {
		return s.regErr(ErrHandshake, fmt.Errorf("no admission after register_confirm: %w", err))
	}
	var rep regReply
	if err := cfg.codec.Decode(data, &rep); err != nil {
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
	co := protocol.ConnObject{Type: protocol.KindInvoke, Method: method, ArgLength: len(args), Oneway: oneway}
	id := ids.Next()
	if oneway {
		return Result{}, s.sendErr(method, s.w.send(false, id, cfg.timeoutMS(), &co, *buf))
	}
	c := getCall(id)
	c.method = method
	if err := s.pend.add(c); err != nil {
		putCall(c)
		if err == errPendingFull {
			return Result{}, &Error{Op: "invoke", Channel: s.c.name, Addr: s.addr, Role: RoleFollower, Method: method,
				Kind: ErrOverloaded, Err: fmt.Errorf("%d calls already in flight to the leader (WithMaxPending)", cfg.maxPending)}
		}
		return Result{}, errNotSent
	}
	if err := s.w.send(false, id, cfg.timeoutMS(), &co, *buf); err != nil {
		if s.pend.remove(c) {
			putCall(c)
			return Result{}, s.sendErr(method, err)
		}
		<-c.ch // failed by die at the same moment: it was never sent
		putCall(c)
		return Result{}, errNotSent
	}
	if !s.await(ctx, c) {
		putCall(c)
		return Result{}, &Error{Op: "invoke", Channel: s.c.name, Addr: s.addr, Role: RoleFollower, Method: method, Err: ctx.Err()}
	}
	ok, data, err := c.ok, c.data, c.err
	putCall(c)
	if err != nil {
		var e *Error
		if errors.As(err, &e) && e.Op == "connection" {
			// The session died with the call in flight.
			return Result{}, &Error{Op: "invoke", Channel: s.c.name, Addr: s.addr, Role: RoleFollower, Method: method,
				Kind: ErrLeaderLost, Err: e}
		}
		return Result{}, err
	}
	if ok {
		return Result{codec: cfg.codec, data: data}, nil
	}
	re := new(protocol.RemoteError)
	if derr := cfg.codec.Decode(data, re); derr != nil || (re.Message == "" && re.Name == "") {
		re = &protocol.RemoteError{Name: "Error", Message: fmt.Sprintf("undecodable error reply (%d bytes): %v", len(data), derr)}
	}
	return Result{}, &Error{Op: "invoke", Channel: s.c.name, Addr: s.addr, Role: RoleFollower, Method: method,
		Kind: sentinelOf(re), Err: re}
}

// sendErr maps a send failure: a closed connection means the call was not
// sent (retried in the next term); a full buffer fails the call.
func (s *session) sendErr(method string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrOverloaded):
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
	s.w.send(false, ids.Next(), s.c.cfg.timeoutMS(), &protocol.ConnObject{Type: typ, Key: key, Reg: reg}, nil)
}
