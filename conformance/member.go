package conformance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/election"
	"github.com/go-clusterclient/clusterclient/transport"
)

// Timing the suite gives every Client. They keep cases short on every
// medium without racing a loaded machine: nothing here is a speed
// requirement. The heartbeat must stay well above the time a 1 MiB frame
// can take on a loaded machine: a follower that receives nothing for two
// intervals (while its own big request is still crossing, say) drops its
// leader. No case needs heartbeats to notice a dead leader: every medium
// reports a dead peer by itself.
const (
	suiteResponseTimeout = 5 * time.Second
	suiteHeartbeat       = 5 * time.Second
	suiteRegisterRetry   = 50 * time.Millisecond
	suiteConnectTimeout  = 5 * time.Second
	suiteCloseTimeout    = 10 * time.Second
)

// suiteOptions are the options every Client of the suite starts with, in
// this process and in child processes.
func suiteOptions(tr transport.Transport, addr string, logger *slog.Logger) []cluster.Option {
	return []cluster.Option{
		cluster.WithTransport(tr),
		cluster.WithAddr(addr),
		cluster.WithSingleMode(false),
		cluster.WithResponseTimeout(suiteResponseTimeout),
		cluster.WithHeartbeatInterval(suiteHeartbeat),
		cluster.WithRegisterRetry(suiteRegisterRetry),
		cluster.WithConnectTimeout(suiteConnectTimeout),
		cluster.WithLogger(logger),
	}
}

// proc is a simulated process: its own election registry and its own
// transport, so its Clients behave as if they ran in another OS process
// (they reach the others only through real connections).
type proc struct {
	e     *env
	label string
	reg   *election.Registry
	tr    transport.Transport
}

// process returns a new simulated process.
func (e *env) process() *proc {
	e.mu.Lock()
	e.procs++
	n := e.procs
	e.mu.Unlock()
	return &proc{e: e, label: fmt.Sprintf("process %d", n), reg: election.NewRegistry(), tr: e.h.NewTransport(e.t)}
}

// addr returns a fresh address of the medium, the one a case's cluster
// competes for.
func (e *env) addr() string { return e.h.NewAddr(e.t) }

// member is a Client of a simulated process, with what it observed.
type member struct {
	e     *env
	p     *proc
	label string
	c     *cluster.Client
	rec   *recorder
	sink  *sink
}

// join creates a Client of channel in p competing for addr, closed when
// the case ends.
func (p *proc) join(channel, addr string, opts ...cluster.Option) *member {
	e := p.e
	e.t.Helper()
	m := &member{e: e, p: p, label: fmt.Sprintf("%s's %s client", p.label, channel), rec: newRecorder(), sink: newSink()}
	logger := slog.New(slog.NewTextHandler(e.log, &slog.HandlerOptions{Level: slog.LevelInfo})).
		With(slog.String("member", m.label))
	all := append(suiteOptions(p.tr, addr, logger), cluster.WithRegistry(p.reg), cluster.WithEventHandler(m.rec.add))
	all = append(all, opts...)
	c, err := cluster.New(channel, e.upstream().factory(channel), all...)
	if err != nil {
		e.fatalf("cluster.New(%q) in %s: %v", channel, p.label, err)
	}
	m.c = c
	e.OnTeardown(func() { m.close() })
	return m
}

// close closes the Client, bounded; teardown calls it too.
func (m *member) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), suiteCloseTimeout)
	defer cancel()
	err := m.c.Close(ctx)
	if errors.Is(err, cluster.ErrClosed) {
		err = nil
	}
	return err
}

// mustClose closes the Client and fails the case on an error.
func (m *member) mustClose() {
	m.e.t.Helper()
	m.e.stepf("closing %s", m.label)
	if err := m.close(); err != nil {
		m.e.fatalf("Close of %s: %v", m.label, err)
	}
}

// ready waits until the Client is ready and returns its role.
func (m *member) ready() cluster.Role {
	m.e.t.Helper()
	m.e.stepf("waiting for %s to be ready", m.label)
	if err := m.c.Ready(m.e.Timeout(opTimeout)); err != nil {
		m.e.fatalf("%s not ready: %v", m.label, err)
	}
	return m.c.Role()
}

// mustLead waits until the Client is ready and checks that it leads.
func (m *member) mustLead() {
	m.e.t.Helper()
	if r := m.ready(); r != cluster.RoleLeader {
		m.e.fatalf("%s is %v, want leader", m.label, r)
	}
}

// mustFollow waits until the Client is ready and checks that it follows.
func (m *member) mustFollow() {
	m.e.t.Helper()
	if r := m.ready(); r != cluster.RoleFollower {
		m.e.fatalf("%s is %v, want follower", m.label, r)
	}
}

// invoke calls method and decodes the result into a T.
func invoke[T any](m *member, method string, args ...any) T {
	m.e.t.Helper()
	m.e.stepf("%s invokes %s", m.label, method)
	v, err := cluster.Call[T](m.e.Timeout(opTimeout), m.c, method, args...)
	if err != nil {
		m.e.fatalf("%s: %s: %v", m.label, method, err)
	}
	return v
}

// whoami returns the ID of the real client the member reaches.
func (m *member) whoami() string { return invoke[string](m, MethodWhoami) }

// subscribe adds a listener for key that records every Snapshot in the
// member's sink, and returns the listener's cancel func.
func (m *member) subscribe(key string) func() {
	return m.subscribeTo(key, m.sink)
}

// subscribeTo adds a listener for key that records into s.
func (m *member) subscribeTo(key string, s *sink) func() {
	m.e.t.Helper()
	m.e.stepf("%s subscribes %q", m.label, key)
	cancel, err := cluster.SubscribeTyped(m.c, Reg{Key: key}, s.add)
	if err != nil {
		m.e.fatalf("%s: Subscribe(%q): %v", m.label, key, err)
	}
	return cancel
}

func (m *member) publish(key, value string) {
	m.e.t.Helper()
	m.e.stepf("%s publishes %q under %q", m.label, value, key)
	if err := m.c.Publish(Reg{Key: key, Value: value}); err != nil {
		m.e.fatalf("%s: Publish(%q, %q): %v", m.label, key, value, err)
	}
}

// waitSnapshot waits until the sink has a Snapshot for key that f
// accepts, and returns it.
func (m *member) waitSnapshot(s *sink, key, what string, f func(Snapshot) bool) Snapshot {
	m.e.t.Helper()
	m.e.stepf("waiting for %s to receive %s", m.label, what)
	snap, ok := s.wait(m.e.Timeout(opTimeout), key, f)
	if !ok {
		m.e.fatalf("%s did not receive %s for %q within %v; it received %v", m.label, what, key, opTimeout, s.all(key))
	}
	return snap
}

// waitValue waits until the member's own sink holds a Snapshot of key
// with value.
func (m *member) waitValue(key, value string) Snapshot {
	m.e.t.Helper()
	return m.waitSnapshot(m.sink, key, fmt.Sprintf("a value with %q", value), func(s Snapshot) bool { return s.Has(value) })
}

// waitEvent waits for an event f accepts.
func (m *member) waitEvent(what string, f func(cluster.Event) bool) cluster.Event {
	m.e.t.Helper()
	m.e.stepf("waiting for %s to report %s", m.label, what)
	ev, ok := m.rec.wait(m.e.Timeout(opTimeout), f)
	if !ok {
		m.e.fatalf("%s reported no %s within %v; its events: %v", m.label, what, opTimeout, m.rec.all())
	}
	return ev
}

// recorder collects a Client's events.
type recorder struct {
	mu     sync.Mutex
	events []cluster.Event
	wake   chan struct{}
}

func newRecorder() *recorder { return &recorder{wake: make(chan struct{}, 1)} }

func (r *recorder) add(ev cluster.Event) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	poke(r.wake)
}

func (r *recorder) all() []cluster.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

func (r *recorder) count(f func(cluster.Event) bool) int {
	n := 0
	for _, ev := range r.all() {
		if f(ev) {
			n++
		}
	}
	return n
}

// wait waits until an event matches f or ctx ends.
func (r *recorder) wait(ctx context.Context, f func(cluster.Event) bool) (cluster.Event, bool) {
	for {
		for _, ev := range r.all() {
			if f(ev) {
				return ev, true
			}
		}
		select {
		case <-r.wake:
		case <-ctx.Done():
			return cluster.Event{}, false
		}
	}
}

// isErrorEvent matches an EventError whose error matches target.
func isErrorEvent(target error) func(cluster.Event) bool {
	return func(ev cluster.Event) bool { return ev.Kind == cluster.EventError && errors.Is(ev.Err, target) }
}

// isKind matches events of kind k.
func isKind(k cluster.EventKind) func(cluster.Event) bool {
	return func(ev cluster.Event) bool { return ev.Kind == k }
}

// sink collects the Snapshots a listener received.
type sink struct {
	mu    sync.Mutex
	snaps []Snapshot
	wake  chan struct{}
}

func newSink() *sink { return &sink{wake: make(chan struct{}, 1)} }

func (s *sink) add(snap Snapshot) {
	s.mu.Lock()
	s.snaps = append(s.snaps, snap)
	s.mu.Unlock()
	poke(s.wake)
}

// all returns the Snapshots received for key, in order.
func (s *sink) all(key string) []Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Snapshot
	for _, snap := range s.snaps {
		if snap.Key == key {
			out = append(out, snap)
		}
	}
	return out
}

func (s *sink) n(key string) int { return len(s.all(key)) }

// wait waits until a Snapshot of key matches f or ctx ends.
func (s *sink) wait(ctx context.Context, key string, f func(Snapshot) bool) (Snapshot, bool) {
	for {
		for _, snap := range s.all(key) {
			if f(snap) {
				return snap, true
			}
		}
		select {
		case <-s.wake:
		case <-ctx.Done():
			return Snapshot{}, false
		}
	}
}

func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
