package conformance

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/go-clusterclient/clusterclient/internal/guard"
	"github.com/go-clusterclient/clusterclient/transport"
	"github.com/go-clusterclient/clusterclient/transport/transporttest"
)

// DefaultWatchdog is how long one case may run before the suite declares
// it hung.
const DefaultWatchdog = 60 * time.Second

// hungGrace is how long a hung case has to return after the watchdog tore
// it down, before the suite panics with every goroutine's stack.
const hungGrace = 10 * time.Second

// Harness tells the suite how to test one transport configuration.
//
// NewTransport and NewAddr are required; every other field is optional.
type Harness struct {
	// NewTransport returns a fresh transport. The suite calls it once per
	// simulated process of a case (and more); anything it needs released
	// it registers with tb.Cleanup.
	NewTransport func(tb testing.TB) transport.Transport

	// NewAddr returns an address of the medium that nobody uses, distinct
	// from every address it returned before in this process.
	NewAddr func(tb testing.TB) string

	// Kind is given to the ChildFactory (see Main) in child processes, so
	// a package with several harnesses can rebuild the matching transport
	// there.
	Kind string

	// Kit configures the transport kit that the "transport" subtest runs
	// (transporttest.Run): its HoldAddr, UnansweredAddr and Skip, say.
	// Its NewTransport, NewAddr and Kind default to the fields above.
	Kit transporttest.Harness

	// Skip maps a case ("failover/leader-sigkill") or a whole subtest
	// ("failover") to the reason the transport cannot pass it. Only a real,
	// documented limitation of the medium belongs here. Naming something
	// that does not exist fails Run. (Cases that need a capability the
	// transport lacks, such as several processes, skip by themselves.)
	Skip map[string]string

	// Watchdog bounds each case, and the capability probe's waits when it
	// is under 15 s. Zero means DefaultWatchdog. The kit's subtests have
	// their own, Kit.Watchdog (see the package doc, "Time budgets").
	Watchdog time.Duration

	// IgnoreGoroutines lists goroutines the transport keeps for the life
	// of the process (kcp-go's scheduler, say), which the close/no-goroutine-left
	// case must not count as leaks.
	IgnoreGoroutines []goleak.Option
}

func (h *Harness) watchdog() time.Duration {
	if h.Watchdog > 0 {
		return h.Watchdog
	}
	return DefaultWatchdog
}

// kit returns the transport kit's harness with the defaults filled in.
func (h *Harness) kit() transporttest.Harness {
	k := h.Kit
	if k.NewTransport == nil {
		k.NewTransport = h.NewTransport
	}
	if k.NewAddr == nil {
		k.NewAddr = h.NewAddr
	}
	if k.Kind == "" {
		k.Kind = h.Kind
	}
	return k
}

// capability is something a case needs from the transport or the host.
type capability int

const (
	// capMultiProcess: the transport's addresses are shared across OS
	// processes (transport.IsMultiProcess).
	capMultiProcess capability = 1 << iota
	// capPeerCred: the transport's conns implement
	// transport.PeerCredentials.
	capPeerCred
)

// caps is what the suite learned about the transport before the cases
// ran.
type caps struct {
	name         string
	multiProcess bool
	peerCred     bool
}

// lacks returns why the transport lacks what need asks for, or "".
func (c caps) lacks(need capability) string {
	switch {
	case need&capMultiProcess != 0 && !c.multiProcess:
		return c.name + " is not multi-process (transport.IsMultiProcess is false)"
	case need&capPeerCred != 0 && !c.peerCred:
		return c.name + " conns do not implement transport.PeerCredentials"
	}
	return ""
}

// probe answers the capability probes: it makes a transport, listens on
// a fresh address, accepts in a goroutine that never reads or writes, and
// dials, each step within probeTimeout, then looks at what the conn pair
// implements. A failure says what the transport must do.
func probe(t *testing.T, h *Harness) caps {
	t.Helper()
	tr := h.NewTransport(t)
	c := caps{name: tr.Name(), multiProcess: transport.IsMultiProcess(tr)}
	timeout := min(opTimeout, h.watchdog())
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	addr := h.NewAddr(t)
	l, err := tr.Listen(ctx, addr)
	if err != nil {
		t.Fatalf("conformance: capability probe: %s Listen(%q) on a fresh address of Harness.NewAddr: %v\n"+
			"\tListen must bind an address nobody uses (and NewAddr must return one)", tr.Name(), addr, err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		s, err := l.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- s
	}()
	type dialed struct {
		c   net.Conn
		err error
	}
	dialDone := make(chan dialed, 1)
	go func() {
		d, err := tr.Dial(ctx, addr)
		dialDone <- dialed{d, err}
	}()
	var d dialed
	select {
	case d = <-dialDone:
	case <-time.After(timeout + probeGrace):
		t.Fatalf("conformance: capability probe: %s Dial(%q) did not return %v after its context's %v deadline ended\n"+
			"\tDial must honour its context in every step, a handshake included (go doc transport.Transport)",
			tr.Name(), addr, probeGrace, timeout)
	}
	if d.err != nil {
		if errors.Is(d.err, context.DeadlineExceeded) {
			t.Fatalf("conformance: capability probe: %s Dial(%q) did not complete within %v: %v\n"+
				"\tthe probe accepts the conn and then neither reads nor writes it, as a busy leader may: "+
				"Dial must complete without the accepting side doing any I/O. "+
				"A transport with a handshake must run the server side of it as soon as the conn is accepted "+
				"(not lazily on its first Read, as crypto/tls does) (go doc transport, \"What a transport must do\")",
				tr.Name(), addr, timeout, d.err)
		}
		t.Fatalf("conformance: capability probe: %s Dial(%q) to its listener: %v\n"+
			"\tDial must connect to a listener of the same transport", tr.Name(), addr, d.err)
	}
	defer d.c.Close()
	select {
	case s, ok := <-accepted:
		if !ok {
			t.Fatalf("conformance: capability probe: %s Accept on %q failed\n"+
				"\tAccept must return the conn a Dial made", tr.Name(), addr)
		}
		defer s.Close()
		_, dp := d.c.(transport.PeerCredentials)
		_, sp := s.(transport.PeerCredentials)
		c.peerCred = dp && sp
	case <-ctx.Done():
		t.Fatalf("conformance: capability probe: %s Accept on %q did not return within %v although Dial completed: %v\n"+
			"\tAccept must return the conn once its Dial completed", tr.Name(), addr, timeout, ctx.Err())
	}
	return c
}

// probeGrace is how long the probe waits for a Dial past its context
// before declaring that Dial ignores its context.
const probeGrace = 5 * time.Second

// A subtest is one named group of cases ("invoke").
type subtest struct {
	name  string
	cases []testCase
	// run replaces the cases when set (the transport kit, which has its
	// own subtests and watchdog).
	run func(t *testing.T, h *Harness)
}

// A testCase is one check ("invoke/panic"), run under its own watchdog.
type testCase struct {
	name  string
	needs capability
	run   func(e *env)
}

// suite is every subtest in order. Each file adds its own group; the
// attack cases of the security work join the robustness group.
var suite = []subtest{
	{name: "transport", run: runKit},
	{name: "register", cases: registerCases},
	{name: "subscribe", cases: subscribeCases},
	{name: "publish", cases: publishCases},
	{name: "invoke", cases: invokeCases},
	{name: "close", cases: closeCases},
	{name: "failover", cases: failoverCases},
	{name: "robustness", cases: robustnessCases},
}

// Subtests returns the names of Run's subtests and cases, in the order
// they run ("register", "register/follower", ...): the names Harness.Skip
// and go test -run accept.
func Subtests() []string {
	var names []string
	for _, st := range suite {
		names = append(names, st.name)
		for _, c := range st.cases {
			names = append(names, st.name+"/"+c.name)
		}
	}
	return names
}

// Run runs the whole suite against the transport h describes: every
// subtest of Subtests, each case under a watchdog. Call it from a test
// function of a package whose TestMain calls Main.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.NewTransport == nil || h.NewAddr == nil {
		t.Fatal("conformance: Harness.NewTransport and Harness.NewAddr are required")
	}
	known := Subtests()
	var unknown []string
	for name := range h.Skip {
		if !slices.Contains(known, name) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		t.Fatalf("conformance: Harness.Skip names unknown subtests %q (known: %q)", unknown, known)
	}
	if notRun := h.kit().NotRun(); len(notRun) > 0 && h.Skip["transport"] == "" {
		t.Logf("conformance: the harness leaves out %d transport kit subtest(s) for want of a Harness.Kit field:\n\t%s",
			len(notRun), strings.Join(notRun, "\n\t"))
		t.Cleanup(func() {
			t.Logf("conformance: skipped for want of a Harness.Kit field (see the start of this run):\n\t%s", strings.Join(notRun, "\n\t"))
		})
	}
	c := probe(t, &h)
	t.Logf("conformance: %s: multi-process %v, peer credentials %v", c.name, c.multiProcess, c.peerCred)
	for _, st := range suite {
		t.Run(st.name, func(t *testing.T) {
			if reason, ok := h.Skip[st.name]; ok {
				t.Skipf("skipped by the harness: %s", reason)
			}
			if st.run != nil {
				st.run(t, &h)
				return
			}
			for _, tc := range st.cases {
				t.Run(tc.name, func(t *testing.T) {
					if reason, ok := h.Skip[st.name+"/"+tc.name]; ok {
						t.Skipf("skipped by the harness: %s", reason)
					}
					if why := c.lacks(tc.needs); why != "" {
						t.Skip(why)
					}
					runCase(t, &h, c, st.name+"/"+tc.name, tc.run)
				})
			}
		})
	}
}

// runKit is the "transport" subtest: the transport kit, which checks the
// transport contract and runs golang.org/x/net/nettest.TestConn on its
// conns.
func runKit(t *testing.T, h *Harness) { transporttest.Run(t, h.kit()) }

// runCase runs one case under the watchdog.
func runCase(t *testing.T, h *Harness, c caps, name string, fn func(e *env)) {
	e := &env{t: t, h: h, caps: c, name: name, log: newLogBuffer()}
	e.step.Store("starting")
	guard.Run(t, guard.Config{
		Kind: "conformance:", Name: name, Watchdog: h.watchdog(), Grace: hungGrace,
		Where: func() string { return fmt.Sprintf(" at step %q", e.step.Load()) },
		// Held calls first: a leader's Close waits for its running methods.
		BeforeTeardown: func() {
			if up := e.heldUpstream(); up != nil {
				up.releaseHolds()
			}
		},
	}, &e.Env, func() { fn(e) })
	if t.Failed() {
		if s := e.log.String(); s != "" {
			t.Logf("cluster logs of %s:\n%s", name, s)
		}
	}
}

// env is one case's world: its upstream and the guard that tears down
// everything the suite made for it when it ends or hangs.
type env struct {
	guard.Env
	t    *testing.T
	h    *Harness
	caps caps
	name string
	log  *logBuffer
	step atomic.Value // string: what the case is doing, for the watchdog

	upOnce sync.Once

	mu    sync.Mutex
	up    *upstream // the in-process real clients' upstream
	procs int
}

// stepf records what the case does now; a hung case is reported with its
// last step.
func (e *env) stepf(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	e.step.Store(s)
	e.log.note(s)
}

// upstream returns the upstream shared by the case's in-process real
// clients.
func (e *env) upstream() *upstream {
	e.upOnce.Do(func() {
		up := newUpstream(fmt.Sprintf("pid %d", os.Getpid()))
		e.mu.Lock()
		e.up = up
		e.mu.Unlock()
	})
	return e.heldUpstream()
}

// heldUpstream returns the case's upstream if it has one.
func (e *env) heldUpstream() *upstream {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.up
}

// fatalf fails the case with the step it was at.
func (e *env) fatalf(format string, args ...any) {
	e.t.Helper()
	e.t.Fatalf("%s (at step %q)", fmt.Sprintf(format, args...), e.step.Load())
}

// errorf reports a failure and lets the case go on.
func (e *env) errorf(format string, args ...any) {
	e.t.Helper()
	e.t.Errorf("%s (at step %q)", fmt.Sprintf(format, args...), e.step.Load())
}

// opTimeout bounds a wait for something that should happen promptly; it
// only keeps a broken transport from hanging until the watchdog.
const opTimeout = 15 * time.Second

// eventually polls f until it is true or opTimeout passes.
func (e *env) eventually(what string, f func() bool) {
	e.t.Helper()
	e.stepf("waiting until %s", what)
	deadline := time.Now().Add(opTimeout)
	for !f() {
		if time.Now().After(deadline) {
			e.fatalf("not true within %v: %s", opTimeout, what)
		}
		select {
		case <-e.Ctx.Done():
			e.fatalf("case ended while waiting until %s", what)
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// logBuffer keeps the last logBufferSize bytes of a case's cluster logs
// and steps, printed if the case fails.
type logBuffer struct {
	mu  sync.Mutex
	buf []byte
}

const logBufferSize = 256 << 10

func newLogBuffer() *logBuffer { return &logBuffer{} }

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - logBufferSize; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *logBuffer) note(step string) {
	fmt.Fprintf(b, "%s step: %s\n", time.Now().Format("15:04:05.000000"), step)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimRight(string(b.buf), "\n")
}
