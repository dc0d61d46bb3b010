package kcp_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/net/nettest"

	"github.com/go-clusterclient/clusterclient/conformance"
	"github.com/go-clusterclient/clusterclient/internal/leaks"
	"github.com/go-clusterclient/clusterclient/transport"
	"github.com/go-clusterclient/clusterclient/transport/kcp"
	"github.com/go-clusterclient/clusterclient/transport/transporttest"
)

// kcp-go starts process-wide goroutines on first use and never stops them.
var kcpGoroutines = leaks.KCP()

func TestMain(m *testing.M) {
	conformance.Main(func(string) (transport.Transport, error) {
		return kcp.New(kcp.DefaultConfig())
	})
	goleak.VerifyTestMain(m, kcpGoroutines...)
}

// newKCP returns kcp.New(cfg), failing tb if cfg is invalid.
func newKCP(tb testing.TB, cfg kcp.Config) *kcp.Transport {
	tb.Helper()
	tr, err := kcp.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return tr
}

func harness(host string) transporttest.Harness {
	return transporttest.Harness{
		NewTransport: func(tb testing.TB) transport.Transport { return newKCP(tb, kcp.DefaultConfig()) },
		NewAddr:      func(tb testing.TB) string { return transporttest.FreeAddr(tb, "udp", host) },
		// A plain UDP socket holds the port: the bind fails, and a Dial
		// gets no hello-ack.
		HoldAddr: func(tb testing.TB, addr string) bool {
			transporttest.Hold(tb, "udp", addr)
			return false
		},
		UnansweredAddr: func(tb testing.TB, _ transport.Transport) string {
			return transporttest.Hold(tb, "udp", net.JoinHostPort(host, "0"))
		},
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

// pair listens on a free port and returns a dialed and an accepted conn,
// closed at the end of the test.
func pair(t *testing.T, tr *kcp.Transport) (l net.Listener, dialed, accepted net.Conn) {
	t.Helper()
	l, err := tr.Listen(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := l.Accept()
		ch <- result{c, err}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	dialed, err = tr.Dial(ctx, l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dialed.Close() })
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { r.c.Close() })
	return l, dialed, r.c
}

// patient is a config whose heartbeat timeout cannot fire during a test,
// so any failure seen comes from a FIN, a RESET or the kernel.
func patient() kcp.Config {
	return kcp.Config{PingInterval: 10 * time.Second, DeadPeerTimeout: time.Minute}
}

func TestAddressRules(t *testing.T) {
	transporttest.CheckIPAddrRules(t, newKCP(t, kcp.DefaultConfig()), newKCP(t, kcp.Config{AllowNonLoopback: true}))
}

func TestDefaults(t *testing.T) {
	tr := newKCP(t, kcp.Config{})
	if got := tr.DefaultAddr(); got != "127.0.0.1:7777" {
		t.Errorf("DefaultAddr = %q", got)
	}
	if tr.Name() != "kcp" || !transport.IsMultiProcess(tr) {
		t.Errorf("Name = %q, MultiProcess = %v", tr.Name(), transport.IsMultiProcess(tr))
	}
	if err := kcp.DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig().Validate() = %v", err)
	}
	if err := (kcp.Config{}).Validate(); err != nil {
		t.Errorf("Config{}.Validate() = %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg   kcp.Config
		field string
	}{
		{kcp.Config{PingInterval: -time.Second}, "PingInterval"},
		{kcp.Config{PingInterval: 2 * time.Second, DeadPeerTimeout: 3 * time.Second}, "DeadPeerTimeout"},
		{kcp.Config{HandshakeTimeout: -1}, "HandshakeTimeout"},
		{kcp.Config{Linger: -1}, "Linger"},
		{kcp.Config{Window: -1}, "Window"},
		{kcp.Config{Window: kcp.MaxWindow + 1}, "Window"},
		{kcp.Config{MTU: kcp.MinMTU - 1}, "MTU"},
		{kcp.Config{MTU: kcp.MaxMTU + 1}, "MTU"},
		{kcp.Config{AcceptBacklog: -1}, "AcceptBacklog"},
	} {
		err := tc.cfg.Validate()
		if !errors.Is(err, kcp.ErrInvalidConfig) || !bytes.Contains([]byte(err.Error()), []byte(tc.field)) {
			t.Errorf("%+v: Validate() = %v, want ErrInvalidConfig naming %s", tc.cfg, err, tc.field)
			continue
		}
		// An invalid config fails at New, with the same error, and never
		// makes a Transport whose Listen and Dial would fail later.
		if tr, err := kcp.New(tc.cfg); tr != nil || !errors.Is(err, kcp.ErrInvalidConfig) || !bytes.Contains([]byte(err.Error()), []byte(tc.field)) {
			t.Errorf("%+v: New = %v, %v; want nil and ErrInvalidConfig naming %s", tc.cfg, tr, err, tc.field)
		}
	}
}

// A second bind of the port fails with EADDRINUSE: from this package and
// from any UDP socket, in both directions.
func TestExclusiveBind(t *testing.T) {
	tr := newKCP(t, kcp.DefaultConfig())
	l, err := tr.Listen(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.Addr().String()
	if pc, err := net.ListenPacket("udp", addr); err == nil {
		pc.Close()
		t.Fatalf("a plain UDP bind of %s succeeded while a kcp listener holds it", addr)
	}
	_, err = tr.Listen(t.Context(), addr)
	var op *transport.OpError
	if !errors.Is(err, transport.ErrAddrInUse) || !errors.As(err, &op) || op.Err == nil || op.Transport != "kcp" {
		t.Fatalf("second Listen(%s): %v, want a kcp OpError matching ErrAddrInUse and wrapping the OS error", addr, err)
	}
}

// Nothing bound: the ICMP port unreachable of the hello fails Dial with
// ErrNoListener, long before the handshake timeout.
func TestDialNobodyRefused(t *testing.T) {
	tr := newKCP(t, kcp.Config{HandshakeTimeout: time.Minute})
	addr := transporttest.FreeAddr(t, "udp", "127.0.0.1")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err := tr.Dial(ctx, addr)
	if !errors.Is(err, transport.ErrNoListener) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial(%s) with nothing bound: %v, want ErrNoListener before the deadline", addr, err)
	}
	t.Logf("Dial to nothing: %v", err)
}

// Something bound that never answers: Dial fails with ErrNoListener when
// HandshakeTimeout ends, without a context deadline.
func TestDialUnansweredTimesOut(t *testing.T) {
	tr := newKCP(t, kcp.Config{HandshakeTimeout: 300 * time.Millisecond})
	addr := transporttest.Hold(t, "udp", "127.0.0.1:0")
	start := time.Now()
	_, err := tr.Dial(context.Background(), addr)
	if !errors.Is(err, transport.ErrNoListener) || !bytes.Contains([]byte(err.Error()), []byte("no hello-ack")) {
		t.Fatalf("Dial(%s) to a silent socket: %v, want ErrNoListener saying no hello-ack came", addr, err)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("Dial gave up after %v, before HandshakeTimeout", took)
	}
}

// Close sends a FIN: the peer reads everything written before it, then
// io.EOF, without waiting for a heartbeat timeout; its writes then fail
// with ErrPeerClosed.
func TestCloseDeliversDataThenEOF(t *testing.T) {
	tr := newKCP(t, patient())
	_, c, s := pair(t, tr)
	want := make([]byte, 512<<10)
	for i := range want {
		want[i] = byte(i * 7)
	}
	if _, err := c.Write(want); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	s.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(s)
	if err != nil {
		t.Fatalf("ReadAll after the peer's Close: %v (got %d of %d bytes)", err, len(got), len(want))
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, want %d (equal prefix: %v)", len(got), len(want), bytes.HasPrefix(want, got))
	}
	if n, err := s.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("Read after EOF = %d, %v; want 0, io.EOF", n, err)
	}
	if _, err := s.Write([]byte("x")); !errors.Is(err, kcp.ErrPeerClosed) {
		t.Errorf("Write after the peer closed: %v, want ErrPeerClosed", err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after Close: %v, want net.ErrClosed", err)
	}
	if err := c.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v, want net.ErrClosed", err)
	}
}

// The FIN counts only bytes written after the handshake: a short last
// Write still arrives before io.EOF, in both directions.
func TestEOFAfterShortLastWrite(t *testing.T) {
	tr := newKCP(t, patient())
	for i := range 10 {
		_, c, s := pair(t, tr)
		from, to := c, s
		if i%2 == 1 {
			from, to = s, c
		}
		bulk := bytes.Repeat([]byte{'b'}, 64<<10)
		go func() {
			from.Write(bulk)
			from.Write([]byte("tail"))
			from.Close()
		}()
		to.SetReadDeadline(time.Now().Add(20 * time.Second))
		got, err := io.ReadAll(to)
		if err != nil || len(got) != len(bulk)+4 || !bytes.HasSuffix(got, []byte("tail")) {
			t.Fatalf("round %d: read %d bytes ending %q, %v; want %d bytes ending \"tail\"", i, len(got), got[max(len(got)-4, 0):], err, len(bulk)+4)
		}
	}
}

// Closing the listener releases the port and tells every peer at once.
func TestListenerCloseResetsPeers(t *testing.T) {
	tr := newKCP(t, patient())
	l, c, s := pair(t, tr)
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, kcp.ErrPeerReset) {
		t.Errorf("dialer's Read after the listener closed: %v, want ErrPeerReset", err)
	}
	if _, err := s.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("accepted conn's Write after its listener closed: %v, want net.ErrClosed", err)
	}
	l2, err := tr.Listen(t.Context(), addr)
	if err != nil {
		t.Fatalf("Listen(%s) after Close: %v", addr, err)
	}
	l2.Close()
}

// A packet of a conversation the listener never admitted (a stale session
// of a previous leader, a probe, a hello-less first segment) creates no
// session, and its sender gets a RESET.
func TestStalePacketsCreateNoSession(t *testing.T) {
	tr := newKCP(t, kcp.DefaultConfig())
	l, err := tr.Listen(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	raw, err := net.DialUDP("udp", nil, l.Addr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	segment := func(conv uint32, cmd byte, sn uint32, data []byte) []byte {
		b := binary.LittleEndian.AppendUint32(nil, conv)
		b = append(b, cmd, 0)
		b = binary.LittleEndian.AppendUint16(b, 128)
		b = binary.LittleEndian.AppendUint32(b, 0)  // ts
		b = binary.LittleEndian.AppendUint32(b, sn) // sn
		b = binary.LittleEndian.AppendUint32(b, 0)  // una
		b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
		return append(b, data...)
	}
	hello := append([]byte("CCKH\x01\x00\x00\x00"), make([]byte, 8)...)
	stale := map[uint32][]byte{
		0x1001: segment(0x1001, 81, 7, []byte("data of an old session")),
		0x1002: segment(0x1002, 82, 3, nil), // an ack
		0x1003: segment(0x1003, 81, 0, []byte("first segment, but no hello")),
		0x1004: segment(0x1004, 81, 1, hello), // a hello, but not at sn 0
	}
	for _, p := range stale {
		if _, err := raw.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	reset := map[uint32]bool{}
	raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 2048)
	for len(reset) < len(stale) {
		n, err := raw.Read(buf)
		if err != nil {
			t.Fatalf("waiting for RESETs (got %v): %v", reset, err)
		}
		// conv(4) marker 0xCC, kind 4 = RESET
		if n == 16 && buf[4] == 0xCC && buf[5] == 4 {
			reset[binary.LittleEndian.Uint32(buf)] = true
		}
	}
	// The first conn Accept returns is a real one dialed after the
	// stale packets arrived.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := tr.Dial(ctx, l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.RemoteAddr().String() != c.LocalAddr().String() {
		t.Fatalf("Accept returned a conn from %v, not the dialer %v", s.RemoteAddr(), c.LocalAddr())
	}
}

// startLeader runs a listener in a child process (the kit's contender,
// which echoes) and returns it with a conn dialed to it through tr.
func startLeader(t *testing.T, tr *kcp.Transport, addr string) (*transporttest.Contender, net.Conn) {
	t.Helper()
	leader := transporttest.StartContender(t, harness("127.0.0.1"))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if res, err := leader.Listen(ctx, addr); err != nil || !res.OK {
		t.Fatalf("leader Listen(%s): %v %s", addr, err, res.Err)
	}
	c, err := tr.Dial(ctx, addr)
	if err != nil {
		t.Fatalf("Dial(%s) to pid %d: %v", addr, leader.Pid(), err)
	}
	t.Cleanup(func() { c.Close() })
	echo(t, c, "before the failover")
	return leader, c
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

// newLeaderAccepts takes over addr after the old leader died and checks
// that the first conn it accepts is a fresh Dial, carrying only its own
// bytes: no session of the old leader's followers is accepted, and no
// stale data arrives.
func newLeaderAccepts(t *testing.T, tr *kcp.Transport, addr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	l, _, err := transporttest.ListenWhenFree(ctx, tr, addr)
	if err != nil {
		t.Fatalf("Listen(%s) after the leader died: %v", addr, err)
	}
	defer l.Close()
	fresh, err := tr.Dial(ctx, addr)
	if err != nil {
		t.Fatalf("fresh Dial(%s): %v", addr, err)
	}
	defer fresh.Close()
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.RemoteAddr().String() != fresh.LocalAddr().String() {
		t.Fatalf("the new leader accepted %v, not the fresh dialer %v", s.RemoteAddr(), fresh.LocalAddr())
	}
	if _, err := fresh.Write([]byte("fresh")); err != nil {
		t.Fatal(err)
	}
	s.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, 5)
	if _, err := io.ReadFull(s, got); err != nil || string(got) != "fresh" {
		t.Fatalf("new leader read %q, %v; want only the fresh dialer's bytes", got, err)
	}
	s.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := s.Read(make([]byte, 64)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("after the fresh bytes: Read = %d, %v; want nothing more", n, err)
	}
}

// The leader is SIGKILLed while a follower keeps writing and reading: the
// follower's Read and Write fail within DeadPeerTimeout (the kernel's port
// unreachable, a RESET from the new leader, or the heartbeat, whichever
// comes first), and a new leader on the same port accepts a fresh Dial and
// nothing stale.
func TestLeaderSIGKILLWhileFollowerSends(t *testing.T) {
	cfg := kcp.Config{PingInterval: 200 * time.Millisecond, DeadPeerTimeout: time.Second}
	tr := newKCP(t, cfg)
	addr := transporttest.FreeAddr(t, "udp", "127.0.0.1")
	leader, c := startLeader(t, tr, addr)

	type result struct {
		op  string
		err error
		at  time.Time
	}
	results := make(chan result, 2)
	go func() {
		msg := bytes.Repeat([]byte("x"), 1000)
		for {
			if _, err := c.Write(msg); err != nil {
				results <- result{"write", err, time.Now()}
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, err := c.Read(buf); err != nil {
				results <- result{"read", err, time.Now()}
				return
			}
		}
	}()
	time.Sleep(100 * time.Millisecond) // traffic flows both ways
	killed := time.Now()
	if err := leader.Kill(); err != nil {
		t.Fatal(err)
	}
	// Generous slack over the bound: the machine is shared and slow.
	bound := cfg.DeadPeerTimeout + cfg.PingInterval/4 + 2*time.Second
	for range 2 {
		select {
		case r := <-results:
			if !errors.Is(r.err, kcp.ErrPeerReset) && !errors.Is(r.err, kcp.ErrPeerTimeout) {
				t.Errorf("follower %s after the leader's SIGKILL: %v, want ErrPeerReset or ErrPeerTimeout", r.op, r.err)
			}
			t.Logf("follower %s failed %v after SIGKILL: %v", r.op, r.at.Sub(killed).Round(time.Millisecond), r.err)
		case <-time.After(bound + 10*time.Second):
			t.Fatalf("the follower's Read or Write still had no error %v after the leader's SIGKILL", time.Since(killed))
		}
		if took := time.Since(killed); took > bound {
			t.Errorf("the follower noticed after %v, beyond DeadPeerTimeout %v (plus slack)", took, cfg.DeadPeerTimeout)
		}
	}
	newLeaderAccepts(t, tr, addr)
}

// A follower that stays quiet while its leader dies and a new leader binds
// the port has its next packets answered with a RESET: its session is
// never taken for a new one, and it fails without waiting for the
// heartbeat timeout.
func TestFollowerQuietDuringFailover(t *testing.T) {
	tr := newKCP(t, patient()) // no heartbeat while the port changes hands
	addr := transporttest.FreeAddr(t, "udp", "127.0.0.1")
	leader, c := startLeader(t, tr, addr)
	if err := leader.Kill(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	l, _, err := transporttest.ListenWhenFree(ctx, tr, addr)
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		if s, err := l.Accept(); err == nil {
			accepted <- s
		}
	}()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	for err == nil {
		if _, err = c.Write([]byte("to the old leader")); err == nil {
			_, err = c.Read(make([]byte, 64))
		}
	}
	if !errors.Is(err, kcp.ErrPeerReset) {
		t.Errorf("stale follower: %v, want ErrPeerReset", err)
	}
	l.Close() // ends the Accept above
	select {
	case s := <-accepted:
		s.Close()
		t.Fatalf("the new leader accepted the stale follower's session from %v", s.RemoteAddr())
	default:
	}
	newLeaderAccepts(t, tr, addr)
}

// Deadline errors are net.Errors with Timeout() and match
// os.ErrDeadlineExceeded; other errors are *net.OpError naming "kcp".
func TestErrorShapes(t *testing.T) {
	tr := newKCP(t, kcp.DefaultConfig())
	_, c, _ := pair(t, tr)
	c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Read past its deadline: %v, want a timeout matching os.ErrDeadlineExceeded", err)
	}
	var op *net.OpError
	if !errors.As(err, &op) || op.Net != "kcp" || op.Op != "read" {
		t.Errorf("Read error %#v is not a kcp read *net.OpError", err)
	}
}

func Example() {
	tr, err := kcp.New(kcp.DefaultConfig())
	if err != nil {
		panic(err)
	}
	ctx := context.Background()

	l, err := tr.Listen(ctx, "127.0.0.1:0") // a free UDP port
	if err != nil {
		panic(err)
	}
	defer l.Close()

	// Exclusive: a second listener on the port is refused.
	_, err = tr.Listen(ctx, l.Addr().String())
	fmt.Println("second listen in use:", errors.Is(err, transport.ErrAddrInUse))

	go func() {
		s, err := l.Accept() // returns once the hello exchange is done
		if err != nil {
			return
		}
		defer s.Close()
		io.Copy(s, s) // echo until the dialer closes
	}()

	c, err := tr.Dial(ctx, l.Addr().String())
	if err != nil {
		panic(err)
	}
	defer c.Close()
	c.Write([]byte("hello over kcp"))
	buf := make([]byte, 14)
	io.ReadFull(c, buf)
	fmt.Println(string(buf))
	// Output:
	// second listen in use: true
	// hello over kcp
}
