package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/go-clusterclient/clusterclient/cluster/internal/link"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-clusterclient/clusterclient/election"
	"github.com/go-clusterclient/clusterclient/protocol"
)

// ids is the process's request id counter (Node's is per process too).
var ids protocol.IDs

// extKey is the register_channel extension field of Go peers.
const extKey = "clusterclient"

// extInfo is what a Go peer says about itself in register_channel and in
// the reply. A Node peer sends none and ignores ours.
type extInfo struct {
	V     int    `json:"v"`
	Codec string `json:"codec"`
	// Handover: a follower that understands leaving (it is sent only to
	// those), or a leader that sends it.
	Handover bool `json:"handover,omitempty"`
	// Idempotent: the leader's methods a follower may send again after
	// losing a leader with the call in flight (Service.Idempotent).
	Idempotent []string `json:"idempotent,omitempty"`
	// NoAck: a peer that does without acknowledgements of pushed values
	// (subscribe_result_res). When both say so, the leader pushes to
	// that follower without waiting for them and the follower sends none:
	// a follower that stops reading is caught by the leader's write bound
	// and its heartbeats instead. Node peers acknowledge, as always.
	NoAck bool `json:"noack,omitempty"`
}

func ourExt(codec protocol.Codec) json.RawMessage {
	return extWith(codec, nil)
}

// extWith is our extension member, with the Service's idempotent methods
// (a leader's register reply, once its real client started).
func extWith(codec protocol.Codec, idempotent []string) json.RawMessage {
	b, _ := json.Marshal(extInfo{V: 1, Codec: codec.Name(), Handover: true, Idempotent: idempotent, NoAck: true})
	return b
}

// regReply is register_channel_res's app object.
type regReply struct {
	Success bool                  `json:"success"`
	Error   *protocol.RemoteError `json:"error,omitempty"`
}

// leaderTerm is one channel's leadership on a listener for one term.
type leaderTerm struct {
	c    *Client
	num  uint64
	host *host
	srv  *server
	addr string
	log  *slog.Logger
	ctx  context.Context // handler contexts; cancelled when the term ends
	stop context.CancelFunc

	mu      sync.Mutex
	peers   map[*peer]struct{}
	ended   bool
	lost    chan struct{} // closed by lose
	lostErr error
	wg      sync.WaitGroup // the idle checker, register waits

	paces link.Paces // which methods ran long lately, for all its links

	refused refusals // what it refused its peers, told once per interval
}

func newLeaderTerm(c *Client, num uint64, h *host, srv *server) *leaderTerm {
	ctx, stop := context.WithCancel(h.ctx)
	lt := &leaderTerm{
		c: c, num: num, host: h, srv: srv, addr: srv.addr, ctx: ctx, stop: stop,
		log:   c.log.With(slog.String("role", RoleLeader.String()), slog.Uint64("term", num)),
		peers: make(map[*peer]struct{}),
		lost:  make(chan struct{}),
	}
	if iv := c.cfg.heartbeat; iv > 0 && c.cfg.idleCheck {
		lt.wg.Add(1)
		go lt.idleLoop(iv)
	}
	return lt
}

// lose ends the term from below (the listener failed).
func (lt *leaderTerm) lose(err error) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	if lt.lostErr == nil {
		lt.lostErr = err
		close(lt.lost)
	}
}

// adopt takes over a connection whose first register_channel names this
// channel: the peer handles its frames from now on. It runs on the
// connection's reader, which goes on reading for the peer.
func (lt *leaderTerm) adopt(l *link.Link, accepted time.Time, id int64, timeout int32, co *protocol.ConnObject) bool {
	p := &peer{lt: lt, l: l, keys: make(map[string]struct{}), adm: newAdmission(lt.c.cfg.handshake != nil)}
	p.ctx, p.cancel = context.WithCancel(lt.ctx)
	lt.mu.Lock()
	if lt.ended {
		lt.mu.Unlock()
		p.cancel()
		return false
	}
	lt.peers[p] = struct{}{}
	lt.mu.Unlock()
	l.Conn().SetReadDeadline(time.Time{})
	l.SetHandler(p, &lt.paces)
	p.mustAdmitBy(accepted.Add(lt.c.cfg.registerDeadline))
	p.register(id, timeout, co)
	return true
}

// end closes every follower connection (they see EOF at once and elect
// again), gives up the lease (freeing the address if this was its last
// channel), then waits for the connections' goroutines and for the methods
// still running. It returns the lease's release error.
func (lt *leaderTerm) end(lease *election.Lease) error {
	lt.srv.remove(lt)
	lt.mu.Lock()
	lt.ended = true
	peers := make([]*peer, 0, len(lt.peers))
	for p := range lt.peers {
		peers = append(peers, p)
	}
	lt.mu.Unlock()
	lt.stop()
	for _, p := range peers {
		p.close(ErrClosed)
	}
	err := lease.Release()
	lt.wg.Wait()
	for _, p := range peers {
		p.l.Wait()
	}
	lt.srv.wait()
	return err
}

func (lt *leaderTerm) followers() int {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	n := 0
	for p := range lt.peers {
		if p.adm.isMember() {
			n++
		}
	}
	return n
}

// idleLoop drops followers that sent nothing for three intervals.
func (lt *leaderTerm) idleLoop(iv time.Duration) {
	defer lt.wg.Done()
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-lt.ctx.Done():
			return
		case now := <-t.C:
			lt.mu.Lock()
			var idle []*peer
			for p := range lt.peers {
				if p.l.Idle(now) > 3*iv {
					idle = append(idle, p)
				}
			}
			lt.mu.Unlock()
			for _, p := range idle {
				d := p.l.Idle(now)
				err := &Error{Op: "heartbeat", Channel: lt.c.name, Addr: lt.addr, Role: RoleLeader,
					Kind: ErrFollowerIdle, Elapsed: d,
					Err: fmt.Errorf("follower %s sent nothing for %v (max idle %v)", p.l.Conn().RemoteAddr(), d.Round(time.Millisecond), 3*iv)}
				lt.c.report(lt.num, RoleLeader, err)
				p.close(err)
			}
		}
	}
}

// peer is the leader's side of one follower connection: the protocol of
// registration, admission, subscriptions and calls. It is the Handler of
// its link, which reads the connection and schedules the calls' work (see
// package link for which goroutine does what).
//
// Goroutines that touch it: the link's reader (Request, Response, Ended,
// and so register, verify, subscribe), goroutines running its calls
// (serve, fail: sends only), the host delivering pushes (deliver, under
// the host's lock), the term's idle check and the admission timer (close,
// drop), and a goroutine per register waiting for the real client's
// start.
//
// Lock order: the host's lock, then the link's (deliver). p.mu is a leaf:
// nothing else is locked while it is held.
type peer struct {
	lt         *leaderTerm
	l          *link.Link
	adm        *admission   // where it stands: unproven, member or dropped
	overloaded atomic.Bool  // reported and dropped once
	inflight   atomic.Int32 // calls running for it (not one-way)

	joined atomic.Bool            // admitted: EventFollowerJoined was raised (EventFollowerLeft is due at close)
	remote atomic.Pointer[string] // remoteAddr's text, once computed

	// ctx is the context of its calls: cancelled when it leaves (its
	// calls still running learn that nobody waits for them) or the term
	// ends.
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	keys      map[string]struct{}
	closed    bool
	hsHello   Ext                // with a Handshake: the follower's register_channel fields
	hsReply   Ext                // and Admit's answer to them
	admission *time.Timer        // drops the connection if it is not admitted by the register deadline
	reg       regWait            // the latest register_channel waiting for the real client's start
	calls     map[int64]*callCtx // two-way calls running, by request id (for invoke_cancel)
	toldErr   error              // the ready error its register reply carried (nil: none, or success)

	handover atomic.Bool // a Go follower that understands leaving (its register said so)
	noack    atomic.Bool // a Go follower that does without push acknowledgements (its register said so)
	left     atomic.Bool // it answered leaving: it sends nothing more
}

// regWait is a register_channel that waits for the real client's start:
// one per connection, however many it sends (a follower that sends
// another gave the earlier one up, and is answered on the latest).
type regWait struct {
	id      int64
	timeout int32
	ext     Ext
	waiting bool // a goroutine waits for the start to answer it
}

// cachedMember is the Go-only member of a subscribe_result that marks the
// leader's cached value replayed to a new subscriber (Stream listeners
// skip it; Node followers ignore the member).
const cachedMember = "cached"

var cachedExt = Ext{cachedMember: json.RawMessage("true")}

// deliver pushes a value as subscribe_result (subscriber; host lock
// held); the follower's acknowledgement is awaited by the link (Unacked),
// unless it is a Go follower that does without (extInfo.NoAck).
func (p *peer) deliver(key string, data []byte, cached bool) {
	co := protocol.ConnObject{Type: protocol.KindSubscribeResult, Key: key}
	if cached {
		co.Ext = cachedExt
	}
	var err error
	if p.noack.Load() {
		err = p.l.Send(false, ids.Next(), p.lt.c.cfg.timeoutMS(), &co, data)
	} else {
		err = p.l.Notify(key, ids.Next(), p.lt.c.cfg.timeoutMS(), &co, data)
	}
	if err != nil {
		p.sendFailed("push", key, err)
		return
	}
	p.lt.c.stats.pushes.Add(1)
}

// send writes one frame to the follower. A follower that does not read is dropped at its write bound
// (WithMaxWriteBuffer for a member, WithUnprovenBuffer before its proof):
// op and key say what could not be sent. send may run under the host's
// lock (deliver): the drop runs on a goroutine of its own, once.
func (p *peer) send(op, key string, response bool, id int64, timeout int32, co *protocol.ConnObject, app []byte) {
	if err := p.l.Send(response, id, timeout, co, app); err != nil {
		p.sendFailed(op, key, err)
	}
}

// sendFailed drops the follower if err says it does not read.
func (p *peer) sendFailed(op, key string, err error) {
	if errors.Is(err, link.ErrFull) && p.overloaded.CompareAndSwap(false, true) {
		lt := p.lt
		limit, opt := lt.c.cfg.maxWriteBuffer, "WithMaxWriteBuffer"
		if !p.adm.isMember() {
			limit, opt = lt.c.cfg.unprovenBuffer, "WithUnprovenBuffer"
		}
		err := &Error{Op: op, Channel: lt.c.name, Addr: lt.addr, Role: RoleLeader, Key: key, Kind: ErrOverloaded,
			Err: fmt.Errorf("follower %s does not read: more than %d bytes queued (%s)", p.l.Conn().RemoteAddr(), limit, opt)}
		go func() {
			lt.refuse("overloaded", err)
			p.close(err)
		}()
	}
}

// Unacked reports a push the follower did not acknowledge in time.
func (p *peer) Unacked(key string, id int64) {
	lt := p.lt
	lt.c.report(lt.num, RoleLeader, &Error{Op: "push", Channel: lt.c.name, Addr: lt.addr, Role: RoleLeader,
		Key: key, Kind: ErrAckTimeout,
		Err: fmt.Errorf("follower %s sent no acknowledgement for request %d within %v", p.l.Conn().RemoteAddr(), id, lt.c.cfg.responseTimeout)})
}

// close drops the follower: its subscriptions leave the host (the last
// subscriber of a key ends the upstream subscription).
func (p *peer) close(reason error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	if p.admission != nil {
		p.admission.Stop()
	}
	keys := make([]string, 0, len(p.keys))
	for k := range p.keys {
		keys = append(keys, k)
	}
	p.mu.Unlock()
	// Nobody waits for its calls any more: those running see their
	// context end, those queued never start (the link drops them).
	p.cancel()
	p.l.Close(reason)
	p.lt.host.unsubscribeAll(p, keys)
	p.lt.mu.Lock()
	delete(p.lt.peers, p)
	p.lt.mu.Unlock()
	p.lt.srv.forget(p.l)
	p.followerEvent(EventFollowerLeft, reason)
}

// Request handles one request of the follower, on the link's reader; a
// call's work is returned as a job for the link to schedule.
func (p *peer) Request(pk protocol.Packet, co protocol.ConnObject) link.Job {
	lt := p.lt
	switch p.adm.gate(co.Type) {
	case stepAnswer:
		p.send("heartbeat", "", true, pk.ID, pk.Timeout, &protocol.ConnObject{Type: protocol.KindHeartbeatRes}, nil)
		return link.Job{}
	case stepRegister:
		p.register(pk.ID, pk.Timeout, &co)
		return link.Job{}
	case stepConfirm:
		p.verify(pk.ID, pk.Timeout, &co)
		return link.Job{}
	case stepDrop:
		// A follower that authenticates never does this.
		p.drop(fmt.Errorf("%q request before registration completed", co.Type))
		return link.Job{}
	case stepIgnore:
		lt.log.Debug("request ignored in this state of the connection", slog.String("type", co.Type))
		return link.Job{}
	}
	switch co.Type {
	case protocol.KindSubscribe, protocol.KindUnsubscribe:
		p.subscribe(&co)
	case protocol.KindStatus:
		p.status(pk.ID, pk.Timeout)
	case protocol.KindInvokeCancel:
		p.cancelCall(pk.ID)
	case protocol.KindInvoke:
		id, timeout, method, argc := pk.ID, pk.Timeout, co.Method, co.ArgLength
		max := lt.c.cfg.maxPending
		if co.Oneway && p.l.Ordered() >= max {
			lt.c.report(lt.num, RoleLeader, p.overload(method, max, "one-way calls already wait"))
			return link.Job{}
		}
		if !co.Oneway && int(p.inflight.Add(1)) > max {
			p.inflight.Add(-1)
			p.fail(id, timeout, p.overload(method, max, "calls already run"))
			return link.Job{}
		}
		ctx, cc, err := p.callContext(id, timeout, &co)
		if err != nil {
			err = &Error{Op: "invoke", Channel: lt.c.name, Addr: lt.addr, Role: RoleLeader, Method: method, Kind: ErrProtocol, Err: err}
			if co.Oneway {
				lt.refuse("metadata", err.(*Error))
			} else {
				p.inflight.Add(-1)
				p.fail(id, timeout, err)
			}
			return link.Job{}
		}
		// The arguments stay where the reader read them while the call
		// runs on the reader; the link copies them if it leaves it.
		if co.Oneway {
			return link.Job{Method: method, Ordered: true, App: pk.App, Run: func(app []byte) { p.serve(ctx, cc, id, timeout, method, argc, app, true) }}
		}
		return link.Job{Method: method, App: pk.App, Run: func(app []byte) {
			defer p.inflight.Add(-1)
			p.serve(ctx, cc, id, timeout, method, argc, app, false)
		}}
	default:
		// An unknown request type: report it, keep the connection (as Node).
		lt.c.report(lt.num, RoleLeader, &Error{Op: "request", Channel: lt.c.name, Addr: lt.addr, Role: RoleLeader,
			Kind: ErrProtocol, Err: fmt.Errorf("unsupported request type %q from %s", co.Type, p.l.Conn().RemoteAddr())})
	}
	return link.Job{}
}

// Response: acknowledgements of pushes are settled by the link; the only
// other response a follower sends is its answer to leaving.
func (p *peer) Response(_ protocol.Packet, co protocol.ConnObject) {
	if co.Type == protocol.KindLeavingRes {
		p.left.Store(true)
	}
}

// Ended is the follower's connection ending under the reader.
func (p *peer) Ended(err error) {
	lt := p.lt
	if link.IsEOF(err) {
		// A follower that exits or is killed (even mid-frame) is not
		// news: it will register again when it restarts.
		lt.log.Debug("follower disconnected", slog.String("remote", p.l.Conn().RemoteAddr().String()), slog.Any("error", err))
	} else {
		// A malformed frame: drop this connection only; it is not an
		// error of the cluster.
		lt.log.Warn("dropping follower connection", slog.String("remote", p.l.Conn().RemoteAddr().String()), slog.Any("error", err))
	}
	p.close(err)
}

// register answers register_channel once the real client is ready
// (heartbeats are answered meanwhile), with the ready error if it failed.
func (p *peer) register(id int64, timeout int32, co *protocol.ConnObject) {
	lt := p.lt
	cfg := &lt.c.cfg
	replyExt := Ext{extKey: ourExt(cfg.codec)}
	refuse := func(err error) {
		p.reply(protocol.KindRegisterChannelRes, id, timeout, toRemote(err), replyExt)
		go p.l.FlushClose(err, time.Second)
	}
	if raw, ok := co.Ext[extKey]; ok {
		var info extInfo
		if json.Unmarshal(raw, &info) == nil && info.Codec != "" && info.Codec != cfg.codec.Name() {
			refuse(&Error{Op: "register", Channel: lt.c.name, Addr: lt.addr, Role: RoleLeader, Kind: ErrProtocol,
				Err: fmt.Errorf("codec mismatch: leader speaks %q, follower %q", cfg.codec.Name(), info.Codec)})
			return
		}
		p.handover.Store(info.Handover)
		p.noack.Store(info.NoAck)
	}
	if hs := cfg.handshake; hs != nil {
		// A retried register_channel carries the same hello and
		// gets the same reply: the follower may answer either.
		p.mu.Lock()
		ext, again := p.hsReply, p.hsHello != nil && sameExt(p.hsHello, co.Ext)
		p.mu.Unlock()
		if !again {
			ctx, cancel := context.WithTimeout(lt.ctx, cfg.responseTimeout)
			var err error
			ext, err = hs.Admit(ctx, p.info(), co.Ext)
			cancel()
			if err != nil {
				err := &Error{Op: "register", Channel: lt.c.name, Addr: lt.addr, Role: RoleLeader, Kind: ErrHandshake,
					Err: fmt.Errorf("follower %s refused: %w", p.l.Conn().RemoteAddr(), err)}
				lt.refuse("handshake", err)
				refuse(err)
				return
			}
			p.mu.Lock()
			p.hsHello, p.hsReply = co.Ext, ext
			p.mu.Unlock()
		}
		for k, v := range ext {
			replyExt[k] = v
		}
	} else if p.adm.registered() {
		p.admit()
	}
	answer := func(rw regWait) {
		var re *protocol.RemoteError
		// Read and note the outcome together: retell, run after each
		// new outcome, then sees what this follower was told.
		p.mu.Lock()
		st := lt.host.current()
		err := st.err
		p.toldErr = err
		p.mu.Unlock()
		ext := rw.ext
		if err != nil {
			re = toRemote(err)
		} else if st.svc != nil && len(st.svc.Idempotent) > 0 {
			ext = maps.Clone(ext)
			ext[extKey] = extWith(cfg.codec, st.svc.Idempotent)
		}
		p.reply(protocol.KindRegisterChannelRes, rw.id, rw.timeout, re, ext)
	}
	rw := regWait{id: id, timeout: timeout, ext: replyExt}
	if lt.host.isReady() {
		answer(rw)
		return
	}
	// Before the real client started: one goroutine per connection waits
	// for the start, however many register_channel the connection sends,
	// and answers the latest.
	p.mu.Lock()
	rw.waiting = true
	waiting := p.reg.waiting
	p.reg = rw
	p.mu.Unlock()
	if waiting {
		return
	}
	lt.wg.Add(1)
	go func() {
		defer lt.wg.Done()
		select {
		case <-lt.host.ready:
			p.mu.Lock()
			rw := p.reg
			p.mu.Unlock()
			answer(rw)
		case <-p.l.Done():
		}
	}()
}

func (p *peer) info() PeerInfo {
	cfg := &p.lt.c.cfg
	return PeerInfo{Channel: p.lt.c.name, Transport: cfg.transport.Name(), Addr: cfg.addr, Conn: p.l.Conn()}
}

// mustAdmitBy drops the connection if it is not admitted by t: the
// register deadline runs from accept, whatever the real client's start
// is doing (a stranger cannot stay longer by arriving while it starts;
// a follower still waiting then is dropped and registers again).
func (p *peer) mustAdmitBy(t time.Time) {
	d := p.lt.c.cfg.registerDeadline
	p.mu.Lock()
	defer p.mu.Unlock()
	p.admission = p.adm.deadline(time.Until(t), func() {
		p.drop(fmt.Errorf("not registered within the register deadline (%v after it connected)", d))
	})
}

// verify admits the connection if the Handshake accepts the follower's
// register_confirm, and refuses it and hangs up otherwise.
func (p *peer) verify(id int64, timeout int32, co *protocol.ConnObject) {
	lt := p.lt
	hs := lt.c.cfg.handshake // set: admission's gate sends confirmations only with one
	p.mu.Lock()
	hello, reply := p.hsHello, p.hsReply
	p.mu.Unlock()
	if hello == nil {
		p.drop(errors.New("register_confirm before register_channel"))
		return
	}
	ctx, cancel := context.WithTimeout(lt.ctx, lt.c.cfg.responseTimeout)
	err := hs.Verify(ctx, p.info(), hello, reply, co.Ext)
	cancel()
	if err != nil {
		err := &Error{Op: "register", Channel: lt.c.name, Addr: lt.addr, Role: RoleLeader, Kind: ErrHandshake,
			Err: fmt.Errorf("follower %s refused: %w", p.l.Conn().RemoteAddr(), err)}
		lt.refuse("handshake", err)
		p.reply(protocol.KindRegisterConfirmRes, id, timeout, toRemote(err), nil)
		go p.l.FlushClose(err, time.Second)
		return
	}
	if !p.adm.confirmed() {
		return // dropped at the deadline meanwhile
	}
	p.admit()
	p.reply(protocol.KindRegisterConfirmRes, id, timeout, nil, nil)
}

// admit gives a connection that just became a member (admission) a
// member's budget: the frame limits of WithLimits and the write bound of
// WithMaxWriteBuffer. It runs on the connection's reader (it changes the
// Reader's limits).
func (p *peer) admit() {
	cfg := &p.lt.c.cfg
	p.mu.Lock()
	if p.admission != nil {
		p.admission.Stop()
	}
	p.mu.Unlock()
	p.l.Admit(cfg.limits, cfg.maxWriteBuffer)
	p.lt.srv.admitted(p.l)
	p.followerEvent(EventFollowerJoined, nil)
}

// drop hangs up on a connection that was not admitted.
func (p *peer) drop(cause error) {
	lt := p.lt
	err := &Error{Op: "register", Channel: lt.c.name, Addr: lt.addr, Role: RoleLeader, Kind: ErrHandshake,
		Err: fmt.Errorf("follower %s dropped: %w", p.l.Conn().RemoteAddr(), cause)}
	lt.refuse("unadmitted", err)
	p.close(err)
}

// subscribe adds the follower to a key's subscribers, or removes it. The
// key is the leader's own computation from reg (a follower cannot file
// its subscription under another registration's key); a follower at
// WithMaxSubscriptions, or a new key beyond the leader's bound, is
// refused.
func (p *peer) subscribe(co *protocol.ConnObject) {
	lt := p.lt
	cfg := &lt.c.cfg
	key := protocol.SubscriptionKey(co.Reg)
	refuse := func(kind string, err error) {
		lt.refuse(kind, &Error{Op: co.Type, Channel: lt.c.name, Addr: lt.addr, Role: RoleLeader, Key: key, Kind: ErrOverloaded, Err: err})
	}
	if co.Key != "" && co.Key != key {
		lt.refuse("key", &Error{Op: co.Type, Channel: lt.c.name, Addr: lt.addr, Role: RoleLeader, Key: co.Key, Kind: ErrProtocol,
			Err: fmt.Errorf("follower %s sent key %q for a registration whose key is %q: refused", p.l.Conn().RemoteAddr(), co.Key, key)})
		return
	}
	sub := co.Type == protocol.KindSubscribe
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	_, had := p.keys[key]
	if sub && !had && len(p.keys) >= cfg.maxSubs {
		p.mu.Unlock()
		refuse("subscriptions", fmt.Errorf("follower %s already subscribes %d keys (WithMaxSubscriptions): refused", p.l.Conn().RemoteAddr(), cfg.maxSubs))
		return
	}
	if sub {
		p.keys[key] = struct{}{}
	} else {
		delete(p.keys, key)
	}
	p.mu.Unlock()
	if !sub {
		lt.host.unsubscribe(key, p)
		return
	}
	if !lt.host.subscribeUpTo(key, co.Reg, p, cfg.maxKeys) {
		p.mu.Lock()
		delete(p.keys, key)
		p.mu.Unlock()
		refuse("keys", fmt.Errorf("the leader already subscribes %d keys for its followers (WithMaxSubscriptions): follower %s refused", cfg.maxKeys, p.l.Conn().RemoteAddr()))
	}
}

// sameExt reports whether two extension sets are byte for byte equal.
func sameExt(a, b Ext) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || string(v) != string(w) {
			return false
		}
	}
	return true
}

// reply answers register_channel or register_confirm (kind is the
// response's) with success, or with re.
func (p *peer) reply(kind string, id int64, timeout int32, re *protocol.RemoteError, ext Ext) {
	codec := p.lt.c.cfg.codec
	app, err := codec.Append(nil, regReply{Success: re == nil, Error: re})
	if err != nil {
		p.lt.log.Error("cannot encode the register reply", slog.Any("error", err))
		return
	}
	p.l.Send(true, id, timeout, &protocol.ConnObject{Type: kind, Ext: ext}, app)
}

// callContext returns the context a follower's call runs with: the
// peer's (it ends when the follower leaves or the term ends), the caller's
// deadline (the request's timeout, counted from now) and metadata. A
// two-way call's is kept until it ends, for the follower's cancellation
// (invoke_cancel). It runs on the reader, before the request after it is
// read, so a cancellation always finds its call.
func (p *peer) callContext(id int64, timeout int32, co *protocol.ConnObject) (context.Context, *callCtx, error) {
	ctx, err := withPeerMetadata(p.ctx, co.Ext)
	if err != nil || timeout <= 0 {
		return ctx, nil, err
	}
	cc := newCallCtx(ctx, time.Now().Add(protocol.Timeout(timeout)))
	if !co.Oneway {
		p.mu.Lock()
		if p.calls == nil {
			p.calls = make(map[int64]*callCtx)
		}
		p.calls[id] = cc
		p.mu.Unlock()
	}
	return cc, cc, nil
}

// cancelCall cancels the context of the follower's call id, if it still
// runs: the caller gave up.
func (p *peer) cancelCall(id int64) {
	p.mu.Lock()
	cc := p.calls[id]
	p.mu.Unlock()
	if cc != nil {
		cc.abort()
	}
}

// serve runs one invoke from the follower and answers it, unless it is
// oneway or outlived the caller's timeout (then the late reply is
// dropped and reported).
func (p *peer) serve(ctx context.Context, cc *callCtx, id int64, timeout int32, method string, argc int, app []byte, oneway bool) {
	if h := p.lt.c.cfg.stats; h != nil {
		p.serveObserved(h, ctx, cc, id, timeout, method, argc, app, oneway)
		return
	}
	p.run(ctx, cc, id, timeout, method, argc, app, oneway)
}

// run is serve's work: it returns the bytes of the reply it sent (0 for
// none) and the call's outcome.
func (p *peer) run(ctx context.Context, cc *callCtx, id int64, timeout int32, method string, argc int, app []byte, oneway bool) (sent int, err error) {
	lt := p.lt
	start := time.Now()
	if cc != nil {
		defer func() {
			if !oneway {
				p.mu.Lock()
				delete(p.calls, id)
				p.mu.Unlock()
			}
			cc.release()
		}()
	}
	var res any
	args, err := protocol.SplitArgs(app, argc)
	if err != nil {
		err = &Error{Op: "invoke", Channel: lt.c.name, Method: method, Kind: ErrProtocol, Err: err}
	} else {
		res, err = lt.host.call(ctx, method, Args{codec: lt.host.codec, enc: args})
	}
	lt.c.stats.served.Add(1)
	lt.c.servedMethods.record(method, time.Since(start), err, oneway)
	if p.ctx.Err() != nil {
		// The term ended while the method ran, or the follower left: its
		// connection is closing, and the caller must see ErrLeaderLost
		// (the effect is unknown, a retry is safe), not the context
		// cancellation the end caused inside the method.
		return 0, err
	}
	if oneway {
		if err != nil {
			lt.c.report(lt.num, RoleLeader, &Error{Op: "invoke", Channel: lt.c.name, Addr: lt.addr, Role: RoleLeader,
				Method: method, Kind: sentinelFor(err), Err: err})
		}
		return 0, err
	}
	if elapsed := time.Since(start); timeout > 0 && elapsed > protocol.Timeout(timeout) {
		err := &Error{Op: "invoke", Channel: lt.c.name, Addr: lt.addr, Role: RoleLeader,
			Method: method, Kind: ErrLeaderTimeout, Elapsed: elapsed,
			Err: fmt.Errorf("request %d from %s took %v, its timeout is %v: reply dropped", id, p.l.Conn().RemoteAddr(),
				elapsed.Round(time.Millisecond), protocol.Timeout(timeout))}
		lt.c.report(lt.num, RoleLeader, err)
		return 0, err
	}
	codec := lt.host.codec
	buf := getBuf()
	defer putBuf(buf)
	ok := err == nil
	var out []byte
	if ok {
		r, isRaw := res.(protocol.Raw)
		if isRaw && len(r) == 0 {
			res = nil
		}
		var encErr error
		if isRaw && len(r) > 0 {
			// Codecs pass Raw through unchanged: it is sent from where
			// it lies (often the arguments' frame), not copied.
			out = r
		} else if *buf, encErr = codec.Append((*buf)[:0], res); encErr != nil {
			ok = false
			err = &Error{Op: "invoke", Channel: lt.c.name, Method: method, Kind: ErrProtocol,
				Err: fmt.Errorf("cannot encode the result (%T) with the %s codec: %w", res, codec.Name(), encErr)}
		} else {
			out = *buf
		}
	}
	if ok && len(out) > appLen(lt.c.cfg.limits) {
		// The follower would drop its connection at a frame over its
		// limit, failing every call in flight on it: fail this one.
		ok = false
		err = &Error{Op: "invoke", Channel: lt.c.name, Method: method, Kind: ErrProtocol,
			Err: fmt.Errorf("the result encodes to %d bytes, more than a frame may carry (%d, WithLimits)", len(out), appLen(lt.c.cfg.limits))}
	}
	if !ok {
		return p.fail(id, timeout, err), err
	}
	p.send("invoke", "", true, id, timeout, &protocol.ConnObject{Type: protocol.KindInvokeResult, Success: true}, out)
	return len(out), nil
}

// fail answers a call with an error; it returns the reply's size.
func (p *peer) fail(id int64, timeout int32, err error) int {
	buf := getBuf()
	defer putBuf(buf)
	var body any = toRemote(err)
	if codec := p.lt.host.codec; codec.Name() == protocol.SerializeJSON.Name() {
		// As Node's leader sends it: a plain object, whose members Node's
		// follower copies onto its error (stack included; an Error
		// container's stack would not be copied).
		re := body.(*protocol.RemoteError)
		body = nodeErrorBody{Stack: re.Stack, Name: re.Name, Message: re.Message, Code: re.Code}
	}
	var encErr error
	if *buf, encErr = p.lt.host.codec.Append((*buf)[:0], body); encErr != nil {
		p.lt.log.Error("cannot encode an error reply", slog.Any("error", encErr))
		return 0
	}
	p.send("invoke", "", true, id, timeout, &protocol.ConnObject{Type: protocol.KindInvokeResult, Success: false}, *buf)
	return len(*buf)
}

// nodeErrorBody is a failed invoke_result's app object in Node's shape
// (spec.md, section 2): {stack, name, message, code}, code left out when
// there is none (Node's is undefined then).
type nodeErrorBody struct {
	Stack   string `json:"stack"`
	Name    string `json:"name"`
	Message string `json:"message"`
	Code    string `json:"code,omitempty"`
}

// overload is the error of a call refused at the WithMaxPending bound.
func (p *peer) overload(method string, max int, what string) error {
	lt := p.lt
	return &Error{Op: "invoke", Channel: lt.c.name, Addr: lt.addr, Role: RoleLeader, Method: method, Kind: ErrOverloaded,
		Err: fmt.Errorf("%d %s for %s (WithMaxPending)", max, what, p.l.Conn().RemoteAddr())}
}

// sentinelFor returns the package sentinel an error maps to, if any.
func sentinelFor(err error) error {
	var re *protocol.RemoteError
	if errors.As(err, &re) {
		return sentinelOf(re)
	}
	return nil
}

// bufPool holds encode buffers for requests and replies.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) > link.KeepBuf {
		return
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}

// unprovenAppLen bounds the app object of a frame from a connection that
// has not proved itself: none of the requests it may send (register,
// its confirmation, heartbeats, a status query) carries one.
const unprovenAppLen = 4 << 10

// unprovenLimits are the frame limits of a connection before its proof:
// conn objects as for members (a channel name travels in one), app
// objects of at most unprovenAppLen.
func unprovenLimits(l protocol.Limits) protocol.Limits {
	return protocol.Limits{MaxConnLen: l.MaxConnLen, MaxAppLen: min(unprovenAppLen, appLen(l))}
}

// appLen is the app object limit of l, its default if unset.
func appLen(l protocol.Limits) int {
	if l.MaxAppLen > 0 {
		return l.MaxAppLen
	}
	return protocol.DefaultMaxAppLen
}
