package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/go-clusterclient/clusterclient/cluster/internal/link"
	"github.com/go-clusterclient/clusterclient/election"
	"github.com/go-clusterclient/clusterclient/protocol"
)

// DefaultMaxQueued bounds the one-way calls (InvokeOneway, Unpublish) a
// Client queues while it has no ready leader; beyond it they fail with
// ErrOverloaded.
const DefaultMaxQueued = 10000

// Listener receives the values of a subscription. It runs on a goroutine
// of the Client, never on the goroutine of a call into it (never inside
// Subscribe, but possibly before Subscribe returned), and gets its own
// copy of each value. Listeners of a Client run one at a time, in order:
// a slow listener delays the others, and values wait for it in memory
// (they are never dropped). A listener may call its Client, Close
// included. Which goroutine: the Client's callback goroutine, or, on a
// follower, the goroutine that read the value from the leader when no
// listener or event handler runs or waits (no hand-over between
// goroutines). A listener that has been fast and then blocks holds that
// reading until a call of the Client needs it or the next heartbeat
// (WithHeartbeatInterval); meanwhile the values for this process wait on
// the leader, within its bound for a follower (WithMaxWriteBuffer): a
// follower whose blocked listener lets more than that pile up is
// disconnected, and subscribes again with the latest value.
type Listener func(v Value)

// Client is a cluster client: the object user code calls. Whether this
// process leads (owns the real client) or follows (forwards to the leader)
// is decided by election and may change after a failover; the API behaves
// the same either way.
//
// Concurrency: every method is safe for concurrent use. Listeners and the
// event handler run one at a time per Client, in order (see Listener).
type Client struct {
	name    string
	factory Factory
	cfg     config
	log     *slog.Logger
	disp    *dispatcher

	ctx     context.Context // cancelled by Close
	cancel  context.CancelFunc
	runDone chan struct{} // the supervisor exited
	bg      sync.WaitGroup

	mu       sync.Mutex
	cur      *term
	subs     map[string]*wsub
	pubs     map[string]*wpub
	pubSeq   uint64
	queued   []queuedCall
	closed   bool
	closeCtx context.Context
	termSeq  uint64
	// why is the last reason no leader was ready (a refused handshake, a
	// codec mismatch, a stranger on the address, a silent leader, ...),
	// until a term is ready: Ready and calls that give up wrap it.
	why error

	localOneways link.Serial // one-way calls on a leader / single mode, in order

	closeOnce sync.Once
	closeDone chan struct{}
	closeErr  error

	stats clientStats
	// Per-method figures (Stats.Methods, Stats.ServedMethods) and the
	// StatsHandler's state (statshandler.go, stats_methods.go).
	methods, servedMethods methodTable
	obs                    hookState
}

type clientStats struct {
	invokes, invokeErrors, timeouts, leaderLost atomic.Uint64
	served, deliveries, pushes, elections       atomic.Uint64
	events, retried                             atomic.Uint64
}

// term is the Client's state between two elections: its role, the inner
// that serves calls (nil until attached) and its phase. Fields are read
// and written under Client.mu.
type term struct {
	num   uint64
	role  Role
	inner inner
	phase termPhase
	done  chan struct{} // closed when settled (ready or failed)
	err   error         // the ready error, once failed
	ended chan struct{} // closed when the Client moved on to another term
}

// termPhase is where a term stands. A term starts electing (an election
// runs, or a follower registers with its leader: no inner yet), becomes
// replaying once its inner is attached (remembered publications and
// one-way calls queued meanwhile go to the new leader first), and settles
// once: ready, or failed with its ready error. A term the Client moved on
// from is ended (its ended channel is closed), whatever its phase. A
// leader's (or single mode's) failed term whose retried factory succeeded
// is replaced by a fresh term of the same number, role and inner
// (recoverTerm), which replays and becomes ready.
type termPhase int

const (
	termElecting termPhase = iota
	termReplaying
	termReady
	termFailed
)

func newTermState(num uint64, role Role) *term {
	return &term{num: num, role: role, done: make(chan struct{}), ended: make(chan struct{})}
}

func (t *term) ready() bool   { return t.phase == termReady }
func (t *term) settled() bool { return t.phase == termReady || t.phase == termFailed }

// inner is what serves a term: a host in this process (leader, single
// mode) or a session with the leader (follower).
type inner interface {
	invoke(ctx context.Context, method string, args []any, oneway bool) (Result, error)
	subscribe(key string, reg json.RawMessage)
	unsubscribe(key string, reg json.RawMessage)
	publish(data []byte, unpublish bool) error
	fill(st *Stats)
	// idempotent reports whether a call of method that failed with
	// ErrLeaderLost may be sent again to the next leader.
	idempotent(method string) bool
}

// wsub is one subscription key of this Client.
type wsub struct {
	key       string
	reg       json.RawMessage
	listeners []*listener // copy-on-write
	cache     []byte
	cached    bool
	timer     *time.Timer
	timerGen  uint64
}

type listener struct {
	fn      Listener
	key     string
	stream  bool // Stream: no value from before it subscribed
	removed atomic.Bool
}

// A SubscribeOption changes what a listener receives.
type SubscribeOption func(*listener)

// Stream makes a listener receive only the values that arrive after it
// subscribed: a stream of messages, where a late subscriber must not get
// the last one again. By default a listener is a subscriber of state
// (Node's meaning): a late subscriber first gets the cached last value.
// After a failover the new leader's real client subscribes upstream
// again, and what the upstream sends then arrives as new values; the new
// leader's cached replays do not. With a Node leader (which does not mark
// its replays) a stream listener of a Go follower may get the cached value
// once.
func Stream() SubscribeOption { return func(l *listener) { l.stream = true } }

type wpub struct {
	data []byte // codec-encoded registration
	seq  uint64
}

type queuedCall struct {
	method string
	args   []any
	md     map[string]string // metadata (InvokeOnewayContext)
}

// New creates a Client for the channel name (Node's client name; followers
// find their leader by it) and starts its election in the background. The
// factory builds the real client; it runs only in the leader. Invalid
// arguments fail here, among them a name too long for a follower's
// register_channel to fit the conn object limit (WithLimits) or package
// auth's auth.MaxIdentityField; everything else is reported by Ready and
// by each call.
func New(name string, factory Factory, opts ...Option) (*Client, error) {
	if name == "" {
		return nil, optErr("empty client name")
	}
	if !utf8.ValidString(name) {
		// It could never be matched: the wire carries it as JSON text.
		return nil, optErr("client name %q is not valid UTF-8", name)
	}
	if factory == nil {
		return nil, optErr("nil factory for %q", name)
	}
	cfg := defaultConfig()
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return nil, fmt.Errorf("cluster.New(%q): %w", name, err)
		}
	}
	if err := cfg.resolve(os.Getenv); err != nil {
		return nil, fmt.Errorf("cluster.New(%q): %w", name, err)
	}
	if err := cfg.checkChannel(name); err != nil {
		return nil, err // not prefixed with the name: it may be huge
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{
		name:      name,
		factory:   factory,
		cfg:       cfg,
		ctx:       ctx,
		cancel:    cancel,
		runDone:   make(chan struct{}),
		subs:      make(map[string]*wsub),
		pubs:      make(map[string]*wpub),
		closeDone: make(chan struct{}),
		cur:       newTermState(0, RoleNone),
	}
	c.obs.born = time.Now()
	attrs := []any{slog.String("channel", name)}
	if !cfg.single {
		attrs = append(attrs, slog.String("addr", c.addrString()))
	}
	c.log = cfg.logger.With(attrs...)
	if cfg.insecure && !cfg.single {
		c.log.Warn("authentication is off: any local process that can reach the address can join this cluster, " +
			"call its methods and read its values, and whoever binds the address first leads (see SECURITY.md)")
	}
	c.disp = newDispatcher(cfg.eventBuffer, c.runTask)
	go c.run()
	return c, nil
}

// Name returns the channel name.
func (c *Client) Name() string { return c.name }

func (c *Client) addrString() string {
	if c.cfg.single {
		return ""
	}
	return c.cfg.transport.Name() + " " + c.cfg.addr
}

// ---- supervisor ----

// run is the supervisor: it elects, runs one term at a time, and elects
// again when a term ends, until Close.
func (c *Client) run() {
	defer close(c.runDone)
	if c.cfg.single {
		c.runSingle()
		return
	}
	bo := backoff{min: 10 * time.Millisecond, max: 2 * time.Second}
	first := true
	for c.ctx.Err() == nil {
		ecfg := c.cfg.electionConfig(c.name)
		var out election.Outcome
		var err error
		if first {
			out, err = c.cfg.registry.Elect(c.ctx, ecfg)
		} else {
			out, err = c.cfg.registry.Reelect(c.ctx, ecfg)
		}
		first = false
		if err != nil {
			if c.ctx.Err() != nil {
				return
			}
			c.failTerm(&Error{Op: "elect", Channel: c.name, Addr: c.addrString(), Err: err})
			c.sleep(bo.next())
			continue
		}
		c.stats.elections.Add(1)
		var ok bool
		switch out.Role {
		case election.Leader:
			ok = c.runLeader(out.Lease)
		case election.Follower:
			ok = c.runFollower(out.Conn)
		}
		if ok {
			bo.reset()
		} else {
			c.sleep(bo.next())
		}
	}
}

func (c *Client) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-c.ctx.Done():
	}
}

type backoff struct{ min, max, cur time.Duration }

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	return b.cur
}

func (b *backoff) reset() { b.cur = 0 }

// teardownCtx is the context for closing a term's resources: Close's
// context without its cancellation (the teardown always completes; Close
// stops waiting when its context ends), or a background one.
func (c *Client) teardownCtx() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeCtx != nil {
		return context.WithoutCancel(c.closeCtx)
	}
	return context.Background()
}

// closeContext is Close's context (a leader's hand-over ends with it), or
// a background one before Close.
func (c *Client) closeContext() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeCtx != nil {
		return c.closeCtx
	}
	return context.Background()
}

// runLeader serves one leadership term. It reports whether the term became
// settled (so the supervisor need not back off).
func (c *Client) runLeader(lease *election.Lease) bool {
	srv, ok := election.Attach(lease, func(ln net.Listener) *server {
		return newServer(ln, c.cfg.transport, lease.Addr(), &c.cfg, lease.Channels)
	})
	if !ok {
		lease.Release()
		return false
	}
	num := c.nextTerm()
	log := c.log.With(slog.String("role", RoleLeader.String()), slog.Uint64("term", num))
	h := newHost(c.name, &c.cfg, log)
	h.attach(c)
	lt := newLeaderTerm(c, num, h, srv)
	if err := srv.add(lt); err != nil {
		lt.end(lease)
		h.close(context.Background())
		return false
	}
	t := c.startTerm(num, RoleLeader, &localInner{c: c, h: h, lt: lt, role: RoleLeader})
	log.Debug("leading", slog.Any("channels", lease.Channels()))
	h.start(c.factory)
	settled := false
	select {
	case <-h.ready:
		settled = true
		t = c.followStart(t, h, lt.lost, lt.retell)
		select {
		case <-c.ctx.Done():
		case <-lt.lost:
		}
	case <-c.ctx.Done():
	case <-lt.lost:
	}
	closing := c.ctx.Err() != nil
	if !closing {
		c.lostTerm(t, lt.lostErr)
	}
	var relErr error
	if closing && settled && c.cfg.handover > 0 {
		relErr, _ = lt.handOver(c.closeContext(), lease)
	}
	relErr = errors.Join(relErr, lt.end(lease))
	c.localOneways.Wait()
	h.detach(c)
	if closing {
		c.keepCloseErr(h.close(c.teardownCtx()))
		c.keepCloseErr(relErr)
		return settled
	}
	// The listener failed: the old real client closes in the background
	// while this process competes again.
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		if err := h.close(context.Background()); err != nil {
			c.report(num, RoleLeader, &Error{Op: "close", Channel: c.name, Role: RoleLeader, Err: err})
		}
	}()
	return settled
}

// runFollower serves one term as a follower over conn.
func (c *Client) runFollower(conn net.Conn) bool {
	num := c.nextTerm()
	s := newSession(c, num, conn)
	t := c.startTerm(num, RoleFollower, nil)
	readyErr, err := s.register(c.ctx)
	if err != nil {
		s.close(err)
		if c.ctx.Err() != nil {
			return false
		}
		s.log.Warn("registration failed", slog.Any("error", err))
		if !errors.Is(err, ErrLeaderLost) {
			c.report(num, RoleFollower, err)
		}
		c.lostTerm(t, err)
		return false
	}
	if readyErr != nil && errors.Is(readyErr, ErrLeaderLeft) {
		// Its leader is handing over on a transport that keeps the
		// address meanwhile (see handover.go): calls wait, the
		// supervisor tries again after its backoff.
		s.close(nil)
		c.lostTerm(t, readyErr)
		return false
	}
	if readyErr != nil {
		c.settle(t, readyErr)
		if errors.Is(readyErr, ErrNoChannel) {
			// Another process owns the address but leads no such
			// channel: fail fast now, try again later.
			s.log.Warn("no leader for this channel on the address; will retry", slog.Any("error", readyErr),
				slog.Duration("retry", c.cfg.registerRetry))
			s.close(nil)
			c.sleep(c.cfg.registerRetry)
			if c.ctx.Err() == nil {
				c.lostTerm(t, readyErr)
			}
			return true
		}
		// The leader's real client failed: stay failed until the
		// leader goes away.
		select {
		case <-s.dead:
		case <-c.ctx.Done():
		}
		s.close(nil)
		if c.ctx.Err() == nil {
			c.lostTerm(t, s.err())
		}
		return true
	}
	if !c.attach(t, s) {
		s.close(nil)
		return false
	}
	c.replayAndReady(t)
	select {
	case <-s.dead:
		c.lostTerm(t, s.err())
		s.close(nil)
	case <-s.leaving:
		// The leader is closing and freed the address: elect the next
		// one now, while the calls in flight here are answered.
		c.leftTerm(t, s)
	case <-c.ctx.Done():
		s.close(ErrClosed)
	}
	return true
}

// leftTerm ends a follower's term whose leader is leaving (a hand-over,
// see handover.go): new calls wait for the next leader, and the session
// stays open, in the background, until its calls in flight are answered
// and the old leader hangs up (or this Client closes).
func (c *Client) leftTerm(t *term, s *session) {
	c.lostTerm(t, &Error{Op: "connection", Channel: c.name, Addr: c.addrString(), Role: RoleFollower, Kind: ErrLeaderLeft,
		Err: errors.New("the leader is closing; electing the next one")})
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		select {
		case <-s.dead:
			s.close(nil)
		case <-c.ctx.Done():
			s.close(ErrClosed)
		}
	}()
}

// runSingle serves single mode: one shared real client per name.
func (c *Client) runSingle() {
	h := singles.acquire(c)
	num := c.nextTerm()
	c.stats.elections.Add(1)
	t := c.startTerm(num, RoleSingle, &localInner{c: c, h: h, role: RoleSingle})
	select {
	case <-h.ready:
		c.followStart(t, h, nil, nil)
		<-c.ctx.Done()
	case <-c.ctx.Done():
	}
	c.localOneways.Wait()
	c.mu.Lock()
	keys := make([]string, 0, len(c.subs))
	for k := range c.subs {
		keys = append(keys, k)
	}
	c.mu.Unlock()
	h.unsubscribeAll(c, keys)
	c.keepCloseErr(singles.release(c, h, c.teardownCtx()))
}

func (c *Client) keepCloseErr(err error) {
	if err == nil {
		return
	}
	c.mu.Lock()
	c.closeErr = errors.Join(c.closeErr, err)
	c.mu.Unlock()
}

func (c *Client) nextTerm() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.termSeq++
	return c.termSeq
}

// startTerm makes a new term current. With an inner, the Client's
// subscriptions are replayed into it at once.
func (c *Client) startTerm(num uint64, role Role, in inner) *term {
	t := newTermState(num, role)
	c.mu.Lock()
	old := c.cur
	c.cur = t
	close(old.ended)
	if in != nil {
		c.attachLocked(t, in)
	}
	c.mu.Unlock()
	c.event(Event{Kind: EventRole, Role: role, Term: num})
	return t
}

// attach gives a follower's term its session once registered and replays
// the subscriptions into it.
func (c *Client) attach(t *term, in inner) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur != t || c.closed {
		return false
	}
	c.attachLocked(t, in)
	return true
}

func (c *Client) attachLocked(t *term, in inner) {
	t.inner = in
	if t.phase == termElecting {
		t.phase = termReplaying
	}
	for key, s := range c.subs {
		in.subscribe(key, s.reg)
	}
}

// replayAndReady publishes again every remembered publication,
// runs the one-way calls queued while there was no leader, and marks the
// term ready. Publications made meanwhile are caught by the watermark.
func (c *Client) replayAndReady(t *term) {
	var mark uint64
	var readyAt time.Time
	for {
		c.mu.Lock()
		if c.cur != t {
			c.mu.Unlock()
			return
		}
		var batch []*wpub
		for _, p := range c.pubs {
			if p.seq > mark {
				batch = append(batch, p)
			}
		}
		queued := c.queued
		c.queued = nil
		if len(batch) == 0 && len(queued) == 0 {
			t.phase = termReady
			c.why = nil
			readyAt = time.Now()
			close(t.done)
			c.mu.Unlock()
			break
		}
		c.mu.Unlock()
		slices.SortFunc(batch, func(a, b *wpub) int { return int(a.seq - b.seq) })
		for _, p := range batch {
			if err := t.inner.publish(p.data, false); err != nil && err != errNotSent {
				c.report(t.num, t.role, err)
			}
			mark = max(mark, p.seq)
		}
		for i, q := range queued {
			_, err := t.inner.invoke(withMetadata(c.ctx, q.md), q.method, q.args, true)
			if err == errNotSent {
				// The term is ending (its leader died or is leaving): the
				// calls not sent wait for the next term, in order, and
				// this one never becomes ready.
				c.mu.Lock()
				c.queued = append(slices.Clip(queued[i:]), c.queued...)
				c.mu.Unlock()
				return
			}
			if err != nil {
				c.report(t.num, t.role, err)
			}
		}
	}
	c.log.Info("ready", slog.String("role", t.role.String()), slog.Uint64("term", t.num))
	// The event carries the moment the term became ready, not the moment
	// it is dispatched: calls released by it may already be answered.
	c.event(Event{Kind: EventReady, Role: t.role, Term: t.num, Time: readyAt})
}

// settle marks t failed with err (the ready error): waiting calls fail
// with it, queued one-way calls are dropped.
func (c *Client) settle(t *term, err error) {
	c.mu.Lock()
	if c.cur != t || t.settled() {
		c.mu.Unlock()
		return
	}
	t.phase, t.err = termFailed, err
	close(t.done)
	dropped := len(c.queued)
	c.queued = nil
	c.mu.Unlock()
	c.log.Warn("not ready", slog.String("role", t.role.String()), slog.Uint64("term", t.num), slog.Any("error", err))
	c.event(Event{Kind: EventReady, Role: t.role, Term: t.num, Err: err})
	if dropped > 0 {
		c.report(t.num, t.role, fmt.Errorf("%d queued one-way calls dropped: %w", dropped, err))
	}
}

// failTerm replaces the current state by a failed one (an election
// failed): calls fail fast until the next election succeeds.
func (c *Client) failTerm(err error) {
	c.mu.Lock()
	num := c.cur.num
	t := newTermState(num, RoleNone)
	c.why = err
	old := c.cur
	c.cur = t
	close(old.ended)
	c.mu.Unlock()
	c.settle(t, err)
}

// lostTerm ends t: calls wait for the next term. Losing a term that was
// ready is an EventLeaderLost; a term that never became ready (a refused
// or failed registration, a retry) only logs.
func (c *Client) lostTerm(t *term, why error) {
	c.mu.Lock()
	if c.cur != t || c.closed {
		c.mu.Unlock()
		return
	}
	wasReady := t.ready()
	if why != nil {
		c.why = why
	}
	next := newTermState(t.num, RoleNone)
	c.cur = next
	close(t.ended)
	c.mu.Unlock()
	if !wasReady {
		c.log.Debug("electing again", slog.String("role", t.role.String()), slog.Uint64("term", t.num), slog.Any("error", why))
		return
	}
	if errors.Is(why, ErrLeaderLeft) {
		c.log.Info("leader left; electing the next", slog.String("role", t.role.String()), slog.Uint64("term", t.num))
	} else {
		c.log.Warn("leader lost; electing again", slog.String("role", t.role.String()), slog.Uint64("term", t.num), slog.Any("error", why))
	}
	c.event(Event{Kind: EventLeaderLost, Role: t.role, Term: t.num, Err: why})
}

// ---- events and deliveries ----

// event queues an event for the handler.
func (c *Client) event(ev Event) {
	ev.Channel = c.name
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	if h := c.cfg.stats; h != nil {
		c.observeEvent(h, &ev)
	}
	if c.cfg.onEvent == nil {
		return
	}
	c.disp.push(task{ev: &ev})
}

// report logs a background error and raises it as an event. Once Close
// has begun, internal errors of the teardown are only logged.
func (c *Client) report(num uint64, role Role, err error) {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		c.log.Debug("background error while closing", slog.String("role", role.String()), slog.Uint64("term", num), slog.Any("error", err))
		return
	}
	c.log.Warn("background error", slog.String("role", role.String()), slog.Uint64("term", num), slog.Any("error", err))
	c.event(Event{Kind: EventError, Role: role, Term: num, Err: err})
}

// hostEvent receives the real client's events and host errors (eventSink).
func (c *Client) hostEvent(ev Event) {
	c.mu.Lock()
	t := c.cur
	c.mu.Unlock()
	if ev.Kind == EventError {
		c.report(t.num, t.role, ev.Err)
		return
	}
	ev.Role, ev.Term = t.role, t.num
	c.event(ev)
}

// deliver queues a value for the listeners of key (subscriber).
func (c *Client) deliver(key string, data []byte, cached bool) {
	c.disp.push(task{key: key, data: data, cached: cached})
}

// runTask runs on the callback goroutine.
func (c *Client) runTask(t task) {
	if t.ev != nil {
		c.stats.events.Add(1)
		defer func() {
			if r := recover(); r != nil {
				c.log.Error("event handler panicked", slog.String("role", t.ev.Role.String()), slog.Uint64("term", t.ev.Term),
					slog.Any("panic", r), slog.String("event", t.ev.Kind.String()))
			}
		}()
		c.cfg.onEvent(*t.ev)
		return
	}
	if t.only != nil {
		c.call(t.only, t.data)
		return
	}
	c.mu.Lock()
	s := c.subs[t.key]
	if s == nil || c.closed {
		c.mu.Unlock()
		return
	}
	s.cache, s.cached = t.data, true
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	ls := s.listeners
	c.mu.Unlock()
	for _, l := range ls {
		if t.cached && l.stream {
			continue // a value from before it subscribed
		}
		c.call(l, t.data)
	}
}

// call runs one listener with its own Value, recovering a panic.
func (c *Client) call(l *listener, data []byte) {
	if l.removed.Load() {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			c.mu.Lock()
			t := c.cur
			c.mu.Unlock()
			c.report(t.num, t.role, &Error{Op: "deliver", Channel: c.name, Key: l.key, Kind: ErrListenerPanic,
				Err: fmt.Errorf("%v", r)})
		}
	}()
	c.stats.deliveries.Add(1)
	l.fn(Value{data: data, codec: c.cfg.codec})
}

// ---- user API ----

// Ready waits until the Client is ready (it leads with a started real
// client, or follows a ready leader) and returns nil, or returns the ready
// error: the factory's error on the leader and on every follower
// alike, ErrNoLeader for a forced follower that found none, ... When ctx
// ends first, the error wraps ctx's error and, if there is one, the last
// reason no leader was ready (a refused handshake, ErrHandshake; a codec
// mismatch or a stranger that speaks another protocol, ErrProtocol; a
// process on the address that answers nothing, ErrLeaderUnresponsive; a
// lost leader, ...): errors.Is matches both, and the message says both.
// Invoke gives up the same way.
func (c *Client) Ready(ctx context.Context) error {
	_, err := c.waitReady(ctx, nil)
	return err
}

// IsLeader reports whether this Client currently owns the real client (in
// single mode: always, once started, until Close).
func (c *Client) IsLeader() bool {
	r := c.Role()
	return r == RoleLeader || r == RoleSingle
}

// Role returns the current role: RoleNone before the first election,
// between terms and once Close was called.
func (c *Client) Role() Role {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.roleLocked()
}

// roleLocked is Role with c.mu held.
func (c *Client) roleLocked() Role {
	if c.closed {
		return RoleNone
	}
	return c.cur.role
}

// waitReady returns a ready term other than stale, waiting through
// elections as long as ctx allows (calls made before ready are queued).
func (c *Client) waitReady(ctx context.Context, stale *term) (*term, error) {
	for {
		c.mu.Lock()
		t, closed, settled, terr := c.cur, c.closed, c.cur.settled(), c.cur.err
		c.mu.Unlock()
		if closed {
			return nil, c.closedErr("ready")
		}
		if t != stale && settled {
			if terr != nil {
				return nil, terr
			}
			return t, nil
		}
		wait := t.done
		if t == stale || settled {
			wait = t.ended
		}
		select {
		case <-wait:
		case <-t.ended:
		case <-ctx.Done():
			return nil, &Error{Op: "ready", Channel: c.name, Addr: c.addrString(), Err: c.whyNot(ctx.Err())}
		case <-c.ctx.Done():
		}
	}
}

// whyNot returns cause (the caller's context ended) with the last reason
// no leader was ready, if there is one: both match with errors.Is, and the
// message says both.
func (c *Client) whyNot(cause error) error {
	c.mu.Lock()
	why := c.why
	c.mu.Unlock()
	if why == nil {
		return cause
	}
	return fmt.Errorf("%w (no leader ready; last reason: %w)", cause, why)
}

// noteWhy records a reason no leader is ready yet that ends no term (a
// register_channel left unanswered).
func (c *Client) noteWhy(why error) {
	c.mu.Lock()
	c.why = why
	c.mu.Unlock()
}

func (c *Client) closedErr(op string) error {
	return &Error{Op: op, Channel: c.name, Addr: c.addrString(), Kind: ErrClosed}
}

// Invoke calls method on the real client with args and returns its
// result. The method's handler gets a context with the call's deadline
// and metadata (WithMetadata), and that context ends when the caller's
// does, on either role. On a follower the call crosses to the leader: its
// deadline is ctx's when ctx has one, else the response timeout, after
// which it fails with ErrTimeout (the leader drops the late reply); a
// caller that gives up (ctx ended) ends the method's context on a Go
// leader too; ErrLeaderLost means the leader died with the call in flight
// (its effect is unknown; retrying waits for the next leader). Before the
// Client is ready, the call waits (bounded by ctx); after a failed start
// it fails with the ready error. Errors of the real client keep their
// name, message, code and stack across the wire (errors.As to
// *protocol.RemoteError).
func (c *Client) Invoke(ctx context.Context, method string, args ...any) (Result, error) {
	c.stats.invokes.Add(1)
	if h := c.cfg.stats; h != nil {
		return c.invokeObserved(ctx, h, method, args)
	}
	start := time.Now()
	res, _, err := c.invoke(ctx, method, args)
	c.methods.record(method, time.Since(start), err, false)
	return res, err
}

// invoke runs a two-way call in the first ready term; it returns the
// role of the term that ran it.
func (c *Client) invoke(ctx context.Context, method string, args []any) (Result, Role, error) {
	var stale *term
	retried := false
	for {
		t, err := c.waitReady(ctx, stale)
		if err != nil {
			c.countErr(err)
			return Result{}, RoleNone, err
		}
		res, err := t.inner.invoke(ctx, method, args, false)
		if err == errNotSent {
			stale = t
			continue
		}
		if err != nil && !retried && errors.Is(err, ErrLeaderLost) && t.inner.idempotent(method) {
			// Safe to run twice (Service.Idempotent): once more, on the
			// next leader, within ctx.
			retried, stale = true, t
			c.stats.retried.Add(1)
			continue
		}
		if err != nil {
			c.countErr(err)
		}
		return res, t.role, err
	}
}

func (c *Client) countErr(err error) {
	c.stats.invokeErrors.Add(1)
	switch {
	case errors.Is(err, ErrTimeout):
		c.stats.timeouts.Add(1)
	case errors.Is(err, ErrLeaderLost):
		c.stats.leaderLost.Add(1)
	}
}

// InvokeOneway calls method without waiting for (or getting) a result.
// Before the Client is ready the call is queued (at most DefaultMaxQueued)
// and sent once ready; it fails with the ready error after a failed start
// (never a panic). Errors of the real client are reported on the
// leader (EventError), as in Node.
func (c *Client) InvokeOneway(method string, args ...any) error {
	c.stats.invokes.Add(1)
	if h := c.cfg.stats; h != nil {
		return c.onewayObserved(h, nil, method, args)
	}
	err := c.oneway(nil, method, args)
	c.methods.record(method, 0, err, true)
	return err
}

// InvokeOnewayContext is InvokeOneway with the metadata of ctx
// (WithMetadata): the method's handler reads it with Metadata on either
// role. Nothing waits for a one-way call, so ctx's deadline and
// cancellation do not apply to it.
func (c *Client) InvokeOnewayContext(ctx context.Context, method string, args ...any) error {
	c.stats.invokes.Add(1)
	md := Metadata(ctx)
	if err := checkMetadata(md); err != nil {
		return &Error{Op: "invoke", Channel: c.name, Addr: c.addrString(), Method: method, Err: err}
	}
	if h := c.cfg.stats; h != nil {
		return c.onewayObserved(h, md, method, args)
	}
	err := c.oneway(md, method, args)
	c.methods.record(method, 0, err, true)
	return err
}

func (c *Client) oneway(md map[string]string, method string, args []any) error {
	for {
		c.mu.Lock()
		t := c.cur
		switch {
		case c.closed:
			c.mu.Unlock()
			return c.closedErr("invoke")
		case t.ready():
			c.mu.Unlock()
			_, err := t.inner.invoke(withMetadata(c.ctx, md), method, args, true)
			if err == errNotSent {
				continue // the term just ended: queue it for the next one
			}
			return err
		case t.phase == termFailed:
			c.mu.Unlock()
			return t.err
		}
		if len(c.queued) >= DefaultMaxQueued {
			c.mu.Unlock()
			return &Error{Op: "invoke", Channel: c.name, Addr: c.addrString(), Method: method, Kind: ErrOverloaded,
				Err: fmt.Errorf("%d one-way calls already wait for a ready leader", DefaultMaxQueued)}
		}
		c.queued = append(c.queued, queuedCall{method: method, args: args, md: md})
		c.mu.Unlock()
		return nil
	}
}

// regJSON returns the registration's JSON text as Node's JSON.stringify
// would write it, and its subscription key.
func (c *Client) regJSON(op string, reg any) (json.RawMessage, string, error) {
	var raw []byte
	switch r := reg.(type) {
	case json.RawMessage:
		raw = r
	case protocol.Raw:
		raw = r
	default:
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(reg); err != nil {
			return nil, "", &Error{Op: op, Channel: c.name, Kind: ErrProtocol, Err: err}
		}
		raw = bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	}
	norm, err := protocol.NormalizeJSON(nil, raw)
	if err != nil {
		return nil, "", &Error{Op: op, Channel: c.name, Kind: ErrProtocol, Err: err}
	}
	return norm, protocol.SubscriptionKeyPrefix + string(norm), nil
}

// Subscribe adds a listener for reg (any JSON-encodable value; its key is
// "$$inner$$__"+JSON(reg), as in Node, so Go and Node processes share
// keys; use a struct or json.RawMessage for a stable field order). There
// is one upstream subscription per key for the whole host. The listener
// gets the cached last value at once if there is one (broadcast mode),
// then every new value; never inside Subscribe. The returned func removes
// this listener (and the subscription with its last listener).
func (c *Client) Subscribe(reg any, l Listener, opts ...SubscribeOption) (cancel func(), err error) {
	if l == nil {
		return func() {}, &Error{Op: "subscribe", Channel: c.name, Kind: ErrInvalidOption, Err: errors.New("nil listener")}
	}
	raw, key, err := c.regJSON("subscribe", reg)
	if err != nil {
		return func() {}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return func() {}, c.closedErr("subscribe")
	}
	s := c.subs[key]
	isNew := s == nil
	if isNew {
		s = &wsub{key: key, reg: raw}
		c.subs[key] = s
	}
	ln := &listener{fn: l, key: key}
	for _, o := range opts {
		o(ln)
	}
	s.listeners = append(slices.Clip(s.listeners), ln)
	if !isNew && s.cached && c.cfg.broadcast && !ln.stream {
		c.disp.push(task{only: ln, data: s.cache})
	}
	if !s.cached && c.cfg.subscribeTimeout > 0 {
		c.armSubscribeTimeout(s)
	}
	if isNew && c.cur.inner != nil {
		c.cur.inner.subscribe(key, raw)
	}
	if isNew {
		c.observeSub(key, true)
	}
	var once sync.Once
	return func() { once.Do(func() { c.removeListener(ln) }) }, nil
}

func (c *Client) removeListener(ln *listener) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ln.removed.Store(true)
	s := c.subs[ln.key]
	if s == nil {
		return
	}
	i := slices.Index(s.listeners, ln)
	if i < 0 {
		return
	}
	s.listeners = slices.Delete(slices.Clone(s.listeners), i, i+1)
	if len(s.listeners) == 0 {
		c.dropSubLocked(s)
	}
}

func (c *Client) dropSubLocked(s *wsub) {
	c.observeSub(s.key, false)
	delete(c.subs, s.key)
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	if !c.closed && c.cur.inner != nil {
		c.cur.inner.unsubscribe(s.key, s.reg)
	}
}

// Unsubscribe removes every listener this Client has for reg. When the
// last subscriber of the key on the host leaves, the real client's
// Unsubscribe runs (Node never ends the upstream subscription).
func (c *Client) Unsubscribe(reg any) error {
	_, key, err := c.regJSON("unsubscribe", reg)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.closedErr("unsubscribe")
	}
	s := c.subs[key]
	if s == nil {
		return nil
	}
	for _, ln := range s.listeners {
		ln.removed.Store(true)
	}
	c.dropSubLocked(s)
	return nil
}

// armSubscribeTimeout (re)starts the subscribe timeout of s (c.mu held).
func (c *Client) armSubscribeTimeout(s *wsub) {
	if s.timer != nil {
		s.timer.Stop()
	}
	s.timerGen++
	gen, start, d := s.timerGen, time.Now(), c.cfg.subscribeTimeout
	s.timer = time.AfterFunc(d, func() {
		c.mu.Lock()
		fire := c.subs[s.key] == s && !s.cached && s.timerGen == gen && !c.closed
		if fire {
			s.timer = nil
		}
		t := c.cur
		c.mu.Unlock()
		if fire {
			cost := time.Since(start)
			c.report(t.num, t.role, &Error{Op: "subscribe", Channel: c.name, Addr: c.addrString(), Role: t.role,
				Key: s.key, Kind: ErrSubscribeTimeout, Elapsed: cost,
				Err: fmt.Errorf("no value for %v (subscribe timeout %v)", cost.Round(time.Millisecond), d)})
		}
	})
}

// Publish sends reg to the real client's Publish and remembers it: after
// every failover it is published again to the new leader, until Unpublish.
// Errors of the real client are reported as events; Publish
// itself fails only if reg cannot be encoded or the Client is closed.
func (c *Client) Publish(reg any) error {
	return c.publish(reg, false)
}

// Unpublish forgets reg (it will not be replayed after a failover) and
// sends it to the real client's Unpublish (as Node's unPublish one-way
// invoke).
func (c *Client) Unpublish(reg any) error {
	return c.publish(reg, true)
}

func (c *Client) publish(reg any, un bool) error {
	op := "publish"
	if un {
		op = "unpublish"
	}
	data, err := c.cfg.codec.Append(nil, reg)
	if err != nil {
		return &Error{Op: op, Channel: c.name, Kind: ErrProtocol, Err: err}
	}
	_, key, err := c.regJSON(op, reg)
	if err != nil {
		return err
	}
	if h := c.cfg.stats; h != nil {
		c.observe(h, StatsEvent{Kind: StatsPublish, Bytes: len(data), Unpublish: un, Role: c.Role()})
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return c.closedErr(op)
	}
	t := c.cur
	ready := t.ready()
	if un {
		delete(c.pubs, key)
		if !ready {
			// A leader that still has it must hear of it: queue it.
			if len(c.queued) < DefaultMaxQueued {
				c.queued = append(c.queued, queuedCall{method: methodUnpublish, args: []any{protocol.Raw(data)}})
			}
			c.mu.Unlock()
			return nil
		}
	} else {
		c.pubSeq++
		c.pubs[key] = &wpub{data: data, seq: c.pubSeq}
	}
	c.mu.Unlock()
	if !ready {
		return nil // replayAndReady sends it
	}
	if err := t.inner.publish(data, un); err != nil && err != errNotSent {
		return err
	}
	return nil
}

// Close closes the Client: a follower hangs up; a leader closes the real
// client (exactly once, waiting for its Close) and frees the address when
// the last channel on it in this process closes; single
// mode closes the shared real client with its last user. Close is
// idempotent and safe from any goroutine; later calls return the first
// result. If ctx ends first, Close returns ctx's error and the teardown
// finishes in the background.
func (c *Client) Close(ctx context.Context) error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.closeCtx = ctx
		for _, s := range c.subs {
			if s.timer != nil {
				s.timer.Stop()
				s.timer = nil
			}
		}
		t := c.cur
		c.mu.Unlock()
		c.cancel()
		go func() {
			<-c.runDone
			c.bg.Wait()
			c.event(Event{Kind: EventClosed, Role: t.role, Term: t.num})
			c.disp.stop()
			c.log.Debug("closed", slog.String("role", t.role.String()), slog.Uint64("term", t.num))
			close(c.closeDone)
		}()
	})
	select {
	case <-c.closeDone:
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.closeErr != nil {
			return &Error{Op: "close", Channel: c.name, Addr: c.addrString(), Err: c.closeErr}
		}
		return nil
	case <-ctx.Done():
		return &Error{Op: "close", Channel: c.name, Addr: c.addrString(), Err: ctx.Err()}
	}
}

// Stats returns a snapshot of the Client's state and counters.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	t := c.cur
	st := Stats{
		Channel:       c.name,
		Role:          c.roleLocked(),
		Term:          t.num,
		Ready:         t.ready(),
		Closed:        c.closed,
		Subscriptions: len(c.subs),
		Publications:  len(c.pubs),
	}
	in := t.inner
	c.mu.Unlock()
	if !c.cfg.single {
		st.Transport, st.Addr = c.cfg.transport.Name(), c.cfg.addr
	}
	if in != nil {
		in.fill(&st)
	}
	s := &c.stats
	st.Invokes, st.InvokeErrors = s.invokes.Load(), s.invokeErrors.Load()
	st.Timeouts, st.LeaderLost = s.timeouts.Load(), s.leaderLost.Load()
	st.Served, st.Deliveries, st.Pushes = s.served.Load(), s.deliveries.Load(), s.pushes.Load()
	st.Elections, st.Events, st.EventsDropped = s.elections.Load(), s.events.Load(), c.disp.dropped.Load()
	st.Retried = s.retried.Load()
	st.Methods, st.ServedMethods = c.methods.snapshot(), c.servedMethods.snapshot()
	return st
}

// ---- inners ----

// localInner serves a term from a host in this process: the leader's, or
// single mode's shared one.
type localInner struct {
	c    *Client
	h    *host
	lt   *leaderTerm // leader only
	role Role
}

func (li *localInner) invoke(ctx context.Context, method string, args []any, oneway bool) (Result, error) {
	c, h := li.c, li.h
	if oneway {
		hctx := withMetadata(h.ctx, Metadata(ctx))
		c.localOneways.Do(func() {
			if _, err := h.call(hctx, method, Args{codec: h.codec, vals: args}); err != nil && h.ctx.Err() == nil {
				c.report(c.curNum(), li.role, li.wrap(method, err))
			}
		})
		return Result{}, nil
	}
	if err := checkMetadata(Metadata(ctx)); err != nil {
		return Result{}, li.wrap(method, err) // as a follower's call would fail
	}
	res, err := h.call(ctx, method, Args{codec: h.codec, vals: args})
	if err != nil {
		return Result{}, li.wrap(method, err)
	}
	return Result{codec: h.codec, val: res, local: true}, nil
}

func (li *localInner) wrap(method string, err error) error {
	return &Error{Op: "invoke", Channel: li.c.name, Addr: li.c.addrString(), Role: li.role, Method: method,
		Kind: sentinelFor(err), Err: err}
}

func (li *localInner) subscribe(key string, reg json.RawMessage) { li.h.subscribe(key, reg, li.c) }

func (li *localInner) unsubscribe(key string, _ json.RawMessage) { li.h.unsubscribe(key, li.c) }

func (li *localInner) publish(data []byte, un bool) error {
	method := methodPublish
	if un {
		method = methodUnpublish
	}
	h := li.h
	if _, err := h.call(h.ctx, method, Args{codec: h.codec, enc: [][]byte{data}}); err != nil && h.ctx.Err() == nil {
		li.c.report(li.c.curNum(), li.role, li.wrap(method, err))
	}
	return nil
}

// idempotent: a call on this process's own real client is never lost
// with a leader.
func (li *localInner) idempotent(string) bool { return false }

func (li *localInner) fill(st *Stats) {
	st.InFlight = int(li.h.running.Load())
	if li.lt != nil {
		st.Followers = li.lt.followers()
		st.Conns = li.lt.srv.connCount()
	}
}

func (c *Client) curNum() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur.num
}

// The follower's session is the inner of a follower term.

func (s *session) subscribe(key string, reg json.RawMessage)   { s.sendSub(key, reg, true) }
func (s *session) unsubscribe(key string, reg json.RawMessage) { s.sendSub(key, reg, false) }

func (s *session) publish(data []byte, un bool) error {
	method := methodPublish
	if un {
		method = methodUnpublish
	}
	_, err := s.invoke(context.Background(), method, []any{protocol.Raw(data)}, true)
	return err
}

func (s *session) fill(st *Stats) { st.InFlight = s.l.InFlight() }
