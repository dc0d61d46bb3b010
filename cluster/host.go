package cluster

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-clusterclient/clusterclient/protocol"
)

// subscriber receives the values of the topics it subscribed on a host: a
// Client of this process (leader or single mode) or a follower's
// connection. deliver must not block and must not call back into the host
// (it is called with the host's lock held, which is what keeps a cache
// replay and later values in order).
type subscriber interface {
	// deliver gives the subscriber a value of key; cached says it is the
	// last value replayed to a new subscriber, not a new one.
	deliver(key string, data []byte, cached bool)
}

// eventSink receives the real client's events and the host's background
// errors: the Clients attached to the host.
type eventSink interface {
	hostEvent(ev Event)
}

// host owns one real client for one term: it runs the factory, keeps one
// upstream subscription per key for the whole host with its last value,
// fans values out to subscribers, and runs declared methods. Leaders and
// single mode both use it; the leader adds the network around it.
//
// Concurrency: safe for concurrent use. Calls into the real client's
// Subscribe and Unsubscribe run on one worker goroutine in order, outside
// every lock; methods and Publish run on the caller's goroutine.
type host struct {
	name      string
	codec     protocol.Codec
	broadcast bool
	log       *slog.Logger
	stats     StatsHandler // WithStatsHandler of the Client that made it (nil: none)

	ctx    context.Context // cancelled when the term ends (factory and handler contexts derive from it)
	cancel context.CancelFunc
	ready  chan struct{} // closed when the factory first returned
	state  atomic.Pointer[hostState]
	// changed is closed and replaced (h.mu) each time the factory
	// returned: a failure, or the start that succeeded.
	changed            chan struct{}
	retryMin, retryMax time.Duration // 0: a failed start is final

	// Upstream operations queued and done: a call waits until every
	// operation queued before it is done, so a publish that follows a
	// subscribe finds the upstream subscription in place (Node calls the
	// real client's subscribe synchronously, which gives the same order).
	queued, applied atomic.Uint64
	progress        chan struct{} // closed and replaced when applied grows (h.mu)

	mu       sync.Mutex
	topics   map[string]*topic
	sinks    []eventSink
	closed   bool
	started  bool
	ops      []upOp // for the upstream worker
	opsWake  chan struct{}
	workDone chan struct{}

	life      sync.RWMutex // held shared by running calls, exclusively by close
	closeOnce sync.Once
	closed2   chan struct{} // closed when close finished
	closeErr  error
	running   atomic.Int64  // methods running now
	served    atomic.Uint64 // method calls served
}

// topic is one subscription key on the host.
type topic struct {
	key    string
	reg    json.RawMessage
	subs   []subscriber
	cache  []byte
	cached bool
	at     time.Time // when cache was set (status reports its age)
	dead   bool      // unsubscribed upstream, or the host closed
}

type upOp struct {
	t   *topic
	sub bool // subscribe (else unsubscribe)
}

func newHost(name string, cfg *config, log *slog.Logger) *host {
	ctx, cancel := context.WithCancel(context.Background())
	h := &host{
		name:      name,
		codec:     cfg.codec,
		broadcast: cfg.broadcast,
		log:       log,
		stats:     cfg.stats,
		ctx:       ctx,
		cancel:    cancel,
		ready:     make(chan struct{}),
		topics:    make(map[string]*topic),
		opsWake:   make(chan struct{}, 1),
		workDone:  make(chan struct{}),
		progress:  make(chan struct{}),
		changed:   make(chan struct{}),
		retryMin:  cfg.startRetryMin,
		retryMax:  cfg.startRetryMax,
	}
	return h
}

// hostState is the outcome of the factory's latest run: the real client,
// or the error (the ready error) when it failed.
type hostState struct {
	svc *Service
	err error
}

// current returns the latest outcome of the factory (after ready).
func (h *host) current() hostState { return *h.state.Load() }

// watch returns the latest outcome and a channel closed at the next one.
func (h *host) watch() (hostState, <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.current(), h.changed
}

// setState publishes an outcome of the factory.
func (h *host) setState(st hostState) {
	h.mu.Lock()
	h.state.Store(&st)
	close(h.changed)
	h.changed = make(chan struct{})
	h.mu.Unlock()
	if !h.isReady() {
		close(h.ready)
	}
}

// start runs the factory on its own goroutine and then the upstream
// worker. A host that is closed before it started never starts.
func (h *host) start(factory Factory) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.started = true
	h.mu.Unlock()
	go func() {
		defer close(h.workDone)
		bo := backoff{min: h.retryMin, max: h.retryMax}
		for {
			st := h.attempt(factory)
			h.setState(st)
			if st.err == nil || h.retryMin <= 0 || errors.Is(st.err, ErrInvalidOption) {
				break
			}
			// The upstream may come back: try again while the term
			// lives (issue 16: a failed start used to be final).
			d := bo.next()
			h.log.Warn("real client failed to start; retrying", slog.Any("error", st.err), slog.Duration("retry", d))
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-h.ctx.Done():
			}
			t.Stop()
			if h.ctx.Err() != nil {
				break
			}
		}
		h.work()
	}()
}

// attempt runs the factory once and checks what it returned. A Service
// it built but that is invalid is closed at once.
func (h *host) attempt(factory Factory) hostState {
	svc, err := h.build(factory)
	if err == nil && svc == nil {
		err = fmt.Errorf("%w: the factory returned no Service", ErrInvalidOption)
	}
	if err == nil {
		err = svc.validate()
	}
	if err != nil {
		if svc != nil && svc.Close != nil {
			// A Service that failed validation is still a built client.
			_ = svc.Close(context.WithoutCancel(h.ctx))
		}
		return hostState{err: err}
	}
	return hostState{svc: svc}
}

// build calls the factory, turning a panic into an error.
func (h *host) build(factory Factory) (svc *Service, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &protocol.RemoteError{Name: "PanicError", Code: CodePanic,
				Message: fmt.Sprintf("factory of %q panicked: %v", h.name, r), Stack: string(debug.Stack())}
		}
	}()
	return factory(h.ctx, h.emit)
}

// isReady reports whether the factory returned (with or without error).
func (h *host) isReady() bool {
	select {
	case <-h.ready:
		return true
	default:
		return false
	}
}

// emit is the real client's Emit.
func (h *host) emit(name string, data any) {
	ev := Event{Kind: EventUpstream, Name: name, Data: data}
	if err, ok := data.(error); ok {
		ev.Err = err
	}
	h.mu.Lock()
	closed := h.closed
	sinks := h.sinks
	h.mu.Unlock()
	if closed {
		h.log.Debug("real client event after close dropped", slog.String("event", name), slog.Any("data", data))
		return
	}
	for _, s := range sinks {
		s.hostEvent(ev)
	}
}

// report sends a background error to the attached Clients.
func (h *host) report(err error) {
	h.mu.Lock()
	sinks := h.sinks
	h.mu.Unlock()
	for _, s := range sinks {
		s.hostEvent(Event{Kind: EventError, Err: err})
	}
}

func (h *host) attach(s eventSink) {
	h.mu.Lock()
	h.sinks = append(slices.Clip(h.sinks), s)
	h.mu.Unlock()
}

func (h *host) detach(s eventSink) {
	h.mu.Lock()
	h.sinks = slices.DeleteFunc(slices.Clone(h.sinks), func(x eventSink) bool { return x == s })
	h.mu.Unlock()
}

// subscribe adds s to key's subscribers. The first subscriber of a key on
// the host starts the upstream subscription; a later one gets the cached
// value at once (broadcast mode), queued before any newer value. Adding a
// subscriber twice is a no-op.
func (h *host) subscribe(key string, reg json.RawMessage, s subscriber) {
	h.subscribeUpTo(key, reg, s, 0)
}

// subscribeUpTo is subscribe, except that it refuses (false) a key the
// host does not have yet when it already has maxKeys keys (0: no bound).
func (h *host) subscribeUpTo(key string, reg json.RawMessage, s subscriber, maxKeys int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return true
	}
	t := h.topics[key]
	if t == nil && maxKeys > 0 && len(h.topics) >= maxKeys {
		return false
	}
	if t == nil {
		t = &topic{key: key, reg: reg}
		h.topics[key] = t
		h.queue(upOp{t: t, sub: true})
	}
	if slices.Contains(t.subs, s) {
		return true
	}
	t.subs = append(slices.Clip(t.subs), s)
	if t.cached && h.broadcast {
		s.deliver(key, t.cache, true)
	}
	return true
}

// unsubscribe removes s from key's subscribers; the last one leaving ends
// the upstream subscription.
func (h *host) unsubscribe(key string, s subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.unsubscribeLocked(key, s)
}

func (h *host) unsubscribeLocked(key string, s subscriber) {
	t := h.topics[key]
	if t == nil {
		return
	}
	i := slices.Index(t.subs, s)
	if i < 0 {
		return
	}
	t.subs = slices.Delete(slices.Clone(t.subs), i, i+1)
	if len(t.subs) == 0 && !h.closed {
		t.dead = true
		delete(h.topics, key)
		h.queue(upOp{t: t})
	}
}

// unsubscribeAll removes s from every key in keys.
func (h *host) unsubscribeAll(s subscriber, keys []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, k := range keys {
		h.unsubscribeLocked(k, s)
	}
}

// queue hands an upstream operation to the worker (h.mu held).
func (h *host) queue(op upOp) {
	h.queued.Add(1)
	h.ops = append(h.ops, op)
	select {
	case h.opsWake <- struct{}{}:
	default:
	}
}

// work runs the real client's Subscribe and Unsubscribe in order until the
// host closes. It starts once the factory returned.
func (h *host) work() {
	for {
		h.mu.Lock()
		ops := h.ops
		h.ops = nil
		closed := h.closed
		h.mu.Unlock()
		if closed {
			h.mu.Lock()
			h.applied.Store(h.queued.Load())
			close(h.progress)
			h.progress = make(chan struct{})
			h.mu.Unlock()
			return
		}
		for _, op := range ops {
			h.upstream(op)
			h.mu.Lock()
			h.applied.Add(1)
			close(h.progress)
			h.progress = make(chan struct{})
			h.mu.Unlock()
		}
		if len(ops) == 0 {
			select {
			case <-h.opsWake:
			case <-h.ctx.Done():
			}
		}
	}
}

func (h *host) upstream(op upOp) {
	svc := h.current().svc
	if svc == nil {
		return // the ready error is what every caller sees
	}
	t := op.t
	reg := Reg{data: t.reg, codec: protocol.JSON, key: t.key}
	defer func() {
		if r := recover(); r != nil {
			h.report(&Error{Op: "subscribe", Channel: h.name, Key: t.key, Kind: ErrPanic,
				Err: fmt.Errorf("%v\n%s", r, debug.Stack())})
		}
	}()
	if op.sub {
		h.mu.Lock()
		dead := t.dead
		h.mu.Unlock()
		if dead {
			return // unsubscribed before the upstream call was made
		}
		if svc.Subscribe == nil {
			h.report(&Error{Op: "subscribe", Channel: h.name, Key: t.key, Kind: ErrUnknownMethod,
				Err: errors.New("the real client declares no Subscribe")})
			return
		}
		if err := svc.Subscribe(reg, func(v any) { h.push(t, v) }); err != nil {
			h.report(&Error{Op: "subscribe", Channel: h.name, Key: t.key, Err: err})
		}
		return
	}
	if svc.Unsubscribe == nil {
		return // Node's behaviour: forwarding stops, the upstream stays
	}
	if err := svc.Unsubscribe(reg); err != nil {
		h.report(&Error{Op: "unsubscribe", Channel: h.name, Key: t.key, Err: err})
	}
}

// push is the real client's push for topic t: encode once, cache, fan
// out. Values for a topic that was unsubscribed (or a closed host) are
// dropped.
func (h *host) push(t *topic, v any) {
	data, err := h.codec.Append(nil, v)
	if err != nil {
		h.report(&Error{Op: "push", Channel: h.name, Key: t.key, Kind: ErrProtocol, Err: err})
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if t.dead || h.closed {
		return
	}
	t.cache, t.cached, t.at = data, true, time.Now()
	if h.stats != nil {
		h.observePush(t.key, len(data), fanout(len(t.subs), h.broadcast))
	}
	if len(t.subs) == 0 {
		return
	}
	if h.broadcast {
		for _, s := range t.subs {
			s.deliver(t.key, data, false)
		}
		return
	}
	t.subs[rand.N(len(t.subs))].deliver(t.key, data, false)
}

// call runs a declared method (or publish / unPublish) once the real
// client is ready. A panic becomes ErrPanic with the stack.
func (h *host) call(ctx context.Context, method string, args Args) (res any, err error) {
	if !h.isReady() {
		select {
		case <-h.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	st := h.current()
	if st.err != nil {
		return nil, st.err
	}
	svc := st.svc
	// close waits for the calls holding life before it closes the real
	// client, and calls that come after it began are refused.
	h.life.RLock()
	defer h.life.RUnlock()
	if h.ctx.Err() != nil {
		return nil, fmt.Errorf("%w: the real client of %q is closing", ErrClosed, h.name)
	}
	if err := h.barrier(ctx); err != nil {
		return nil, err
	}
	var fn Handler
	switch method {
	case methodPublish:
		if svc.Publish != nil {
			fn = func(ctx context.Context, a Args) (any, error) {
				reg, err := a.reg(0)
				if err != nil {
					return nil, err
				}
				return nil, svc.Publish(ctx, reg)
			}
		}
	case methodUnpublish:
		if svc.Unpublish != nil {
			fn = func(ctx context.Context, a Args) (any, error) {
				reg, err := a.reg(0)
				if err != nil {
					return nil, err
				}
				return nil, svc.Unpublish(ctx, reg)
			}
		}
	default:
		fn = svc.Methods[method]
	}
	if fn == nil {
		return nil, &protocol.RemoteError{Name: "UnknownMethodError", Code: CodeUnknownMethod,
			Message: fmt.Sprintf("method %q is not declared by the real client of channel %q", method, h.name)}
	}
	h.running.Add(1)
	defer func() {
		h.running.Add(-1)
		h.served.Add(1)
		if r := recover(); r != nil {
			err = &protocol.RemoteError{Name: "PanicError", Code: CodePanic,
				Message: fmt.Sprintf("method %q of channel %q panicked: %v", method, h.name, r),
				Stack:   string(debug.Stack())}
			res = nil
		}
	}()
	res, err = fn(ctx, args)
	if e, ok := err.(*Error); ok && e.Channel == "" {
		// An adapter's error (Method, Action) does not know where it ran.
		named := *e
		named.Channel = h.name
		named.Method = cmp.Or(named.Method, method)
		err = &named
	}
	return res, err
}

// barrier waits until the upstream operations queued so far are done.
func (h *host) barrier(ctx context.Context) error {
	target := h.queued.Load()
	for h.applied.Load() < target {
		h.mu.Lock()
		ch := h.progress
		h.mu.Unlock()
		if h.applied.Load() >= target {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-h.ctx.Done():
			return h.ctx.Err()
		}
	}
	return nil
}

// close ends the term: no more values or events, the worker stops, and the
// real client's Close runs once (after the factory returned: a factory
// still running sees its context cancelled). If ctx ends first, close
// returns ctx's error and the teardown finishes in the background.
func (h *host) close(ctx context.Context) error {
	h.closeOnce.Do(func() {
		h.mu.Lock()
		h.closed = true
		if !h.started {
			h.state.Store(&hostState{err: ErrClosed})
			close(h.ready)
			close(h.workDone)
		}
		for _, t := range h.topics {
			t.dead = true
		}
		h.topics = nil
		h.mu.Unlock()
		h.cancel()
		h.closed2 = make(chan struct{})
		go func() {
			defer close(h.closed2)
			<-h.workDone
			// Wait for the calls still running; calls arriving meanwhile
			// wait too and are then refused.
			h.life.Lock()
			defer h.life.Unlock()
			if svc := h.current().svc; svc != nil && svc.Close != nil {
				h.closeErr = safeClose(context.WithoutCancel(ctx), svc.Close)
			}
		}()
	})
	select {
	case <-h.closed2:
		return h.closeErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

func safeClose(ctx context.Context, f func(context.Context) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: close panicked: %v", ErrPanic, r)
		}
	}()
	return f(ctx)
}

// reg returns argument i as a publication Reg.
func (a Args) reg(i int) (Reg, error) {
	if i >= a.Len() {
		return Reg{}, fmt.Errorf("%w: publication without a registration argument", ErrProtocol)
	}
	if a.vals != nil {
		data, err := a.codec.Append(nil, a.vals[i])
		if err != nil {
			return Reg{}, err
		}
		return Reg{data: data, codec: a.codec}, nil
	}
	return Reg{data: a.enc[i], codec: a.codec}, nil
}
