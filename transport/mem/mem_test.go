package mem_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/go-clusterclient/clusterclient/conformance"
	"github.com/go-clusterclient/clusterclient/transport"
	"github.com/go-clusterclient/clusterclient/transport/mem"
	"github.com/go-clusterclient/clusterclient/transport/transporttest"
)

func TestMain(m *testing.M) {
	conformance.Main(func(string) (transport.Transport, error) { return mem.New(mem.Config{}) })
	goleak.VerifyTestMain(m)
}

var addrSeq atomic.Uint64

func newAddr(testing.TB) string { return fmt.Sprintf("mem-test-%d", addrSeq.Add(1)) }

func newTransport(tb testing.TB, cfg mem.Config) *mem.Transport {
	tb.Helper()
	tr, err := mem.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return tr
}

var harness = transporttest.Harness{
	NewTransport: func(tb testing.TB) transport.Transport { return newTransport(tb, mem.Config{}) },
	NewAddr:      newAddr,
	// A listener with a backlog of one that never accepts, its backlog
	// filled by one Dial: the next Dial waits.
	UnansweredAddr: func(tb testing.TB, _ transport.Transport) string {
		tr := newTransport(tb, mem.Config{Backlog: 1})
		addr := newAddr(tb)
		l, err := tr.Listen(context.Background(), addr)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { l.Close() })
		c, err := tr.Dial(context.Background(), addr)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { c.Close() })
		return addr
	},
}

func TestTransport(t *testing.T) { transporttest.Run(t, harness) }

func BenchmarkPingPong(b *testing.B) {
	for _, size := range []int{64, 4096} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) { transporttest.BenchmarkPingPong(b, harness, size) })
	}
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg   mem.Config
		field string
	}{{mem.Config{BufferSize: -1}, "BufferSize"}, {mem.Config{Backlog: -1}, "Backlog"}} {
		if tr, err := mem.New(tc.cfg); tr != nil || !errors.Is(err, mem.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("New(%+v) = %v, %v; want nil and ErrInvalidConfig naming %s", tc.cfg, tr, err, tc.field)
		}
	}
	if err := mem.DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig: %v", err)
	}
}

func TestInvalidAddr(t *testing.T) {
	tr := newTransport(t, mem.Config{})
	if _, err := tr.Listen(t.Context(), ""); !errors.Is(err, transport.ErrInvalidAddr) {
		t.Errorf("Listen(\"\"): %v, want ErrInvalidAddr", err)
	}
	if _, err := tr.Dial(t.Context(), ""); !errors.Is(err, transport.ErrInvalidAddr) {
		t.Errorf("Dial(\"\"): %v, want ErrInvalidAddr", err)
	}
}

// pair returns a dialed and an accepted conn of tr.
func pair(t *testing.T, tr *mem.Transport) (net.Conn, net.Conn) {
	t.Helper()
	addr := newAddr(t)
	l, err := tr.Listen(t.Context(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := tr.Dial(t.Context(), addr)
	if err != nil {
		t.Fatal(err)
	}
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		s.Close()
	})
	return c, s
}

// A Write returns once its bytes are buffered, without a reader, and
// blocks only when the buffer is full.
func TestWriteIsBuffered(t *testing.T) {
	const size = 1024
	c, s := pair(t, newTransport(t, mem.Config{BufferSize: size}))
	if n, err := c.Write(make([]byte, size)); n != size || err != nil {
		t.Fatalf("Write of a buffer's worth with nobody reading: %d, %v", n, err)
	}
	c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	n, err := c.Write([]byte{1})
	if !errors.Is(err, os.ErrDeadlineExceeded) || n != 0 {
		t.Fatalf("Write to a full buffer: %d, %v; want 0 and a timeout", n, err)
	}
	// Reading frees room; the blocked writer resumes.
	c.SetWriteDeadline(time.Time{})
	done := make(chan error, 1)
	go func() {
		_, err := c.Write(make([]byte, size))
		done <- err
	}()
	if _, err := io.ReadFull(s, make([]byte, 2*size)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// After Close the peer reads what was buffered, then io.EOF, and its writes
// fail as a socket's do after the peer went away.
func TestCloseIsGraceful(t *testing.T) {
	c, s := pair(t, newTransport(t, mem.Config{}))
	if _, err := c.Write([]byte("last words")); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v, want net.ErrClosed", err)
	}
	got, err := io.ReadAll(s)
	if err != nil || string(got) != "last words" {
		t.Fatalf("peer read %q, %v", got, err)
	}
	if _, err := s.Write([]byte("x")); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("Write to a closed peer: %v, want io.ErrClosedPipe", err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read on a closed conn: %v, want net.ErrClosed", err)
	}
}

// Dial waits while the backlog is full and goes through once Accept makes
// room; closing the listener closes what is still queued.
func TestBacklog(t *testing.T) {
	tr := newTransport(t, mem.Config{Backlog: 1})
	addr := newAddr(t)
	l, err := tr.Listen(t.Context(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	first, err := tr.Dial(t.Context(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	dialed := make(chan net.Conn, 1)
	go func() {
		c, err := tr.Dial(t.Context(), addr)
		if err != nil {
			t.Error(err)
		}
		dialed <- c
	}()
	select {
	case <-dialed:
		t.Fatal("Dial did not wait for room in a full backlog")
	case <-time.After(50 * time.Millisecond):
	}
	a, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	second := <-dialed
	if second == nil {
		t.FailNow()
	}
	defer second.Close()
	// second is queued, not accepted: closing the listener closes it.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	second.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := second.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("read on a conn the listener never accepted: %v, want io.EOF", err)
	}
	// first was accepted (as a): it still works.
	if _, err := first.Write([]byte("ok")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(a, make([]byte, 2)); err != nil {
		t.Fatal(err)
	}
}

// The address space is process-wide: two transports meet there.
func TestSharedAddressSpace(t *testing.T) {
	a, b := newTransport(t, mem.Config{}), newTransport(t, mem.Config{})
	addr := newAddr(t)
	l, err := a.Listen(t.Context(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := b.Dial(t.Context(), addr)
	if err != nil {
		t.Fatalf("Dial through another transport: %v", err)
	}
	c.Close()
}

func Example() {
	tr, err := mem.New(mem.DefaultConfig())
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	l, err := tr.Listen(ctx, "example")
	if err != nil {
		panic(err)
	}
	defer l.Close()

	// The address is exclusive while l holds it.
	_, err = tr.Listen(ctx, "example")
	fmt.Println(errors.Is(err, transport.ErrAddrInUse))

	c, err := tr.Dial(ctx, "example")
	if err != nil {
		panic(err)
	}
	c.Write([]byte("hello")) // buffered: returns before anyone reads
	c.Close()

	s, err := l.Accept()
	if err != nil {
		panic(err)
	}
	msg, _ := io.ReadAll(s)
	s.Close()
	fmt.Println(string(msg))
	// Output:
	// true
	// hello
}
