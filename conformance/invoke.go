package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/protocol"
)

var invokeCases = []testCase{
	{name: "result", run: testInvokeResult},
	{name: "typed-error", run: testInvokeTypedError},
	{name: "unknown-method", run: testInvokeUnknownMethod},
	{name: "panic", run: testInvokePanic},
	{name: "oneway", run: testInvokeOneway},
	{name: "response-timeout", run: testInvokeResponseTimeout},
	{name: "1MiB-argument", run: testInvokeLargeArgument},
	{name: "concurrent-1000", run: testInvokeConcurrent},
}

// pair2 starts a leader and one follower of channel on addr, each in its
// own simulated process.
func (e *env) pair2(addr, channel string, opts ...cluster.Option) (l, f *member) {
	e.t.Helper()
	l = e.process().join(channel, addr, opts...)
	l.mustLead()
	f = e.process().join(channel, addr, opts...)
	f.mustFollow()
	return l, f
}

// invokeErr calls method on m and returns its error, failing the case if
// the call succeeds.
func invokeErr(m *member, method string, args ...any) error {
	m.e.t.Helper()
	m.e.stepf("%s invokes %s, which must fail", m.label, method)
	res, err := m.c.Invoke(m.e.Timeout(opTimeout), method, args...)
	if err == nil {
		raw, _ := res.Raw()
		m.e.fatalf("%s: %s succeeded with %s, want an error", m.label, method, raw)
	}
	return err
}

// A follower's call returns what the real method returned, decoded into
// the caller's type, with several argument shapes.
func testInvokeResult(e *env) {
	_, f := e.pair2(e.addr(), "Result")
	if got := invoke[int64](f, MethodSquare, 12345); got != 12345*12345 {
		e.errorf("square(12345) = %d", got)
	}
	type shape struct {
		S  string         `json:"s"`
		N  float64        `json:"n"`
		B  bool           `json:"b"`
		L  []any          `json:"l"`
		M  map[string]any `json:"m"`
		Nl any            `json:"nl"`
	}
	in := shape{S: "héllo \u2028 \"quoted\"", N: -1.5e300, B: true, L: []any{1.0, "two", nil}, M: map[string]any{"k": "v"}}
	got := invoke[shape](f, MethodEcho, in)
	if a, b := mustJSON(e, got), mustJSON(e, in); a != b {
		e.errorf("echo returned %s, want %s", a, b)
	}
	if got := invoke[json.RawMessage](f, MethodEcho); string(got) != "null" {
		e.errorf("echo without arguments returned %s, want null", got)
	}
}

func mustJSON(e *env, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		e.fatalf("encode %v: %v", v, err)
	}
	return string(b)
}

// An error of the real method crosses the wire with its name, code and
// message, as a *protocol.RemoteError inside a *cluster.Error that names
// the method.
func testInvokeTypedError(e *env) {
	l, f := e.pair2(e.addr(), "TypedError")
	for _, m := range []*member{f, l} {
		err := invokeErr(m, MethodFail)
		var re *protocol.RemoteError
		if !errors.As(err, &re) {
			e.errorf("%s: fail: %v (%T) does not wrap a *protocol.RemoteError", m.label, err, err)
			continue
		}
		if re.Name != FailName || re.Code != FailCode || re.Message != FailMessage {
			e.errorf("%s: fail: remote error name %q code %q message %q, want %q %q %q",
				m.label, re.Name, re.Code, re.Message, FailName, FailCode, FailMessage)
		}
		var ce *cluster.Error
		if !errors.As(err, &ce) || ce.Method != MethodFail {
			e.errorf("%s: fail: %v does not name the method %q in a *cluster.Error", m.label, err, MethodFail)
		}
	}
}

// A method the real client does not declare is refused with
// ErrUnknownMethod naming it; the leader keeps serving.
func testInvokeUnknownMethod(e *env) {
	l, f := e.pair2(e.addr(), "Unknown")
	const method = "noSuchMethod"
	for _, m := range []*member{f, l} {
		err := invokeErr(m, method, 1)
		if !errors.Is(err, cluster.ErrUnknownMethod) {
			e.errorf("%s: %s: %v, want an error matching cluster.ErrUnknownMethod", m.label, method, err)
		}
		if !strings.Contains(err.Error(), method) {
			e.errorf("%s: the error %q does not name the method %q", m.label, err, method)
		}
	}
	e.checkLeaderServes(l, f)
}

// checkLeaderServes checks that l still leads its first real client and
// that f's calls reach it.
func (e *env) checkLeaderServes(l, f *member) {
	e.t.Helper()
	if l.c.Role() != cluster.RoleLeader {
		e.fatalf("%s is %v after the bad call, want leader", l.label, l.c.Role())
	}
	if got, want := f.whoami(), l.whoami(); got != want {
		e.errorf("after the bad call the follower reaches %q, the leader owns %q", got, want)
	}
	if n := len(e.upstream().built(l.c.Name())); n != 1 {
		e.errorf("%d real clients built, want 1 (the leader must survive)", n)
	}
	if n := f.rec.count(isKind(cluster.EventLeaderLost)); n != 0 {
		e.errorf("the follower lost its leader %d times", n)
	}
}

// A panic in the real method becomes ErrPanic with the stack, on the
// follower and on the leader; the leader process survives and serves on.
func testInvokePanic(e *env) {
	l, f := e.pair2(e.addr(), "Panic")
	for _, m := range []*member{f, l} {
		err := invokeErr(m, MethodPanic)
		if !errors.Is(err, cluster.ErrPanic) {
			e.errorf("%s: panic: %v, want an error matching cluster.ErrPanic", m.label, err)
		}
		var re *protocol.RemoteError
		switch {
		case !errors.As(err, &re):
			e.errorf("%s: panic: %v does not wrap a *protocol.RemoteError", m.label, err)
		case !strings.Contains(re.Message, PanicValue):
			e.errorf("%s: panic: the message %q lacks the panic value %q", m.label, re.Message, PanicValue)
		case !strings.Contains(re.Stack, "goroutine"):
			e.errorf("%s: panic: the remote error carries no stack: %q", m.label, re.Stack)
		}
	}
	e.checkLeaderServes(l, f)
}

// Every one-way call from a follower reaches the real method; a one-way
// call to an undeclared method harms nobody.
func testInvokeOneway(e *env) {
	l, f := e.pair2(e.addr(), "Oneway")
	var want []string
	for i := range 20 {
		v := fmt.Sprintf("oneway %d", i)
		want = append(want, v)
		e.stepf("%s sends %q one-way", f.label, v)
		if err := f.c.InvokeOneway(MethodRecord, v); err != nil {
			e.fatalf("%s: InvokeOneway: %v", f.label, err)
		}
	}
	if err := f.c.InvokeOneway("noSuchMethod", "x"); err != nil {
		e.fatalf("%s: InvokeOneway of an undeclared method failed at once: %v", f.label, err)
	}
	rc := e.upstream().latest("Oneway")
	e.eventually("the real client recorded 20 one-way calls", func() bool { return len(rc.state().records) >= len(want) })
	got := rc.state().records
	sorted := slices.Clone(got)
	slices.Sort(sorted)
	wantSorted := slices.Clone(want)
	slices.Sort(wantSorted)
	if !slices.Equal(sorted, wantSorted) {
		e.errorf("the real client recorded %q, want %q", got, want)
	}
	if recorded := invoke[[]string](f, MethodRecords); !slices.Equal(recorded, got) {
		e.errorf("records through the follower: %q, want %q", recorded, got)
	}
	e.checkLeaderServes(l, f)
}

// A follower's call that gets no answer within its response timeout fails
// with ErrTimeout without waiting for the method; the late answer is
// dropped (the leader says so) and the connection serves the next call.
func testInvokeResponseTimeout(e *env) {
	const timeout = 300 * time.Millisecond
	addr := e.addr()
	l := e.process().join("Timeout", addr)
	l.mustLead()
	f := e.process().join("Timeout", addr, cluster.WithResponseTimeout(timeout))
	f.mustFollow()
	e.stepf("%s invokes hold with a %v response timeout", f.label, timeout)
	// No deadline of its own: the response timeout bounds the call (a
	// context with a deadline would be waited for instead).
	_, err := f.c.Invoke(context.Background(), MethodHold)
	if !errors.Is(err, cluster.ErrTimeout) {
		e.fatalf("%s: hold: %v, want an error matching cluster.ErrTimeout", f.label, err)
	}
	var ce *cluster.Error
	if errors.As(err, &ce) && ce.Method != MethodHold {
		e.errorf("the timeout error %q does not name the method", err)
	}
	rc := e.upstream().latest("Timeout")
	st := rc.state()
	if st.holding != 1 {
		e.fatalf("the real method started %d times, want once", st.holding)
	}
	// The leader times the call from when it received it, which can be
	// later than when the follower sent it: answer only once its clock
	// too says the call is late.
	e.stepf("waiting until the call is late by the leader's clock")
	time.Sleep(time.Until(st.heldAt.Add(timeout + 50*time.Millisecond)))
	e.upstream().releaseHolds() // the method answers, too late
	l.waitEvent("the late reply dropped (ErrLeaderTimeout)", isErrorEvent(cluster.ErrLeaderTimeout))
	if got := invoke[int64](f, MethodSquare, 7); got != 49 {
		e.errorf("square(7) after a timeout = %d", got)
	}
	if n := f.rec.count(isKind(cluster.EventLeaderLost)); n != 0 {
		e.errorf("the follower lost its leader %d times over a slow method", n)
	}
}

// A 1 MiB argument crosses the wire whole and comes back whole.
func testInvokeLargeArgument(e *env) {
	_, f := e.pair2(e.addr(), "Large")
	const size = 1 << 20
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, size)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	arg := string(b)
	if got, want := invoke[Digest](f, MethodDigest, arg), digestOf(arg); got != want {
		e.errorf("the leader saw an argument of %d bytes with sha256 %s, want %d bytes with sha256 %s",
			got.Len, got.SHA256, want.Len, want.SHA256)
	}
	if got := invoke[string](f, MethodEcho, arg); got != arg {
		e.errorf("echo of a 1 MiB string returned %d bytes (sha256 %s), want the argument (sha256 %s)",
			len(got), digestOf(got).SHA256, digestOf(arg).SHA256)
	}
}

// 1,000 concurrent calls from 4 followers, each in its own process, all
// get their own answer.
func testInvokeConcurrent(e *env) {
	const followers, calls = 4, 250
	addr := e.addr()
	l := e.process().join("Concurrent", addr)
	l.mustLead()
	fs := make([]*member, followers)
	for i := range fs {
		fs[i] = e.process().join("Concurrent", addr)
	}
	for _, f := range fs {
		f.mustFollow()
	}
	e.stepf("%d followers make %d concurrent calls each", followers, calls)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed []string
		ok     int
	)
	fail := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		if len(failed) < 10 {
			failed = append(failed, s)
		}
	}
	ctx := e.Timeout(opTimeout * 2)
	for i, f := range fs {
		for j := range calls {
			wg.Go(func() {
				n := int64(i*100000 + j*7 + 3)
				var err error
				if j%2 == 0 {
					var got int64
					got, err = cluster.Call[int64](ctx, f.c, MethodSquare, n)
					if err == nil && got != n*n {
						fail(fmt.Sprintf("%s: square(%d) = %d, want %d", f.label, n, got, n*n))
						return
					}
				} else {
					want := fmt.Sprintf("follower %d call %d", i, j)
					var got string
					got, err = cluster.Call[string](ctx, f.c, MethodEcho, want)
					if err == nil && got != want {
						fail(fmt.Sprintf("%s: echo(%q) = %q", f.label, want, got))
						return
					}
				}
				if err != nil {
					fail(fmt.Sprintf("%s: call %d: %v", f.label, j, err))
					return
				}
				mu.Lock()
				ok++
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	if len(failed) > 0 || ok != followers*calls {
		e.fatalf("%d of %d calls answered correctly; first failures:\n%s", ok, followers*calls, strings.Join(failed, "\n"))
	}
	if served := l.c.Stats().Served; served < followers*calls {
		e.errorf("the leader served %d calls, want at least %d", served, followers*calls)
	}
}
