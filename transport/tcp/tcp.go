// Package tcp is the reference transport: TCP on the loopback interface.
//
// An address is a literal IP and a port, "127.0.0.1:7777" by default.
// Hostnames, "localhost" included, are refused (transport.ErrInvalidAddr):
// a name can resolve to several addresses, and the address is part of a
// cluster's identity ("[::1]:7777" and "127.0.0.2:7777" bind while
// "127.0.0.1:7777" is held). Addresses that are not loopback are refused
// too, unless Config.AllowNonLoopback says otherwise.
//
// Exclusivity comes from the kernel: while a socket listens on an address,
// binding it again fails with EADDRINUSE, reported as
// transport.ErrAddrInUse. The transport never sets SO_REUSEPORT, which
// would let several processes listen at once. On Linux and the BSDs Go
// sets SO_REUSEADDR on listeners; that only allows rebinding over
// TIME_WAIT leftovers and never while another socket listens. On Windows,
// where SO_REUSEADDR would allow stealing a bound port, listeners set
// SO_EXCLUSIVEADDRUSE instead.
//
// Dialed and accepted conns are *net.TCPConn with TCP_NODELAY set (Go's
// default, made explicit: the protocol writes small frames and waits for
// answers), so they implement transport.HalfCloser. A refused connection is
// reported as transport.ErrNoListener. Conns pass
// golang.org/x/net/nettest.TestConn in full.
package tcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/go-clusterclient/clusterclient/transport"
)

// DefaultAddr is the address used when the caller gives none (Node's
// cluster-client default port, on IPv4 loopback).
const DefaultAddr = "127.0.0.1:7777"

// Config tunes a TCP Transport. The zero value is the default. Every Config
// is valid, so New returns no error and the package has no ErrInvalidConfig
// (see "Configuration" in package transport).
type Config struct {
	// AllowNonLoopback lets Listen and Dial use addresses that are not
	// loopback (including the unspecified 0.0.0.0 and ::). Default false:
	// such addresses fail with transport.ErrInvalidAddr, so a leader is
	// never reachable from another host by accident.
	AllowNonLoopback bool

	// KeepAlive is the TCP keep-alive idle period of dialed and accepted
	// conns, as in net.Dialer: zero means Go's default (15 s), negative
	// disables keep-alive. On loopback the kernel reports a dead peer by
	// itself; keep-alive matters for non-loopback use.
	KeepAlive time.Duration
}

// DefaultConfig returns the zero Config: loopback only, Go's default
// keep-alive.
func DefaultConfig() Config { return Config{} }

// Transport is the TCP transport.
//
// Concurrency: all methods are safe for concurrent use, and so are the
// listeners and conns it returns.
type Transport struct {
	cfg Config
}

var (
	_ transport.Transport    = (*Transport)(nil)
	_ transport.MultiProcess = (*Transport)(nil)
	_ transport.HalfCloser   = (*net.TCPConn)(nil)
)

// New returns a Transport using cfg. It cannot fail: every Config is valid.
func New(cfg Config) *Transport { return &Transport{cfg: cfg} }

// Name returns "tcp".
func (*Transport) Name() string { return "tcp" }

// DefaultAddr returns DefaultAddr.
func (*Transport) DefaultAddr() string { return DefaultAddr }

// MultiProcess returns true: the address space is the host's.
func (*Transport) MultiProcess() bool { return true }

func (tr *Transport) opError(op, addr string, kind, err error) error {
	return &transport.OpError{Op: op, Transport: tr.Name(), Addr: addr, Kind: kind, Err: err}
}

// parseAddr checks addr against the rules in the package doc and returns
// the network ("tcp4" or "tcp6") and the address to use.
func (tr *Transport) parseAddr(addr string, portZeroOK bool) (string, netip.AddrPort, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", netip.AddrPort{}, err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return "", netip.AddrPort{}, fmt.Errorf("host %q is not a literal IP address (hostnames, localhost included, are refused)", host)
	}
	if ip.Is4In6() {
		return "", netip.AddrPort{}, fmt.Errorf("%s is an IPv4-mapped IPv6 address; use %s", ip, ip.Unmap())
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return "", netip.AddrPort{}, fmt.Errorf("port %q is not a number from 0 to 65535", portStr)
	}
	if port == 0 && !portZeroOK {
		return "", netip.AddrPort{}, errors.New("port 0 cannot be dialed")
	}
	if !ip.IsLoopback() && !tr.cfg.AllowNonLoopback {
		return "", netip.AddrPort{}, fmt.Errorf("%s is not a loopback address (Config.AllowNonLoopback is false)", ip)
	}
	network := "tcp6"
	if ip.Is4() {
		network = "tcp4"
	}
	return network, netip.AddrPortFrom(ip, uint16(port)), nil
}

// Listen binds addr exclusively (port 0 picks a free port; see the
// listener's Addr). If another socket listens on it, the error matches
// transport.ErrAddrInUse and wraps the OS error. An address the rules in
// the package doc refuse matches transport.ErrInvalidAddr.
func (tr *Transport) Listen(ctx context.Context, addr string) (net.Listener, error) {
	network, ap, err := tr.parseAddr(addr, true)
	if err != nil {
		return nil, tr.opError("listen", addr, transport.ErrInvalidAddr, err)
	}
	lc := net.ListenConfig{KeepAlive: tr.cfg.KeepAlive, Control: transport.ExclusiveAddr}
	l, err := lc.Listen(ctx, network, ap.String())
	if err != nil {
		var kind error
		if transport.IsAddrInUse(err) {
			kind = transport.ErrAddrInUse
		}
		return nil, tr.opError("listen", addr, kind, err)
	}
	return &listener{TCPListener: l.(*net.TCPListener)}, nil
}

// Dial connects to addr, honouring ctx's deadline and cancellation (the
// error then matches ctx.Err()). A refused connection matches
// transport.ErrNoListener.
func (tr *Transport) Dial(ctx context.Context, addr string) (net.Conn, error) {
	network, ap, err := tr.parseAddr(addr, false)
	if err != nil {
		return nil, tr.opError("dial", addr, transport.ErrInvalidAddr, err)
	}
	d := net.Dialer{KeepAlive: tr.cfg.KeepAlive}
	c, err := d.DialContext(ctx, network, ap.String())
	if err != nil {
		var kind error
		if transport.IsRefused(err) {
			kind = transport.ErrNoListener
		}
		return nil, tr.opError("dial", addr, kind, transport.ContextError(ctx, err))
	}
	tc := c.(*net.TCPConn)
	if err := tc.SetNoDelay(true); err != nil {
		tc.Close()
		return nil, tr.opError("dial", addr, nil, err)
	}
	return tc, nil
}

// listener sets TCP_NODELAY on accepted conns.
type listener struct {
	*net.TCPListener
}

// Accept returns the next conn as a *net.TCPConn with TCP_NODELAY set. A
// conn whose option cannot be set (it was reset while queued) is closed
// and skipped. After Close, the error matches net.ErrClosed.
func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.AcceptTCP()
		if err != nil {
			return nil, err
		}
		if err := c.SetNoDelay(true); err != nil {
			c.Close()
			continue
		}
		return c, nil
	}
}
