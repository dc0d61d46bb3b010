package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/protocol"
	"github.com/go-clusterclient/clusterclient/transport/tcp"
	"github.com/go-clusterclient/clusterclient/transport/transporttest"
)

// pair starts a leader and a follower of one channel over mem.
func pair(t *testing.T, name string, w *world, opts ...cluster.Option) (leader, follower *cluster.Client) {
	t.Helper()
	tr, addr := memNet(t)
	opts = append([]cluster.Option{cluster.WithTransport(tr), cluster.WithAddr(addr)}, opts...)
	leader = newClient(t, name, w, opts...)
	ready(t, leader)
	follower = newClient(t, name, w, opts...)
	ready(t, follower)
	if !leader.IsLeader() || follower.IsLeader() {
		t.Fatalf("roles %v %v", leader.Role(), follower.Role())
	}
	return leader, follower
}

// Scenario 4 (CC-008, CC-012, CC-023 for invoke, RG-13): results and errors
// are the same on the leader and on a follower: message, name, code and
// stack cross the wire; undeclared methods and panics give errors naming
// the method, and the leader keeps serving.
func TestCC008_InvokeResultsAndErrors(t *testing.T) {
	l, f := pair(t, "MockClient", newWorld())
	for _, c := range []*cluster.Client{l, f} {
		role := c.Role().String()
		if got := mustInvoke[string](t, c, "echo", "123"); got != "123" {
			t.Fatalf("%s echo = %q", role, got)
		}
		if got := mustInvoke[int](t, c, "add", []int{40, 2}); got != 42 {
			t.Fatalf("%s add = %d", role, got)
		}

		_, err := c.Invoke(tctx(t, 5*time.Second), "fail")
		var re *protocol.RemoteError
		if !errors.As(err, &re) || re.Message != "mock error" || re.Code != "ERROR_CODE" || re.Name != "MockError" ||
			!strings.Contains(re.Stack, "at fail") {
			t.Fatalf("%s fail: %v (%+v)", role, err, re)
		}
		if !strings.Contains(err.Error(), `"fail"`) || !strings.Contains(err.Error(), "MockClient") {
			t.Fatalf("%s: error does not name method and channel: %v", role, err)
		}

		_, err = c.Invoke(tctx(t, 5*time.Second), "plainErr")
		if err == nil || !strings.Contains(err.Error(), "plain failure") {
			t.Fatalf("%s plainErr: %v", role, err)
		}

		_, err = c.Invoke(tctx(t, 5*time.Second), "noSuchMethod", 1)
		if !errors.Is(err, cluster.ErrUnknownMethod) || !strings.Contains(err.Error(), "noSuchMethod") {
			t.Fatalf("%s unknown method: %v", role, err)
		}

		_, err = c.Invoke(tctx(t, 5*time.Second), "panic")
		if !errors.Is(err, cluster.ErrPanic) || !errors.As(err, &re) || !strings.Contains(re.Message, "boom") ||
			!strings.Contains(re.Stack, "goroutine") {
			t.Fatalf("%s panic: %v", role, err)
		}
		// Still serving after the panic.
		if got := mustInvoke[string](t, c, "echo", "after"); got != "after" {
			t.Fatalf("%s echo after panic = %q", role, got)
		}
	}
	if st := f.Stats(); st.Invokes != 7 || st.InvokeErrors != 4 {
		t.Fatalf("follower stats %+v", st)
	}
}

// Scenario 5 (CC-011, CC-013, SRC-02, SRC-03): a follower's call without a
// deadline of its own and without an answer within the response timeout
// fails with ErrTimeout naming method and address; the leader drops the
// late reply and reports it. A leader-local call has no such timeout. (A
// call whose context has a deadline waits until it, on both roles:
// TestRoleMatrixDeadline.)
func TestCC011_ResponseTimeout(t *testing.T) {
	rec := newRecorder()
	tr, addr := memNet(t)
	w := newWorld()
	opts := []cluster.Option{cluster.WithTransport(tr), cluster.WithAddr(addr), cluster.WithResponseTimeout(200 * time.Millisecond)}
	l := newClient(t, "MockClient", w, append(opts, rec.opt())...)
	ready(t, l)
	f := newClient(t, "MockClient", w, opts...)
	ready(t, f)

	start := time.Now()
	_, err := f.Invoke(context.Background(), "sleep", 600)
	el := time.Since(start)
	if !errors.Is(err, cluster.ErrTimeout) {
		t.Fatalf("invoke: %v", err)
	}
	if el < 200*time.Millisecond || el >= 600*time.Millisecond {
		t.Fatalf("timed out after %v (timeout 200ms, method 600ms)", el)
	}
	for _, want := range []string{`"sleep"`, "(follower at mem " + addr + "): no response within the response timeout (200ms): request "} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q lacks %q", err, want)
		}
	}
	ev := rec.wait(t, 5*time.Second, "leader timeout", isErr(cluster.ErrLeaderTimeout))
	if !strings.Contains(ev.Err.Error(), `"sleep"`) || ev.Role != cluster.RoleLeader {
		t.Fatalf("leader event: %v", ev)
	}
	if st := f.Stats(); st.Timeouts != 1 || st.InFlight != 0 {
		t.Fatalf("follower stats: %+v", st)
	}
	// The method's context carries the call's deadline (here the response
	// timeout) and ends with it.
	w.ctxSeen = make(chan error, 1)
	if _, err := f.Invoke(context.Background(), "waitctx"); !errors.Is(err, cluster.ErrTimeout) {
		t.Fatalf("waitctx: %v", err)
	}
	select {
	case err := <-w.ctxSeen:
		if err != context.DeadlineExceeded { // not wrapped: the deadline was set and had passed
			t.Fatalf("method context ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the method's context never ended")
	}
	// The leader's own call waits for the method, however long.
	if got := mustInvoke[string](t, l, "sleep", 300); got != "woke" {
		t.Fatalf("leader sleep = %q", got)
	}
	// The follower still works.
	if got := mustInvoke[string](t, f, "echo", "ok"); got != "ok" {
		t.Fatalf("echo %q", got)
	}
}

// CC-023, CC-032, CC-033, CC-034, RG-13, RG-17: the real client's start
// error is the ready error of the leader and of every follower (created
// before or after), with message and code, and every call fails with it.
// Close works twice.
func TestCC023_ReadyErrorEverywhere(t *testing.T) {
	w := newWorld()
	w.failInit = &protocol.RemoteError{Name: "InitError", Message: "mock error", Code: "ERROR_CODE"}
	w.initDelay = 100 * time.Millisecond
	mtr, addr := memNet(t)
	tr := transporttest.WatchRefusals(mtr)
	opts := []cluster.Option{cluster.WithTransport(tr), cluster.WithAddr(addr)}
	early := newClient(t, "test_invokeOneway_ready_error", w, append(opts, cluster.WithMode(cluster.ForceFollower))...)
	firstRefusal(t, tr) // the early follower looked for its leader and found none
	l := newClient(t, "test_invokeOneway_ready_error", w, append(opts, cluster.WithMode(cluster.ForceLeader))...)
	// A call made before ready waits and then fails with the ready error.
	_, lerr := l.Invoke(tctx(t, 5*time.Second), "echo", 1)
	late := newClient(t, "test_invokeOneway_ready_error", w, opts...)
	check := func(who string, err error) {
		t.Helper()
		var re *protocol.RemoteError
		if !errors.Is(err, cluster.ErrNotReady) || !errors.As(err, &re) || re.Message != "mock error" || re.Code != "ERROR_CODE" {
			t.Fatalf("%s: %v", who, err)
		}
	}
	check("leader invoke before ready", lerr)
	check("leader ready", l.Ready(tctx(t, 5*time.Second)))
	check("early follower ready", early.Ready(tctx(t, 5*time.Second)))
	check("late follower ready", late.Ready(tctx(t, 5*time.Second)))
	for _, c := range []*cluster.Client{l, early, late} {
		_, err := c.Invoke(tctx(t, 5*time.Second), "echo", 1)
		check(c.Role().String()+" invoke", err)
	}
	if early.Role() != cluster.RoleFollower || late.Role() != cluster.RoleFollower {
		t.Fatalf("roles %v %v", early.Role(), late.Role())
	}
	if n := w.builds.Load(); n != 1 {
		t.Fatalf("factory ran %d times", n)
	}
	for i := 0; i < 2; i++ {
		if err := late.Close(tctx(t, 5*time.Second)); err != nil {
			t.Fatalf("close #%d: %v", i+1, err)
		}
	}
}

// CC-024, RG-15: one-way calls around a failed start never panic: queued
// before ready (then dropped and reported), the ready error after.
func TestCC024_OnewayAndReadyError(t *testing.T) {
	w := newWorld()
	w.failInit = errors.New("mock error")
	w.initDelay = 100 * time.Millisecond
	rec := newRecorder()
	tr, addr := memNet(t)
	c := newClient(t, "OnewayErr", w, cluster.WithTransport(tr), cluster.WithAddr(addr), rec.opt())
	if err := c.InvokeOneway("send", 123); err != nil {
		t.Fatalf("queued oneway: %v", err)
	}
	if err := c.Ready(tctx(t, 5*time.Second)); err == nil || !strings.Contains(err.Error(), "mock error") {
		t.Fatalf("ready: %v", err)
	}
	if err := c.InvokeOneway("send", 456); !errors.Is(err, cluster.ErrNotReady) {
		t.Fatalf("oneway after failure: %v", err)
	}
	rec.wait(t, 2*time.Second, "dropped queued calls", func(ev cluster.Event) bool {
		return ev.Kind == cluster.EventError && strings.Contains(ev.Err.Error(), "1 queued one-way calls dropped")
	})
}

// RG-24, scenario 9 (CC-035): calls made before ready, on the leader and on
// a follower, wait and run once the slow real client is up; queued one-way
// calls run too.
func TestRG24_CallsBeforeReadyRunAfter(t *testing.T) {
	w := newWorld()
	w.initDelay = 200 * time.Millisecond
	r1, r2 := newRecorder(), newRecorder()
	tr, addr := memNet(t)
	opts := []cluster.Option{cluster.WithTransport(tr), cluster.WithAddr(addr), cluster.WithResponseTimeout(100 * time.Millisecond)}
	// Created together: either may lead.
	c1 := newClient(t, "AsyncClient", w, append(opts, r1.opt())...)
	c2 := newClient(t, "AsyncClient", w, append(opts, r2.opt())...)
	if err := c1.InvokeOneway("emit", "queued-before-ready"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, c := range []*cluster.Client{c1, c2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := cluster.Call[string](tctx(t, 5*time.Second), c, "echo", "hello")
			if err != nil || got != "hello" {
				t.Errorf("%s echo: %q %v", c.Role(), got, err)
			}
		}()
	}
	wg.Wait()
	ls := leaders(c1, c2)
	if len(ls) != 1 {
		t.Fatalf("roles %v %v", c1.Role(), c2.Role())
	}
	lrec := r1
	if ls[0] == c2 {
		lrec = r2
	}
	lrec.wait(t, 2*time.Second, "queued oneway ran", func(ev cluster.Event) bool {
		return ev.Kind == cluster.EventUpstream && ev.Name == "queued-before-ready"
	})
	if err := c2.InvokeOneway("emit", "later"); err != nil {
		t.Fatal(err)
	}
	lrec.wait(t, 2*time.Second, "oneway ran on the leader", func(ev cluster.Event) bool {
		return ev.Kind == cluster.EventUpstream && ev.Name == "later"
	})
}

// bigErr is an error no encoder could marshal: a cycle, a channel, a
// function and a huge message, wrapping the *RemoteError that carries its
// code.
type bigErr struct {
	self  *bigErr
	ch    chan int
	fn    func()
	inner *protocol.RemoteError
}

func (e *bigErr) Error() string { return "big: " + e.inner.Message }
func (e *bigErr) Unwrap() error { return e.inner }

// RG-03, UI-11, SRC-15: marshalling an error is bounded and never fails;
// name, message, code and stack still cross.
func TestRG03_BoundedErrorMarshalling(t *testing.T) {
	w := newWorld()
	tr, addr := memNet(t)
	huge := strings.Repeat("x", 1<<20)
	svc := func(context.Context, cluster.Emit) (*cluster.Service, error) {
		return &cluster.Service{Methods: map[string]cluster.Handler{
			"bad": func(context.Context, cluster.Args) (any, error) {
				e := &bigErr{ch: make(chan int), fn: func() {}, inner: &protocol.RemoteError{
					Name: "HugeError", Message: huge, Code: "E_HUGE", Stack: "HugeError\n" + huge}}
				e.self = e
				return nil, e
			},
			"ok": func(context.Context, cluster.Args) (any, error) { return "ok", nil },
		}}, nil
	}
	_ = w
	l, err := cluster.New("Bounded", svc, append(fastOpts(), cluster.WithTransport(tr), cluster.WithAddr(addr))...)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(context.Background())
	ready(t, l)
	f, err := cluster.New("Bounded", svc, append(fastOpts(), cluster.WithTransport(tr), cluster.WithAddr(addr))...)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close(context.Background())
	ready(t, f)
	_, err = f.Invoke(tctx(t, 5*time.Second), "bad")
	var re *protocol.RemoteError
	if !errors.As(err, &re) || re.Name != "HugeError" || re.Code != "E_HUGE" {
		t.Fatalf("bad: %v", err)
	}
	if len(re.Message) > 64<<10 || !strings.HasPrefix(re.Message, "xxx") || !strings.HasSuffix(re.Message, "(truncated)") {
		t.Fatalf("message of %d bytes not bounded", len(re.Message))
	}
	if len(re.Stack) > 64<<10 || !strings.HasPrefix(re.Stack, "HugeError") {
		t.Fatalf("stack of %d bytes", len(re.Stack))
	}
	if got := mustInvoke[string](t, f, "ok"); got != "ok" {
		t.Fatal(got)
	}
}

// CC-029, RG-30 (1.2.0, 1.0.3): special argument types round-trip through a
// follower, one length-prefixed argument each, with the JSON codec and
// with Node's serialize-json.
func TestCC029_SpecialArguments(t *testing.T) {
	for _, codec := range []protocol.Codec{protocol.JSON, protocol.SerializeJSON} {
		t.Run(codec.Name(), func(t *testing.T) {
			svc := func(context.Context, cluster.Emit) (*cluster.Service, error) {
				return &cluster.Service{Methods: map[string]cluster.Handler{
					"commit": func(_ context.Context, a cluster.Args) (any, error) {
						if a.Len() != 2 {
							return nil, fmt.Errorf("%d arguments", a.Len())
						}
						var id string
						if err := a.Decode(0, &id); err != nil || id != "123" {
							return nil, fmt.Errorf("id %q: %v", id, err)
						}
						raw, err := a.Raw(1)
						return raw, err // sent back as is
					},
				}}, nil
			}
			tr, addr := memNet(t)
			opts := append(fastOpts(), cluster.WithTransport(tr), cluster.WithAddr(addr), cluster.WithCodec(codec),
				cluster.WithResponseTimeout(30*time.Second))
			l, err := cluster.New("NotifyClient", svc, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close(context.Background())
			ready(t, l)
			f, err := cluster.New("NotifyClient", svc, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close(context.Background())
			ready(t, f)

			now := time.Now().Truncate(time.Millisecond)
			gotTime, err := cluster.Call[time.Time](tctx(t, 5*time.Second), f, "commit", "123", now)
			if err != nil || !gotTime.Equal(now) {
				t.Fatalf("date: %v %v (want %v)", gotTime, err, now)
			}
			gotBuf, err := cluster.Call[[]byte](tctx(t, 5*time.Second), f, "commit", "123", []byte("hello"))
			if err != nil || !bytes.Equal(gotBuf, []byte("hello")) {
				t.Fatalf("buffer: %q %v", gotBuf, err)
			}
			type person struct {
				Name string `json:"name"`
			}
			gotObj, err := cluster.Call[person](tctx(t, 5*time.Second), f, "commit", "123", map[string]any{"name": "peter"})
			if err != nil || gotObj.Name != "peter" {
				t.Fatalf("object: %+v %v", gotObj, err)
			}
			// A 1 MiB argument (128 KiB with serialize-json, whose encoder
			// spends microseconds per byte under the race detector).
			size := 1 << 20
			if codec == protocol.SerializeJSON {
				size = 128 << 10
			}
			big := bytes.Repeat([]byte{7}, size)
			gotBig, err := cluster.Call[[]byte](tctx(t, 30*time.Second), f, "commit", "123", big)
			if err != nil || !bytes.Equal(gotBig, big) {
				t.Fatalf("%d bytes: got %d bytes, %v", size, len(gotBig), err)
			}
		})
	}
}

// Many concurrent calls from several followers: every answer is checked,
// not counted.
func TestConcurrentCallsEachAnswerChecked(t *testing.T) {
	w := newWorld()
	tr, addr := memNet(t)
	opts := []cluster.Option{cluster.WithTransport(tr), cluster.WithAddr(addr), cluster.WithResponseTimeout(10 * time.Second)}
	l := newClient(t, "Concurrent", w, opts...)
	ready(t, l)
	const followers, calls = 4, 250
	var wg sync.WaitGroup
	for i := range followers {
		f := newClient(t, "Concurrent", w, opts...)
		ready(t, f)
		for j := range calls {
			wg.Add(1)
			go func() {
				defer wg.Done()
				want := i*1000 + j
				got, err := cluster.Call[int](tctx(t, 20*time.Second), f, "add", []int{i * 1000, j})
				if err != nil || got != want {
					t.Errorf("follower %d call %d: %d, %v (want %d)", i, j, got, err, want)
				}
			}()
		}
	}
	wg.Wait()
	if st := l.Stats(); st.Followers != followers || st.Served != followers*calls {
		t.Fatalf("leader stats %+v", st)
	}
}

// A call runs on the leader's reading goroutine while it is quick; one
// that blocks must not hold up the follower's other requests on the same
// connection (reading moves to a new goroutine, every time: each blocked
// call here is of a method not seen blocking before, and a last one of a
// method that did). Blocked calls pile up on one connection, each later
// call is answered while they wait, and all of them finish once
// released; nothing leaks (goleak in TestMain).
func TestSlowCallDoesNotHoldUpItsConnection(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan int, 8)
	factory := func(context.Context, cluster.Emit) (*cluster.Service, error) {
		block := cluster.Method(func(ctx context.Context, n int) (int, error) {
			entered <- n
			select {
			case <-release:
				return n, nil
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		})
		return &cluster.Service{Methods: map[string]cluster.Handler{
			"block0": block, "block1": block, "block2": block,
			"echo": cluster.Method(func(_ context.Context, s string) (string, error) { return s, nil }),
		}}, nil
	}
	opts := append(fastOpts(), cluster.WithTransport(tcp.New(tcp.Config{})),
		cluster.WithAddr("127.0.0.1:"+strconv.Itoa(freePort(t))), cluster.WithResponseTimeout(20*time.Second))
	var clients []*cluster.Client
	for range 2 {
		c, err := cluster.New("SlowCalls", factory, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
		ready(t, c)
		clients = append(clients, c)
	}
	f := clients[1]
	if f.IsLeader() {
		t.Fatal("the second client leads")
	}
	const blocked = 4
	results := make(chan error, blocked)
	for i := range blocked {
		go func() {
			n, err := cluster.Call[int](tctx(t, 20*time.Second), f, fmt.Sprintf("block%d", min(i, 2)), i)
			if err == nil && n != i {
				err = fmt.Errorf("block(%d) = %d", i, n)
			}
			results <- err
		}()
		select {
		case <-entered:
		case <-time.After(10 * time.Second):
			t.Fatalf("block call %d never reached the leader while %d others blocked", i, i)
		}
		want := fmt.Sprintf("after %d blocked", i+1)
		if got := mustInvoke[string](t, f, "echo", want); got != want {
			t.Fatalf("echo = %q", got)
		}
	}
	close(release)
	for range blocked {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
}

// A follower's caller reads its own answer when nobody else reads the
// connection. Its context must still end the call at once (a deadline, a
// plain cancel), the next call must find the connection in order, and
// values pushed between calls must arrive (a background reader takes
// over when no call is in flight).
func TestReadingCallerEndsWithItsContext(t *testing.T) {
	for _, n := range []testNet{netMem, netTCP} {
		t.Run(n.name, func(t *testing.T) {
			tr, addr := n.make(t)
			w := newWorld()
			opts := []cluster.Option{cluster.WithTransport(tr), cluster.WithAddr(addr), cluster.WithResponseTimeout(20 * time.Second)}
			l := newClient(t, "Reader", w, opts...)
			ready(t, l)
			f := newClient(t, "Reader", w, opts...)
			ready(t, f)
			sink := newSink()
			key := reg{Key: "k"}
			if _, err := f.Subscribe(key, sink.listener(t)); err != nil {
				t.Fatal(err)
			}
			var published []string
			for i, end := range []struct {
				name string
				ctx  func() context.Context
				want error
			}{
				{"deadline", func() context.Context { return tctx(t, 100*time.Millisecond) }, context.DeadlineExceeded},
				{"cancel", func() context.Context {
					ctx, cancel := context.WithCancel(context.Background())
					time.AfterFunc(100*time.Millisecond, cancel)
					return ctx
				}, context.Canceled},
			} {
				start := time.Now()
				_, err := f.Invoke(end.ctx(), "sleep", 2500) // the answer would come after 2.5 s
				if el := time.Since(start); !errors.Is(err, end.want) || el > 1500*time.Millisecond {
					t.Fatalf("%s: %v after %v, want %v within 1.5 s", end.name, err, el, end.want)
				}
				want := fmt.Sprintf("after %s", end.name)
				if got := mustInvoke[string](t, f, "echo", want); got != want {
					t.Fatalf("echo = %q", got)
				}
				time.Sleep(20 * time.Millisecond) // no call in flight: nobody reads until the background reader starts
				published = append(published, strconv.Itoa(i))
				if err := l.Publish(reg{Key: key.Key, Value: published[i]}); err != nil {
					t.Fatal(err)
				}
				sink.waitFor(t, wait, published...)
			}
		})
	}
}

// One-way calls of a follower run one at a time in the order sent, also
// when the first runs on the leader's reader and blocks long enough for
// reading to move on and the rest to queue behind it.
func TestOnewayCallsKeepTheirOrder(t *testing.T) {
	var mu sync.Mutex
	var got []int
	done := make(chan struct{})
	const n = 50
	factory := func(context.Context, cluster.Emit) (*cluster.Service, error) {
		return &cluster.Service{Methods: map[string]cluster.Handler{
			"note": cluster.Action(func(_ context.Context, i int) error {
				if i == 0 {
					time.Sleep(20 * time.Millisecond)
				}
				mu.Lock()
				defer mu.Unlock()
				got = append(got, i)
				if len(got) == n {
					close(done)
				}
				return nil
			}),
		}}, nil
	}
	opts := append(fastOpts(), cluster.WithTransport(tcp.New(tcp.Config{})),
		cluster.WithAddr("127.0.0.1:"+strconv.Itoa(freePort(t))))
	var f *cluster.Client
	for range 2 {
		c, err := cluster.New("Oneways", factory, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
		ready(t, c)
		f = c
	}
	for i := range n {
		if err := f.InvokeOneway("note", i); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("only %d of %d one-way calls ran", len(got), n)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, v := range got {
		if v != i {
			t.Fatalf("one-way calls ran in the order %v", got)
		}
	}
}

// An argument the typed adapter (Method) cannot decode fails the call
// with an error that names the method and the channel, from either role;
// an error about no single channel names none.
func TestAdapterErrorNamesChannel(t *testing.T) {
	l, f := pair(t, "Adapted", newWorld())
	for _, c := range []*cluster.Client{l, f} {
		_, err := c.Invoke(tctx(t, 5*time.Second), "sleep", "not a number")
		if err == nil || !strings.Contains(err.Error(), `invoke "sleep" on channel "Adapted"`) || strings.Contains(err.Error(), `channel ""`) {
			t.Fatalf("%s: %v", c.Role(), err)
		}
	}
	e := &cluster.Error{Op: "list", Addr: "tcp 127.0.0.1:1", Kind: cluster.ErrNoLeader}
	if got := e.Error(); strings.Contains(got, "channel") {
		t.Fatalf("an error of no channel: %q", got)
	}
}

// errNotFound is a sentinel of user code: it does not cross the wire.
var errNotFound = errors.New("not found")

// What errors.Is and errors.As find after a method's error crossed from
// the leader to a follower (the README's "Errors across processes"): the
// package's wire sentinels (ErrUnknownMethod, ErrPanic, ErrOverloaded, ...)
// and a *protocol.RemoteError with name, message, code and stack do; a
// sentinel of user code or of the standard library does not (only its
// message does). On the leader, the caller gets the method's error itself.
func TestErrorsAcrossTheHop(t *testing.T) {
	factory := func(context.Context, cluster.Emit) (*cluster.Service, error) {
		return &cluster.Service{Methods: map[string]cluster.Handler{
			"user":   func(context.Context, cluster.Args) (any, error) { return nil, fmt.Errorf("lookup a: %w", errNotFound) },
			"stdlib": func(context.Context, cluster.Args) (any, error) { return nil, context.DeadlineExceeded },
			"remote": func(context.Context, cluster.Args) (any, error) {
				return nil, &protocol.RemoteError{Name: "NotFoundError", Message: "no a", Code: "E_NOT_FOUND"}
			},
			"overloaded": func(context.Context, cluster.Args) (any, error) {
				return nil, fmt.Errorf("upstream: %w", cluster.ErrOverloaded)
			},
		}}, nil
	}
	tr, addr := memNet(t)
	opts := append(fastOpts(), cluster.WithTransport(tr), cluster.WithAddr(addr))
	l, err := cluster.New("Errors", factory, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(context.Background()) })
	ready(t, l)
	f, err := cluster.New("Errors", factory, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close(context.Background()) })
	ready(t, f)
	call := func(c *cluster.Client, method string) error {
		_, err := c.Invoke(tctx(t, wait), method)
		if err == nil {
			t.Fatalf("%s: %s succeeded", c.Role(), method)
		}
		return err
	}
	for _, c := range []*cluster.Client{l, f} {
		if err := call(c, "undeclared"); !errors.Is(err, cluster.ErrUnknownMethod) {
			t.Errorf("%s: undeclared method: %v is not ErrUnknownMethod", c.Role(), err)
		}
		if err := call(c, "overloaded"); !errors.Is(err, cluster.ErrOverloaded) {
			t.Errorf("%s: %v is not ErrOverloaded", c.Role(), err)
		}
		var re *protocol.RemoteError
		if err := call(c, "remote"); !errors.As(err, &re) || re.Code != "E_NOT_FOUND" || re.Name != "NotFoundError" {
			t.Errorf("%s: remote error: %v (as %+v)", c.Role(), err, re)
		}
	}
	if err := call(l, "user"); !errors.Is(err, errNotFound) {
		t.Errorf("leader: %v is not the user's sentinel", err)
	}
	if err := call(l, "stdlib"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("leader: %v is not context.DeadlineExceeded", err)
	}
	err = call(f, "user")
	var re *protocol.RemoteError
	if errors.Is(err, errNotFound) || !errors.As(err, &re) || !strings.Contains(re.Message, "lookup a: not found") {
		t.Errorf("follower: user sentinel: %v (want only its message, in a RemoteError)", err)
	}
	if err := call(f, "stdlib"); errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), context.DeadlineExceeded.Error()) {
		t.Errorf("follower: stdlib sentinel: %v (want only its message)", err)
	}
}
