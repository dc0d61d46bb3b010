package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
)

// gatedFactory is a factory whose every run asks the test for its
// outcome: the test decides when each attempt ends and how, so the
// retries are sequenced by the test, not by timing.
type gatedFactory struct {
	attempts chan int   // the attempt's number, sent as it starts
	outcome  chan error // the test's answer: nil starts the real client
	n        atomic.Int32
}

func newGatedFactory() *gatedFactory {
	return &gatedFactory{attempts: make(chan int), outcome: make(chan error)}
}

func (g *gatedFactory) factory(ctx context.Context, _ cluster.Emit) (*cluster.Service, error) {
	n := int(g.n.Add(1))
	select {
	case g.attempts <- n:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	var err error
	select {
	case err = <-g.outcome:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	return &cluster.Service{Methods: map[string]cluster.Handler{
		"attempt": func(context.Context, cluster.Args) (any, error) { return n, nil },
	}}, nil
}

// next waits for the next attempt and answers it with err.
func (g *gatedFactory) next(t *testing.T, want int, err error) {
	t.Helper()
	select {
	case n := <-g.attempts:
		if n != want {
			t.Fatalf("attempt %d, want %d", n, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no attempt %d", want)
	}
	g.outcome <- err
}

// readyEvents collects a Client's EventReady (their Err, "" when ready).
func readyEvents() (cluster.Option, chan string) {
	ch := make(chan string, 64)
	return cluster.WithEventHandler(func(ev cluster.Event) {
		if ev.Kind == cluster.EventReady {
			s := ""
			if ev.Err != nil {
				s = ev.Err.Error()
			}
			ch <- s
		}
	}), ch
}

// awaitEvent waits for an EventReady whose error contains want ("" for
// ready), skipping older ones.
func awaitEvent(t *testing.T, who string, ch chan string, want string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case got := <-ch:
			if (want == "" && got == "") || (want != "" && strings.Contains(got, want)) {
				return
			}
		case <-timeout:
			t.Fatalf("%s: no ready event with %q", who, want)
		}
	}
}

// Issue 16, point 5: a factory that fails (the upstream is down) is run
// again while the leader's term lives. Until a start succeeds, the leader
// and a follower that registered meanwhile fail with the latest failure
// (and report each one as an EventReady with the error); once it
// succeeds both become ready by themselves, without a new leader.
func TestFailedStartRecovers(t *testing.T) {
	g := newGatedFactory()
	tr, addr := memNet(t)
	opts := append(fastOpts(), cluster.WithTransport(tr), cluster.WithAddr(addr),
		cluster.WithStartRetry(time.Millisecond, 2*time.Millisecond))
	lev, lch := readyEvents()
	l, err := cluster.New("Recover", g.factory, append(opts, lev)...)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(context.Background())
	down := errors.New("upstream down")

	g.next(t, 1, fmt.Errorf("#1: %w", down))
	awaitEvent(t, "leader", lch, "#1")
	if err := l.Ready(tctx(t, wait)); !errors.Is(err, cluster.ErrNotReady) || !errors.Is(err, down) || l.Role() != cluster.RoleLeader {
		t.Fatalf("leader ready after attempt 1: %v (role %v)", err, l.Role())
	}

	// A follower that registers while the start fails gets its error.
	fev, fch := readyEvents()
	f, err := cluster.New("Recover", g.factory, append(opts, fev)...)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close(context.Background())
	awaitEvent(t, "follower", fch, "#1")
	if err := f.Ready(tctx(t, wait)); !errors.Is(err, cluster.ErrNotReady) || !strings.Contains(err.Error(), "#1") {
		t.Fatalf("follower ready after attempt 1: %v", err)
	}
	if _, err := f.Invoke(tctx(t, wait), "attempt"); !errors.Is(err, cluster.ErrNotReady) {
		t.Fatalf("follower call after attempt 1: %v", err)
	}

	// Each later failure is the latest error, on both roles.
	g.next(t, 2, fmt.Errorf("#2: %w", down))
	awaitEvent(t, "leader", lch, "#2")
	awaitEvent(t, "follower", fch, "#2")
	if _, err := l.Invoke(tctx(t, wait), "attempt"); !errors.Is(err, down) || !strings.Contains(err.Error(), "#2") {
		t.Fatalf("leader call after attempt 2: %v", err)
	}

	g.next(t, 3, nil)
	awaitEvent(t, "leader", lch, "")
	awaitEvent(t, "follower", fch, "")
	for _, c := range []*cluster.Client{l, f} {
		if err := c.Ready(tctx(t, wait)); err != nil {
			t.Fatalf("%v ready after attempt 3: %v", c.Role(), err)
		}
		if got := mustInvoke[int](t, c, "attempt"); got != 3 {
			t.Fatalf("%v: served by attempt %d", c.Role(), got)
		}
	}
	if l.Role() != cluster.RoleLeader || f.Role() != cluster.RoleFollower {
		t.Fatalf("roles %v, %v", l.Role(), f.Role())
	}
	if st := l.Stats(); st.Term != 1 {
		t.Fatalf("the leader's term changed: %+v", st)
	}
}

// WithStartRetry(0, 0) keeps Node's behaviour: one attempt per term,
// however long the term lasts (fake time: an hour passes at once).
func TestFailedStartNoRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var runs atomic.Int32
		down := errors.New("upstream down")
		factory := func(context.Context, cluster.Emit) (*cluster.Service, error) {
			runs.Add(1)
			return nil, down
		}
		c, err := cluster.New("NoRetry", factory, cluster.WithSingleMode(true), cluster.WithLogger(testLogger()),
			cluster.WithStartRetry(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		if err := c.Ready(context.Background()); !errors.Is(err, down) {
			t.Fatalf("ready: %v", err)
		}
		if n := runs.Load(); n != 1 {
			t.Fatalf("factory ran %d times", n)
		}
		if err := c.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// A bad policy is refused by New.
func TestStartRetryOption(t *testing.T) {
	for _, p := range [][2]time.Duration{{-1, 0}, {0, time.Second}, {time.Second, time.Millisecond}} {
		if _, err := cluster.New("x", func(context.Context, cluster.Emit) (*cluster.Service, error) { return nil, nil },
			cluster.WithStartRetry(p[0], p[1])); !errors.Is(err, cluster.ErrInvalidOption) {
			t.Fatalf("WithStartRetry(%v, %v): %v", p[0], p[1], err)
		}
	}
}

// The pause between attempts doubles from the minimum up to the maximum
// (single mode: the same host code as a leader, and no network, so the
// fake clock of synctest measures the pauses exactly).
func TestStartRetryBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var at []time.Duration
		start := time.Now()
		down := errors.New("upstream down")
		factory := func(context.Context, cluster.Emit) (*cluster.Service, error) {
			at = append(at, time.Since(start))
			if len(at) <= 4 {
				return nil, fmt.Errorf("#%d: %w", len(at), down)
			}
			return &cluster.Service{}, nil
		}
		c, err := cluster.New("Backoff", factory, cluster.WithSingleMode(true), cluster.WithLogger(testLogger()),
			cluster.WithStartRetry(100*time.Millisecond, 300*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if err := c.Ready(context.Background()); !errors.Is(err, down) || !strings.Contains(err.Error(), "#1") {
			t.Fatalf("ready after attempt 1: %v", err)
		}
		time.Sleep(time.Second) // fake time: every retry is due
		synctest.Wait()
		if err := c.Ready(context.Background()); err != nil {
			t.Fatalf("ready after attempt 5: %v", err)
		}
		want := []time.Duration{0, 100, 300, 600, 900}
		for i := range want {
			want[i] *= time.Millisecond
		}
		if fmt.Sprint(at) != fmt.Sprint(want) {
			t.Fatalf("attempts at %v, want %v", at, want)
		}
		if err := c.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}
