package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/auth"
	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/election"
	"github.com/go-clusterclient/clusterclient/protocol"
)

// gate is a real client whose "block" method waits until the gate opens
// (or its context ends) and whose "echo" returns its argument.
type gate struct {
	open    chan struct{}
	once    sync.Once
	started chan struct{}
}

func newGate() *gate { return &gate{open: make(chan struct{}), started: make(chan struct{}, 100)} }

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

func (g *gate) factory(context.Context, cluster.Emit) (*cluster.Service, error) {
	return &cluster.Service{Methods: map[string]cluster.Handler{
		"block": func(ctx context.Context, _ cluster.Args) (any, error) {
			g.started <- struct{}{}
			select {
			case <-g.open:
				return "opened", nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		},
		"echo": func(_ context.Context, a cluster.Args) (any, error) {
			var v any
			return v, a.Decode(0, &v)
		},
	}}, nil
}

func (g *gate) client(t *testing.T, name string, opts ...cluster.Option) *cluster.Client {
	t.Helper()
	c, err := cluster.New(name, g.factory, append(fastOpts(), append(opts, cluster.WithResponseTimeout(wait))...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		g.release()
		c.Close(context.Background())
	})
	ready(t, c)
	return c
}

// A follower with WithMaxPending calls in flight fails the next one at
// once with ErrOverloaded, and recovers when they are answered.
func TestMaxPendingFollowerFailsFast(t *testing.T) {
	g := newGate()
	tr, addr := memNet(t)
	g.client(t, "Busy", cluster.WithTransport(tr), cluster.WithAddr(addr))
	f := g.client(t, "Busy", cluster.WithTransport(tr), cluster.WithAddr(addr), cluster.WithMaxPending(2))
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if _, err := cluster.Call[string](tctx(t, wait), f, "block"); err != nil {
				t.Errorf("block: %v", err)
			}
		})
	}
	eventually(t, wait, "two calls in flight", func() bool { return f.Stats().InFlight == 2 })
	_, err := f.Invoke(tctx(t, wait), "echo", "third")
	if !errors.Is(err, cluster.ErrOverloaded) || !strings.Contains(err.Error(), "2 calls already in flight") || !strings.Contains(err.Error(), `"echo"`) {
		t.Fatalf("third call: %v", err)
	}
	g.release()
	wg.Wait()
	if got := mustInvoke[string](t, f, "echo", "after"); got != "after" {
		t.Fatalf("echo %q", got)
	}
}

// A leader runs at most WithMaxPending calls of one connection at once:
// beyond that it answers ErrOverloaded without running the method (the
// follower sees the sentinel), and drops one-way calls with an event.
func TestMaxPendingLeaderRefuses(t *testing.T) {
	g := newGate()
	rec := newRecorder()
	tr, addr := memNet(t)
	g.client(t, "Busy", cluster.WithTransport(tr), cluster.WithAddr(addr), cluster.WithMaxPending(2), rec.opt())
	p := dialRaw(t, tr, addr)
	p.register("Busy")
	for id := int64(10); id < 14; id++ {
		p.send(false, id, 30000, protocol.ConnObject{Type: protocol.KindInvoke, Method: "block"}, nil)
	}
	for range 2 {
		pk, co := p.expect(protocol.KindInvokeResult)
		var re protocol.RemoteError
		if err := json.Unmarshal(pk.App, &re); err != nil {
			t.Fatal(err)
		}
		if co.Success || re.Code != cluster.CodeOverloaded || !strings.Contains(re.Message, "2 calls already run") {
			t.Fatalf("request %d: success %v, %+v", pk.ID, co.Success, re)
		}
	}
	if n := len(g.started); n > 2 {
		t.Fatalf("%d calls started", n)
	}
	g.release()
	for range 2 {
		if _, co := p.expect(protocol.KindInvokeResult); !co.Success {
			t.Fatal("an admitted call failed")
		}
	}

	// One-way calls: with the gate open they run at once, so block the
	// queue with a second gate.
	g2 := newGate()
	tr2, addr2 := memNet(t)
	g2.client(t, "Oneway", cluster.WithTransport(tr2), cluster.WithAddr(addr2), cluster.WithMaxPending(1), rec.opt())
	p2 := dialRaw(t, tr2, addr2)
	p2.register("Oneway")
	for id := int64(20); id < 23; id++ { // one runs, one waits, one is dropped
		p2.send(false, id, 30000, protocol.ConnObject{Type: protocol.KindInvoke, Method: "block", Oneway: true}, nil)
	}
	ev := rec.wait(t, wait, "one-way call dropped", isErr(cluster.ErrOverloaded))
	if !strings.Contains(ev.Err.Error(), "one-way calls already wait") {
		t.Fatalf("event %v", ev.Err)
	}
}

// At WithMaxConns the leader drops the oldest connection that has not
// registered to make room: strangers holding connections open cannot
// lock followers out, and registered followers are never the ones to go.
func TestMaxConnsEvictsUnregistered(t *testing.T) {
	w := newWorld()
	l, tr, addr := startLeaderWorld(t, "Crowded", w, cluster.WithMaxConns(4))
	member := dialRaw(t, tr, addr)
	member.register("Crowded")
	eventually(t, wait, "the member admitted", func() bool { return l.Stats().Followers == 1 })
	var strangers []*rawPeer
	for range 10 {
		strangers = append(strangers, dialRaw(t, tr, addr))
	}
	eventually(t, wait, "at most 4 connections", func() bool { return l.Stats().Conns <= 4 })
	// The oldest strangers went, the newest three are held.
	for i, s := range strangers {
		s.conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		_, err := s.conn.Read(make([]byte, 1))
		gone := errors.Is(err, io.EOF) || (err != nil && !isTimeout(err))
		if want := i < 7; gone != want {
			t.Errorf("stranger %d: read %v, want gone=%v", i, err, want)
		}
	}
	f := newClient(t, "Crowded", newWorld(), cluster.WithTransport(tr), cluster.WithAddr(addr))
	if got := mustInvoke[string](t, f, "echo", "in"); got != "in" {
		t.Fatalf("echo %q", got)
	}
	arg, _ := protocol.AppendArg(nil, protocol.JSON, "still")
	member.send(false, 5, 3000, protocol.ConnObject{Type: protocol.KindInvoke, Method: "echo", ArgLength: 1}, arg)
	if _, co := member.expect(protocol.KindInvokeResult); !co.Success {
		t.Fatal("the registered member lost its service")
	}
}

// When every connection is registered, a new one is closed at once.
func TestMaxConnsFullOfMembers(t *testing.T) {
	l, tr, addr := startLeaderWorld(t, "Full", newWorld(), cluster.WithMaxConns(2))
	for range 2 {
		dialRaw(t, tr, addr).register("Full")
	}
	eventually(t, wait, "two followers", func() bool { return l.Stats().Followers == 2 })
	late := dialRaw(t, tr, addr)
	late.conn.SetReadDeadline(time.Now().Add(wait))
	if _, err := late.conn.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("the connection beyond the bound was kept: %v", err)
	}
}

// RG-03, UI-11: an error whose Error method panics still crosses the wire
// (as ErrPanic with what happened), and the leader keeps serving.
func TestErrorMarshallingNeverFails(t *testing.T) {
	tr, addr := memNet(t)
	factory := func(context.Context, cluster.Emit) (*cluster.Service, error) {
		return &cluster.Service{Methods: map[string]cluster.Handler{
			"bad":  func(context.Context, cluster.Args) (any, error) { return nil, panickyError{} },
			"echo": func(_ context.Context, a cluster.Args) (any, error) { var s string; return s, a.Decode(0, &s) },
		}}, nil
	}
	l, err := cluster.New("Errs", factory, append(fastOpts(), cluster.WithTransport(tr), cluster.WithAddr(addr))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(context.Background()) })
	ready(t, l)
	f, err := cluster.New("Errs", factory, append(fastOpts(), cluster.WithTransport(tr), cluster.WithAddr(addr))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close(context.Background()) })
	ready(t, f)
	_, err = f.Invoke(tctx(t, wait), "bad")
	if !errors.Is(err, cluster.ErrPanic) || !strings.Contains(err.Error(), "Error method panicked") {
		t.Fatalf("bad: %v", err)
	}
	if got := mustInvoke[string](t, f, "echo", "alive"); got != "alive" {
		t.Fatalf("echo %q", got)
	}
}

type panickyError struct{}

func (panickyError) Error() string { panic("Error() exploded") }

func TestLimitOptionsValidated(t *testing.T) {
	for name, opt := range map[string]cluster.Option{
		"pending 0":   cluster.WithMaxPending(0),
		"pending -1":  cluster.WithMaxPending(-1),
		"conns 0":     cluster.WithMaxConns(0),
		"conns -5":    cluster.WithMaxConns(-5),
		"nil handsh.": cluster.WithHandshake(nil),
		"subs 0":      cluster.WithMaxSubscriptions(0, 10),
		"keys -1":     cluster.WithMaxSubscriptions(10, -1),
		"unproven 1K": cluster.WithUnprovenBuffer(1<<10 - 1),
	} {
		if _, err := cluster.New("X", newWorld().factory, opt); !errors.Is(err, cluster.ErrInvalidOption) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// WithLimits bounds the frames a leader accepts: an invoke whose app object
// is larger than MaxAppLen makes it hang up on that connection, where the
// same frame under the default limits is answered. Other followers are
// served either way.
func TestWithLimitsBoundsFrames(t *testing.T) {
	big := strings.Repeat("x", 4096)
	args, err := protocol.AppendArg(nil, protocol.JSON, big)
	if err != nil {
		t.Fatal(err)
	}
	invoke := func(p *rawPeer) {
		t.Helper()
		if err := p.send(false, 3, 3000, protocol.ConnObject{Type: protocol.KindInvoke, Method: "echo", ArgLength: 1}, args); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("default limits answer", func(t *testing.T) {
		_, tr, addr := startLeader(t, "Limits")
		p := dialRaw(t, tr, addr)
		p.register("Limits")
		invoke(p)
		pk, _ := p.expect(protocol.KindInvokeResult)
		if !strings.Contains(string(pk.App), big) {
			t.Fatalf("echo answered %.200s", pk.App)
		}
	})
	t.Run("smaller limit hangs up", func(t *testing.T) {
		l, tr, addr := startLeader(t, "Limits", cluster.WithLimits(protocol.Limits{MaxAppLen: 1024}))
		f := newClient(t, "Limits", newWorld(), cluster.WithTransport(tr), cluster.WithAddr(addr))
		ready(t, f)
		p := dialRaw(t, tr, addr)
		p.register("Limits")
		invoke(p)
		expectHangUp(t, p)
		if got := mustInvoke[string](t, f, "echo", "small"); got != "small" {
			t.Fatalf("echo %q", got)
		}
		if n := l.Stats().Followers; n != 1 {
			t.Fatalf("%d followers after the oversized frame, want 1", n)
		}
	})
}

// WithEventBuffer bounds the events waiting for a slow handler: with room
// for 4, a burst of 50 upstream events while the handler is stuck keeps at
// most 4 (plus the one being handled) and counts the rest as dropped; the
// default buffer keeps them all.
func TestWithEventBufferBoundsQueuedEvents(t *testing.T) {
	const burst = 50
	run := func(t *testing.T, opts ...cluster.Option) (handled int, dropped uint64) {
		var (
			mu      sync.Mutex
			n       int
			stuck   = make(chan struct{})
			blocked = make(chan struct{})
			once    sync.Once
			emit    = make(chan cluster.Emit, 1)
		)
		h := func(ev cluster.Event) {
			if ev.Kind != cluster.EventUpstream {
				return
			}
			once.Do(func() { close(blocked); <-stuck })
			mu.Lock()
			n++
			mu.Unlock()
		}
		factory := func(_ context.Context, e cluster.Emit) (*cluster.Service, error) {
			emit <- e
			return &cluster.Service{}, nil
		}
		tr, addr := memNet(t)
		c, err := cluster.New("EventBuffer", factory, append(append(fastOpts(),
			cluster.WithTransport(tr), cluster.WithAddr(addr), cluster.WithEventHandler(h)), opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
		ready(t, c)
		e := <-emit
		e("tick", 0)
		<-blocked // the handler holds the first event
		for i := 1; i <= burst; i++ {
			e("tick", i)
		}
		dropped = c.Stats().EventsDropped
		close(stuck)
		eventually(t, wait, "the handler to drain", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return uint64(n)+c.Stats().EventsDropped == burst+1
		})
		mu.Lock()
		defer mu.Unlock()
		return n, dropped
	}
	t.Run("buffer 4", func(t *testing.T) {
		handled, dropped := run(t, cluster.WithEventBuffer(4))
		if dropped == 0 || handled > 5 {
			t.Fatalf("WithEventBuffer(4): %d events handled, %d dropped; want at most 5 handled, the rest dropped", handled, dropped)
		}
	})
	t.Run("default", func(t *testing.T) {
		if handled, dropped := run(t); dropped != 0 || handled != burst+1 {
			t.Fatalf("default buffer: %d handled, %d dropped; want %d, 0", handled, dropped, burst+1)
		}
	})
}

// A channel name whose register_channel could never be read under the
// configured limits is refused by New, which says the limit (issue 14:
// a 1 MiB name was accepted, and no follower could ever register). The
// bound New states is the real one: a name of that length registers, one
// byte more is refused, and characters that JSON escapes count more.
func TestChannelNameMustFitRegister(t *testing.T) {
	huge := strings.Repeat("n", 1<<20)
	_, err := cluster.New(huge, newWorld().factory, append(fastOpts(), cluster.WithInsecure())...)
	if !errors.Is(err, cluster.ErrInvalidOption) || !strings.Contains(err.Error(), "1048576 bytes") ||
		!strings.Contains(err.Error(), "65536") || len(err.Error()) > 1000 {
		t.Fatalf("insecure, 1 MiB name: %.1000v; want ErrInvalidOption naming the size and the 65536-byte limit, in a short message", err)
	}
	key := cluster.WithAuth(auth.Config{Key: []byte("0123456789abcdef0123")})
	_, err = cluster.New(huge, newWorld().factory, append(fastOpts(), key)...)
	if !errors.Is(err, cluster.ErrInvalidOption) || !strings.Contains(err.Error(), "at most 4096") || len(err.Error()) > 1000 {
		t.Fatalf("authenticated, 1 MiB name: %.1000v; want ErrInvalidOption naming package auth's 4096-byte bound", err)
	}

	// The hello names the address too: the bound is the one for the
	// address the Clients below use.
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	limits := cluster.WithLimits(protocol.Limits{MaxConnLen: 1024})
	at := cluster.WithAddr(addr)
	_, err = cluster.New(strings.Repeat("n", 1024), newWorld().factory, append(fastOpts(), key, limits, at)...)
	if !errors.Is(err, cluster.ErrInvalidOption) || !strings.Contains(err.Error(), "MaxConnLen: 1024") {
		t.Fatalf("1 KiB name under MaxConnLen 1024: %v", err)
	}
	var fit int
	if _, serr := fmt.Sscanf(err.Error()[strings.Index(err.Error(), "a name of at most "):], "a name of at most %d bytes", &fit); serr != nil || fit < 100 {
		t.Fatalf("no usable bound in %q (%v)", err, serr)
	}
	_, err = cluster.New(strings.Repeat("n", fit+1), newWorld().factory, append(fastOpts(), key, limits, at)...)
	if !errors.Is(err, cluster.ErrInvalidOption) {
		t.Fatalf("a name of %d bytes, one over the stated bound: %v", fit+1, err)
	}
	_, err = cluster.New(strings.Repeat("<", fit), newWorld().factory, append(fastOpts(), key, limits, at)...)
	if !errors.Is(err, cluster.ErrInvalidOption) {
		t.Fatalf("%d bytes of '<' (escaped by JSON): %v", fit, err)
	}

	// At the bound: a leader and a follower (another "process") register.
	name := strings.Repeat("n", fit)
	opts := []cluster.Option{key, limits, at}
	l := newClient(t, name, newWorld(), append(opts, cluster.WithMode(cluster.ForceLeader))...)
	ready(t, l)
	f := newClient(t, name, newWorld(), append(opts, cluster.WithMode(cluster.ForceFollower),
		cluster.WithRegistry(election.NewRegistry()))...)
	ready(t, f)
	if f.IsLeader() || l.Stats().Followers != 1 {
		t.Fatalf("follower leads: %v; leader's followers: %d", f.IsLeader(), l.Stats().Followers)
	}
}
