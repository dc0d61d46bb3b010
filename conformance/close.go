package conformance

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/transport"
)

var closeCases = []testCase{
	{name: "idempotent", run: testCloseIdempotent},
	{name: "real-client-once", run: testCloseRealClientOnce},
	{name: "address-freed-after-last-channel", run: testCloseAddressFreed},
	{name: "no-goroutine-left", run: testCloseNoGoroutineLeft},
}

// Close may be called again and concurrently: every call returns the
// first result, and every operation after it fails with ErrClosed.
func testCloseIdempotent(e *env) {
	l, f := e.pair2(e.addr(), "Idempotent")
	for _, m := range []*member{f, l} {
		e.stepf("closing %s from several goroutines", m.label)
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(e.Ctx, suiteCloseTimeout)
				defer cancel()
				errs[i] = m.c.Close(ctx)
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				e.errorf("%s: concurrent Close %d: %v", m.label, i, err)
			}
		}
		if err := m.c.Close(e.Timeout(suiteCloseTimeout)); err != nil {
			e.errorf("%s: Close again: %v", m.label, err)
		}
		if _, err := m.c.Invoke(e.Timeout(opTimeout), MethodWhoami); !errors.Is(err, cluster.ErrClosed) {
			e.errorf("%s: Invoke after Close: %v, want an error matching cluster.ErrClosed", m.label, err)
		}
		if err := m.c.Publish(Reg{Key: "k", Value: "v"}); !errors.Is(err, cluster.ErrClosed) {
			e.errorf("%s: Publish after Close: %v, want an error matching cluster.ErrClosed", m.label, err)
		}
		if _, err := m.c.Subscribe(Reg{Key: "k"}, func(cluster.Value) {}); !errors.Is(err, cluster.ErrClosed) {
			e.errorf("%s: Subscribe after Close: %v, want an error matching cluster.ErrClosed", m.label, err)
		}
		if !m.c.Stats().Closed {
			e.errorf("%s: Stats().Closed is false after Close", m.label)
		}
	}
}

// Followers closing leave the real client alone; the leader's Close closes
// it exactly once and returns only after it did.
func testCloseRealClientOnce(e *env) {
	l, f1, f2 := e.cluster3(e.addr(), "CloseOnce")
	rc := e.upstream().latest("CloseOnce")
	f1.mustClose()
	f2.mustClose()
	if n := rc.state().closes; n != 0 {
		e.errorf("followers closing closed the real client %d times", n)
	}
	l.mustClose()
	if n := rc.state().closes; n != 1 {
		e.errorf("after the leader's Close returned the real client was closed %d times, want once", n)
	}
	l.mustClose()
	if n := rc.state().closes; n != 1 {
		e.errorf("a second Close closed the real client again (%d closes)", n)
	}
	if n := len(e.upstream().built("CloseOnce")); n != 1 {
		e.errorf("%d real clients built, want 1", n)
	}
}

// The leading process frees the address only when its last channel on it
// closes; until then the other channel serves its followers.
func testCloseAddressFreed(e *env) {
	addr := e.addr()
	leading := e.process()
	x := leading.join("ChannelX", addr)
	x.mustLead()
	y := leading.join("ChannelY", addr)
	y.mustLead()
	// A forced follower never binds, so it cannot take the address when
	// the leader goes.
	fy := e.process().join("ChannelY", addr, cluster.WithMode(cluster.ForceFollower))
	fy.mustFollow()
	probe := e.h.NewTransport(e.t)

	x.mustClose()
	e.stepf("listening on %s while channel Y still leads there", addr)
	if ln, err := probe.Listen(e.Timeout(opTimeout), addr); err == nil {
		ln.Close()
		e.fatalf("Listen(%q) succeeded after one of two channels closed", addr)
	} else if !errors.Is(err, transport.ErrAddrInUse) {
		e.errorf("Listen(%q) while channel Y leads: %v, want an error matching transport.ErrAddrInUse", addr, err)
	}
	if got, want := fy.whoami(), y.whoami(); got != want {
		e.errorf("after channel X closed, Y's follower reaches %q, want %q", got, want)
	}
	if n := fy.rec.count(isKind(cluster.EventLeaderLost)); n != 0 {
		e.errorf("closing channel X cost channel Y's follower its leader")
	}

	y.mustClose()
	e.stepf("listening on %s after its last channel closed", addr)
	ln, err := probe.Listen(e.Timeout(opTimeout), addr)
	if err != nil {
		e.fatalf("Listen(%q) after every channel on it closed: %v", addr, err)
	}
	ln.Close()
}

// leakWait bounds how long the case waits for goroutines to end: a closed
// conn of some media lingers a while to deliver its last bytes.
const leakWait = 10 * time.Second

// Once every Client closed and the transports were released, no goroutine
// the case started is left.
func testCloseNoGoroutineLeft(e *env) {
	e.stepf("recording the goroutines that run before the cluster starts")
	opts := append([]goleak.Option{goleak.IgnoreCurrent()}, e.h.IgnoreGoroutines...)
	e.t.Run("cluster", func(t *testing.T) {
		runCase(t, e.h, e.caps, e.name+"/cluster", func(e *env) {
			l, f1, f2 := e.cluster3(e.addr(), "Leak")
			for _, m := range []*member{l, f1, f2} {
				m.subscribe("k")
			}
			f1.publish("k", "v")
			for _, m := range []*member{l, f1, f2} {
				m.waitValue("k", "v")
				m.whoami()
			}
			for _, m := range []*member{f2, f1, l} {
				m.mustClose()
			}
		})
	})
	if e.t.Failed() {
		return
	}
	e.stepf("waiting for the cluster's goroutines to end")
	deadline := time.Now().Add(leakWait)
	for {
		err := goleak.Find(opts...)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			e.fatalf("goroutines left %v after every Client closed and the transports were released: %v", leakWait, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
