package transporttest

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/go-clusterclient/clusterclient/transport"
)

// Helpers for the harnesses of transports built on the host's sockets.

// FreeAddr returns host:port with a port of network ("tcp" or "udp") that
// the kernel just handed out and took back, so nobody holds it. It suits
// Harness.NewAddr: the kernel hands ports out in a cycle, so another
// program is unlikely to take it before the test does.
func FreeAddr(tb testing.TB, network, host string) string {
	tb.Helper()
	addr := net.JoinHostPort(host, "0")
	if network == "udp" {
		pc, err := net.ListenPacket(network, addr)
		if err != nil {
			tb.Fatal(err)
		}
		defer pc.Close()
		return pc.LocalAddr().String()
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Hold makes a plain socket of network ("tcp", "unix" or "udp") that
// speaks no protocol hold addr until the test ends, and returns the
// address it holds (the port the kernel chose, for port 0). A stream
// listener never calls Accept, but the kernel still completes connects to
// it; a UDP socket never answers. It suits Harness.HoldAddr.
func Hold(tb testing.TB, network, addr string) string {
	tb.Helper()
	if network == "udp" {
		pc, err := net.ListenPacket(network, addr)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { pc.Close() })
		return pc.LocalAddr().String()
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close() })
	return l.Addr().String()
}

// CheckIPAddrRules checks the address rules the IP transports (tcp and
// kcp) share: the host is a literal IP (hostnames, localhost included, are
// refused), not an IPv4-mapped IPv6 address; the port is a decimal number,
// and not 0 for Dial; the IP is loopback unless the transport allows other
// hosts. Every refusal must match transport.ErrInvalidAddr.
//
// loopbackOnly has the default rules; anyHost allows other hosts. Every
// Dial here has a cancelled context, so nothing is sent: what passes the
// check fails with the context's error instead. (A transport that resolves
// hostnames when it allows other hosts may fail that lookup for the same
// reason, or find localhost in /etc/hosts and fail its dial: for anyHost a
// hostname counts as refused with either error.)
func CheckIPAddrRules(t *testing.T, loopbackOnly, anyHost transport.Transport) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		addr        string
		anyHostOK   bool // valid for anyHost (never dialed here)
		hostname    bool
		description string
	}{
		{"localhost:7777", false, true, "a hostname, even localhost"},
		{"example.invalid:7777", false, true, "a hostname that does not resolve"},
		{":7777", false, false, "no host"},
		{"127.0.0.1", false, false, "no port"},
		{"127.0.0.1:http", false, false, "a port name"},
		{"127.0.0.1:65536", false, false, "a port out of range"},
		{"127.0.0.1:0", false, false, "port 0 (dial)"},
		{"[::ffff:127.0.0.1]:7777", false, false, "an IPv4-mapped IPv6 address"},
		{"10.1.2.3:7777", true, false, "a private address"},
		{"0.0.0.0:7777", true, false, "the unspecified address"},
		{"[::]:7777", true, false, "the unspecified IPv6 address"},
	} {
		_, err := loopbackOnly.Dial(ctx, tc.addr)
		if !errors.Is(err, transport.ErrInvalidAddr) {
			t.Errorf("Dial(%q) (%s), loopback only: %v, want ErrInvalidAddr", tc.addr, tc.description, err)
		}
		_, err = anyHost.Dial(ctx, tc.addr)
		refused := errors.Is(err, transport.ErrInvalidAddr) || (tc.hostname && errors.Is(err, context.Canceled))
		if got := !refused; got != tc.anyHostOK {
			t.Errorf("Dial(%q) (%s), other hosts allowed: %v; want valid=%v", tc.addr, tc.description, err, tc.anyHostOK)
		}
	}
	for _, addr := range []string{"localhost:0", "0.0.0.0:0", "[::ffff:127.0.0.1]:0"} {
		if l, err := loopbackOnly.Listen(context.Background(), addr); !errors.Is(err, transport.ErrInvalidAddr) {
			if err == nil {
				l.Close()
			}
			t.Errorf("Listen(%q), loopback only: %v, want ErrInvalidAddr", addr, err)
		}
	}
}
