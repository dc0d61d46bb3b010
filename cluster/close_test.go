package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
)

// Scenario 11 (CC-004, CC-006, CC-036, UI-15): Close closes the real client
// exactly once, through the Service's Close hook, and waits for it; the
// address is free once every Client on it closed; in single mode the
// shared real client closes with its last user.
func TestCC004_CloseOnceAndFreeAddress(t *testing.T) {
	t.Run("cluster", func(t *testing.T) {
		w := newWorld()
		w.closeDelay = 100 * time.Millisecond
		tr, addr := memNet(t)
		l, f := pair(t, "RegistryClient", w, cluster.WithTransport(tr), cluster.WithAddr(addr))
		if err := f.Close(tctx(t, wait)); err != nil {
			t.Fatal(err)
		}
		if n := w.closes.Load(); n != 0 {
			t.Fatalf("follower close closed the real client (%d)", n)
		}
		if err := l.Close(tctx(t, wait)); err != nil {
			t.Fatal(err)
		}
		if n := w.closes.Load(); n != 1 {
			t.Fatalf("after Close returned: %d real client closes, want 1 (Close must wait for it)", n)
		}
		ln, err := tr.Listen(tctx(t, wait), addr)
		if err != nil {
			t.Fatalf("address still held: %v", err)
		}
		ln.Close()
	})
	t.Run("single", func(t *testing.T) {
		w := newWorld()
		w.closeDelay = 100 * time.Millisecond
		c1 := newClient(t, "RegistryClient", w, cluster.WithSingleMode(true))
		c2 := newClient(t, "RegistryClient", w, cluster.WithSingleMode(true))
		ready(t, c1)
		ready(t, c2)
		if err := c1.Close(tctx(t, wait)); err != nil {
			t.Fatal(err)
		}
		if n := w.closes.Load(); n != 0 {
			t.Fatalf("closing the first user closed the shared real client")
		}
		if got := mustInvoke[string](t, c2, "echo", "alive"); got != "alive" {
			t.Fatalf("echo %q", got)
		}
		if err := c2.Close(tctx(t, wait)); err != nil {
			t.Fatal(err)
		}
		if n := w.closes.Load(); n != 1 {
			t.Fatalf("%d closes, want 1", n)
		}
	})
	t.Run("close error", func(t *testing.T) {
		w := newWorld()
		w.closeErr = errors.New("upstream refused to close")
		tr, addr := memNet(t)
		c, err := cluster.New("CloseErr", w.factory, append(fastOpts(), cluster.WithTransport(tr), cluster.WithAddr(addr))...)
		if err != nil {
			t.Fatal(err)
		}
		ready(t, c)
		for range 2 { // the same result twice
			err := c.Close(tctx(t, wait))
			if err == nil || !strings.Contains(err.Error(), "upstream refused to close") {
				t.Fatalf("close: %v", err)
			}
		}
	})
}

// CC-026, RP-01 (in process): one real client per channel whatever the
// number of Clients; after all of them closed, the next leader builds a
// fresh one.
func TestCC026_OneRealClientThenAFreshOne(t *testing.T) {
	bothModes(t, "Client", newWorld, func(t *testing.T, w *world, c1, c2 *cluster.Client) {
		for _, c := range []*cluster.Client{c1, c2} {
			if v := mustInvoke[int](t, c, "version"); v != 1 {
				t.Fatalf("%s version %d", c.Role(), v)
			}
		}
		c2.Close(tctx(t, wait))
		c1.Close(tctx(t, wait))
		var opts []cluster.Option
		if c1.Stats().Transport != "" {
			st := c1.Stats()
			tr, _ := memNet(t)
			opts = []cluster.Option{cluster.WithTransport(tr), cluster.WithAddr(st.Addr)}
		} else {
			opts = []cluster.Option{cluster.WithSingleMode(true)}
		}
		d1 := newClient(t, "Client", w, opts...)
		ready(t, d1)
		d2 := newClient(t, "Client", w, opts...)
		ready(t, d2)
		for _, c := range []*cluster.Client{d1, d2} {
			if v := mustInvoke[int](t, c, "version"); v != 2 {
				t.Fatalf("%s version %d after reopening", c.Role(), v)
			}
			if _, err := c.Invoke(tctx(t, wait), "fail"); err == nil || !strings.Contains(err.Error(), "mock error") {
				t.Fatalf("fail: %v", err)
			}
		}
	})
}

// CC-038, RG-18, UI-15: Close is idempotent (concurrent callers get the
// same result) and an error the real client raises after Close harms
// nobody.
func TestCC038_CloseTwiceAndLateErrors(t *testing.T) {
	var emitted sync.WaitGroup
	emitted.Add(1)
	closed := make(chan struct{}) // every Close below has returned
	factory := func(_ context.Context, emit cluster.Emit) (*cluster.Service, error) {
		return &cluster.Service{Close: func(context.Context) error {
			go func() {
				defer emitted.Done()
				<-closed
				emit("error", errors.New("mock error"))
			}()
			return nil
		}}, nil
	}
	tr, addr := memNet(t)
	rec := newRecorder()
	c, err := cluster.New("LateError", factory, append(fastOpts(), cluster.WithTransport(tr), cluster.WithAddr(addr), rec.opt())...)
	if err != nil {
		t.Fatal(err)
	}
	ready(t, c)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = c.Close(tctx(t, wait)) }()
	}
	wg.Wait()
	close(closed)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("close #%d: %v", i, err)
		}
	}
	emitted.Wait()
	if err := c.Close(tctx(t, wait)); err != nil {
		t.Fatalf("close again: %v", err)
	}
	evs := rec.all()
	if len(evs) == 0 || evs[len(evs)-1].Kind != cluster.EventClosed {
		t.Fatalf("last event is not closed: %v", evs)
	}
}

// RG-20: closing a leader while a follower's call runs raises no internal
// error event (timeouts, dropped replies) during or after Close, whether
// the leader hands over (the call is answered) or hangs up at once (the
// call fails with ErrLeaderLost).
func TestRG20_NoInternalErrorsAfterClose(t *testing.T) {
	for _, handover := range []bool{true, false} {
		t.Run(fmt.Sprintf("handover=%v", handover), func(t *testing.T) {
			w := newWorld()
			rec := newRecorder()
			tr, addr := memNet(t)
			opts := []cluster.Option{cluster.WithTransport(tr), cluster.WithAddr(addr), cluster.WithResponseTimeout(100 * time.Millisecond)}
			if !handover {
				opts = append(opts, cluster.WithHandoverTimeout(0))
			}
			l := newClient(t, "CloseBusy", w, append(opts, rec.opt())...)
			ready(t, l)
			f := newClient(t, "CloseBusy", w, opts...)
			ready(t, f)
			done := make(chan error, 1)
			go func() { _, err := f.Invoke(tctx(t, wait), "sleep", 300); done <- err }()
			eventually(t, wait, "call running", func() bool { return l.Stats().InFlight == 1 })
			if err := l.Close(tctx(t, wait)); err != nil {
				t.Fatal(err)
			}
			err := <-done
			switch {
			case handover && err != nil:
				t.Fatalf("the call in flight during a hand-over: %v, want its answer", err)
			case !handover && !errors.Is(err, cluster.ErrLeaderLost):
				t.Fatalf("the call in flight on a leader that hung up: %v, want ErrLeaderLost", err)
			}
			if n := rec.count(func(ev cluster.Event) bool { return ev.Kind == cluster.EventError }); n != 0 {
				t.Fatalf("%d error events around close: %v", n, rec.all())
			}
		})
	}
}

// CC-014, SRC-10: the real client's events reach the leader's Client as
// they are (even one named "ready"); followers do not see them.
func TestCC014_UpstreamEventsToLeaderOnly(t *testing.T) {
	lrec, frec := newRecorder(), newRecorder()
	w := newWorld()
	tr, addr := memNet(t)
	opts := []cluster.Option{cluster.WithTransport(tr), cluster.WithAddr(addr)}
	l := newClient(t, "MockClient", w, append(opts, lrec.opt())...)
	ready(t, l)
	f := newClient(t, "MockClient", w, append(opts, frec.opt())...)
	ready(t, f)
	term := l.Stats().Term
	// SRC-09 (decided): a real client's "close" event is only an event; it
	// does not end the term (Node re-initialises and leaks the leader).
	for _, name := range []string{"ready", "foo", "close"} {
		if err := f.InvokeOneway("emit", name); err != nil {
			t.Fatal(err)
		}
		ev := lrec.wait(t, wait, name, func(ev cluster.Event) bool { return ev.Kind == cluster.EventUpstream && ev.Name == name })
		if ev.Role != cluster.RoleLeader || ev.Err == nil || ev.Err.Error() != "upstream event "+name {
			t.Fatalf("event %v", ev)
		}
	}
	holdsFor(t, 50*time.Millisecond, "the follower sees no upstream event", func() bool {
		return frec.count(func(ev cluster.Event) bool { return ev.Kind == cluster.EventUpstream }) == 0
	})
	if st := l.Stats(); st.Term != term || st.Role != cluster.RoleLeader || !st.Ready {
		t.Fatalf("the close event changed the leader: %+v", st)
	}
}

// CC-041, RG-10, SRC-10: in single mode the real client's events reach
// every Client sharing it, whichever triggered them, exactly once each.
func TestCC041_SingleModeEventsToEveryClient(t *testing.T) {
	w := newWorld()
	r1, r2 := newRecorder(), newRecorder()
	c1 := newClient(t, "case_1", w, cluster.WithSingleMode(true), r1.opt())
	c2 := newClient(t, "case_1", w, cluster.WithSingleMode(true), r2.opt())
	ready(t, c1)
	ready(t, c2)
	if err := c1.InvokeOneway("emit", "EmptyRegError"); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.Call[any](tctx(t, wait), c2, "emit", "Other"); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*recorder{r1, r2} {
		for _, name := range []string{"EmptyRegError", "Other"} {
			r.wait(t, wait, name, func(ev cluster.Event) bool { return ev.Kind == cluster.EventUpstream && ev.Name == name })
		}
	}
	holdsFor(t, 50*time.Millisecond, "each client sees exactly the 2 upstream events", func() bool {
		for _, r := range []*recorder{r1, r2} {
			if r.count(func(ev cluster.Event) bool { return ev.Kind == cluster.EventUpstream }) != 2 {
				return false
			}
		}
		return true
	})
}

// CC-040, CC-057, CC-058, CC-059, RG-28: an error raised in a listener is
// observed exactly once, by the Client that owns the listener, and the
// other listeners still get the value.
func TestCC040_ListenerErrorSeenOnce(t *testing.T) {
	bothModes(t, "case_1", newWorld, func(t *testing.T, w *world, c1, c2 *cluster.Client) {
		// The event handler is per Client: attach one by re-creating c2's
		// view through a recorder on a third Client of the same scene.
		_ = c1
		rec := newRecorder()
		var opts []cluster.Option
		if st := c2.Stats(); st.Transport != "" {
			tr, _ := memNet(t)
			opts = []cluster.Option{cluster.WithTransport(tr), cluster.WithAddr(st.Addr)}
		} else {
			opts = []cluster.Option{cluster.WithSingleMode(true)}
		}
		c3 := newClient(t, "case_1", w, append(opts, rec.opt())...)
		ready(t, c3)
		ok := newSink()
		if _, err := c3.Subscribe(reg{Key: "foo"}, func(cluster.Value) { panic("mock error") }); err != nil {
			t.Fatal(err)
		}
		if _, err := c3.Subscribe(reg{Key: "foo"}, ok.listener(t)); err != nil {
			t.Fatal(err)
		}
		ok.waitFor(t, wait)
		if ev := rec.wait(t, wait, "panic", isErr(cluster.ErrListenerPanic)); !strings.Contains(ev.Err.Error(), "mock error") {
			t.Fatalf("event %v", ev)
		}
		holdsFor(t, 100*time.Millisecond, "exactly 1 listener error", func() bool { return rec.count(isErr(cluster.ErrListenerPanic)) == 1 })
	})
}

// RG-08, UI-12: single mode delivers to the first subscriber and to later
// ones.
func TestRG08_SingleModeSubscribe(t *testing.T) {
	w := newWorld()
	c := newClient(t, "Single", w, cluster.WithSingleMode(true))
	ready(t, c)
	first, second := newSink(), newSink()
	if _, err := c.Subscribe(reg{Key: "k"}, first.listener(t)); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(reg{Key: "k", Value: "v"}); err != nil {
		t.Fatal(err)
	}
	first.waitFor(t, wait, "v")
	if _, err := c.Subscribe(reg{Key: "k"}, second.listener(t)); err != nil {
		t.Fatal(err)
	}
	second.waitFor(t, wait, "v")
}

// Close during a slow start cancels the factory's context and does not
// wait for the start to finish; Close bounded by a short context returns
// its error while the teardown finishes in the background.
func TestCloseDuringStartAndBoundedClose(t *testing.T) {
	t.Run("during start", func(t *testing.T) {
		w := newWorld()
		w.initDelay = time.Hour // the factory honours its context
		tr, addr := memNet(t)
		c := newClient(t, "SlowStart", w, cluster.WithTransport(tr), cluster.WithAddr(addr))
		eventually(t, wait, "factory running", func() bool { return w.builds.Load() == 1 })
		start := time.Now()
		if err := c.Close(tctx(t, wait)); err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el > 2*time.Second {
			t.Fatalf("close took %v", el)
		}
		if n := w.closes.Load(); n != 0 {
			t.Fatalf("%d closes of a real client that never started", n)
		}
	})
	t.Run("bounded", func(t *testing.T) {
		w := newWorld()
		w.closeDelay = 300 * time.Millisecond
		tr, addr := memNet(t)
		c := newClient(t, "SlowClose", w, cluster.WithTransport(tr), cluster.WithAddr(addr))
		ready(t, c)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if err := c.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("bounded close: %v", err)
		}
		if err := c.Close(tctx(t, wait)); err != nil {
			t.Fatalf("second close: %v", err)
		}
		if n := w.closes.Load(); n != 1 {
			t.Fatalf("%d closes", n)
		}
	})
}

// The real client is never closed under a running method: Close waits for
// the leader's own calls too, and refuses new ones.
func TestCloseWaitsForRunningCalls(t *testing.T) {
	w := newWorld()
	tr, addr := memNet(t)
	c := newClient(t, "Busy", w, cluster.WithTransport(tr), cluster.WithAddr(addr))
	ready(t, c)
	res := make(chan error, 1)
	go func() {
		got, err := cluster.Call[string](tctx(t, wait), c, "sleep", 200)
		if err == nil && got != "woke" {
			err = errors.New(got)
		}
		res <- err
	}()
	eventually(t, wait, "call running", func() bool { return c.Stats().InFlight == 1 })
	if err := c.Close(tctx(t, wait)); err != nil {
		t.Fatal(err)
	}
	if err := <-res; err != nil {
		t.Fatalf("running call: %v", err)
	}
	if end, closed := w.sleepEnd.Load(), w.closeAt.Load(); closed < end {
		t.Fatalf("real client closed %v before the method returned", time.Duration(end-closed))
	}
}

// A closed Client reports role "none" (RoleNone's documentation says so)
// and is no longer the leader, whichever role it had: leader, follower or
// single mode. Role, IsLeader and Stats agree.
func TestRoleAfterCloseIsNone(t *testing.T) {
	check := func(t *testing.T, c *cluster.Client, was cluster.Role) {
		t.Helper()
		if got := c.Role(); got != was {
			t.Fatalf("before Close: role %s, want %s", got, was)
		}
		if err := c.Close(tctx(t, wait)); err != nil {
			t.Fatal(err)
		}
		if got := c.Role(); got != cluster.RoleNone {
			t.Errorf("%s after Close: Role() = %s, want none", was, got)
		}
		if c.IsLeader() {
			t.Errorf("%s after Close: IsLeader() = true", was)
		}
		if st := c.Stats(); st.Role != cluster.RoleNone || !st.Closed {
			t.Errorf("%s after Close: Stats().Role = %s, Closed = %v; want none, true", was, st.Role, st.Closed)
		}
	}
	t.Run("cluster", func(t *testing.T) {
		w := newWorld()
		tr, addr := memNet(t)
		l, f := pair(t, "RoleAfterClose", w, cluster.WithTransport(tr), cluster.WithAddr(addr))
		check(t, f, cluster.RoleFollower)
		check(t, l, cluster.RoleLeader)
	})
	t.Run("single", func(t *testing.T) {
		c := newClient(t, "RoleAfterClose", newWorld(), cluster.WithSingleMode(true))
		ready(t, c)
		check(t, c, cluster.RoleSingle)
	})
}
