package tcp_test

import (
	"context"
	"net"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/go-clusterclient/clusterclient/transport"
	"github.com/go-clusterclient/clusterclient/transport/tcp"
)

// unansweredAddr returns a Harness.UnansweredAddr: a listening socket with
// a backlog of zero whose one queue slot is taken by a connection nobody
// accepts. Linux then drops further SYNs, so a Dial waits for its context
// (the client keeps retransmitting).
func unansweredAddr(host string) func(testing.TB, transport.Transport) string {
	return func(tb testing.TB, _ transport.Transport) string {
		tb.Helper()
		family, sa := unix.AF_INET, unix.Sockaddr(&unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}})
		if host == "::1" {
			family, sa = unix.AF_INET6, &unix.SockaddrInet6{Addr: [16]byte{15: 1}}
		}
		fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { unix.Close(fd) })
		if err := unix.Bind(fd, sa); err != nil {
			tb.Fatal(err)
		}
		if err := unix.Listen(fd, 0); err != nil {
			tb.Fatal(err)
		}
		bound, err := unix.Getsockname(fd)
		if err != nil {
			tb.Fatal(err)
		}
		var addr string
		switch a := bound.(type) {
		case *unix.SockaddrInet4:
			addr = (&net.TCPAddr{IP: a.Addr[:], Port: a.Port}).String()
		case *unix.SockaddrInet6:
			addr = (&net.TCPAddr{IP: a.Addr[:], Port: a.Port}).String()
		}
		filler, err := net.Dial("tcp", addr)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { filler.Close() })
		return addr
	}
}

func sockopt(t *testing.T, c syscall.Conn, level, opt int) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), level, opt) }); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}

// The socket options the package doc promises, read back from the kernel.
func TestSocketOptions(t *testing.T) {
	tr := tcp.New(tcp.DefaultConfig())
	l, err := tr.Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rawL, ok := l.(interface {
		SyscallConn() (syscall.RawConn, error)
	})
	if !ok {
		t.Fatalf("listener %T has no SyscallConn", l)
	}
	if v := sockopt(t, rawL, unix.SOL_SOCKET, unix.SO_REUSEPORT); v != 0 {
		t.Errorf("listener SO_REUSEPORT = %d, want 0", v)
	}
	c, err := tr.Dial(context.Background(), l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for name, conn := range map[string]net.Conn{"dialed": c, "accepted": s} {
		if v := sockopt(t, conn.(syscall.Conn), unix.IPPROTO_TCP, unix.TCP_NODELAY); v != 1 {
			t.Errorf("%s conn TCP_NODELAY = %d, want 1", name, v)
		}
		if v := sockopt(t, conn.(syscall.Conn), unix.SOL_SOCKET, unix.SO_REUSEPORT); v != 0 {
			t.Errorf("%s conn SO_REUSEPORT = %d, want 0", name, v)
		}
	}
}
