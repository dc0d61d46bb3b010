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
	"syscall"
	"time"

	"github.com/go-clusterclient/clusterclient/election"
	"github.com/go-clusterclient/clusterclient/protocol"
	"github.com/go-clusterclient/clusterclient/transport"
)

// ids is the process's request id counter (Node's is per process too).
var ids protocol.IDs

// extKey is the register_channel extension field of Go peers.
const extKey = "clusterclient"

// kindRegisterConfirm is the Go-only request a follower sends right after
// it checked the leader's register reply with its Handshake (Confirm): its
// Ext carries the follower's proof for the leader's Verify. The leader
// answers kindRegisterConfirmRes, whose app object is a regReply (in the
// channel's codec) once the connection is admitted, or with the refusal
// before it hangs up; the follower is ready only after a success.
const (
	kindRegisterConfirm    = "register_confirm"
	kindRegisterConfirmRes = "register_confirm_res"
)

// extInfo is what a Go peer says about itself in register_channel and in
// the reply. A Node peer sends none and ignores ours.
type extInfo struct {
	V     int    `json:"v"`
	Codec string `json:"codec"`
}

func ourExt(codec protocol.Codec) json.RawMessage {
	b, _ := json.Marshal(extInfo{V: 1, Codec: codec.Name()})
	return b
}

// regReply is register_channel_res's app object.
type regReply struct {
	Success bool                  `json:"success"`
	Error   *protocol.RemoteError `json:"error,omitempty"`
}

// server is the accept loop and channel demultiplexer attached to one
// shared listener (election.Lease.Attach): it reads each new connection's
// register_channel and hands the connection to that channel's leader, or
// answers at once that the channel has no leader here (Node drops it).
//
// Concurrency: safe for concurrent use.
type server struct {
	ln       net.Listener
	addr     string // "<transport> <address>" for messages
	limits   protocol.Limits
	deadline time.Duration
	maxBuf   int
	unproven int // write bound of a connection before its proof
	log      *slog.Logger

	// claimed lists the channels this process's registry has elected on
	// the address: a channel can be claimed a moment before its leader
	// joins the server, and a follower arriving in that moment waits for
	// it instead of being told there is no such channel.
	claimed func() []string

	mu       sync.Mutex
	channels map[string]*leaderTerm
	added    chan struct{} // closed and replaced when a channel joins
	unrouted map[*wire]struct{}
	// Connections held now (an evicted one no longer counts, though its
	// goroutines may take a moment to notice), and among them those not
	// yet admitted, with the time they were accepted (the first to go at
	// maxConns).
	maxConns int
	live     map[*wire]struct{}
	fresh    map[*wire]time.Time
	warned   time.Time // last warning about the connection bound
	refused  refusals  // accept failures, told once per interval
	closing  bool
	failed   error
	wg       sync.WaitGroup
}

func newServer(ln net.Listener, t transport.Transport, addr string, cfg *config, claimed func() []string) *server {
	s := &server{
		ln:       ln,
		claimed:  claimed,
		added:    make(chan struct{}),
		addr:     t.Name() + " " + addr,
		limits:   cfg.limits,
		deadline: cfg.registerDeadline,
		maxBuf:   cfg.maxWriteBuffer,
		unproven: cfg.unprovenBuffer,
		log:      cfg.logger.With(slog.String("addr", t.Name()+" "+addr), slog.String("role", RoleLeader.String())),
		channels: make(map[string]*leaderTerm),
		unrouted: make(map[*wire]struct{}),
		maxConns: cfg.maxConns,
		live:     make(map[*wire]struct{}),
		fresh:    make(map[*wire]time.Time),
	}
	s.wg.Add(1)
	go s.acceptLoop()
	return s
}

// Close is called by the election registry when the last channel on the
// address released its lease: stop accepting and drop connections that
// never registered.
func (s *server) Close() error {
	s.mu.Lock()
	s.closing = true
	for w := range s.unrouted {
		w.close(ErrClosed)
	}
	close(s.added) // wake routes waiting in lookup
	s.added = make(chan struct{})
	s.mu.Unlock()
	s.ln.Close()
	s.wg.Wait()
	return nil
}

// add makes lt the leader of its channel on this listener. It fails when
// the listener already failed or is closing.
func (s *server) add(lt *leaderTerm) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed != nil {
		return s.failed
	}
	if s.closing {
		return ErrClosed
	}
	s.channels[lt.c.name] = lt
	close(s.added)
	s.added = make(chan struct{})
	return nil
}

// lookup returns the leader of channel, waiting up to d for a channel that
// is claimed but has not joined yet.
func (s *server) lookup(channel string, d time.Duration) *leaderTerm {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		lt, added, closing := s.channels[channel], s.added, s.closing || s.failed != nil
		s.mu.Unlock()
		if lt != nil || closing || !slices.Contains(s.claimed(), channel) {
			return lt
		}
		select {
		case <-added:
		case <-deadline.C:
			return nil
		}
	}
}

func (s *server) remove(lt *leaderTerm) {
	s.mu.Lock()
	if s.channels[lt.c.name] == lt {
		delete(s.channels, lt.c.name)
	}
	s.mu.Unlock()
}

func (s *server) acceptLoop() {
	defer s.wg.Done()
	backoff := 5 * time.Millisecond
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return
			}
			if !errors.Is(err, net.ErrClosed) && !errors.Is(err, transport.ErrClosed) {
				// EMFILE, ECONNABORTED, ...: wait and go on. Out of
				// descriptors, the oldest connection that has not proved
				// itself goes, so that strangers cannot keep members out.
				if n, tell := s.refused.note("accept", time.Now()); tell {
					s.log.Warn("accept failed; retrying", slog.Any("error", err), slog.Duration("backoff", backoff), slog.Int("failures", n))
				}
				if outOfFiles(err) {
					s.mu.Lock()
					s.evictLocked("out of file descriptors")
					s.mu.Unlock()
				}
				time.Sleep(backoff)
				backoff = min(2*backoff, time.Second)
				continue
			}
			s.fail(err)
			return
		}
		backoff = 5 * time.Millisecond
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			conn.Close()
			continue
		}
		if len(s.live) >= s.maxConns && !s.evictLocked(fmt.Sprintf("%d connections open (WithMaxConns)", s.maxConns)) {
			s.mu.Unlock()
			conn.Close()
			continue
		}
		// A stranger gets a small write bound until it proves itself
		// (peer.admit lifts it).
		w := newWire(conn, s.unproven)
		now := time.Now()
		s.unrouted[w] = struct{}{}
		s.live[w] = struct{}{}
		s.fresh[w] = now
		s.wg.Add(1)
		s.mu.Unlock()
		go s.route(w, now)
	}
}

// fail is the listener dying under us (closed from outside): every
// channel leading on it ends its term and elects again.
func (s *server) fail(err error) {
	s.mu.Lock()
	s.failed = &Error{Op: "accept", Addr: s.addr, Kind: ErrListener, Err: err}
	lts := make([]*leaderTerm, 0, len(s.channels))
	for _, lt := range s.channels {
		lts = append(lts, lt)
	}
	for w := range s.unrouted {
		w.close(ErrListener)
	}
	close(s.added)
	s.added = make(chan struct{})
	failed := s.failed
	s.mu.Unlock()
	s.log.Warn("leader listener failed", slog.Any("error", err))
	for _, lt := range lts {
		lt.lose(failed)
	}
}

// evictLocked makes room at the connection bound or when the process is
// out of descriptors (why): it closes the oldest connection that is not
// admitted yet, and reports false if every one is. s.mu is held.
func (s *server) evictLocked(why string) bool {
	var oldest *wire
	var at time.Time
	for w, t := range s.fresh {
		if oldest == nil || t.Before(at) {
			oldest, at = w, t
		}
	}
	now := time.Now()
	if now.Sub(s.warned) > time.Second {
		s.warned = now
		if oldest != nil {
			s.log.Warn("connection limit reached: dropping the oldest connection that has not registered",
				slog.String("why", why), slog.String("remote", oldest.conn.RemoteAddr().String()))
		} else {
			s.log.Warn("connection limit reached with every connection registered: refusing new ones", slog.String("why", why))
		}
	}
	if oldest == nil {
		return false
	}
	delete(s.fresh, oldest)
	delete(s.live, oldest)
	oldest.close(&Error{Op: "accept", Addr: s.addr, Kind: ErrOverloaded,
		Err: fmt.Errorf("%s: the oldest connection that has not registered goes", why)})
	return true
}

// admitted takes w off the connections a newcomer may replace.
func (s *server) admitted(w *wire) {
	s.mu.Lock()
	delete(s.fresh, w)
	s.mu.Unlock()
}

// forget takes a connection that ended off the server's books.
func (s *server) forget(w *wire) {
	s.mu.Lock()
	delete(s.live, w)
	delete(s.fresh, w)
	s.mu.Unlock()
}

// connCount returns the connections open on the address.
func (s *server) connCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.live)
}

// route reads a new connection's first frames until register_channel and
// hands it to the channel's leader; for a routed connection it returns
// when the connection ends.
func (s *server) route(w *wire, accepted time.Time) {
	defer s.wg.Done()
	routed := false
	defer func() {
		if !routed { // a routed connection is forgotten when its peer closes
			s.mu.Lock()
			delete(s.unrouted, w)
			s.mu.Unlock()
			s.forget(w)
			w.close(nil)
			w.wait()
		}
	}()
	w.conn.SetReadDeadline(accepted.Add(s.deadline))
	r := protocol.NewReader(w.conn, unprovenLimits(s.limits))
	for {
		p, err := r.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				s.log.Debug("dropping unregistered connection", slog.String("remote", w.conn.RemoteAddr().String()), slog.Any("error", err))
			}
			return
		}
		if p.Response {
			continue
		}
		co, err := protocol.ParseConn(p.Conn)
		if err != nil {
			s.log.Debug("dropping unregistered connection", slog.Any("error", err))
			return
		}
		switch co.Type {
		case protocol.KindHeartbeat:
			if err := w.send(true, p.ID, p.Timeout, &protocol.ConnObject{Type: protocol.KindHeartbeatRes}, nil); err != nil {
				s.log.Debug("dropping unregistered connection that does not read", slog.String("remote", w.conn.RemoteAddr().String()), slog.Any("error", err))
				return
			}
			continue
		case kindStatus:
			if err := s.listing(w, p.ID, p.Timeout); err != nil {
				s.log.Debug("dropping unregistered connection that does not read", slog.String("remote", w.conn.RemoteAddr().String()), slog.Any("error", err))
				return
			}
			continue
		case protocol.KindRegisterChannel:
		default:
			s.log.Debug("dropping connection that did not register first", slog.String("type", co.Type))
			return
		}
		lt := s.lookup(co.ChannelName, time.Second)
		if lt != nil {
			s.mu.Lock()
			delete(s.unrouted, w)
			s.mu.Unlock()
		}
		if lt == nil || !lt.adopt(w, r, accepted, p.ID, p.Timeout, &co) {
			s.refuse(w, p.ID, p.Timeout, co.ChannelName)
			return
		}
		routed = true
		return
	}
}

// refuse answers a register_channel for a channel that has no leader here
// and hangs up. The reply is JSON-encoded {success:false,...} only if the
// follower is a Go peer (it says which codec it speaks); a Node follower
// gets serialize-json when the codec is available to a leader of another
// channel here, else nothing (it then times out as with Node).
func (s *server) refuse(w *wire, id int64, timeout int32, channel string) {
	re := toRemote(fmt.Errorf("%w: channel %q has no leader on %s", ErrNoChannel, channel, s.addr))
	re.Name, re.Code = "NoChannelError", CodeNoChannel
	s.mu.Lock()
	var codec protocol.Codec
	for _, lt := range s.channels {
		codec = lt.host.codec
		break
	}
	s.mu.Unlock()
	if codec == nil {
		codec = protocol.JSON
	}
	app, err := codec.Append(nil, regReply{Error: re})
	if err == nil {
		w.send(true, id, timeout, &protocol.ConnObject{Type: protocol.KindRegisterChannelRes,
			Ext: Ext{extKey: ourExt(codec)}}, app)
	}
	w.flushClose(ErrNoChannel, time.Second)
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
	wg      sync.WaitGroup // peers' goroutines, the idle checker

	// paces holds, by method name, the *pace of the methods that ran past
	// inlineBudget.
	paces sync.Map

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
// channel; the calling goroutine becomes the connection's reader (until
// it hands reading over, see peer.inline).
func (lt *leaderTerm) adopt(w *wire, r *protocol.Reader, accepted time.Time, id int64, timeout int32, co *protocol.ConnObject) bool {
	p := &peer{lt: lt, w: w, r: r, keys: make(map[string]struct{})}
	p.ctx, p.cancel = context.WithCancel(lt.ctx)
	p.acks = newPending(lt.c.cfg.responseTimeout, nil, p.ackExpired)
	lt.mu.Lock()
	if lt.ended {
		lt.mu.Unlock()
		p.cancel()
		return false
	}
	lt.peers[p] = struct{}{}
	lt.wg.Add(1)
	lt.mu.Unlock()
	watch.add(p)
	w.conn.SetReadDeadline(time.Time{})
	p.mustAdmitBy(accepted.Add(lt.c.cfg.registerDeadline))
	defer lt.wg.Done()
	p.register(id, timeout, co)
	p.readLoop()
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
		p.oneways.wait()
	}
	return err
}

func (lt *leaderTerm) followers() int {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	n := 0
	for p := range lt.peers {
		if p.admitted.Load() {
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
				if p.w.idle(now) > 3*iv {
					idle = append(idle, p)
				}
			}
			lt.mu.Unlock()
			for _, p := range idle {
				d := p.w.idle(now)
				err := &Error{Op: "heartbeat", Channel: lt.c.name, Addr: lt.addr, Role: RoleLeader,
					Kind: ErrFollowerIdle, Elapsed: d,
					Err: fmt.Errorf("follower %s sent nothing for %v (max idle %v)", p.w.conn.RemoteAddr(), d.Round(time.Millisecond), 3*iv)}
				lt.c.report(lt.num, RoleLeader, err)
				p.close(err)
			}
		}
	}
}

// peer is the leader's side of one follower connection.
//
// Goroutines that touch it:
//   - its reader: one goroutine at a time runs readLoop. Reading moves: the
//     watchdog starts a new reader when a call has run inline past the
//     budget (handOver), and a goroutine whose inline call returns while
//     the current reader itself runs a call takes reading back (inline's
//     compare-and-swap on relay). So nothing about the connection lives in
//     readLoop's locals: what a reader must know (is the wire held, which
//     call runs inline and since when) is in the peer or the wire, and the
//     reader that holds reading now acts on it as it is now.
//   - the watchdog (watch, handOver), goroutines running calls that left
//     the reader (serve, then w.send), the one-way queue's goroutine
//     (oneways), the host delivering pushes (deliver, under the host's
//     lock), the term's idle check and the confirm timer (close, drop).
//
// Lock order: the host's lock, then pending's or the wire's (deliver).
// p.mu is a leaf: nothing else is locked while it is held.
type peer struct {
	lt          *leaderTerm
	w           *wire
	r           *protocol.Reader
	acks        *pending
	oneways     serial
	relay       atomic.Int32 // relayIdle, relayInline or relayHanded: see inline
	inlineSince moment       // when the call the reader runs inline began (the last reader to mark it, see inline)
	admitted    atomic.Bool  // registered, and with a Handshake verified
	overloaded  atomic.Bool  // reported and dropped once
	inflight    atomic.Int32 // calls running for it (not one-way)

	// ctx is the context of its calls: cancelled when it leaves (its
	// calls still running learn that nobody waits for them) or the term
	// ends.
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	keys      map[string]struct{}
	closed    bool
	hsHello   Ext         // with a Handshake: the follower's register_channel fields
	hsReply   Ext         // and Admit's answer to them
	admission *time.Timer // drops the connection if it is not admitted by the register deadline
	reg       regWait     // the latest register_channel waiting for the real client's start
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

// deliver pushes a value as subscribe_result (subscriber; host lock held).
func (p *peer) deliver(key string, data []byte) {
	id := ids.Next()
	c := getCall(id)
	c.push, c.key = true, key
	if err := p.acks.add(c); err != nil {
		putCall(c)
		return
	}
	if err := p.w.send(false, id, p.lt.c.cfg.timeoutMS(), &protocol.ConnObject{Type: protocol.KindSubscribeResult, Key: key}, data); err != nil {
		if p.acks.remove(c) { // else the connection's end failed it, and put it back
			putCall(c)
		}
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
	if err := p.w.send(response, id, timeout, co, app); err != nil {
		p.sendFailed(op, key, err)
	}
}

// sendFailed drops the follower if err says it does not read.
func (p *peer) sendFailed(op, key string, err error) {
	if errors.Is(err, ErrOverloaded) && p.overloaded.CompareAndSwap(false, true) {
		lt := p.lt
		limit, opt := lt.c.cfg.maxWriteBuffer, "WithMaxWriteBuffer"
		if !p.admitted.Load() {
			limit, opt = lt.c.cfg.unprovenBuffer, "WithUnprovenBuffer"
		}
		err := &Error{Op: op, Channel: lt.c.name, Addr: lt.addr, Role: RoleLeader, Key: key, Kind: ErrOverloaded,
			Err: fmt.Errorf("follower %s does not read: more than %d bytes queued (%s)", p.w.conn.RemoteAddr(), limit, opt)}
		go func() {
			lt.refuse("overloaded", err)
			p.close(err)
		}()
	}
}

func (p *peer) ackExpired(c *call, _ error) {
	lt := p.lt
	lt.c.report(lt.num, RoleLeader, &Error{Op: "push", Channel: lt.c.name, Addr: lt.addr, Role: RoleLeader,
		Key: c.key, Kind: ErrAckTimeout,
		Err: fmt.Errorf("follower %s sent no acknowledgement for request %d within %v", p.w.conn.RemoteAddr(), c.id, lt.c.cfg.responseTimeout)})
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
	// context end, those queued never start.
	p.cancel()
	p.oneways.drop()
	p.w.close(reason)
	p.acks.fail(ErrClosed)
	p.lt.host.unsubscribeAll(p, keys)
	p.lt.mu.Lock()
	delete(p.lt.peers, p)
	p.lt.mu.Unlock()
	p.lt.srv.forget(p.w)
	watch.remove(p)
}

// readLoop serves the follower's requests until the connection ends, or
// until it handed reading over to another goroutine.
func (p *peer) readLoop() {
	lt := p.lt
	for {
		// While whole requests wait in the Reader's buffer, answers are
		// held, then written in one go. Whoever reads now decides, from
		// the buffer as it is now: a reader that took over, or took
		// reading back, never acts on what it saw earlier (see inline).
		p.w.setHeld(p.r.Pending())
		pk, err := p.r.Next()
		if err != nil {
			switch {
			case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
				errors.Is(err, net.ErrClosed), p.w.reason() != nil:
				// A follower that exits or is killed (even mid-frame) is
				// not news: it will register again when it restarts.
				lt.log.Debug("follower disconnected", slog.String("remote", p.w.conn.RemoteAddr().String()), slog.Any("error", err))
			default:
				// A malformed frame: drop this connection only;
				// it is not an error of the cluster.
				lt.log.Warn("dropping follower connection", slog.String("remote", p.w.conn.RemoteAddr().String()), slog.Any("error", err))
			}
			p.close(err)
			p.w.wait()
			return
		}
		if p.ctx.Err() != nil {
			// It was dropped (or the term ended) while requests it sent
			// were still buffered: none of them starts now.
			p.w.wait()
			return
		}
		p.w.touch()
		co, err := protocol.ParseConn(pk.Conn)
		if err != nil {
			lt.log.Warn("dropping follower connection", slog.Any("error", err))
			p.close(err)
			p.w.wait()
			return
		}
		if pk.Response {
			if co.Type == protocol.KindSubscribeResultRes {
				p.acks.settle(pk.ID, true, nil)
			}
			continue
		}
		if !p.handle(pk, &co) {
			return // another goroutine reads now
		}
	}
}

// States of peer.relay.
const (
	relayIdle   = iota // the reader reads
	relayInline        // the reader runs a call
	relayHanded        // the call ran long: a new goroutine reads
)

// inlineBudget is how long a call may run on the connection's reading
// goroutine before reading moves to a new goroutine (and requests of the
// follower behind it are read again): the watchdog notices within a
// tick. A method whose calls ran longer, by its own clock (not a call
// merely delayed by the OS scheduler), slowStrikes times in a row then
// runs on goroutines of its own for slowFor.
const (
	inlineBudget = time.Millisecond
	slowFor      = 10 * time.Second
	slowStrikes  = 3
)

// runsInline reports whether calls of method run on the reader (it has
// not run past inlineBudget lately).
func (lt *leaderTerm) runsInline(method string) bool {
	mp, ok := lt.paces.Load(method)
	return !ok || time.Now().UnixNano() > mp.(*pace).until.Load()
}

// pace is what a leader term knows of a method that ran long.
type pace struct {
	strikes atomic.Int32 // calls in a row that ran past inlineBudget
	until   atomic.Int64 // unix nanos until which its calls get their own goroutine
}

// ran notes how long a call of method ran. A method that ran past
// inlineBudget slowStrikes times in a row (once could be the OS
// scheduler's doing, on a loaded host) gets goroutines of its own for
// slowFor.
func (lt *leaderTerm) ran(method string, d time.Duration) {
	v, ok := lt.paces.Load(method)
	if d <= inlineBudget {
		if ok {
			v.(*pace).strikes.Store(0)
		}
		return
	}
	if !ok {
		v, _ = lt.paces.LoadOrStore(method, new(pace))
	}
	mp := v.(*pace)
	if mp.strikes.Add(1) >= slowStrikes {
		mp.until.Store(time.Now().Add(slowFor).UnixNano())
	}
}

// inline runs a call on the reading goroutine itself: a call
// that answers from memory then costs no goroutine and no hand-over
// between threads, which on a small host costs more than the whole
// loopback round trip. If f runs longer than inlineBudget, a new
// goroutine takes over reading (the watchdog calls handOver) and inline
// reports false: the caller, no longer the reader, must then return once
// f is done.
func (p *peer) inline(f func()) (reader bool) {
	p.relay.Store(relayInline)
	p.inlineSince.mark()
	watch.wake()
	f()
	p.inlineSince.clear()
	return p.relay.CompareAndSwap(relayInline, relayIdle)
}

// watch hands reading over when a call has run inline too long.
func (p *peer) watch(now time.Time) bool {
	busy, late := p.inlineSince.check(now, p.lt.c.cfg.inlineBudget)
	if late {
		p.handOver()
	}
	return busy
}

// handOver starts a new reader if a call still runs inline.
func (p *peer) handOver() {
	if !p.relay.CompareAndSwap(relayInline, relayHanded) {
		return
	}
	// The old reader still holds its counts until its call returns, so
	// these Adds cannot race with the Waits.
	lt := p.lt
	lt.srv.wg.Add(1)
	lt.wg.Add(1)
	go func() {
		defer lt.srv.wg.Done()
		defer lt.wg.Done()
		p.readLoop()
	}()
}

// handle serves one request; it reports false when reading was handed
// over to another goroutine meanwhile (see inline).
func (p *peer) handle(pk protocol.Packet, co *protocol.ConnObject) bool {
	lt := p.lt
	switch co.Type {
	case protocol.KindHeartbeat:
		p.send("heartbeat", "", true, pk.ID, pk.Timeout, &protocol.ConnObject{Type: protocol.KindHeartbeatRes}, nil)
		return true
	case protocol.KindRegisterChannel:
		p.register(pk.ID, pk.Timeout, co)
		return true
	case kindRegisterConfirm:
		p.verify(pk.ID, pk.Timeout, co)
		return true
	}
	if !p.admitted.Load() {
		if lt.c.cfg.handshake != nil {
			// A follower that authenticates never does this.
			p.drop(fmt.Errorf("%q request before registration completed", co.Type))
			return true
		}
		lt.log.Debug("request before registration ignored", slog.String("type", co.Type))
		return true
	}
	switch co.Type {
	case protocol.KindSubscribe, protocol.KindUnsubscribe:
		p.subscribe(co)
	case kindStatus:
		p.status(pk.ID, pk.Timeout)
	case protocol.KindInvoke:
		id, timeout, method, argc := pk.ID, pk.Timeout, co.Method, co.ArgLength
		max := lt.c.cfg.maxPending
		if co.Oneway {
			if p.oneways.len() >= max {
				lt.c.report(lt.num, RoleLeader, p.overload(method, max, "one-way calls already wait"))
				return true
			}
			app := append([]byte(nil), pk.App...)
			f := func() { p.serve(id, timeout, method, argc, app, true) }
			if !lt.runsInline(method) || !p.oneways.claim() {
				p.oneways.do(f)
				return true
			}
			// Nothing queued or running: run it here, and any one-way call
			// queued behind it meanwhile (after a hand-over) after it.
			return p.inline(func() { f(); p.oneways.run() })
		}
		if int(p.inflight.Add(1)) > max {
			p.inflight.Add(-1)
			p.fail(id, timeout, p.overload(method, max, "calls already run"))
			return true
		}
		// The call's own copy: it may outlive the reader's buffer.
		app := append([]byte(nil), pk.App...)
		serve := func() {
			defer p.inflight.Add(-1)
			p.serve(id, timeout, method, argc, app, false)
		}
		if lt.runsInline(method) {
			return p.inline(serve)
		}
		lt.wg.Add(1)
		go func() {
			defer lt.wg.Done()
			serve()
		}()
	default:
		// An unknown request type: report it, keep the connection (as Node).
		lt.c.report(lt.num, RoleLeader, &Error{Op: "request", Channel: lt.c.name, Addr: lt.addr, Role: RoleLeader,
			Kind: ErrProtocol, Err: fmt.Errorf("unsupported request type %q from %s", co.Type, p.w.conn.RemoteAddr())})
	}
	return true
}

// register answers register_channel once the real client is ready
// (heartbeats are answered meanwhile), with the ready error if it failed.
func (p *peer) register(id int64, timeout int32, co *protocol.ConnObject) {
	lt := p.lt
	cfg := &lt.c.cfg
	replyExt := Ext{extKey: ourExt(cfg.codec)}
	refuse := func(err error) {
		p.reply(protocol.KindRegisterChannelRes, id, timeout, toRemote(err), replyExt)
		go p.w.flushClose(err, time.Second)
	}
	if raw, ok := co.Ext[extKey]; ok {
		var info extInfo
		if json.Unmarshal(raw, &info) == nil && info.Codec != "" && info.Codec != cfg.codec.Name() {
			refuse(&Error{Op: "register", Channel: lt.c.name, Addr: lt.addr, Role: RoleLeader, Kind: ErrProtocol,
				Err: fmt.Errorf("codec mismatch: leader speaks %q, follower %q", cfg.codec.Name(), info.Codec)})
			return
		}
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
					Err: fmt.Errorf("follower %s refused: %w", p.w.conn.RemoteAddr(), err)}
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
	} else {
		p.admit()
	}
	answer := func(rw regWait) {
		var re *protocol.RemoteError
		if err := lt.host.err; err != nil {
			re = toRemote(err)
		}
		p.reply(protocol.KindRegisterChannelRes, rw.id, rw.timeout, re, rw.ext)
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
		case <-p.w.closed:
		}
	}()
}

func (p *peer) info() PeerInfo {
	cfg := &p.lt.c.cfg
	return PeerInfo{Channel: p.lt.c.name, Transport: cfg.transport.Name(), Addr: cfg.addr, Conn: p.w.conn}
}

// mustAdmitBy drops the connection if it is not admitted by t: the
// register deadline runs from accept, whatever the real client's start
// is doing (a stranger cannot stay longer by arriving while it starts;
// a follower still waiting then is dropped and registers again).
func (p *peer) mustAdmitBy(t time.Time) {
	d := p.lt.c.cfg.registerDeadline
	p.mu.Lock()
	defer p.mu.Unlock()
	p.admission = time.AfterFunc(time.Until(t), func() {
		if !p.admitted.Load() {
			p.drop(fmt.Errorf("not registered within the register deadline (%v after it connected)", d))
		}
	})
}

// verify admits the connection if the Handshake accepts the follower's
// register_confirm, and refuses it and hangs up otherwise.
func (p *peer) verify(id int64, timeout int32, co *protocol.ConnObject) {
	lt := p.lt
	hs := lt.c.cfg.handshake
	if hs == nil || p.admitted.Load() {
		return // nothing to confirm: a peer that sends it anyway is ignored
	}
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
			Err: fmt.Errorf("follower %s refused: %w", p.w.conn.RemoteAddr(), err)}
		lt.refuse("handshake", err)
		p.reply(kindRegisterConfirmRes, id, timeout, toRemote(err), nil)
		go p.w.flushClose(err, time.Second)
		return
	}
	p.admit()
	p.reply(kindRegisterConfirmRes, id, timeout, nil, nil)
}

// admit lets the connection's requests through, and gives it a member's
// budget: the frame limits of WithLimits and the write bound of
// WithMaxWriteBuffer. It runs on the connection's reader (it changes the
// Reader's limits).
func (p *peer) admit() {
	if p.admitted.Swap(true) {
		return
	}
	cfg := &p.lt.c.cfg
	p.mu.Lock()
	if p.admission != nil {
		p.admission.Stop()
	}
	p.mu.Unlock()
	p.r.SetLimits(cfg.limits)
	p.w.setMax(cfg.maxWriteBuffer)
	p.lt.srv.admitted(p.w)
}

// drop hangs up on a connection that was not admitted.
func (p *peer) drop(cause error) {
	lt := p.lt
	err := &Error{Op: "register", Channel: lt.c.name, Addr: lt.addr, Role: RoleLeader, Kind: ErrHandshake,
		Err: fmt.Errorf("follower %s dropped: %w", p.w.conn.RemoteAddr(), cause)}
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
			Err: fmt.Errorf("follower %s sent key %q for a registration whose key is %q: refused", p.w.conn.RemoteAddr(), co.Key, key)})
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
		refuse("subscriptions", fmt.Errorf("follower %s already subscribes %d keys (WithMaxSubscriptions): refused", p.w.conn.RemoteAddr(), cfg.maxSubs))
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
		refuse("keys", fmt.Errorf("the leader already subscribes %d keys for its followers (WithMaxSubscriptions): follower %s refused", cfg.maxKeys, p.w.conn.RemoteAddr()))
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
	p.w.send(true, id, timeout, &protocol.ConnObject{Type: kind, Ext: ext}, app)
}

// serve runs one invoke from the follower and answers it, unless it is
// oneway or outlived the caller's timeout (then the late reply is
// dropped and reported).
func (p *peer) serve(id int64, timeout int32, method string, argc int, app []byte, oneway bool) {
	lt := p.lt
	start := time.Now()
	ctx := p.ctx
	if timeout > 0 {
		cc := newCallCtx(ctx, start.Add(protocol.Timeout(timeout)))
		defer cc.release()
		ctx = cc
	}
	var res any
	args, err := protocol.SplitArgs(app, argc)
	if err != nil {
		err = &Error{Op: "invoke", Channel: lt.c.name, Method: method, Kind: ErrProtocol, Err: err}
	} else {
		res, err = lt.host.call(ctx, method, Args{codec: lt.host.codec, enc: args})
		lt.ran(method, time.Since(start))
	}
	lt.c.stats.served.Add(1)
	if p.ctx.Err() != nil {
		// The term ended while the method ran, or the follower left: its
		// connection is closing, and the caller must see ErrLeaderLost
		// (the effect is unknown, a retry is safe), not the context
		// cancellation the end caused inside the method.
		return
	}
	if oneway {
		if err != nil {
			lt.c.report(lt.num, RoleLeader, &Error{Op: "invoke", Channel: lt.c.name, Addr: lt.addr, Role: RoleLeader,
				Method: method, Kind: sentinelFor(err), Err: err})
		}
		return
	}
	if elapsed := time.Since(start); timeout > 0 && elapsed > protocol.Timeout(timeout) {
		lt.c.report(lt.num, RoleLeader, &Error{Op: "invoke", Channel: lt.c.name, Addr: lt.addr, Role: RoleLeader,
			Method: method, Kind: ErrLeaderTimeout, Elapsed: elapsed,
			Err: fmt.Errorf("request %d from %s took %v, its timeout is %v: reply dropped", id, p.w.conn.RemoteAddr(),
				elapsed.Round(time.Millisecond), protocol.Timeout(timeout))})
		return
	}
	codec := lt.host.codec
	buf := getBuf()
	defer putBuf(buf)
	ok := err == nil
	if ok {
		if r, isRaw := res.(protocol.Raw); isRaw && len(r) == 0 {
			res = nil
		}
		var encErr error
		if *buf, encErr = codec.Append((*buf)[:0], res); encErr != nil {
			ok = false
			err = &Error{Op: "invoke", Channel: lt.c.name, Method: method, Kind: ErrProtocol,
				Err: fmt.Errorf("cannot encode the result (%T) with the %s codec: %w", res, codec.Name(), encErr)}
		}
	}
	if ok && len(*buf) > appLen(lt.c.cfg.limits) {
		// The follower would drop its connection at a frame over its
		// limit, failing every call in flight on it: fail this one.
		ok = false
		err = &Error{Op: "invoke", Channel: lt.c.name, Method: method, Kind: ErrProtocol,
			Err: fmt.Errorf("the result encodes to %d bytes, more than a frame may carry (%d, WithLimits)", len(*buf), appLen(lt.c.cfg.limits))}
	}
	if !ok {
		p.fail(id, timeout, err)
		return
	}
	p.send("invoke", "", true, id, timeout, &protocol.ConnObject{Type: protocol.KindInvokeResult, Success: true}, *buf)
}

// fail answers a call with an error.
func (p *peer) fail(id int64, timeout int32, err error) {
	buf := getBuf()
	defer putBuf(buf)
	var encErr error
	if *buf, encErr = p.lt.host.codec.Append((*buf)[:0], toRemote(err)); encErr != nil {
		p.lt.log.Error("cannot encode an error reply", slog.Any("error", encErr))
		return
	}
	p.send("invoke", "", true, id, timeout, &protocol.ConnObject{Type: protocol.KindInvokeResult, Success: false}, *buf)
}

// overload is the error of a call refused at the WithMaxPending bound.
func (p *peer) overload(method string, max int, what string) error {
	lt := p.lt
	return &Error{Op: "invoke", Channel: lt.c.name, Addr: lt.addr, Role: RoleLeader, Method: method, Kind: ErrOverloaded,
		Err: fmt.Errorf("%d %s for %s (WithMaxPending)", max, what, p.w.conn.RemoteAddr())}
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
	if cap(*b) > keepBuf {
		return
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}

// serial runs functions one at a time, in order, on a goroutine that
// exists only while there is work (a follower's one-way calls run in the
// order they arrived, without blocking its reader for long: the reader
// runs one itself when nothing else waits, see claim).
type serial struct {
	mu      sync.Mutex
	q       []func()
	running bool
	wg      sync.WaitGroup
}

// claim reports whether nothing runs or waits; the caller then runs its
// function itself and calls run afterwards, as the goroutine would.
func (s *serial) claim() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running || len(s.q) > 0 {
		return false
	}
	s.running = true
	s.wg.Add(1)
	return true
}

func (s *serial) do(f func()) {
	s.mu.Lock()
	s.q = append(s.q, f)
	if !s.running {
		s.running = true
		s.wg.Add(1)
		go s.run()
	}
	s.mu.Unlock()
}

func (s *serial) run() {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		if len(s.q) == 0 {
			s.running = false
			s.mu.Unlock()
			return
		}
		f := s.q[0]
		s.q[0] = nil
		s.q = s.q[1:]
		s.mu.Unlock()
		f()
	}
}

func (s *serial) wait() { s.wg.Wait() }

// drop forgets the functions still waiting (their caller left); one that
// runs goes on.
func (s *serial) drop() {
	s.mu.Lock()
	clear(s.q)
	s.q = s.q[:0]
	s.mu.Unlock()
}

// len returns the number of functions waiting.
func (s *serial) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.q)
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
