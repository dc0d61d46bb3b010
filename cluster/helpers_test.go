package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/election"
	"github.com/go-clusterclient/clusterclient/protocol"
	"github.com/go-clusterclient/clusterclient/transport"
	"github.com/go-clusterclient/clusterclient/transport/kcp"
	"github.com/go-clusterclient/clusterclient/transport/mem"
	"github.com/go-clusterclient/clusterclient/transport/tcp"
	"github.com/go-clusterclient/clusterclient/transport/transporttest"
	"github.com/go-clusterclient/clusterclient/transport/unix"
)

// world stands in for the upstream server every real client of a test
// talks to: it counts constructions, closes and upstream subscriptions,
// and holds the published data (so a new leader's real client sees what
// the old one had only through replay, as with a real registry that forgets
// a dead client's publications).
type world struct {
	builds, closes atomic.Int32
	failInit       error         // the factory fails with it
	initDelay      time.Duration // the factory takes this long
	noInitialPush  bool          // Subscribe does not push the current value
	closeDelay     time.Duration // the real client's Close takes this long
	closeErr       error         // and returns this
	ctxSeen        chan error    // "waitctx" reports its context's end here
	sleepEnd       atomic.Int64  // unix nanos when the last "sleep" returned
	sleeps         atomic.Int32  // "sleep" calls begun, by every real client
	closeAt        atomic.Int64  // unix nanos when the last Close ran
	idempotent     []string      // the Service's idempotent methods
	ticks          atomic.Int32  // "tick" calls run, by every real client

	mu       sync.Mutex
	upSubs   map[string]int
	upUnsubs map[string]int
	clients  []*realClient
}

func newWorld() *world {
	return &world{upSubs: map[string]int{}, upUnsubs: map[string]int{}}
}

// reg is the registration shape of the tests: a key and an optional value.
type reg struct {
	Key   string `json:"key"`
	Value string `json:"value,omitempty"`
}

// realClient is the test's real client: a registry that notifies each
// subscribed key with its sorted list of published values.
type realClient struct {
	w       *world
	version int32
	emit    cluster.Emit

	mu     sync.Mutex
	data   map[string][]string
	subs   map[string]func(any)
	closed bool
}

func (w *world) factory(ctx context.Context, emit cluster.Emit) (*cluster.Service, error) {
	n := w.builds.Add(1)
	if w.initDelay > 0 {
		select {
		case <-time.After(w.initDelay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if w.failInit != nil {
		return nil, w.failInit
	}
	rc := &realClient{w: w, version: n, emit: emit, data: map[string][]string{}, subs: map[string]func(any){}}
	w.mu.Lock()
	w.clients = append(w.clients, rc)
	w.mu.Unlock()
	return rc.service(), nil
}

func (w *world) subCount(key string) (subs, unsubs int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.upSubs[key], w.upUnsubs[key]
}

func (rc *realClient) list(key string) []string {
	l := slices.Clone(rc.data[key])
	if l == nil {
		l = []string{}
	}
	sort.Strings(l)
	return l
}

func (rc *realClient) service() *cluster.Service {
	return &cluster.Service{
		Subscribe: func(r cluster.Reg, push func(any)) error {
			var g reg
			if err := r.Decode(&g); err != nil {
				return err
			}
			rc.w.mu.Lock()
			rc.w.upSubs[g.Key]++
			rc.w.mu.Unlock()
			rc.mu.Lock()
			defer rc.mu.Unlock()
			rc.subs[g.Key] = push
			if !rc.w.noInitialPush {
				push(rc.list(g.Key))
			}
			return nil
		},
		Unsubscribe: func(r cluster.Reg) error {
			var g reg
			if err := r.Decode(&g); err != nil {
				return err
			}
			rc.w.mu.Lock()
			rc.w.upUnsubs[g.Key]++
			rc.w.mu.Unlock()
			rc.mu.Lock()
			delete(rc.subs, g.Key)
			rc.mu.Unlock()
			return nil
		},
		Publish: func(_ context.Context, r cluster.Reg) error {
			var g reg
			if err := r.Decode(&g); err != nil {
				return err
			}
			rc.mu.Lock()
			defer rc.mu.Unlock()
			if !slices.Contains(rc.data[g.Key], g.Value) {
				rc.data[g.Key] = append(rc.data[g.Key], g.Value)
			}
			if push := rc.subs[g.Key]; push != nil {
				push(rc.list(g.Key))
			}
			return nil
		},
		Unpublish: func(_ context.Context, r cluster.Reg) error {
			var g reg
			if err := r.Decode(&g); err != nil {
				return err
			}
			rc.mu.Lock()
			defer rc.mu.Unlock()
			rc.data[g.Key] = slices.DeleteFunc(rc.data[g.Key], func(v string) bool { return v == g.Value })
			if push := rc.subs[g.Key]; push != nil {
				push(rc.list(g.Key))
			}
			return nil
		},
		Methods: map[string]cluster.Handler{
			"echo": func(_ context.Context, a cluster.Args) (any, error) {
				var v any
				if a.Len() > 0 {
					if err := a.Decode(0, &v); err != nil {
						return nil, err
					}
				}
				return v, nil
			},
			"add": cluster.Method(func(_ context.Context, xs []int) (int, error) {
				s := 0
				for _, x := range xs {
					s += x
				}
				return s, nil
			}),
			"version": func(context.Context, cluster.Args) (any, error) { return rc.version, nil },
			"fail": func(context.Context, cluster.Args) (any, error) {
				return nil, &protocol.RemoteError{Name: "MockError", Message: "mock error", Code: "ERROR_CODE", Stack: "MockError: mock error\n    at fail"}
			},
			"plainErr": func(context.Context, cluster.Args) (any, error) { return nil, errors.New("plain failure") },
			"panic":    func(context.Context, cluster.Args) (any, error) { panic("boom") },
			// sleep ignores its context: the real method keeps working
			// after the caller gave up (CC-013).
			"sleep": cluster.Method(func(_ context.Context, ms int) (string, error) {
				rc.w.sleeps.Add(1)
				time.Sleep(time.Duration(ms) * time.Millisecond)
				rc.w.sleepEnd.Store(time.Now().UnixNano())
				return "woke", nil
			}),
			"waitctx": func(ctx context.Context, _ cluster.Args) (any, error) {
				dl, ok := ctx.Deadline()
				<-ctx.Done()
				err := ctx.Err()
				if !ok || time.Until(dl) > 0 {
					err = fmt.Errorf("deadline %v %v, done with %w", dl, ok, err)
				}
				if rc.w.ctxSeen != nil {
					rc.w.ctxSeen <- err
				}
				return nil, err
			},
			// tick counts its runs (a one-way call must run exactly once,
			// whatever the leader changes).
			"tick": cluster.Action(func(_ context.Context, ms int) error {
				time.Sleep(time.Duration(ms) * time.Millisecond)
				rc.w.ticks.Add(1)
				return nil
			}),
			"emit": cluster.Action(func(_ context.Context, name string) error {
				rc.emit(name, fmt.Errorf("upstream event %s", name))
				return nil
			}),
		},
		Idempotent: rc.w.idempotent,
		Close: func(context.Context) error {
			rc.w.closeAt.Store(time.Now().UnixNano())
			time.Sleep(rc.w.closeDelay)
			rc.mu.Lock()
			rc.closed = true
			rc.mu.Unlock()
			rc.w.closes.Add(1)
			return rc.w.closeErr
		},
	}
}

// ---- transports and addresses ----

var addrSeq atomic.Uint64

// memNet returns an in-memory transport and a fresh address.
func memNet(t testing.TB) (transport.Transport, string) {
	t.Helper()
	tr, err := mem.New(mem.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return tr, fmt.Sprintf("cluster-test-%d", addrSeq.Add(1))
}

// testNet is a transport the tests run a cluster on, with a fresh address.
type testNet struct {
	name string
	make func(testing.TB) (transport.Transport, string)
}

var (
	netMem = testNet{"mem", memNet}
	netTCP = testNet{"tcp", func(t testing.TB) (transport.Transport, string) {
		return tcp.New(tcp.Config{}), "127.0.0.1:" + strconv.Itoa(freePort(t))
	}}
	netUnix = testNet{"unix", func(t testing.TB) (transport.Transport, string) {
		tr, err := unix.New(unix.DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		return tr, filepath.Join(t.TempDir(), "cluster.sock")
	}}
	netKCP = testNet{"kcp", func(t testing.TB) (transport.Transport, string) {
		tr, err := kcp.New(kcp.Config{})
		if err != nil {
			t.Fatal(err)
		}
		return tr, "127.0.0.1:" + strconv.Itoa(freePort(t))
	}}
)

// freePort returns a loopback TCP port nobody listens on right now.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// fast options: short timers so tests stay quick.
func fastOpts() []cluster.Option {
	return []cluster.Option{
		cluster.WithResponseTimeout(time.Second),
		cluster.WithRegisterRetry(50 * time.Millisecond),
		cluster.WithLogger(testLogger()),
		cluster.WithSingleMode(false),
	}
}

var logLevel = new(slog.LevelVar)

func testLogger() *slog.Logger {
	logLevel.Set(slog.LevelError + 1)
	return slog.New(slog.NewTextHandler(testWriter{}, &slog.HandlerOptions{Level: logLevel}))
}

type testWriter struct{}

func (testWriter) Write(p []byte) (int, error) { return len(p), nil }

// ---- clients ----

// newClient creates a client closed at cleanup.
func newClient(t testing.TB, name string, w *world, opts ...cluster.Option) *cluster.Client {
	t.Helper()
	c, err := cluster.New(name, w.factory, append(fastOpts(), opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil && !errors.Is(err, cluster.ErrClosed) {
			t.Errorf("close %s: %v", name, err)
		}
	})
	return c
}

func ready(t testing.TB, c *cluster.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Ready(ctx); err != nil {
		t.Fatalf("ready %s: %v", c.Name(), err)
	}
}

func tctx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func mustInvoke[T any](t testing.TB, c *cluster.Client, method string, args ...any) T {
	t.Helper()
	v, err := cluster.Call[T](tctx(t, 10*time.Second), c, method, args...)
	if err != nil {
		t.Fatalf("%s(%v) on %s: %v", method, args, c.Role(), err)
	}
	return v
}

// ---- observing ----

// recorder collects events.
type recorder struct {
	mu     sync.Mutex
	events []cluster.Event
	wake   chan struct{}
}

func newRecorder() *recorder { return &recorder{wake: make(chan struct{}, 1)} }

func (r *recorder) opt() cluster.Option { return cluster.WithEventHandler(r.add) }

func (r *recorder) add(ev cluster.Event) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *recorder) all() []cluster.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// count counts events matching f.
func (r *recorder) count(f func(cluster.Event) bool) int {
	n := 0
	for _, ev := range r.all() {
		if f(ev) {
			n++
		}
	}
	return n
}

// wait waits for an event matching f.
func (r *recorder) wait(t testing.TB, d time.Duration, what string, f func(cluster.Event) bool) cluster.Event {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		for _, ev := range r.all() {
			if f(ev) {
				return ev
			}
		}
		select {
		case <-r.wake:
		case <-deadline.C:
			t.Fatalf("no %s event within %v; got %v", what, d, r.all())
		}
	}
}

func isErr(target error) func(cluster.Event) bool {
	return func(ev cluster.Event) bool { return ev.Kind == cluster.EventError && errors.Is(ev.Err, target) }
}

// sink collects the values of one listener.
type sink struct {
	mu   sync.Mutex
	vals [][]string
	wake chan struct{}
}

func newSink() *sink { return &sink{wake: make(chan struct{}, 1)} }

func (s *sink) listener(t testing.TB) cluster.Listener {
	return func(v cluster.Value) {
		var l []string
		if err := v.Decode(&l); err != nil {
			t.Errorf("decode: %v", err)
			return
		}
		s.mu.Lock()
		s.vals = append(s.vals, l)
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

func (s *sink) values() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.vals)
}

func (s *sink) n() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.vals)
}

// waitFor waits until a received value equals want.
func (s *sink) waitFor(t testing.TB, d time.Duration, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		for _, v := range s.values() {
			if slices.Equal(v, want) {
				return
			}
		}
		select {
		case <-s.wake:
		case <-deadline.C:
			t.Fatalf("value %q not received within %v; got %q", want, d, s.values())
		}
	}
}

// last returns the last value received, or nil.
func (s *sink) last() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.vals) == 0 {
		return nil
	}
	return s.vals[len(s.vals)-1]
}

// quiet asserts that no new value arrives for d.
func (s *sink) quiet(t testing.TB, d time.Duration) {
	t.Helper()
	n := s.n()
	time.Sleep(d)
	if m := s.n(); m != n {
		t.Fatalf("%d unexpected values: %q", m-n, s.values()[n:])
	}
}

// holdsFor is a bounded negative check: f must stay true for all of d
// ("nothing more arrives"). It fails as soon as f is false. A negative
// can only be checked for a while, so d is the whole budget; keep it short.
func holdsFor(t testing.TB, d time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if !f() {
			t.Fatalf("no longer true within %v: %s", d, what)
		}
		if time.Now().After(deadline) {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// firstRefusal waits until a Dial through r found nobody listening.
func firstRefusal(t testing.TB, r *transporttest.Refusals) {
	t.Helper()
	select {
	case <-r.Refused():
	case <-time.After(wait):
		t.Fatalf("no Dial through the transport was refused within %v", wait)
	}
}

// subscribersOn waits until the host of the channel l leads has n
// subscribers on reg (l itself if it subscribes, and one per follower
// connection whose subscribe the leader has handled).
func subscribersOn(t testing.TB, l *cluster.Client, reg any, n int) {
	t.Helper()
	eventually(t, wait, fmt.Sprintf("%d subscribers of %v on the leader", n, reg), func() bool {
		return cluster.SubscribersForTest(l, reg) == n
	})
}

func eventually(t testing.TB, d time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("not true within %v: %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

var _ = election.Default
