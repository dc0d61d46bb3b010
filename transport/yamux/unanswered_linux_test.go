package yamux_test

import (
	"net"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/go-clusterclient/clusterclient/transport"
)

// unansweredTCPAddr is a Harness.UnansweredAddr: a listening socket with a
// backlog of zero whose one queue slot is taken by a connection nobody
// accepts. Linux then drops further SYNs, so the underlying Dial waits for
// its context.
func unansweredTCPAddr(tb testing.TB, _ transport.Transport) string {
	tb.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		tb.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		tb.Fatal(err)
	}
	bound, err := unix.Getsockname(fd)
	if err != nil {
		tb.Fatal(err)
	}
	sa := bound.(*unix.SockaddrInet4)
	addr := (&net.TCPAddr{IP: sa.Addr[:], Port: sa.Port}).String()
	filler, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { filler.Close() })
	return addr
}
