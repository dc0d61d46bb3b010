package transporttest

import (
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/internal/guard"
	"github.com/go-clusterclient/clusterclient/transport"
)

// DefaultWatchdog is how long a subtest may run before the kit declares it
// hung.
const DefaultWatchdog = 30 * time.Second

// hungGrace is how long a hung subtest has to return after the watchdog
// tore it down, before the kit panics. (A variable for the kit's own
// tests.)
var hungGrace = 10 * time.Second

// Harness tells the kit how to test one transport configuration.
//
// NewTransport and NewAddr are required; every other field is optional.
type Harness struct {
	// NewTransport returns a fresh transport. The kit calls it once or
	// more per subtest; anything it needs released it registers with
	// tb.Cleanup.
	NewTransport func(tb testing.TB) transport.Transport

	// NewAddr returns an address of the medium that nobody uses, distinct
	// from every address it returned before in this process.
	NewAddr func(tb testing.TB) string

	// Kind is given to the ChildFactory in child processes, so a package
	// with several harnesses can rebuild the matching transport there.
	Kind string

	// Skip maps a subtest name to the reason the transport cannot pass
	// it. Only a real limitation of the medium belongs here. Naming a
	// subtest that does not exist fails Run.
	Skip map[string]string

	// HoldAddr makes a plain listener of the medium, one that speaks no
	// protocol, hold addr until the test ends (tb.Cleanup), and reports
	// whether a Dial to addr is then expected to connect (true for a
	// stream socket that accepts; false where no handshake answers). Nil
	// skips the stranger subtest.
	HoldAddr func(tb testing.TB, addr string) (dialConnects bool)

	// UnansweredAddr returns an address where a Dial through tr neither
	// connects nor fails until its context ends (a listener whose accept
	// queue is full, for instance). Nil skips dial-honours-deadline and
	// dial-honours-cancel.
	UnansweredAddr func(tb testing.TB, tr transport.Transport) string

	// Watchdog bounds each subtest. Zero means DefaultWatchdog.
	Watchdog time.Duration
}

func (h Harness) watchdog() time.Duration {
	if h.Watchdog > 0 {
		return h.Watchdog
	}
	return DefaultWatchdog
}

type subtest struct {
	name string
	run  func(e *env)
	// budget multiplies the watchdog for subtests made of many steps.
	budget int
}

// subtests lists Run's subtests in order (names are documented in doc.go).
var subtests = []subtest{
	{"nettest", testNettest, 11},
	{"exclusive-listen", testExclusiveListen, 1},
	{"dial-no-listener", testDialNoListener, 1},
	{"dial-honours-deadline", testDialHonoursDeadline, 1},
	{"dial-honours-cancel", testDialHonoursCancel, 1},
	{"listener-close-unblocks-accept", testListenerCloseUnblocksAccept, 1},
	{"listener-close-keeps-conns", testListenerCloseKeepsConns, 1},
	{"concurrent-dials", testConcurrentDials, 1},
	{"half-close", testHalfClose, 1},
	{"peer-credentials", testPeerCredentials, 1},
	{"multi-process-exclusivity", testMultiProcessExclusivity, 4},
	{"failover-after-sigkill", testFailoverAfterSIGKILL, 1},
	{"eof-after-peer-sigkill", testEOFAfterPeerSIGKILL, 1},
	{"stranger", testStranger, 1},
}

// Run runs every subtest of the kit against the transport h describes.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.NewTransport == nil || h.NewAddr == nil {
		t.Fatal("transporttest: Harness.NewTransport and Harness.NewAddr are required")
	}
	known := make(map[string]bool, len(subtests))
	for _, st := range subtests {
		known[st.name] = true
	}
	var unknown []string
	for name := range h.Skip {
		if !known[name] {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		t.Fatalf("transporttest: Harness.Skip names unknown subtests %q", unknown)
	}
	notRun := h.NotRun()
	if len(notRun) > 0 {
		t.Logf("transporttest: the harness leaves out %d subtest(s) for want of a field:\n\t%s", len(notRun), strings.Join(notRun, "\n\t"))
		t.Cleanup(func() {
			t.Logf("transporttest: skipped for want of a harness field (see the start of this run):\n\t%s", strings.Join(notRun, "\n\t"))
		})
	}
	for _, st := range subtests {
		t.Run(st.name, func(t *testing.T) {
			if reason, ok := h.Skip[st.name]; ok {
				t.Skipf("skipped by the harness: %s", reason)
			}
			runGuarded(t, st.name, h, st.watchdog(h), st.run)
		})
	}
}

// watchdog is the subtest's budget under h.
func (st subtest) watchdog(h Harness) time.Duration {
	return h.watchdog() * time.Duration(st.budget)
}

// NotRun returns the subtests Run skips because a field of h is nil, each
// as "subtest: the field that enables it, and how", in Run's order.
func (h Harness) NotRun() []string {
	var out []string
	if h.UnansweredAddr == nil {
		how := "set Harness.UnansweredAddr to an address where a Dial blocks (transporttest.UnansweredTCPAddr for TCP on Linux)"
		out = append(out, "dial-honours-deadline: "+how, "dial-honours-cancel: "+how)
	}
	if h.HoldAddr == nil {
		out = append(out, "stranger: set Harness.HoldAddr to hold an address with a plain socket of the medium (transporttest.Hold); it catches a Dial that ignores its context during a handshake")
	}
	return out
}

// env is one subtest's world: the guard that tears down everything the
// kit made for it when it ends or hangs.
type env struct {
	guard.Env
	t *testing.T
	h Harness
}

// runGuarded runs fn under a watchdog of d.
func runGuarded(t *testing.T, name string, h Harness, d time.Duration, fn func(e *env)) {
	e := &env{t: t, h: h}
	guard.Run(t, guard.Config{Kind: "transporttest: subtest", Name: name, Watchdog: d, Grace: hungGrace}, &e.Env,
		func() { fn(e) })
}

func (e *env) transport() transport.Transport { return e.h.NewTransport(e.t) }

func (e *env) addr() string { return e.h.NewAddr(e.t) }

func (e *env) listen(tr transport.Transport, addr string) net.Listener {
	e.t.Helper()
	l, err := tr.Listen(e.Timeout(10*time.Second), addr)
	if err != nil {
		e.t.Fatalf("%s Listen(%q): %v", tr.Name(), addr, err)
	}
	e.OnTeardown(func() { l.Close() })
	return l
}

// track closes c at teardown.
func (e *env) track(c net.Conn) net.Conn {
	e.OnTeardown(func() { c.Close() })
	return c
}

type acceptResult struct {
	c   net.Conn
	err error
}

// acceptAsync accepts one conn in the background.
func (e *env) acceptAsync(l net.Listener) <-chan acceptResult {
	ch := make(chan acceptResult, 1)
	e.Go(func() {
		c, err := l.Accept()
		if err == nil {
			e.track(c)
		}
		ch <- acceptResult{c, err}
	})
	return ch
}

// pair returns a dialed and an accepted conn over l, which listens at
// addr.
func (e *env) pair(tr transport.Transport, l net.Listener, addr string) (dialed, accepted net.Conn) {
	e.t.Helper()
	ch := e.acceptAsync(l)
	c, err := tr.Dial(e.Timeout(10*time.Second), addr)
	if err != nil {
		e.t.Fatalf("%s Dial(%q): %v", tr.Name(), addr, err)
	}
	e.track(c)
	select {
	case r := <-ch:
		if r.err != nil {
			e.t.Fatalf("%s Accept on %q: %v", tr.Name(), addr, r.err)
		}
		return c, r.c
	case <-e.Ctx.Done():
		e.t.Fatalf("%s Accept on %q: %v", tr.Name(), addr, e.Ctx.Err())
		return nil, nil
	}
}

// mentions reports whether err's text names addr (errors must say which
// address failed).
func mentions(err error, addr string) bool { return strings.Contains(err.Error(), addr) }

// percentile returns the p-th percentile (0 < p ≤ 1) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
