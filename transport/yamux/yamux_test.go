package yamux_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/net/nettest"

	"github.com/go-clusterclient/clusterclient/conformance"
	"github.com/go-clusterclient/clusterclient/transport"
	"github.com/go-clusterclient/clusterclient/transport/mem"
	"github.com/go-clusterclient/clusterclient/transport/tcp"
	"github.com/go-clusterclient/clusterclient/transport/transporttest"
	"github.com/go-clusterclient/clusterclient/transport/unix"
	"github.com/go-clusterclient/clusterclient/transport/yamux"
)

func TestMain(m *testing.M) {
	conformance.Main(func(kind string) (transport.Transport, error) {
		u, err := underlying(kind)
		if err != nil {
			return nil, err
		}
		return yamux.New(yamux.DefaultConfig(u))
	})
	goleak.VerifyTestMain(m)
}

// underlying builds the underlying transport of a harness kind.
func underlying(kind string) (transport.Transport, error) {
	switch kind {
	case "tcp":
		return tcp.New(tcp.DefaultConfig()), nil
	case "mem":
		return mem.New(mem.DefaultConfig())
	case "unix":
		return unix.New(unix.DefaultConfig())
	}
	return nil, fmt.Errorf("no underlying transport of kind %q", kind)
}

// newYamux returns yamux.New(cfg), failing tb if cfg is invalid.
func newYamux(tb testing.TB, cfg yamux.Config) *yamux.Transport {
	tb.Helper()
	tr, err := yamux.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return tr
}

func mustUnderlying(tb testing.TB, kind string) transport.Transport {
	tb.Helper()
	u, err := underlying(kind)
	if err != nil {
		tb.Fatal(err)
	}
	return u
}

// freeTCPAddr returns 127.0.0.1:port with a port nobody listens on.
func freeTCPAddr(tb testing.TB) string { return transporttest.FreeAddr(tb, "tcp", "127.0.0.1") }

var memAddrs atomic.Int64

func tcpHarness() transporttest.Harness {
	return transporttest.Harness{
		Kind: "tcp",
		NewTransport: func(tb testing.TB) transport.Transport {
			return newYamux(tb, yamux.DefaultConfig(mustUnderlying(tb, "tcp")))
		},
		NewAddr: freeTCPAddr,
		// A plain TCP listener: the kernel accepts the underlying conn,
		// but nothing answers the yamux ping Dial waits for.
		HoldAddr: func(tb testing.TB, addr string) bool {
			transporttest.Hold(tb, "tcp", addr)
			return false
		},
		UnansweredAddr: transporttest.UnansweredTCPAddr("127.0.0.1"),
	}
}

func memHarness() transporttest.Harness {
	return transporttest.Harness{
		Kind: "mem",
		NewTransport: func(tb testing.TB) transport.Transport {
			return newYamux(tb, yamux.DefaultConfig(mustUnderlying(tb, "mem")))
		},
		NewAddr: func(testing.TB) string { return fmt.Sprintf("yamux-test-%d", memAddrs.Add(1)) },
	}
}

// unixHarness runs yamux over unix path sockets, whose conns report peer
// credentials.
func unixHarness() transporttest.Harness {
	return transporttest.Harness{
		Kind: "unix",
		NewTransport: func(tb testing.TB) transport.Transport {
			return newYamux(tb, yamux.DefaultConfig(mustUnderlying(tb, "unix")))
		},
		NewAddr: func(tb testing.TB) string {
			// t.TempDir's paths hold the test name and can overflow sun_path.
			dir, err := os.MkdirTemp("", "ccy")
			if err != nil {
				tb.Fatal(err)
			}
			tb.Cleanup(func() { os.RemoveAll(dir) })
			return filepath.Join(dir, "y.sock")
		},
		// A plain unix listener: the connect succeeds, but nothing
		// answers the yamux ping Dial waits for.
		HoldAddr: func(tb testing.TB, addr string) bool {
			transporttest.Hold(tb, "unix", addr)
			return false
		},
		// No UnansweredAddr: a unix-socket connect never waits (with the
		// accept queue full it fails at once with EAGAIN).
	}
}

func TestOverTCP(t *testing.T) { transporttest.Run(t, tcpHarness()) }

func TestOverUnix(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("unix path sockets cannot be listened on on Windows")
	}
	transporttest.Run(t, unixHarness())
}

func TestOverMem(t *testing.T) { transporttest.Run(t, memHarness()) }

func BenchmarkPingPong(b *testing.B) {
	for _, size := range []int{64, 4096} {
		b.Run(fmt.Sprintf("tcp/%dB", size), func(b *testing.B) {
			transporttest.BenchmarkPingPong(b, tcpHarness(), size)
		})
		b.Run(fmt.Sprintf("unix/%dB", size), func(b *testing.B) {
			transporttest.BenchmarkPingPong(b, unixHarness(), size)
		})
	}
}

func BenchmarkFailoverListen(b *testing.B) {
	b.Run("tcp", func(b *testing.B) { transporttest.BenchmarkFailoverListen(b, tcpHarness()) })
	b.Run("unix", func(b *testing.B) { transporttest.BenchmarkFailoverListen(b, unixHarness()) })
}

// counting wraps a transport and counts its Dials: each is one session.
type counting struct {
	transport.Transport
	dials atomic.Int32
}

func (c *counting) Dial(ctx context.Context, addr string) (net.Conn, error) {
	c.dials.Add(1)
	return c.Transport.Dial(ctx, addr)
}

// serveEcho accepts streams until l closes and echoes each.
func serveEcho(t *testing.T, l net.Listener) {
	t.Helper()
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				io.Copy(c, c)
			})
		}
	})
}

// echo writes msg on c and reads the echo.
func echo(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("write %q: %v", msg, err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
		t.Fatalf("read %q, %v; want %q", got, err, msg)
	}
}

func dial(t *testing.T, tr transport.Transport, addr string) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := tr.Dial(ctx, addr)
	if err != nil {
		t.Fatalf("Dial(%s): %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Concurrent Dials share one session (one underlying conn); it closes
// when its last stream does, and the next Dial starts another.
func TestStreamsShareOneSession(t *testing.T) {
	under := &counting{Transport: tcp.New(tcp.DefaultConfig())}
	tr := newYamux(t, yamux.DefaultConfig(under))
	l, err := tr.Listen(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	serveEcho(t, l)
	addr := l.Addr().String()

	const n = 16
	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			c, err := tr.Dial(ctx, addr)
			if err != nil {
				t.Errorf("Dial %d: %v", i, err)
				return
			}
			conns[i] = c
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for i, c := range conns {
		echo(t, c, fmt.Sprintf("stream %d of %d", i, n))
	}
	if got := under.dials.Load(); got != 1 {
		t.Fatalf("%d concurrent Dials made %d underlying dials, want 1", n, got)
	}
	for _, c := range conns {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	c := dial(t, tr, addr)
	echo(t, c, "after the idle session closed")
	if got := under.dials.Load(); got != 2 {
		t.Fatalf("a Dial after every stream closed made %d underlying dials in all, want 2", got)
	}
}

// A slow Accept does not stall a session: streams are acknowledged as they
// arrive, so the dialer's session outlives StreamOpenTimeout, the
// accepted stream keeps flowing, and streams beyond the backlog are
// refused, not queued.
func TestSlowAcceptDoesNotWedgeSession(t *testing.T) {
	const backlog = 4
	cfg := yamux.DefaultConfig(tcp.New(tcp.DefaultConfig()))
	cfg.AcceptBacklog = backlog
	cfg.StreamOpenTimeout = 300 * time.Millisecond
	tr := newYamux(t, cfg)
	l, err := tr.Listen(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.Addr().String()

	first := dial(t, tr, addr)
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	go io.Copy(s, s)
	echo(t, first, "first")

	// backlog+3 streams nobody accepts.
	var waiting []net.Conn
	for range backlog + 3 {
		waiting = append(waiting, dial(t, tr, addr))
	}
	time.Sleep(3 * cfg.StreamOpenTimeout) // long enough for an unacknowledged open to kill the session
	echo(t, first, "still flowing while nobody accepts")

	// Refused streams read io.EOF; queued ones wait (for the deadline here).
	var refused atomic.Int32
	var wg sync.WaitGroup
	for _, c := range waiting {
		wg.Go(func() {
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, err := c.Read(make([]byte, 1)); err == io.EOF {
				refused.Add(1)
			}
			c.SetReadDeadline(time.Time{})
		})
	}
	wg.Wait()
	if got := refused.Load(); got != 3 {
		t.Errorf("%d of %d unaccepted streams were refused (EOF), want the 3 beyond the backlog of %d", got, len(waiting), backlog)
	}
	for i := range backlog {
		c, err := l.Accept()
		if err != nil {
			t.Fatalf("Accept of queued stream %d: %v", i, err)
		}
		c.Close()
	}
}

// A leader's death ends its session; the next Dial starts a new session to
// whoever listens now.
func TestSessionRecreatedAfterLeaderDies(t *testing.T) {
	h := tcpHarness()
	under := &counting{Transport: tcp.New(tcp.DefaultConfig())}
	tr := newYamux(t, yamux.DefaultConfig(under))
	addr := freeTCPAddr(t)
	leader := transporttest.StartContender(t, h)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if res, err := leader.Listen(ctx, addr); err != nil || !res.OK {
		t.Fatalf("leader Listen(%s): %v %s", addr, err, res.Err)
	}
	old := dial(t, tr, addr)
	echo(t, old, "to the first leader")
	if err := leader.Kill(); err != nil {
		t.Fatal(err)
	}
	// Take over and dial at once, perhaps before this process has seen the
	// old session end: old is still open, so only the ping after the SYN
	// keeps Dial from using the dead session.
	l, _, err := transporttest.ListenWhenFree(ctx, tr, addr)
	if err != nil {
		t.Fatalf("Listen(%s) after the leader died: %v", addr, err)
	}
	defer l.Close()
	serveEcho(t, l)
	fresh := dial(t, tr, addr)
	echo(t, fresh, "to the new leader")
	if got := under.dials.Load(); got != 2 {
		t.Errorf("underlying dials = %d, want 2 (one session per leader)", got)
	}
	var ne net.Error
	old.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := old.Read(make([]byte, 1)); err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("stream of the killed leader: Read = %d, %v; want EOF or a reset", n, err)
	}
}

// After the listener closes, accepted streams work on, the dialer opens no
// more streams on the retired session, and a new Dial reports that nobody
// listens.
func TestListenerCloseRetiresSessions(t *testing.T) {
	tr := newYamux(t, yamux.DefaultConfig(tcp.New(tcp.DefaultConfig())))
	l, err := tr.Listen(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	c := dial(t, tr, addr)
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	go io.Copy(s, s)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	echo(t, c, "after the listener closed")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := tr.Dial(ctx, addr); !errors.Is(err, transport.ErrNoListener) {
		t.Errorf("Dial(%s) after its listener closed: %v, want ErrNoListener", addr, err)
	}
	echo(t, c, "the old stream is untouched")
}

func TestErrorsPassThrough(t *testing.T) {
	tr := newYamux(t, yamux.DefaultConfig(tcp.New(tcp.DefaultConfig())))
	l, err := tr.Listen(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.Addr().String()
	_, err = tr.Listen(t.Context(), addr)
	var op *transport.OpError
	if !errors.Is(err, transport.ErrAddrInUse) || !errors.As(err, &op) || op.Transport != "yamux" || !strings.Contains(err.Error(), addr) {
		t.Errorf("second Listen(%s): %v, want a yamux OpError matching ErrAddrInUse naming the address", addr, err)
	}
	free := freeTCPAddr(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err = tr.Dial(ctx, free)
	if !errors.Is(err, transport.ErrNoListener) || !strings.HasPrefix(err.Error(), "yamux dial "+free) {
		t.Errorf("Dial(%s) with nobody listening: %v, want ErrNoListener, named by yamux", free, err)
	}
	if _, err := tr.Dial(ctx, "localhost:1"); !errors.Is(err, transport.ErrInvalidAddr) {
		t.Errorf("Dial(localhost:1): %v, want the underlying ErrInvalidAddr", err)
	}
}

func TestConfig(t *testing.T) {
	u := tcp.New(tcp.DefaultConfig())
	if err := yamux.DefaultConfig(u).Validate(); err != nil {
		t.Errorf("DefaultConfig().Validate() = %v", err)
	}
	if err := (yamux.Config{Underlying: u}).Validate(); err != nil {
		t.Errorf("Config{Underlying}.Validate() = %v", err)
	}
	for _, tc := range []struct {
		cfg   yamux.Config
		field string
	}{
		{yamux.Config{}, "Underlying"},
		{yamux.Config{Underlying: u, KeepAliveInterval: -1}, "KeepAliveInterval"},
		{yamux.Config{Underlying: u, ConnectionWriteTimeout: -1}, "ConnectionWriteTimeout"},
		{yamux.Config{Underlying: u, StreamOpenTimeout: -1}, "StreamOpenTimeout"},
		{yamux.Config{Underlying: u, StreamCloseTimeout: -1}, "StreamCloseTimeout"},
		{yamux.Config{Underlying: u, MaxStreamWindowSize: 1024}, "MaxStreamWindowSize"},
		{yamux.Config{Underlying: u, AcceptBacklog: -1}, "AcceptBacklog"},
	} {
		err := tc.cfg.Validate()
		if !errors.Is(err, yamux.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%+v: Validate() = %v, want ErrInvalidConfig naming %s", tc.cfg, err, tc.field)
			continue
		}
		// An invalid config fails at New, with the same error, and never
		// makes a Transport whose Listen and Dial would fail later.
		if tr, err := yamux.New(tc.cfg); tr != nil || !errors.Is(err, yamux.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%+v: New = %v, %v; want nil and ErrInvalidConfig naming %s", tc.cfg, tr, err, tc.field)
		}
	}
	tr := newYamux(t, yamux.DefaultConfig(u))
	if tr.Name() != "yamux" || tr.DefaultAddr() != u.DefaultAddr() || !transport.IsMultiProcess(tr) {
		t.Errorf("over tcp: Name %q, DefaultAddr %q, MultiProcess %v", tr.Name(), tr.DefaultAddr(), transport.IsMultiProcess(tr))
	}
	overMem := newYamux(t, yamux.DefaultConfig(mustUnderlying(t, "mem")))
	if transport.IsMultiProcess(overMem) {
		t.Error("yamux over mem claims to be multi-process")
	}
}

// Streams are full net.Conns over any underlying transport (the kit runs
// nettest too; this is the smallest pipe, for -run filters).
func TestStreamNettest(t *testing.T) {
	tr := newYamux(t, yamux.DefaultConfig(mustUnderlying(t, "mem")))
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		addr := fmt.Sprintf("nettest-%d", memAddrs.Add(1))
		l, err := tr.Listen(context.Background(), addr)
		if err != nil {
			return nil, nil, nil, err
		}
		c1, err = tr.Dial(context.Background(), addr)
		if err != nil {
			l.Close()
			return nil, nil, nil, err
		}
		c2, err = l.Accept()
		if err != nil {
			c1.Close()
			l.Close()
			return nil, nil, nil, err
		}
		return c1, c2, func() { c1.Close(); c2.Close(); l.Close() }, nil
	})
}

func Example() {
	tr, err := yamux.New(yamux.DefaultConfig(tcp.New(tcp.DefaultConfig())))
	if err != nil {
		panic(err)
	}
	ctx := context.Background()

	l, err := tr.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	go func() {
		for {
			s, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer s.Close()
				io.Copy(s, s) // echo
			}()
		}
	}()

	// Two Dials: two streams on one TCP connection.
	a, err := tr.Dial(ctx, l.Addr().String())
	if err != nil {
		panic(err)
	}
	defer a.Close()
	b, err := tr.Dial(ctx, l.Addr().String())
	if err != nil {
		panic(err)
	}
	defer b.Close()
	fmt.Println("same underlying conn:", a.LocalAddr().String() == b.LocalAddr().String())

	for _, c := range []net.Conn{a, b} {
		c.Write([]byte("ping"))
		buf := make([]byte, 4)
		io.ReadFull(c, buf)
		fmt.Println(string(bytes.ToUpper(buf)))
	}
	// Output:
	// same underlying conn: true
	// PING
	// PING
}
