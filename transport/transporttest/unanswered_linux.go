package transporttest

import (
	"net"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/go-clusterclient/clusterclient/transport"
)

// UnansweredTCPAddr returns a Harness.UnansweredAddr for a transport that
// dials TCP on host ("127.0.0.1" or "::1"): a listening socket with a
// backlog of zero whose one queue slot is taken by a connection nobody
// accepts. Linux then drops further SYNs, so a Dial waits for its context
// (the client keeps retransmitting). It is nil outside Linux, where how a
// full accept queue treats a new SYN varies (some systems reset it).
func UnansweredTCPAddr(host string) func(tb testing.TB, tr transport.Transport) string {
	return func(tb testing.TB, _ transport.Transport) string {
		tb.Helper()
		ip, err := netip.ParseAddr(host)
		if err != nil {
			tb.Fatal(err)
		}
		family, sa := unix.AF_INET6, unix.Sockaddr(&unix.SockaddrInet6{Addr: ip.As16()})
		if ip.Is4() {
			family, sa = unix.AF_INET, &unix.SockaddrInet4{Addr: ip.As4()}
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
		var port int
		switch a := bound.(type) {
		case *unix.SockaddrInet4:
			port = a.Port
		case *unix.SockaddrInet6:
			port = a.Port
		}
		addr := netip.AddrPortFrom(ip, uint16(port)).String()
		filler, err := net.Dial("tcp", addr)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { filler.Close() })
		return addr
	}
}
