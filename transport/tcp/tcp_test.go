package tcp_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"

	"go.uber.org/goleak"
	"golang.org/x/net/nettest"

	"github.com/go-clusterclient/clusterclient/conformance"
	"github.com/go-clusterclient/clusterclient/transport"
	"github.com/go-clusterclient/clusterclient/transport/tcp"
	"github.com/go-clusterclient/clusterclient/transport/transporttest"
)

func TestMain(m *testing.M) {
	conformance.Main(func(string) (transport.Transport, error) {
		return tcp.New(tcp.DefaultConfig()), nil
	})
	goleak.VerifyTestMain(m)
}

func harness(host string) transporttest.Harness {
	return transporttest.Harness{
		NewTransport: func(testing.TB) transport.Transport { return tcp.New(tcp.DefaultConfig()) },
		NewAddr:      func(tb testing.TB) string { return transporttest.FreeAddr(tb, "tcp", host) },
		// A plain TCP listener: the kernel completes the handshake even
		// though nobody calls Accept.
		HoldAddr: func(tb testing.TB, addr string) bool {
			transporttest.Hold(tb, "tcp", addr)
			return true
		},
		UnansweredAddr: transporttest.UnansweredTCPAddr(host),
	}
}

func TestTransport(t *testing.T) { transporttest.Run(t, harness("127.0.0.1")) }

func TestTransportIPv6(t *testing.T) {
	if !nettest.SupportsIPv6() {
		t.Skip("no IPv6 loopback")
	}
	transporttest.Run(t, harness("::1"))
}

func BenchmarkPingPong(b *testing.B) {
	for _, size := range []int{64, 4096} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			transporttest.BenchmarkPingPong(b, harness("127.0.0.1"), size)
		})
	}
}

func BenchmarkFailoverListen(b *testing.B) {
	transporttest.BenchmarkFailoverListen(b, harness("127.0.0.1"))
}

func TestAddressRules(t *testing.T) {
	transporttest.CheckIPAddrRules(t, tcp.New(tcp.DefaultConfig()), tcp.New(tcp.Config{AllowNonLoopback: true}))
}

func TestListenPortZero(t *testing.T) {
	tr := tcp.New(tcp.DefaultConfig())
	l, err := tr.Listen(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.Addr().String()
	if _, err := tr.Listen(t.Context(), addr); !errors.Is(err, transport.ErrAddrInUse) {
		t.Fatalf("Listen(%q) held: %v, want ErrAddrInUse", addr, err)
	}
}

func TestDefaultAddr(t *testing.T) {
	if got := tcp.New(tcp.DefaultConfig()).DefaultAddr(); got != "127.0.0.1:7777" {
		t.Errorf("DefaultAddr = %q", got)
	}
	if !transport.IsMultiProcess(tcp.New(tcp.Config{})) {
		t.Error("tcp is not MultiProcess")
	}
}

func Example() {
	tr := tcp.New(tcp.DefaultConfig())
	ctx := context.Background()

	l, err := tr.Listen(ctx, "127.0.0.1:0") // a free port
	if err != nil {
		panic(err)
	}
	defer l.Close()
	addr := l.Addr().String()

	// Exclusive: a second listener on the address is refused.
	_, err = tr.Listen(ctx, addr)
	fmt.Println("second listen in use:", errors.Is(err, transport.ErrAddrInUse))

	// Hostnames are refused; the address must be a literal loopback IP.
	_, err = tr.Dial(ctx, "localhost:7777")
	fmt.Println("localhost invalid:", errors.Is(err, transport.ErrInvalidAddr))

	c, err := tr.Dial(ctx, addr)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	_, halfCloser := c.(transport.HalfCloser)
	fmt.Println("half-close:", halfCloser)
	// Output:
	// second listen in use: true
	// localhost invalid: true
	// half-close: true
}

// tcp.New takes no error: every Config is valid (package transport's rule
// for a transport's New). A field that can be invalid would give New an
// error result matching an ErrInvalidConfig of this package, as the other
// transports have; this line then stops compiling, as a reminder.
var _ func(tcp.Config) *tcp.Transport = tcp.New

// Every Config works: with each field at its extremes, Listen and Dial on
// loopback succeed, so no Config fails later than New either.
func TestEveryConfigValid(t *testing.T) {
	for _, cfg := range []tcp.Config{
		{},
		{AllowNonLoopback: true},
		{KeepAlive: -1},
		{KeepAlive: math.MinInt64},
		{KeepAlive: math.MaxInt64},
	} {
		tr := tcp.New(cfg)
		l, err := tr.Listen(t.Context(), "127.0.0.1:0")
		if err != nil {
			t.Errorf("%+v: Listen: %v", cfg, err)
			continue
		}
		c, err := tr.Dial(t.Context(), l.Addr().String())
		if err != nil {
			t.Errorf("%+v: Dial: %v", cfg, err)
		} else {
			c.Close()
		}
		l.Close()
	}
}
