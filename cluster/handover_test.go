package cluster_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
)

// A leader that closes hands over: a follower's call in flight on it is
// answered, its one-way calls already sent run there exactly once, calls
// made during the change wait for the next leader and succeed, no call
// fails, the followers hear ErrLeaderLeft (not a lost leader), and the old
// real client closes only after the call it was serving returned.
func TestHandoverFailsNoCall(t *testing.T) {
	// Transports whose conns outlive their listener (the address is
	// freed at once) and KCP, whose conns end with it (the address is
	// kept until the hand-over ends).
	for _, n := range []testNet{netMem, netTCP, netUnix, netKCP} {
		t.Run(n.name, func(t *testing.T) {
			tr, addr := n.make(t)
			w := newWorld()
			opts := []cluster.Option{cluster.WithTransport(tr), cluster.WithAddr(addr), cluster.WithResponseTimeout(10 * time.Second)}
			l := newClient(t, "Handover", w, opts...)
			ready(t, l)
			rec := newRecorder()
			f1 := newClient(t, "Handover", w, opts...)
			f2 := newClient(t, "Handover", w, append(opts, rec.opt())...)
			ready(t, f1)
			ready(t, f2)

			inflight := make(chan error, 1)
			go func() {
				got, err := f1.Invoke(tctx(t, 20*time.Second), "sleep", 300)
				if err == nil {
					var s string
					if err = got.Decode(&s); err == nil && s != "woke" {
						err = errors.New("answer " + s)
					}
				}
				inflight <- err
			}()
			const ticks = 20
			for range ticks {
				if err := f2.InvokeOneway("tick", 5); err != nil {
					t.Fatal(err)
				}
			}
			// The sleep itself runs on the leader (a tick running counts
			// in InFlight as well, and a sleep not yet sent when the
			// leader leaves runs on the next one).
			eventually(t, wait, "the call in flight", func() bool { return w.sleeps.Load() == 1 })

			closed := make(chan error, 1)
			go func() { closed <- l.Close(tctx(t, 20*time.Second)) }()
			// Calls made while the leader leaves wait for the next one.
			for i := range 5 {
				if got := mustInvoke[int](t, f2, "add", []int{i, 1}); got != i+1 {
					t.Fatalf("add: %d", got)
				}
			}
			if err := <-inflight; err != nil {
				t.Fatalf("the call in flight during the hand-over: %v", err)
			}
			if err := <-closed; err != nil {
				t.Fatalf("close: %v", err)
			}
			if end, closeAt := w.sleepEnd.Load(), w.closeAt.Load(); closeAt < end {
				t.Fatalf("the old real client closed %v before its call returned", time.Duration(end-closeAt))
			}
			settled(t, f1, f2)
			eventually(t, wait, "every one-way call ran", func() bool { return w.ticks.Load() >= ticks })
			holdsFor(t, 50*time.Millisecond, "each one-way call ran once", func() bool { return w.ticks.Load() == ticks })
			for _, f := range []*cluster.Client{f1, f2} {
				if st := f.Stats(); st.LeaderLost != 0 || st.InvokeErrors != 0 {
					t.Fatalf("%d calls lost with the leader, %d failed: %+v", st.LeaderLost, st.InvokeErrors, st)
				}
			}
			ev := rec.wait(t, wait, "the leader's departure", func(ev cluster.Event) bool { return ev.Kind == cluster.EventLeaderLost })
			if !errors.Is(ev.Err, cluster.ErrLeaderLeft) {
				t.Fatalf("departure event: %v, want ErrLeaderLeft", ev.Err)
			}
		})
	}
}

// The hand-over is bounded by Close's context: past it, the calls still
// in flight fail with ErrLeaderLost as after a crash, and Close returns
// the context's error.
func TestHandoverBoundedByCloseContext(t *testing.T) {
	tr, addr := memNet(t)
	w := newWorld()
	opts := []cluster.Option{cluster.WithTransport(tr), cluster.WithAddr(addr), cluster.WithResponseTimeout(20 * time.Second)}
	l := newClient(t, "HandoverBound", w, opts...)
	ready(t, l)
	f := newClient(t, "HandoverBound", w, opts...)
	ready(t, f)
	w.ctxSeen = make(chan error, 1)
	inflight := make(chan error, 1)
	go func() {
		_, err := f.Invoke(tctx(t, 20*time.Second), "waitctx")
		inflight <- err
	}()
	eventually(t, wait, "the call in flight", func() bool { return l.Stats().InFlight == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := l.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("close: %v, want the context's deadline", err)
	}
	if err := <-inflight; !errors.Is(err, cluster.ErrLeaderLost) {
		t.Fatalf("the call left when the bound passed: %v, want ErrLeaderLost", err)
	}
	// The method saw its context end with the term.
	select {
	case <-w.ctxSeen:
	case <-time.After(wait):
		t.Fatal("the method's context did not end")
	}
}

// WithHandoverTimeout bounds the hand-over too, and 0 turns it off.
func TestHandoverTimeoutOption(t *testing.T) {
	if _, err := cluster.New("x", newWorld().factory, cluster.WithHandoverTimeout(-time.Second)); !errors.Is(err, cluster.ErrInvalidOption) {
		t.Fatalf("negative handover timeout: %v", err)
	}
	for _, c := range []struct {
		name  string
		bound time.Duration
	}{{"off", 0}, {"bound", 200 * time.Millisecond}} {
		t.Run(c.name, func(t *testing.T) {
			tr, addr := memNet(t)
			w := newWorld()
			opts := []cluster.Option{cluster.WithTransport(tr), cluster.WithAddr(addr), cluster.WithResponseTimeout(20 * time.Second)}
			l := newClient(t, "HandoverOpt", w, append(opts, cluster.WithHandoverTimeout(c.bound))...)
			ready(t, l)
			f := newClient(t, "HandoverOpt", w, opts...)
			ready(t, f)
			inflight := make(chan error, 1)
			go func() {
				_, err := f.Invoke(tctx(t, 20*time.Second), "waitctx")
				inflight <- err
			}()
			eventually(t, wait, "the call in flight", func() bool { return l.Stats().InFlight == 1 })
			if err := l.Close(tctx(t, wait)); err != nil {
				t.Fatal(err)
			}
			if err := <-inflight; !errors.Is(err, cluster.ErrLeaderLost) {
				t.Fatalf("the call in flight: %v, want ErrLeaderLost", err)
			}
		})
	}
}

// A follower's call to a method the Service declares idempotent is sent
// again to the next leader when the leader is lost with it in flight; an
// undeclared method fails with ErrLeaderLost. The leader here hangs up
// without a hand-over, as a crashed one looks to its followers (the
// multi-process test kills one).
func TestIdempotentCallRetried(t *testing.T) {
	for _, c := range []struct {
		name       string
		idempotent []string
	}{{"declared", []string{"sleep"}}, {"undeclared", nil}} {
		t.Run(c.name, func(t *testing.T) {
			tr, addr := memNet(t)
			w := newWorld()
			w.idempotent = c.idempotent
			opts := []cluster.Option{cluster.WithTransport(tr), cluster.WithAddr(addr), cluster.WithResponseTimeout(10 * time.Second)}
			l := newClient(t, "Idempotent", w, append(opts, cluster.WithHandoverTimeout(0))...)
			ready(t, l)
			f := newClient(t, "Idempotent", w, opts...)
			ready(t, f)
			inflight := make(chan error, 1)
			go func() {
				_, err := f.Invoke(tctx(t, 20*time.Second), "sleep", 200)
				inflight <- err
			}()
			eventually(t, wait, "the call in flight", func() bool { return l.Stats().InFlight == 1 })
			if err := l.Close(tctx(t, wait)); err != nil {
				t.Fatal(err)
			}
			err := <-inflight
			st := f.Stats()
			if c.idempotent != nil {
				if err != nil || st.Retried != 1 || st.LeaderLost != 0 {
					t.Fatalf("idempotent call: %v (retried %d, lost %d), want its answer from the next leader", err, st.Retried, st.LeaderLost)
				}
				return
			}
			if !errors.Is(err, cluster.ErrLeaderLost) || st.Retried != 0 {
				t.Fatalf("call not declared idempotent: %v (retried %d), want ErrLeaderLost", err, st.Retried)
			}
		})
	}
}

// A Service that declares idempotent a method it does not have is refused:
// the ready error of every role names it.
func TestIdempotentUnknownMethodRefused(t *testing.T) {
	w := newWorld()
	w.idempotent = []string{"nope"}
	tr, addr := memNet(t)
	l := newClient(t, "IdemBad", w, cluster.WithTransport(tr), cluster.WithAddr(addr), cluster.WithStartRetry(0, 0))
	err := l.Ready(tctx(t, wait))
	if !errors.Is(err, cluster.ErrInvalidOption) || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("ready: %v, want ErrInvalidOption naming the method", err)
	}
}
