package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster/internal/link"
	"github.com/go-clusterclient/clusterclient/protocol"
	"github.com/go-clusterclient/clusterclient/transport"
)

// server is the accept loop and channel demultiplexer attached to one
// shared listener (election.Lease.Attach): it reads each new connection's
// register_channel and hands the connection to that channel's leader, or
// answers at once that the channel has no leader here (Node drops it).
//
// Concurrency: safe for concurrent use.
type server struct {
	ln       net.Listener
	addr     string  // "<transport> <address>" for messages
	cfg      *config // the first leading Client's: the address's settings
	deadline time.Duration
	log      *slog.Logger

	// claimed lists the channels this process's registry has elected on
	// the address: a channel can be claimed a moment before its leader
	// joins the server, and a follower arriving in that moment waits for
	// it instead of being told there is no such channel.
	claimed func() []string

	mu       sync.Mutex
	channels map[string]*leaderTerm
	leaving  map[string]bool // channels whose leader hands over here (see handover.go)
	added    chan struct{}   // closed and replaced when a channel joins
	unrouted map[*link.Link]struct{}
	// Connections held now (an evicted one no longer counts, though its
	// goroutines may take a moment to notice), and among them those not
	// yet admitted, with the time they were accepted (the first to go at
	// maxConns).
	maxConns int
	live     map[*link.Link]struct{}
	fresh    map[*link.Link]time.Time
	warned   time.Time // last warning about the connection bound
	refused  refusals  // accept failures, told once per interval
	closing  bool
	failed   error
	accepts  sync.WaitGroup // the accept loop
	conns    sync.WaitGroup // each connection's reader (routed or not)
}

func newServer(ln net.Listener, t transport.Transport, addr string, cfg *config, claimed func() []string) *server {
	s := &server{
		ln:       ln,
		claimed:  claimed,
		added:    make(chan struct{}),
		addr:     t.Name() + " " + addr,
		cfg:      cfg,
		deadline: cfg.registerDeadline,
		log:      cfg.logger.With(slog.String("addr", t.Name()+" "+addr), slog.String("role", RoleLeader.String())),
		channels: make(map[string]*leaderTerm),
		leaving:  make(map[string]bool),
		unrouted: make(map[*link.Link]struct{}),
		maxConns: cfg.maxConns,
		live:     make(map[*link.Link]struct{}),
		fresh:    make(map[*link.Link]time.Time),
	}
	s.accepts.Add(1)
	go s.acceptLoop()
	return s
}

// Close is called by the election registry when the last channel on the
// address released its lease: stop accepting and drop connections that
// never registered. Connections routed to a leader live on (a leader that
// hands over still serves them); their leaders close them, and wait for
// them with wait.
func (s *server) Close() error {
	s.mu.Lock()
	s.closing = true
	for l := range s.unrouted {
		l.Close(ErrClosed)
	}
	close(s.added) // wake routes waiting in lookup
	s.added = make(chan struct{})
	s.mu.Unlock()
	s.ln.Close()
	s.accepts.Wait()
	return nil
}

// wait waits, once the server is closed, for the goroutines of every
// connection it accepted (a leader's term calls it after closing its
// followers' connections). Before Close it returns at once: connections of
// other channels may live on.
func (s *server) wait() {
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing {
		s.conns.Wait()
	}
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
	delete(s.leaving, lt.c.name)
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
		delete(s.leaving, lt.c.name)
	}
	s.mu.Unlock()
}

// leave takes lt off its channel for its hand-over: a follower that
// registers now is told the leader left (it tries again shortly), not
// that the channel has no leader here (which fails its calls for a while).
func (s *server) leave(lt *leaderTerm) {
	s.mu.Lock()
	if s.channels[lt.c.name] == lt {
		delete(s.channels, lt.c.name)
		s.leaving[lt.c.name] = true
	}
	s.mu.Unlock()
}

func (s *server) isLeaving(channel string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leaving[channel]
}

func (s *server) acceptLoop() {
	defer s.accepts.Done()
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
		// A stranger gets a small budget until it proves itself
		// (peer.admit lifts it), and the register deadline from now.
		now := time.Now()
		conn.SetReadDeadline(now.Add(s.deadline))
		r := &router{s: s, accepted: now}
		l := link.New(conn, link.Config{
			Server: true, MaxWriteBuffer: s.cfg.unprovenBuffer, Limits: unprovenLimits(s.cfg.limits),
			Timeout: s.cfg.responseTimeout, InlineBudget: s.cfg.inlineBudget,
		}, r)
		r.l = l
		s.unrouted[l] = struct{}{}
		s.live[l] = struct{}{}
		s.fresh[l] = now
		s.conns.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.conns.Done()
			l.Serve()
			if l.Err() != nil {
				l.Wait() // it ended: its writer too, before the server's Close returns
			}
		}()
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
	for l := range s.unrouted {
		l.Close(ErrListener)
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
	var oldest *link.Link
	var at time.Time
	for l, t := range s.fresh {
		if oldest == nil || t.Before(at) {
			oldest, at = l, t
		}
	}
	now := time.Now()
	if now.Sub(s.warned) > time.Second {
		s.warned = now
		if oldest != nil {
			s.log.Warn("connection limit reached: dropping the oldest connection that has not registered",
				slog.String("why", why), slog.String("remote", oldest.Conn().RemoteAddr().String()))
		} else {
			s.log.Warn("connection limit reached with every connection registered: refusing new ones", slog.String("why", why))
		}
	}
	if oldest == nil {
		return false
	}
	delete(s.fresh, oldest)
	delete(s.live, oldest)
	oldest.Close(&Error{Op: "accept", Addr: s.addr, Kind: ErrOverloaded,
		Err: fmt.Errorf("%s: the oldest connection that has not registered goes", why)})
	return true
}

// admitted takes l off the connections a newcomer may replace.
func (s *server) admitted(l *link.Link) {
	s.mu.Lock()
	delete(s.fresh, l)
	s.mu.Unlock()
}

// forget takes a connection that ended off the server's books.
func (s *server) forget(l *link.Link) {
	s.mu.Lock()
	delete(s.unrouted, l)
	delete(s.live, l)
	delete(s.fresh, l)
	s.mu.Unlock()
}

// connCount returns the connections open on the address.
func (s *server) connCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.live)
}

// router handles a new connection until its register_channel names a
// channel: it answers heartbeats and status queries, and hands the
// connection to that channel's leader (which handles it from then on), or
// refuses it. It runs on the connection's reader.
type router struct {
	s        *server
	l        *link.Link
	accepted time.Time
}

// drop hangs up on a connection that never registered.
func (r *router) drop(why string, err error) {
	r.s.log.Debug(why, slog.String("remote", r.l.Conn().RemoteAddr().String()), slog.Any("error", err))
	r.s.forget(r.l)
	r.l.Close(err)
}

func (r *router) Request(pk protocol.Packet, co protocol.ConnObject) link.Job {
	s := r.s
	switch co.Type {
	case protocol.KindHeartbeat:
		if err := r.l.Send(true, pk.ID, pk.Timeout, &protocol.ConnObject{Type: protocol.KindHeartbeatRes}, nil); err != nil {
			r.drop("dropping unregistered connection that does not read", err)
		}
		return link.Job{}
	case protocol.KindStatus:
		if err := s.listing(r.l, pk.ID, pk.Timeout); err != nil {
			r.drop("dropping unregistered connection that does not read", err)
		}
		return link.Job{}
	case protocol.KindRegisterChannel:
	default:
		r.drop("dropping connection that did not register first", fmt.Errorf("%q before register_channel", co.Type))
		return link.Job{}
	}
	lt := s.lookup(co.ChannelName, time.Second)
	if lt != nil {
		s.mu.Lock()
		delete(s.unrouted, r.l)
		s.mu.Unlock()
	}
	if lt == nil || !lt.adopt(r.l, r.accepted, pk.ID, pk.Timeout, &co) {
		err := fmt.Errorf("%w: channel %q has no leader on %s", ErrNoChannel, co.ChannelName, s.addr)
		if s.isLeaving(co.ChannelName) {
			err = fmt.Errorf("%w: the leader of channel %q on %s is closing; it hands over to the next one", ErrLeaderLeft, co.ChannelName, s.addr)
		}
		s.refuse(r.l, pk.ID, pk.Timeout, err)
	}
	return link.Job{}
}

func (r *router) Response(protocol.Packet, protocol.ConnObject) {}

func (r *router) Ended(err error) {
	why := "dropping unregistered connection"
	if link.IsEOF(err) {
		why = "unregistered connection closed"
	}
	r.drop(why, err)
}

// refuse answers a register_channel for a channel that has no leader here
// (ErrNoChannel, or ErrLeaderLeft during its leader's hand-over) and hangs
// up. The reply is encoded with the codec of a leader of another channel
// here, else JSON.
func (s *server) refuse(l *link.Link, id int64, timeout int32, why error) {
	re := toRemote(why)
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
		l.Send(true, id, timeout, &protocol.ConnObject{Type: protocol.KindRegisterChannelRes,
			Ext: Ext{extKey: ourExt(codec)}}, app)
	}
	s.forget(l)
	l.FlushClose(why, time.Second)
}
