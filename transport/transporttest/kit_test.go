package transporttest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/go-clusterclient/clusterclient/transport"
	"github.com/go-clusterclient/clusterclient/transport/mem"
)

// The kit's own tests run it against deliberately broken transports in a
// separate test process and check that it fails, and fails saying why.

func TestMain(m *testing.M) {
	MaybeRunChild(func(kind string) (transport.Transport, error) {
		if kind == "reuseport" {
			return reusePortTransport()
		}
		return mem.New(mem.Config{})
	})
	goleak.VerifyTestMain(m)
}

const brokenEnv = "TRANSPORTTEST_BROKEN"

var memSeq atomic.Uint64

func memHarness() Harness {
	return Harness{
		NewTransport: func(tb testing.TB) transport.Transport {
			tr, err := mem.New(mem.Config{})
			if err != nil {
				tb.Fatal(err)
			}
			return tr
		},
		NewAddr: func(testing.TB) string { return fmt.Sprintf("kit-%d", memSeq.Add(1)) },
	}
}

// grabby ignores exclusivity: when the address is taken it hands out a
// listener that never accepts.
type grabby struct{ transport.Transport }

func (g grabby) Listen(ctx context.Context, addr string) (net.Listener, error) {
	l, err := g.Transport.Listen(ctx, addr)
	if errors.Is(err, transport.ErrAddrInUse) {
		return &deafListener{done: make(chan struct{})}, nil
	}
	return l, err
}

// vague loses the sentinel of Dial errors.
type vague struct{ transport.Transport }

func (v vague) Dial(ctx context.Context, addr string) (net.Conn, error) {
	c, err := v.Transport.Dial(ctx, addr)
	if err != nil {
		return nil, errors.New(strings.ReplaceAll(err.Error(), "no listener", "nope"))
	}
	return c, nil
}

// stubborn returns listeners whose Close does not unblock Accept.
type stubborn struct{ transport.Transport }

func (s stubborn) Listen(ctx context.Context, addr string) (net.Listener, error) {
	return &deafListener{done: make(chan struct{})}, nil
}

// deafListener never accepts; its Close does nothing to Accept, so only
// the end of the test process frees a goroutine blocked there.
type deafListener struct{ done chan struct{} }

func (d *deafListener) Accept() (net.Conn, error) { <-d.done; return nil, net.ErrClosed }
func (d *deafListener) Close() error              { return nil }
func (d *deafListener) Addr() net.Addr            { return mem.Addr("deaf") }

// brokenHarnesses are run by TestBroken in the child test process.
var brokenHarnesses = map[string]func() Harness{
	"grabby": func() Harness {
		h := memHarness()
		h.NewTransport = func(tb testing.TB) transport.Transport { return grabby{memHarness().NewTransport(tb)} }
		return h
	},
	"vague": func() Harness {
		h := memHarness()
		h.NewTransport = func(tb testing.TB) transport.Transport { return vague{memHarness().NewTransport(tb)} }
		return h
	},
	"stubborn": func() Harness {
		h := memHarness()
		h.NewTransport = func(tb testing.TB) transport.Transport { return stubborn{memHarness().NewTransport(tb)} }
		h.Watchdog = time.Second
		hungGrace = time.Second
		return h
	},
	"bad-skip": func() Harness {
		h := memHarness()
		h.Skip = map[string]string{"no-such-subtest": "typo"}
		return h
	},
	"reuseport": reusePortHarness,
}

// TestBroken runs the kit on the broken harness named by brokenEnv; it
// does nothing in an ordinary test run.
func TestBroken(t *testing.T) {
	name := os.Getenv(brokenEnv)
	if name == "" {
		t.Skip("runs only as the child of TestKitCatches")
	}
	Run(t, brokenHarnesses[name]())
}

func TestKitCatches(t *testing.T) {
	for _, tc := range []struct {
		harness, subtest string
		want             []string
	}{
		{"grabby", "exclusive-listen", []string{"--- FAIL: TestBroken/exclusive-listen", "succeeded while a listener holds it"}},
		{"vague", "dial-no-listener", []string{"--- FAIL: TestBroken/dial-no-listener", "want an error matching ErrNoListener"}},
		{"stubborn", "listener-close-unblocks-accept", []string{"subtest listener-close-unblocks-accept hung", "panic: transporttest: subtest TestBroken/listener-close-unblocks-accept still hung"}},
		{"bad-skip", "", []string{`names unknown subtests ["no-such-subtest"]`}},
		{"reuseport", "multi-process-exclusivity", []string{"--- FAIL: TestBroken/multi-process-exclusivity", "both listen on"}},
	} {
		t.Run(tc.harness, func(t *testing.T) {
			if tc.harness == "reuseport" && reusePortTransport == nil {
				t.Skip("SO_REUSEPORT is tested on Linux only")
			}
			out, err := runBroken(t, tc.harness, tc.subtest)
			if err == nil {
				t.Fatalf("the kit passed a broken transport; output:\n%s", out)
			}
			for _, want := range tc.want {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

// runBroken runs TestBroken (restricted to one subtest) in a child test
// process and returns its output and exit error.
func runBroken(t *testing.T, harness, subtest string) (string, error) {
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	run := "^TestBroken$"
	if subtest != "" {
		run += "/^" + subtest + "$"
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, exe, "-test.run="+run, "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), brokenEnv+"="+harness)
	setPdeathsig(cmd)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("child test run did not finish: %v\n%s", ctx.Err(), out)
	}
	return string(out), err
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	if got := percentile(d, 0.5); got != 50 {
		t.Errorf("p50 of 1..100 = %d", got)
	}
	if got := percentile(d, 0.99); got != 99 {
		t.Errorf("p99 of 1..100 = %d", got)
	}
	if got := percentile(d[:1], 0.99); got != 1 {
		t.Errorf("p99 of one sample = %d", got)
	}
}

// TestDocBudgets: the package doc states every subtest's watchdog factor
// that is not 1, as the code has it.
func TestDocBudgets(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Join(strings.Fields(strings.ReplaceAll(string(src), "//", "")), " ")
	for _, st := range subtests {
		if st.budget == 1 {
			continue
		}
		d := st.watchdog(Harness{})
		want := fmt.Sprintf("%s %d× (", st.name, st.budget)
		if !strings.Contains(doc, want) {
			t.Errorf("doc.go does not state %q (%v by default)", want, d)
		}
	}
}

// TestNotRun: a harness without HoldAddr and UnansweredAddr is told which
// subtests that leaves out, and how to enable them.
func TestNotRun(t *testing.T) {
	got := strings.Join(Harness{}.NotRun(), "\n")
	for _, want := range []string{"dial-honours-deadline: set Harness.UnansweredAddr", "dial-honours-cancel: set Harness.UnansweredAddr", "stranger: set Harness.HoldAddr"} {
		if !strings.Contains(got, want) {
			t.Errorf("NotRun lacks %q:\n%s", want, got)
		}
	}
	full := Harness{HoldAddr: func(testing.TB, string) bool { return true }, UnansweredAddr: func(testing.TB, transport.Transport) string { return "" }}
	if n := full.NotRun(); len(n) != 0 {
		t.Errorf("a harness with every field leaves out %q", n)
	}
}
