package cluster_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
)

// hookRec is a StatsHandler that records what it sees; the caller's
// side adds metadata, the server's side a context value, so a test sees
// that the contexts TagCall returns are the ones the call goes on with.
type hookRec struct {
	mu     sync.Mutex
	calls  []cluster.CallInfo
	events []cluster.StatsEvent
	wake   chan struct{}
}

type serverTagKey struct{}

func newHookRec() *hookRec { return &hookRec{wake: make(chan struct{}, 1)} }

func (h *hookRec) TagCall(ctx context.Context, ci *cluster.CallInfo) context.Context {
	if ci.Side == cluster.SideServer {
		return context.WithValue(ctx, serverTagKey{}, "server-tagged")
	}
	return cluster.WithMetadata(ctx, "tag", "caller-tagged")
}

func (h *hookRec) HandleCall(_ context.Context, ci *cluster.CallInfo) {
	h.mu.Lock()
	h.calls = append(h.calls, *ci)
	h.mu.Unlock()
	h.poke()
}

func (h *hookRec) HandleEvent(ev *cluster.StatsEvent) {
	h.mu.Lock()
	h.events = append(h.events, *ev)
	h.mu.Unlock()
	h.poke()
}

func (h *hookRec) poke() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// waitCall returns the first recorded call f accepts, waiting for it.
func (h *hookRec) waitCall(t *testing.T, what string, f func(cluster.CallInfo) bool) cluster.CallInfo {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		h.mu.Lock()
		for _, ci := range h.calls {
			if f(ci) {
				h.mu.Unlock()
				return ci
			}
		}
		h.mu.Unlock()
		select {
		case <-h.wake:
		case <-deadline:
			t.Fatalf("no call %s; calls %+v", what, h.snapshotCalls())
		}
	}
}

func (h *hookRec) waitEvent(t *testing.T, what string, f func(cluster.StatsEvent) bool) cluster.StatsEvent {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		h.mu.Lock()
		for _, ev := range h.events {
			if f(ev) {
				h.mu.Unlock()
				return ev
			}
		}
		h.mu.Unlock()
		select {
		case <-h.wake:
		case <-deadline:
			h.mu.Lock()
			defer h.mu.Unlock()
			t.Fatalf("no event %s; events %+v", what, h.events)
		}
	}
}

func (h *hookRec) snapshotCalls() []cluster.CallInfo {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]cluster.CallInfo(nil), h.calls...)
}

// metaWorld adds "meta" to the test world: it answers with the caller's
// "tag" metadata and the server-side context value.
func metaFactory(w *world) cluster.Factory {
	return func(ctx context.Context, emit cluster.Emit) (*cluster.Service, error) {
		svc, err := w.factory(ctx, emit)
		if err != nil {
			return nil, err
		}
		svc.Methods["meta"] = func(ctx context.Context, _ cluster.Args) (any, error) {
			tag, _ := ctx.Value(serverTagKey{}).(string)
			return cluster.Metadata(ctx)["tag"] + "|" + tag, nil
		}
		return svc, nil
	}
}

// Issue 18: the StatsHandler sees each call at start and end on the
// caller's side in either role and on the leader's serving side, with
// role, bytes, outcome and code; the contexts TagCall returns carry
// metadata across and reach the handler; and it sees terms, followers
// joining and leaving, subscriptions, publications and pushes.
func TestStatsHandler(t *testing.T) {
	for _, callerRole := range []cluster.Role{cluster.RoleLeader, cluster.RoleFollower} {
		t.Run("caller="+callerRole.String(), func(t *testing.T) {
			tr, addr := memNet(t)
			w := newWorld()
			lh, fh := newHookRec(), newHookRec()
			lrec := newRecorder()
			newC := func(h *hookRec, opts ...cluster.Option) *cluster.Client {
				c, err := cluster.New("Hooked", metaFactory(w), append(fastOpts(),
					append([]cluster.Option{cluster.WithTransport(tr), cluster.WithAddr(addr), cluster.WithStatsHandler(h)}, opts...)...)...)
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
			l := newC(lh, lrec.opt())
			t.Cleanup(func() { l.Close(context.Background()) })
			ready(t, l)
			f := newC(fh)
			ready(t, f)
			if !l.IsLeader() || f.IsLeader() {
				t.Fatal("roles mixed up")
			}
			joined := lh.waitEvent(t, "follower joined", func(ev cluster.StatsEvent) bool { return ev.Kind == cluster.StatsFollowerJoined })
			if joined.Remote == "" || joined.Role != cluster.RoleLeader || joined.Term != 1 {
				t.Errorf("joined %+v", joined)
			}
			ev := lrec.wait(t, wait, "EventFollowerJoined", func(ev cluster.Event) bool { return ev.Kind == cluster.EventFollowerJoined })
			if ev.Remote != joined.Remote || !strings.Contains(ev.String(), "follower-joined") {
				t.Errorf("event %v, stats event %+v", ev, joined)
			}
			for _, h := range []*hookRec{lh, fh} {
				r := h.waitEvent(t, "ready", func(ev cluster.StatsEvent) bool { return ev.Kind == cluster.StatsReady })
				if r.Err != nil || r.Elapsed <= 0 || r.LeaderLost || r.Term != 1 {
					t.Errorf("ready %+v", r)
				}
				h.waitEvent(t, "role", func(ev cluster.StatsEvent) bool { return ev.Kind == cluster.StatsRole && ev.Term == 1 })
			}

			c, ch, other := l, lh, f
			if callerRole == cluster.RoleFollower {
				c, ch, other = f, fh, l
			}
			got := mustInvoke[string](t, c, "meta", "an argument")
			want := "caller-tagged|server-tagged"
			if callerRole == cluster.RoleLeader {
				want = "caller-tagged|" // the leader's own call has no serving side
			}
			if got != want {
				t.Errorf("meta = %q, want %q", got, want)
			}
			ci := ch.waitCall(t, "meta (caller)", func(ci cluster.CallInfo) bool {
				return ci.Method == "meta" && ci.Side == cluster.SideCaller
			})
			if ci.Channel != "Hooked" || ci.Role != callerRole || ci.Oneway || ci.Err != nil || ci.Code != "" ||
				ci.Duration() <= 0 || ci.Start.IsZero() {
				t.Errorf("caller's call %+v", ci)
			}
			if crossed := callerRole == cluster.RoleFollower; crossed != (ci.BytesOut > 0 && ci.BytesIn > 0) {
				t.Errorf("caller's bytes out %d in %d (crossed: %v)", ci.BytesOut, ci.BytesIn, crossed)
			}
			if callerRole == cluster.RoleFollower {
				si := lh.waitCall(t, "meta (server)", func(ci cluster.CallInfo) bool {
					return ci.Method == "meta" && ci.Side == cluster.SideServer
				})
				if si.Role != cluster.RoleLeader || si.Remote == "" || si.Err != nil || si.BytesIn == 0 || si.BytesOut != ci.BytesIn ||
					si.Start.Before(ci.Start) || si.End.After(time.Now()) {
					t.Errorf("server's call %+v (caller's %+v)", si, ci)
				}
			}

			// Failures: a method's error keeps its code; an undeclared
			// method is unknown_method.
			if _, err := c.Invoke(tctx(t, wait), "fail"); err == nil {
				t.Fatal("fail did not fail")
			}
			if _, err := c.Invoke(tctx(t, wait), "nosuch"); !errors.Is(err, cluster.ErrUnknownMethod) {
				t.Fatalf("nosuch: %v", err)
			}
			if ci := ch.waitCall(t, "fail", func(ci cluster.CallInfo) bool { return ci.Method == "fail" && ci.Side == cluster.SideCaller }); ci.Code != "ERROR_CODE" || ci.Err == nil {
				t.Errorf("fail: %+v", ci)
			}
			if ci := ch.waitCall(t, "nosuch", func(ci cluster.CallInfo) bool { return ci.Method == "nosuch" && ci.Side == cluster.SideCaller }); ci.Code != "unknown_method" {
				t.Errorf("nosuch: %+v", ci)
			}
			if err := c.InvokeOneway("echo", "one-way"); err != nil {
				t.Fatal(err)
			}
			if ci := ch.waitCall(t, "one-way echo", func(ci cluster.CallInfo) bool { return ci.Method == "echo" && ci.Oneway }); ci.Err != nil || ci.Side != cluster.SideCaller {
				t.Errorf("one-way: %+v", ci)
			}

			// Per-method figures in Stats, on the caller and the leader.
			st := c.Stats()
			if m := st.Methods["meta"]; m.Calls != 1 || m.Errors != 0 || m.Max <= 0 || m.P50 <= 0 || m.P99 < m.P50 {
				t.Errorf("Stats.Methods[meta] %+v", m)
			}
			if m := st.Methods["fail"]; m.Calls != 1 || m.Errors != 1 {
				t.Errorf("Stats.Methods[fail] %+v", m)
			}
			if m := st.Methods["echo"]; m.Calls != 1 || m.Oneway != 1 {
				t.Errorf("Stats.Methods[echo] %+v", m)
			}
			if callerRole == cluster.RoleFollower {
				if m := l.Stats().ServedMethods["meta"]; m.Calls != 1 || m.Max <= 0 {
					t.Errorf("leader's ServedMethods[meta] %+v", m)
				}
			}

			// Subscriptions, publications, pushes.
			got2 := make(chan cluster.Value, 4)
			cancel, err := c.Subscribe(reg{Key: "hooked"}, func(v cluster.Value) { got2 <- v })
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Publish(reg{Key: "hooked", Value: "v"}); err != nil {
				t.Fatal(err)
			}
			ch.waitEvent(t, "subscribe", func(ev cluster.StatsEvent) bool {
				return ev.Kind == cluster.StatsSubscribe && strings.Contains(ev.Key, "hooked")
			})
			ch.waitEvent(t, "publish", func(ev cluster.StatsEvent) bool { return ev.Kind == cluster.StatsPublish && ev.Bytes > 0 })
			lh.waitEvent(t, "push", func(ev cluster.StatsEvent) bool {
				return ev.Kind == cluster.StatsPush && strings.Contains(ev.Key, "hooked") && ev.Count == 1 && ev.Bytes > 0
			})
			cancel()
			ch.waitEvent(t, "unsubscribe", func(ev cluster.StatsEvent) bool { return ev.Kind == cluster.StatsUnsubscribe })

			// The follower leaves: the leader sees it go.
			if err := f.Close(tctx(t, wait)); err != nil {
				t.Fatal(err)
			}
			left := lh.waitEvent(t, "follower left", func(ev cluster.StatsEvent) bool { return ev.Kind == cluster.StatsFollowerLeft })
			if left.Remote != joined.Remote || left.Err != nil {
				t.Errorf("left %+v, joined %+v", left, joined)
			}
			lrec.wait(t, wait, "EventFollowerLeft", func(ev cluster.Event) bool {
				return ev.Kind == cluster.EventFollowerLeft && ev.Remote == joined.Remote
			})
			_ = other
		})
	}
}

// After a leader loss, the follower that takes over reports its time to
// ready counted from the loss.
func TestStatsHandlerTimeToReadyAfterLoss(t *testing.T) {
	tr, addr := memNet(t)
	w := newWorld()
	fh := newHookRec()
	opts := []cluster.Option{cluster.WithTransport(tr), cluster.WithAddr(addr)}
	l := newClient(t, "Lost", w, opts...)
	ready(t, l)
	f := newClient(t, "Lost", w, append(opts, cluster.WithStatsHandler(fh))...)
	ready(t, f)
	if err := l.Close(tctx(t, wait)); err != nil {
		t.Fatal(err)
	}
	fh.waitEvent(t, "leader lost", func(ev cluster.StatsEvent) bool { return ev.Kind == cluster.StatsLeaderLost && ev.Term == 1 })
	r := fh.waitEvent(t, "ready again", func(ev cluster.StatsEvent) bool { return ev.Kind == cluster.StatsReady && ev.Term == 2 })
	if !r.LeaderLost || r.Elapsed <= 0 || r.Err != nil || r.Role != cluster.RoleLeader {
		t.Errorf("ready after the loss: %+v", r)
	}
}

func TestWithStatsHandlerNil(t *testing.T) {
	if _, err := cluster.New("X", newWorld().factory, cluster.WithStatsHandler(nil)); !errors.Is(err, cluster.ErrInvalidOption) {
		t.Fatalf("nil handler: %v", err)
	}
}

func TestErrorKind(t *testing.T) {
	for err, want := range map[error]string{
		nil:                 "",
		cluster.ErrTimeout:  "timeout",
		context.Canceled:    "canceled",
		errors.New("plain"): "error",
		&cluster.Error{Op: "invoke", Kind: cluster.ErrLeaderLost}: "leader_lost",
	} {
		if got := cluster.ErrorKind(err); got != want {
			t.Errorf("ErrorKind(%v) = %q, want %q", err, got, want)
		}
	}
}
