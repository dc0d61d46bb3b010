package cluster

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/go-clusterclient/clusterclient/cluster/internal/link"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/go-clusterclient/clusterclient/protocol"
)

// Status requests (a Go-only extension used by cmd/clusterctl).
//
// An observer sends a request of kind "cluster_status" (no app object);
// a Go leader answers with a response of kind "cluster_status_res" and the
// same id, whose app object is always JSON (whatever the channel's codec):
// a statusReply. Sent after a successful register_channel, it reports the
// channel the connection registered on; sent before any registration, it
// lists the channels the process leads on the address, and only when none
// of them authenticates (a Handshake would otherwise be bypassed). A Node
// leader answers neither: it reports "unsupport data type" and keeps the
// connection, so the observer checks that the leader is a Go
// peer (its register reply carries the extension field) before it asks.

// ErrNoStatus: the process on the address does not report status (a Node
// cluster-client leader, or a Go leader that predates status requests).
var ErrNoStatus = errors.New("cluster: the leader does not report status")

// Status is what a Go leader reports about one channel it leads, as
// returned by QueryStatus. It is a snapshot taken by the leader at Time.
type Status struct {
	PID       int       `json:"pid"`       // the leader's process id
	Program   string    `json:"program"`   // the base name of its executable
	Time      time.Time `json:"time"`      // when the snapshot was taken
	Transport string    `json:"transport"` // the transport's name ("tcp", "unix", ...)
	Addr      string    `json:"addr"`      // the address led
	Channel   string    `json:"channel"`
	Term      uint64    `json:"term"` // the leader Client's term (terms count from 1 per Client)
	Ready     bool      `json:"ready"`
	// ReadyError is the factory's error when the real client failed to start.
	ReadyError string `json:"readyError,omitempty"`
	Codec      string `json:"codec"`
	Broadcast  bool   `json:"broadcast"`
	// InFlight counts the real client's methods running now (for followers
	// and for the leader's own Client).
	InFlight      int                  `json:"inFlight"`
	Followers     []FollowerStatus     `json:"followers"`     // sorted by Remote
	Subscriptions []SubscriptionStatus `json:"subscriptions"` // sorted by Key
	Counters      StatusCounters       `json:"counters"`
	// OtherChannels lists the other channels the leader's process leads on
	// the same address (query each by name for its status).
	OtherChannels []string `json:"otherChannels,omitempty"`
}

// FollowerStatus is one registered connection of a channel.
type FollowerStatus struct {
	Remote        string        `json:"remote"`        // the connection's remote address
	Idle          time.Duration `json:"idleNs"`        // since the last frame received from it
	Subscriptions int           `json:"subscriptions"` // keys it subscribes
	PendingAcks   int           `json:"pendingAcks"`   // pushed values it has not acknowledged yet
	// Observer marks the connection that asked for this status.
	Observer bool `json:"observer,omitempty"`
}

// SubscriptionStatus is one upstream subscription of a channel.
type SubscriptionStatus struct {
	Key         string `json:"key"`
	Subscribers int    `json:"subscribers"` // followers and the leader's own Client
	// Leader reports whether the leader's own Client is a subscriber.
	Leader bool `json:"leader"`
	// Cached reports whether a last value is cached; CacheAge is its age.
	Cached   bool          `json:"cached"`
	CacheAge time.Duration `json:"cacheAgeNs,omitempty"`
}

// StatusCounters are the leader Client's counters (see Stats).
type StatusCounters struct {
	Served        uint64 `json:"served"`        // calls served for followers
	Pushes        uint64 `json:"pushes"`        // values sent to followers
	Invokes       uint64 `json:"invokes"`       // calls made through the leader's own Client
	InvokeErrors  uint64 `json:"invokeErrors"`  // of which failed
	Deliveries    uint64 `json:"deliveries"`    // values handed to the leader's own listeners
	Elections     uint64 `json:"elections"`     // terms of the leader Client
	EventsDropped uint64 `json:"eventsDropped"` // events its handler fell behind on
	// Methods: the leader's own calls by method; ServedMethods: the calls
	// it ran for followers, by method (see MethodStats).
	Methods       map[string]MethodStats `json:"methods,omitempty"`
	ServedMethods map[string]MethodStats `json:"servedMethods,omitempty"`
}

// Listing is what a Go leader process tells an observer that has not
// registered: the channels it leads on the address (see ListChannels).
type Listing struct {
	PID      int      `json:"pid"`
	Program  string   `json:"program"`
	Addr     string   `json:"addr"` // "<transport> <address>"
	Channels []string `json:"channels"`
}

// statusReply is the app object of cluster_status_res: exactly one field
// is set.
type statusReply struct {
	Status  *Status               `json:"status,omitempty"`
	Listing *Listing              `json:"listing,omitempty"`
	Error   *protocol.RemoteError `json:"error,omitempty"`
}

// ---- leader side ----

// status answers an admitted connection's status request.
func (p *peer) status(id int64, timeout int32) {
	p.sendStatus(id, timeout, statusReply{Status: p.lt.status(p, time.Now())})
}

func (p *peer) sendStatus(id int64, timeout int32, rep statusReply) {
	app, err := json.Marshal(rep)
	if err != nil {
		p.lt.log.Error("cannot encode the status reply", slog.Any("error", err))
		return
	}
	p.l.Send(true, id, timeout, &protocol.ConnObject{Type: protocol.KindStatusRes}, app)
}

// status takes a snapshot of the term; self is the asking connection.
func (lt *leaderTerm) status(self *peer, now time.Time) *Status {
	c, h := lt.c, lt.host
	st := &Status{
		PID: os.Getpid(), Program: filepath.Base(os.Args[0]), Time: now,
		Transport: c.cfg.transport.Name(), Addr: c.cfg.addr, Channel: c.name, Term: lt.num,
		Codec: h.codec.Name(), Broadcast: h.broadcast, InFlight: int(h.running.Load()),
		Followers: []FollowerStatus{}, Subscriptions: []SubscriptionStatus{},
	}
	if h.isReady() {
		err := h.current().err
		st.Ready = err == nil
		if err != nil {
			st.ReadyError = err.Error()
		}
	}

	lt.mu.Lock()
	peers := make([]*peer, 0, len(lt.peers))
	for p := range lt.peers {
		peers = append(peers, p)
	}
	lt.mu.Unlock()
	for _, p := range peers {
		if !p.adm.isMember() {
			continue
		}
		p.mu.Lock()
		n, closed := len(p.keys), p.closed
		p.mu.Unlock()
		if closed {
			continue
		}
		st.Followers = append(st.Followers, FollowerStatus{
			Remote: p.l.Conn().RemoteAddr().String(), Idle: p.l.Idle(now), Subscriptions: n,
			PendingAcks: p.l.InFlight(), Observer: p == self,
		})
	}
	slices.SortFunc(st.Followers, func(a, b FollowerStatus) int { return cmp.Compare(a.Remote, b.Remote) })

	h.mu.Lock()
	for _, t := range h.topics {
		s := SubscriptionStatus{Key: t.key, Subscribers: len(t.subs), Cached: t.cached}
		if t.cached {
			s.CacheAge = now.Sub(t.at)
		}
		for _, sub := range t.subs {
			if sub == subscriber(c) {
				s.Leader = true
			}
		}
		st.Subscriptions = append(st.Subscriptions, s)
	}
	h.mu.Unlock()
	slices.SortFunc(st.Subscriptions, func(a, b SubscriptionStatus) int { return cmp.Compare(a.Key, b.Key) })

	cs := c.Stats()
	st.Counters = StatusCounters{
		Served: cs.Served, Pushes: cs.Pushes, Invokes: cs.Invokes, InvokeErrors: cs.InvokeErrors,
		Deliveries: cs.Deliveries, Elections: cs.Elections, EventsDropped: cs.EventsDropped,
		Methods: cs.Methods, ServedMethods: cs.ServedMethods,
	}
	for _, name := range lt.srv.channelNames() {
		if name != c.name {
			st.OtherChannels = append(st.OtherChannels, name)
		}
	}
	return st
}

// channelNames returns the channels led on the listener, sorted.
func (s *server) channelNames() []string {
	s.mu.Lock()
	names := make([]string, 0, len(s.channels))
	for name := range s.channels {
		names = append(names, name)
	}
	s.mu.Unlock()
	slices.Sort(names)
	return names
}

// listing answers a status request sent before registration: the channel
// names, unless a channel authenticates its followers (then the observer
// must register on a channel first, which runs its Handshake).
func (s *server) listing(l *link.Link, id int64, timeout int32) error {
	s.mu.Lock()
	auth := false
	for _, lt := range s.channels {
		auth = auth || lt.c.cfg.handshake != nil
	}
	s.mu.Unlock()
	var rep statusReply
	if auth {
		rep.Error = toRemote(&Error{Op: "status", Addr: s.addr, Kind: ErrHandshake,
			Err: errors.New("channels are listed only to unauthenticated clusters; register on a channel by name")})
	} else {
		rep.Listing = &Listing{PID: os.Getpid(), Program: filepath.Base(os.Args[0]), Addr: s.addr, Channels: s.channelNames()}
	}
	app, err := json.Marshal(rep)
	if err != nil {
		s.log.Error("cannot encode the channel listing", slog.Any("error", err))
		return nil
	}
	return l.Send(true, id, timeout, &protocol.ConnObject{Type: protocol.KindStatusRes}, app)
}

// ---- observer side ----

// QueryStatus asks the leader of channel for its Status. It registers on
// the channel exactly as a follower does (same options, same Handshake,
// same codec check: pass the Options the channel's Clients use, at least
// WithTransport, WithAddr or WithPort, WithCodec and WithHandshake), asks,
// and hangs up; it subscribes to nothing and calls nothing. The observer
// appears in the status as a follower marked Observer.
//
// It fails with ErrNoStatus when the leader is not a Go leader (a Node
// cluster-client leader answers register without our extension field;
// the error says whether it accepted the registration), with ErrNoChannel when the process on the
// address leads no such channel, with the ready error when the leader's
// real client failed to start, and with a transport error when nothing
// listens. ctx bounds the whole exchange (registration is retried, like a
// follower's, until ctx ends).
func QueryStatus(ctx context.Context, channel string, opts ...Option) (*Status, error) {
	if channel == "" {
		return nil, fmt.Errorf("cluster.QueryStatus: %w", optErr("empty channel name"))
	}
	o, err := newObserver(ctx, channel, opts)
	if err != nil {
		return nil, err
	}
	defer o.close()
	readyErr, err := o.s.register(ctx)
	if rc := o.s.reply; rc != nil {
		if _, ok := rc.Ext[extKey]; !ok {
			// No Go peer: a Node cluster-client leader (it would report
			// a status request as an unsupported type). Say what
			// registration showed.
			const node = "a Node cluster-client leader answered (its register reply has no clusterclient extension)"
			switch {
			case err != nil:
				return nil, o.err(ErrNoStatus, fmt.Errorf("%s; registering failed: %w", node, err))
			case readyErr != nil:
				return nil, o.err(ErrNoStatus, fmt.Errorf("%s; it answered registration with: %w", node, readyErr))
			}
			return nil, o.err(ErrNoStatus, errors.New(node+"; it accepted the registration on the channel"))
		}
	}
	if err != nil {
		return nil, err
	}
	if readyErr != nil {
		return nil, readyErr
	}
	rep, err := o.ask(ctx)
	if err != nil {
		return nil, err
	}
	if rep.Status == nil {
		return nil, o.err(ErrProtocol, errors.New("status reply without a status"))
	}
	return rep.Status, nil
}

// ListChannels asks the process that owns the address which channels it
// leads there, without registering. Only a Go leader whose channels do not
// authenticate answers (a listing would otherwise bypass the Handshake):
// with a Handshake it fails with ErrHandshake, and a Node leader, which
// ignores the request, makes it fail with ErrNoStatus after the response
// timeout (or when ctx ends).
func ListChannels(ctx context.Context, opts ...Option) (*Listing, error) {
	o, err := newObserver(ctx, "", opts)
	if err != nil {
		return nil, err
	}
	defer o.close()
	rep, err := o.ask(ctx)
	if errors.Is(err, ErrTimeout) {
		return nil, o.err(ErrNoStatus, fmt.Errorf("no answer to a channel listing within %v: the process on the address "+
			"is not a Go clusterclient leader (a Node cluster-client leader ignores the request); name a channel", o.c.cfg.responseTimeout))
	}
	if err != nil {
		return nil, err
	}
	if rep.Listing == nil {
		return nil, o.err(ErrProtocol, errors.New("listing reply without a listing"))
	}
	return rep.Listing, nil
}

// observer is a connection to the leader's address that no Client owns:
// a bare Client (never started, no factory) carries the configuration and
// logger its session needs.
type observer struct {
	c *Client
	s *session
}

func newObserver(ctx context.Context, channel string, opts []Option) (*observer, error) {
	cfg := defaultConfig()
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&cfg); err != nil {
			return nil, fmt.Errorf("cluster: status of %q: %w", channel, err)
		}
	}
	if err := cfg.resolve(os.Getenv); err != nil {
		return nil, fmt.Errorf("cluster: status of %q: %w", channel, err)
	}
	if cfg.single {
		return nil, fmt.Errorf("cluster: status of %q: %w", channel, optErr("single mode has no leader to ask"))
	}
	c := &Client{name: channel, cfg: cfg, cur: newTermState(0, RoleNone)}
	c.log = cfg.logger.With(slog.String("channel", channel), slog.String("addr", c.addrString()), slog.String("role", "observer"))
	dctx, cancel := context.WithTimeout(ctx, cfg.connectTimeout)
	conn, err := cfg.transport.Dial(dctx, cfg.addr)
	cancel()
	if err != nil {
		return nil, &Error{Op: "status", Channel: channel, Addr: c.addrString(), Err: err}
	}
	// An observer subscribes to nothing; its dispatcher only exists so that
	// a stray push cannot find a nil one.
	c.disp = newDispatcher(cfg.eventBuffer, func(task) {})
	return &observer{c: c, s: newSession(c, 0, conn)}, nil
}

func (o *observer) close() {
	o.s.close(nil)
	o.c.disp.stop()
}

func (o *observer) err(kind, cause error) error {
	return &Error{Op: "status", Channel: o.c.name, Addr: o.c.addrString(), Kind: kind, Err: cause}
}

// ask sends one status request and decodes the reply; a refusal comes
// back as an *Error wrapping the leader's RemoteError (and its sentinel).
func (o *observer) ask(ctx context.Context) (statusReply, error) {
	s := o.s
	ans, err := s.l.Call(ctx, ids.Next(), o.c.cfg.timeoutMS(), protocol.KindStatus, &protocol.ConnObject{Type: protocol.KindStatus}, nil)
	switch {
	case errors.Is(err, link.ErrAbandoned):
		return statusReply{}, o.err(nil, ctx.Err())
	case errors.Is(err, link.ErrNotSent), errors.Is(err, link.ErrFull):
		return statusReply{}, o.err(ErrLeaderLost, err)
	case err != nil:
		return statusReply{}, err
	}
	data := ans.Data
	var rep statusReply
	if err := json.Unmarshal(data, &rep); err != nil {
		return statusReply{}, o.err(ErrProtocol, fmt.Errorf("status reply: %w", err))
	}
	if rep.Error != nil {
		return statusReply{}, o.err(sentinelOf(rep.Error), rep.Error)
	}
	return rep, nil
}
