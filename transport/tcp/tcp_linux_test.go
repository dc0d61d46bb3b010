package tcp_test

import (
	"context"
	"net"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/go-clusterclient/clusterclient/transport/tcp"
)

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
