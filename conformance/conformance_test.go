package conformance_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/go-clusterclient/clusterclient/conformance"
	"github.com/go-clusterclient/clusterclient/transport"
	"github.com/go-clusterclient/clusterclient/transport/mem"
	"github.com/go-clusterclient/clusterclient/transport/tcp"
	"github.com/go-clusterclient/clusterclient/transport/transporttest"
	"github.com/go-clusterclient/clusterclient/transport/unix"
)

// The suite's own tests run it against deliberately broken transports in a
// separate test process and check that it fails, and fails saying where.
// (The working transports run it in their own packages.)

func TestMain(m *testing.M) {
	conformance.Main(func(kind string) (transport.Transport, error) {
		switch kind {
		case "tcp":
			return tcp.New(tcp.DefaultConfig()), nil
		case "unix":
			return unix.New(unix.DefaultConfig())
		}
		return mem.New(mem.DefaultConfig())
	})
	goleak.VerifyTestMain(m)
}

const brokenEnv = "CONFORMANCE_BROKEN"

var addrSeq atomic.Uint64

func memTransport(tb testing.TB) transport.Transport {
	tr, err := mem.New(mem.DefaultConfig())
	if err != nil {
		tb.Fatal(err)
	}
	return tr
}

func memHarness() conformance.Harness {
	return conformance.Harness{
		NewTransport: memTransport,
		NewAddr:      func(testing.TB) string { return fmt.Sprintf("conformance-%d", addrSeq.Add(1)) },
	}
}

// broken wraps a transport with a defect in its conns or listeners.
type broken struct {
	transport.Transport
	conn     func(net.Conn) net.Conn                 // wraps dialed and accepted conns
	listener func(net.Listener, string) net.Listener // wraps listeners
}

func (b broken) wrap(c net.Conn) net.Conn {
	if b.conn == nil {
		return c
	}
	return b.conn(c)
}

func (b broken) Dial(ctx context.Context, addr string) (net.Conn, error) {
	c, err := b.Transport.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	return b.wrap(c), nil
}

func (b broken) Listen(ctx context.Context, addr string) (net.Listener, error) {
	l, err := b.Transport.Listen(ctx, addr)
	if err != nil {
		return nil, err
	}
	l = brokenListener{Listener: l, b: b}
	if b.listener != nil {
		l = b.listener(l, addr)
	}
	return l, nil
}

type brokenListener struct {
	net.Listener
	b broken
}

func (l brokenListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.b.wrap(c), nil
}

// bitflipConn corrupts one byte of every write of 1 KiB or more: small
// frames (registration, heartbeats, small calls) pass, big ones arrive
// damaged.
type bitflipConn struct{ net.Conn }

func (c bitflipConn) Write(p []byte) (int, error) {
	if len(p) >= 1<<10 {
		q := slices.Clone(p)
		q[len(q)/2] ^= 0x55
		p = q
	}
	return c.Conn.Write(p)
}

// muteConn swallows every write.
type muteConn struct{ net.Conn }

func (muteConn) Write(p []byte) (int, error) { return len(p), nil }

// leakyConn starts a goroutine per conn that never ends.
var leakForever = make(chan struct{})

func leakyConn(c net.Conn) net.Conn {
	go func() { <-leakForever }()
	return c
}

// ghosts are listeners that keep an address after its listener closed.
type ghosts struct {
	mu  sync.Mutex
	tr  transport.Transport
	all []net.Listener
}

// stickyListener frees nothing on Close: it closes the real listener and
// takes the address again at once with a ghost that never accepts.
type stickyListener struct {
	net.Listener
	addr string
	g    *ghosts
}

func (l stickyListener) Close() error {
	err := l.Listener.Close()
	ghost, gerr := l.g.tr.Listen(context.Background(), l.addr)
	if gerr == nil {
		l.g.mu.Lock()
		l.g.all = append(l.g.all, ghost)
		l.g.mu.Unlock()
	}
	return err
}

// brokenHarnesses are run by TestBroken in the child test process.
var brokenHarnesses = map[string]func() conformance.Harness{
	"bitflip": func() conformance.Harness {
		h := memHarness()
		h.NewTransport = func(tb testing.TB) transport.Transport {
			return broken{Transport: memTransport(tb), conn: func(c net.Conn) net.Conn { return bitflipConn{c} }}
		}
		return h
	},
	"mute": func() conformance.Harness {
		h := memHarness()
		h.NewTransport = func(tb testing.TB) transport.Transport {
			return broken{Transport: memTransport(tb), conn: func(c net.Conn) net.Conn { return muteConn{c} }}
		}
		h.Watchdog = 2 * time.Second
		return h
	},
	"leaky": func() conformance.Harness {
		h := memHarness()
		h.NewTransport = func(tb testing.TB) transport.Transport {
			return broken{Transport: memTransport(tb), conn: leakyConn}
		}
		return h
	},
	"sticky": func() conformance.Harness {
		h := memHarness()
		h.NewTransport = func(tb testing.TB) transport.Transport {
			g := &ghosts{tr: memTransport(tb)}
			tb.Cleanup(func() {
				g.mu.Lock()
				defer g.mu.Unlock()
				for _, l := range g.all {
					l.Close()
				}
			})
			return broken{Transport: g.tr, listener: func(l net.Listener, addr string) net.Listener {
				return stickyListener{Listener: l, addr: addr, g: g}
			}}
		}
		return h
	},
	"lazy-tls": func() conformance.Harness {
		h := memHarness()
		h.NewTransport = newLazyTLS
		h.NewAddr = func(tb testing.TB) string { return transporttest.FreeAddr(tb, "tcp", "127.0.0.1") }
		h.Watchdog = 2 * time.Second // the probe waits no longer
		return h
	},
	"bad-skip": func() conformance.Harness {
		h := memHarness()
		h.Skip = map[string]string{"invoke/no-such-case": "typo"}
		return h
	},
}

// TestBroken runs the suite on the broken harness named by brokenEnv; it
// does nothing in an ordinary test run.
func TestBroken(t *testing.T) {
	name := os.Getenv(brokenEnv)
	if name == "" {
		t.Skip("runs only as the child of TestSuiteCatches")
	}
	conformance.Run(t, brokenHarnesses[name]())
}

func TestSuiteCatches(t *testing.T) {
	for _, tc := range []struct {
		harness, run string
		want         []string
	}{
		{"bitflip", "invoke/1MiB-argument", []string{"--- FAIL: TestBroken/invoke/1MiB-argument", `invokes digest"`}},
		{"mute", "register/follower", []string{
			`conformance: register/follower hung for 2s at step "waiting for process 2's Register client to be ready"`,
			"--- FAIL: TestBroken/register/follower"}},
		{"leaky", "close/no-goroutine-left", []string{"--- FAIL: TestBroken/close/no-goroutine-left", "goroutines left", "leakyConn"}},
		{"sticky", "close/address-freed-after-last-channel", []string{
			"--- FAIL: TestBroken/close/address-freed-after-last-channel", "after every channel on it closed"}},
		{"lazy-tls", "register/follower", []string{
			`conformance: capability probe: lazy-tls Dial(`,
			"did not complete within 2s",
			"Dial must complete without the accepting side doing any I/O",
			"as soon as the conn is accepted",
			"conformance: the harness leaves out 3 transport kit subtest(s) for want of a Harness.Kit field",
			"stranger: set Harness.HoldAddr"}},
		{"bad-skip", "", []string{`names unknown subtests ["invoke/no-such-case"]`}},
	} {
		t.Run(tc.harness, func(t *testing.T) {
			out, err := runBroken(t, tc.harness, tc.run)
			if err == nil {
				t.Fatalf("the suite passed a broken transport; output:\n%s", out)
			}
			for _, want := range tc.want {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

// runBroken runs TestBroken, restricted to one case, in a child test
// process and returns its output and exit error.
func runBroken(t *testing.T, harness, run string) (string, error) {
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	pattern := "^TestBroken$"
	for _, part := range strings.Split(run, "/") {
		if part != "" {
			pattern += "/^" + part + "$"
		}
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, exe, "-test.run="+pattern, "-test.v", "-test.count=1", "-test.timeout=80s")
	cmd.Env = append(os.Environ(), brokenEnv+"="+harness)
	setPdeathsig(cmd)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("child test run did not finish: %v\n%s", ctx.Err(), out)
	}
	return string(out), err
}

// Subtests names every case once, under its subtest, in the documented
// order; Harness.Skip accepts exactly these names.
func TestSubtests(t *testing.T) {
	names := conformance.Subtests()
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			t.Errorf("%q listed twice", n)
		}
		seen[n] = true
		if group, _, ok := strings.Cut(n, "/"); ok && !seen[group] {
			t.Errorf("%q listed before its subtest %q", n, group)
		}
	}
	for _, want := range []string{"transport", "register/unknown-channel", "subscribe/broadcast-off",
		"publish/child-processes", "invoke/panic", "invoke/1MiB-argument", "invoke/concurrent-1000",
		"close/no-goroutine-left", "failover/leader-sigkill", "robustness/2GB-length", "robustness/header-then-silence"} {
		if !seen[want] {
			t.Errorf("Subtests lacks %q", want)
		}
	}
}
