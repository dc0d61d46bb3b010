package election_test

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/election"
	"github.com/go-clusterclient/clusterclient/transport"
)

// lead elects cfg and fails the test unless it leads.
func lead(t *testing.T, reg *election.Registry, cfg election.Config) *election.Lease {
	t.Helper()
	out, err := reg.Elect(testContext(t), cfg)
	if err != nil {
		t.Fatalf("Elect(%q): %v", cfg.Channel, err)
	}
	if out.Role != election.Leader || out.Lease == nil || out.Conn != nil {
		t.Fatalf("Elect(%q) = %+v, want a leader with a lease", cfg.Channel, out)
	}
	t.Cleanup(func() { out.Lease.Release() })
	return out.Lease
}

// follow elects cfg and fails the test unless it follows.
func follow(t *testing.T, reg *election.Registry, cfg election.Config) net.Conn {
	t.Helper()
	out, err := reg.Elect(testContext(t), cfg)
	if err != nil {
		t.Fatalf("Elect(%q): %v", cfg.Channel, err)
	}
	if out.Role != election.Follower || out.Conn == nil || out.Lease != nil {
		t.Fatalf("Elect(%q) = %+v, want a follower with a conn", cfg.Channel, out)
	}
	t.Cleanup(func() { out.Conn.Close() })
	return out.Conn
}

// CC-051: different channels on one address share one listener.
func TestTwoChannelsShareOneListener(t *testing.T) {
	rec := &recorder{Transport: newMem(t)}
	reg := election.NewRegistry()
	addr := memAddr(t)

	a := lead(t, reg, election.Config{Transport: rec, Addr: addr, Channel: "RegistryClient"})
	// CC-005: a forced leader of another channel joins the listener
	// instead of failing with "address in use".
	b := lead(t, reg, election.Config{Transport: rec, Addr: addr, Channel: "AnotherClient", Mode: election.ForceLeader})

	if a.Listener() != b.Listener() {
		t.Error("the two channels got different listeners")
	}
	if n := rec.listens.Load(); n != 1 {
		t.Errorf("transport Listen called %d times, want 1", n)
	}
	if got, want := a.Channels(), []string{"AnotherClient", "RegistryClient"}; !slices.Equal(got, want) {
		t.Errorf("Channels() = %q, want %q", got, want)
	}
	if a.Addr() != addr || a.Channel() != "RegistryClient" || b.Channel() != "AnotherClient" {
		t.Errorf("lease identity: %q %q / %q", a.Addr(), a.Channel(), b.Channel())
	}
}

// CC-052: the same channel again in one process follows over a real
// connection to the process's own listener.
func TestSameChannelTwiceFollowsOverRealConn(t *testing.T) {
	tr := newMem(t)
	reg := election.NewRegistry()
	cfg := election.Config{Transport: tr, Addr: memAddr(t), Channel: "DataClient"}

	lease := lead(t, reg, cfg)
	conn := follow(t, reg, cfg)

	// The follower's conn is accepted by the leader's listener, and bytes
	// flow both ways.
	srv, err := lease.Listener().Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if _, err := conn.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(srv, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("leader read %q, %v", buf, err)
	}
	if _, err := srv.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("follower read %q, %v", buf, err)
	}
	if got := lease.Channels(); !slices.Equal(got, []string{"DataClient"}) {
		t.Errorf("Channels() = %q, want only the first claim", got)
	}
}

// CC-004, CC-005, CC-053: the address is freed only when the last channel
// on it is released, and then another "process" can bind it.
func TestReleaseFreesAddressAfterLastChannel(t *testing.T) {
	tr := newMem(t)
	addr := memAddr(t)
	reg := election.NewRegistry()
	other := election.NewRegistry() // behaves like another process

	a := lead(t, reg, election.Config{Transport: tr, Addr: addr, Channel: "A"})
	b := lead(t, reg, election.Config{Transport: tr, Addr: addr, Channel: "B"})
	forced := election.Config{Transport: tr, Addr: addr, Channel: "C", Mode: election.ForceLeader}

	if err := a.Release(); err != nil {
		t.Fatal(err)
	}
	if got := b.Channels(); !slices.Equal(got, []string{"B"}) {
		t.Errorf("after releasing A, Channels() = %q", got)
	}
	if _, err := other.Elect(testContext(t), forced); !errors.Is(err, transport.ErrAddrInUse) {
		t.Fatalf("bind while B still leads: err = %v, want ErrAddrInUse", err)
	}

	if err := b.Release(); err != nil {
		t.Fatal(err)
	}
	lead(t, other, forced)

	// The old registry has forgotten the address: it now competes like any
	// other process.
	conn := follow(t, reg, election.Config{Transport: tr, Addr: addr, Channel: "A"})
	conn.Close()
}

// CC-038: Release can run twice; Attach after the last release does not
// resurrect anything.
func TestReleaseIdempotent(t *testing.T) {
	rec := &recorder{Transport: newMem(t)}
	reg := election.NewRegistry()
	lease := lead(t, reg, election.Config{Transport: rec, Addr: memAddr(t), Channel: "A"})

	for i := range 3 {
		if err := lease.Release(); err != nil {
			t.Fatalf("Release #%d: %v", i+1, err)
		}
	}
	if got := rec.Events(); !slices.Equal(got, []string{"listen", "listener closed"}) {
		t.Errorf("events = %q, want one listen and one close", got)
	}
	called := false
	if v, ok := election.Attach(lease, func(net.Listener) io.Closer { called = true; return io.NopCloser(nil) }); ok || v != nil || called {
		t.Errorf("Attach after release = %v, %v (init called: %v), want nil, false without init", v, ok, called)
	}
	if got := lease.Channels(); len(got) != 0 {
		t.Errorf("Channels() after release = %q", got)
	}
}

// closer counts its Close calls and records them in a recorder.
type closer struct {
	rec    *recorder
	closes atomic.Int64
}

func (c *closer) Close() error {
	c.closes.Add(1)
	c.rec.record("attachment closed")
	return nil
}

// Attach runs init exactly once per listener, whichever lease calls it and
// however many call it at once; the attachment closes once, before the
// listener.
func TestAttachInitOnceUnderConcurrency(t *testing.T) {
	rec := &recorder{Transport: newMem(t)}
	reg := election.NewRegistry()
	addr := memAddr(t)

	const leases, callers = 4, 8
	var ls []*election.Lease
	for i := range leases {
		ls = append(ls, lead(t, reg, election.Config{Transport: rec, Addr: addr, Channel: string(rune('A' + i))}))
	}

	var inits atomic.Int64
	var wg sync.WaitGroup
	results := make(chan *closer, leases*callers)
	start := make(chan struct{})
	for _, l := range ls {
		for range callers {
			wg.Go(func() {
				<-start
				c, ok := election.Attach(l, func(ln net.Listener) *closer {
					inits.Add(1)
					if ln != l.Listener() {
						t.Error("init got a listener other than the lease's")
					}
					return &closer{rec: rec}
				})
				if !ok {
					t.Error("Attach on a held lease reported no attachment")
				}
				results <- c
			})
		}
	}
	close(start)
	wg.Wait()
	close(results)

	if n := inits.Load(); n != 1 {
		t.Fatalf("init ran %d times, want 1", n)
	}
	var first *closer
	for v := range results {
		if first == nil {
			first = v
		}
		if v == nil || v != first {
			t.Fatalf("Attach returned %v and %v, want one shared value", first, v)
		}
	}
	c := first

	for i, l := range ls {
		if err := l.Release(); err != nil {
			t.Fatal(err)
		}
		if want := int64(0); i < leases-1 && c.closes.Load() != want {
			t.Fatalf("attachment closed after releasing %d of %d leases", i+1, leases)
		}
	}
	if n := c.closes.Load(); n != 1 {
		t.Errorf("attachment closed %d times, want 1", n)
	}
	want := []string{"listen", "attachment closed", "listener closed"}
	if got := rec.Events(); !slices.Equal(got, want) {
		t.Errorf("events = %q, want %q", got, want)
	}
}

// An attachment that runs an accept loop may close the listener itself in
// its Close to unblock Accept; the release neither deadlocks nor fails,
// and the conns it accepted are closed.
func TestAttachmentWithAcceptLoop(t *testing.T) {
	tr := newMem(t)
	reg := election.NewRegistry()
	cfg := election.Config{Transport: tr, Addr: memAddr(t), Channel: "A"}
	lease := lead(t, reg, cfg)
	acc := attach(lease)

	conn := follow(t, reg, cfg) // same channel again: a follower of ourselves
	if err := lease.Release(); err != nil {
		t.Fatalf("Release: %v", err)
	}
	<-acc.done
	if _, err := conn.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("follower read after the leader released: %v, want EOF", err)
	}
}

// Many channels electing at once in one process cause one bind, and all
// of them lead.
func TestConcurrentChannelsBindOnce(t *testing.T) {
	rec := &recorder{Transport: newMem(t)}
	reg := election.NewRegistry()
	addr := memAddr(t)

	const n = 16
	outs := make([]election.Outcome, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			cfg := election.Config{Transport: rec, Addr: addr, Channel: string(rune('a' + i))}
			outs[i], errs[i] = reg.Elect(testContext(t), cfg)
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || outs[i].Role != election.Leader {
			t.Fatalf("channel %d: %+v, %v", i, outs[i], errs[i])
		}
		defer outs[i].Lease.Release()
	}
	if got := rec.listens.Load(); got != 1 {
		t.Errorf("Listen called %d times, want 1", got)
	}
	if got := len(outs[0].Lease.Channels()); got != n {
		t.Errorf("Channels() has %d entries, want %d", got, n)
	}
}

// Closing the shared listener directly frees the address at once; the
// next election in the process binds a new listener, and releasing the
// old leases later does not disturb it.
func TestDirectListenerCloseLetsNextElectionBind(t *testing.T) {
	rec := &recorder{Transport: newMem(t)}
	reg := election.NewRegistry()
	addr := memAddr(t)
	old := lead(t, reg, election.Config{Transport: rec, Addr: addr, Channel: "A"})

	if err := old.Listener().Close(); err != nil {
		t.Fatal(err)
	}
	if err := old.Listener().Close(); err != nil {
		t.Fatalf("second Close: %v, want nil (idempotent)", err)
	}
	fresh := lead(t, reg, election.Config{Transport: rec, Addr: addr, Channel: "B"})
	if fresh.Listener() == old.Listener() {
		t.Fatal("the new channel joined the closed listener")
	}
	if err := old.Release(); err != nil {
		t.Fatal(err)
	}
	// The fresh listener still holds the address.
	_, err := election.NewRegistry().Elect(testContext(t),
		election.Config{Transport: rec, Addr: addr, Channel: "C", Mode: election.ForceLeader})
	if !errors.Is(err, transport.ErrAddrInUse) {
		t.Fatalf("bind from another registry: %v, want ErrAddrInUse", err)
	}
	if n := rec.listens.Load(); n != 3 {
		t.Errorf("Listen called %d times, want 3 (old, fresh, refused)", n)
	}
}

// A release of the last channel racing an election of another channel in
// the same process never makes the newcomer a follower of the listener
// being closed: it either joins before the close or binds after it.
func TestReleaseRacingElect(t *testing.T) {
	tr := newMem(t)
	reg := election.NewRegistry()
	addr := memAddr(t)
	for i := range 200 {
		a := lead(t, reg, election.Config{Transport: tr, Addr: addr, Channel: "A"})
		var out election.Outcome
		var err error
		var wg sync.WaitGroup
		wg.Go(func() { a.Release() })
		wg.Go(func() {
			out, err = reg.Elect(testContext(t), election.Config{Transport: tr, Addr: addr, Channel: "B"})
		})
		wg.Wait()
		if err != nil || out.Role != election.Leader {
			t.Fatalf("round %d: B got %+v, %v; want leader", i, out, err)
		}
		if err := out.Lease.Release(); err != nil {
			t.Fatal(err)
		}
	}
}

// gated wraps a transport so that a test can hold Listen, or a
// listener's Close, in progress while other elections run.
type gated struct {
	transport.Transport
	listens     atomic.Int64
	listenEnter chan struct{} // receives once per Listen call
	listenGate  chan struct{} // Listen proceeds once this is closed
	closeEnter  chan struct{} // receives once per listener Close
	closeGate   chan struct{} // listener Close proceeds once this is closed

	openListen, openClose sync.Once
}

// letListen and letClose open the gates; they are idempotent, so tests
// defer them to never leave a Release blocked.
func (g *gated) letListen() { g.openListen.Do(func() { close(g.listenGate) }) }
func (g *gated) letClose()  { g.openClose.Do(func() { close(g.closeGate) }) }

func newGated(t *testing.T) *gated {
	return &gated{
		Transport:   newMem(t),
		listenEnter: make(chan struct{}, 16), listenGate: make(chan struct{}),
		closeEnter: make(chan struct{}, 16), closeGate: make(chan struct{}),
	}
}

func (g *gated) Listen(ctx context.Context, addr string) (net.Listener, error) {
	g.listens.Add(1)
	g.listenEnter <- struct{}{}
	select {
	case <-g.listenGate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	ln, err := g.Transport.Listen(ctx, addr)
	if err != nil {
		return nil, err
	}
	return &gatedListener{Listener: ln, g: g}, nil
}

type gatedListener struct {
	net.Listener
	g *gated
}

func (l *gatedListener) Close() error {
	l.g.closeEnter <- struct{}{}
	<-l.g.closeGate
	return l.Listener.Close()
}

// awaitOutcome waits for an election run in another goroutine.
func awaitOutcome(t *testing.T, ch <-chan outcome) outcome {
	t.Helper()
	select {
	case o := <-ch:
		return o
	case <-time.After(testTimeout):
		t.Fatal("election did not return")
	}
	panic("unreachable")
}

type outcome struct {
	out election.Outcome
	err error
}

func electAsync(t *testing.T, reg *election.Registry, cfg election.Config) <-chan outcome {
	return electAsyncCtx(t, reg, testContext(t), cfg)
}

func electAsyncCtx(t *testing.T, reg *election.Registry, ctx context.Context, cfg election.Config) <-chan outcome {
	ch := make(chan outcome, 1)
	go func() {
		out, err := reg.Elect(ctx, cfg)
		if out.Lease != nil {
			t.Cleanup(func() { out.Lease.Release() })
		}
		ch <- outcome{out, err}
	}()
	return ch
}

// An election that finds a bind of its address in progress in this
// process waits for it and joins, rather than binding too and losing to
// its own process.
func TestElectionWaitsForBindInProgress(t *testing.T) {
	g := newGated(t)
	defer g.letClose()
	defer g.letListen()
	reg := election.NewRegistry()
	addr := memAddr(t)
	a := electAsync(t, reg, election.Config{Transport: g, Addr: addr, Channel: "A"})
	<-g.listenEnter // A is binding

	// B's context expires while it waits: it gives up cleanly.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	_, err := reg.Elect(ctx, election.Config{Transport: g, Addr: addr, Channel: "B"})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("B while A binds, with a short context: %v, want DeadlineExceeded", err)
	}

	bctx := watchDone(testContext(t))
	b := electAsyncCtx(t, reg, bctx, election.Config{Transport: g, Addr: addr, Channel: "B"})
	bctx.waitDone(t) // B waits in the registry for A's bind
	g.letListen()
	ao, bo := awaitOutcome(t, a), awaitOutcome(t, b)
	if ao.err != nil || bo.err != nil || ao.out.Role != election.Leader || bo.out.Role != election.Leader {
		t.Fatalf("A: %+v %v; B: %+v %v; want two leaders", ao.out, ao.err, bo.out, bo.err)
	}
	if n := g.listens.Load(); n != 1 {
		t.Errorf("Listen called %d times, want 1", n)
	}
	if ao.out.Lease.Listener() != bo.out.Lease.Listener() {
		t.Error("A and B do not share the listener")
	}
}

// An election that finds its address being closed in this process waits
// for the close and binds afresh, rather than following a dying listener.
func TestElectionWaitsForCloseInProgress(t *testing.T) {
	g := newGated(t)
	defer g.letClose()
	g.letListen()
	reg := election.NewRegistry()
	addr := memAddr(t)
	a := lead(t, reg, election.Config{Transport: g, Addr: addr, Channel: "A"})
	<-g.listenEnter

	released := make(chan error, 1)
	go func() { released <- a.Release() }()
	<-g.closeEnter // A's listener is closing, the address still held

	bctx := watchDone(testContext(t))
	b := electAsyncCtx(t, reg, bctx, election.Config{Transport: g, Addr: addr, Channel: "B"})
	bctx.waitDone(t) // B waits in the registry for A's close
	g.letClose()
	if err := <-released; err != nil {
		t.Fatal(err)
	}
	bo := awaitOutcome(t, b)
	if bo.err != nil || bo.out.Role != election.Leader {
		t.Fatalf("B: %+v, %v; want leader on a fresh listener", bo.out, bo.err)
	}
	if bo.out.Lease.Listener() == a.Listener() {
		t.Error("B joined the closed listener")
	}
	if n := g.listens.Load(); n != 2 {
		t.Errorf("Listen called %d times, want 2", n)
	}
}

// The zero Registry is ready to use.
func TestZeroRegistry(t *testing.T) {
	var reg election.Registry
	lease := lead(t, &reg, election.Config{Transport: newMem(t), Addr: memAddr(t), Channel: "A"})
	if err := lease.Release(); err != nil {
		t.Fatal(err)
	}
}

// Attach gives each caller its own type back: a caller that attaches
// another type to a listener that already has an attachment gets ok false
// and its init is not run; the first attachment stays and is closed once.
func TestAttachTyped(t *testing.T) {
	rec := &recorder{Transport: newMem(t)}
	reg := election.NewRegistry()
	addr := memAddr(t)
	a := lead(t, reg, election.Config{Transport: rec, Addr: addr, Channel: "A"})
	b := lead(t, reg, election.Config{Transport: rec, Addr: addr, Channel: "B"})

	c, ok := election.Attach(a, func(net.Listener) *closer { return &closer{rec: rec} })
	if !ok || c == nil {
		t.Fatalf("first Attach = %v, %v; want the new *closer", c, ok)
	}
	called := false
	if v, ok := election.Attach(b, func(ln net.Listener) *acceptor { called = true; return startAcceptor(ln) }); ok || v != nil || called {
		t.Errorf("Attach of another type = %v, %v (init called: %v), want nil, false without init", v, ok, called)
	}
	if v, ok := election.Attach(b, func(net.Listener) io.Closer { called = true; return nil }); !ok || v != io.Closer(c) || called {
		t.Errorf("Attach as io.Closer = %v, %v (init called: %v), want the *closer, true without init", v, ok, called)
	}
	for _, l := range []*election.Lease{a, b} {
		if err := l.Release(); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.closes.Load(); n != 1 {
		t.Errorf("attachment closed %d times, want 1", n)
	}
}

// An init that returns a nil interface leaves the listener without an
// attachment: Attach reports ok false, and init does not run again.
func TestAttachNilInit(t *testing.T) {
	reg := election.NewRegistry()
	lease := lead(t, reg, election.Config{Transport: newMem(t), Addr: memAddr(t), Channel: "A"})
	defer lease.Release()
	calls := 0
	for range 2 {
		if v, ok := election.Attach(lease, func(net.Listener) io.Closer { calls++; return nil }); ok || v != nil {
			t.Errorf("Attach with a nil init = %v, %v; want nil, false", v, ok)
		}
	}
	if calls != 1 {
		t.Errorf("init ran %d times, want 1", calls)
	}
}
