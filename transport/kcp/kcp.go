package kcp

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"time"

	kcpgo "github.com/xtaci/kcp-go/v5"

	"github.com/go-clusterclient/clusterclient/transport"
)

// Errors of this package, returned wrapped; match them with errors.Is.
var (
	// ErrHandshake means the peer answered, but not with a valid hello
	// (or hello-ack) of this package's version, or refused ours.
	ErrHandshake = errors.New("kcp: handshake failed")
	// ErrPeerTimeout means nothing arrived from the peer for
	// Config.DeadPeerTimeout: it died, hangs, or is unreachable.
	ErrPeerTimeout = errors.New("kcp: peer silent")
	// ErrPeerReset means the peer does not know the conversation: it
	// closed its listener, a new listener holds its port, or nothing is
	// bound there any more (then the OS error is wrapped too).
	ErrPeerReset = errors.New("kcp: conversation reset by peer")
	// ErrPeerClosed is returned by Write after the peer closed the conn.
	ErrPeerClosed = errors.New("kcp: peer closed the conn")
)

// Transport is the KCP transport: reliable streams over loopback UDP.
//
// Concurrency: all methods are safe for concurrent use, and so are the
// listeners and conns it returns.
type Transport struct {
	cfg Config
}

var (
	_ transport.Transport    = (*Transport)(nil)
	_ transport.MultiProcess = (*Transport)(nil)
)

// New returns a Transport using cfg, with zero fields set to their
// defaults. It fails only if cfg.Validate does: the error matches
// ErrInvalidConfig and names the field.
func New(cfg Config) (*Transport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Transport{cfg: cfg.withDefaults()}, nil
}

// Name returns "kcp".
func (*Transport) Name() string { return "kcp" }

// DefaultAddr returns DefaultAddr.
func (*Transport) DefaultAddr() string { return DefaultAddr }

// MultiProcess returns true: UDP ports are shared by the processes of a
// host.
func (*Transport) MultiProcess() bool { return true }

// ConnsEndWithListener reports true: the listener's UDP socket carries
// every conn it accepted, so closing it ends them (transport.ListenerBound).
func (*Transport) ConnsEndWithListener() bool { return true }

func (t *Transport) opErr(op, addr string, kind, err error) error {
	return &transport.OpError{Op: op, Transport: t.Name(), Addr: addr, Kind: kind, Err: err}
}

// resolve checks addr ("ip:port") and returns it as a UDP address. Unless
// Config.AllowNonLoopback, the host must be a literal loopback IP.
func (t *Transport) resolve(ctx context.Context, op, addr string) (*net.UDPAddr, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, t.opErr(op, addr, transport.ErrInvalidAddr, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, t.opErr(op, addr, transport.ErrInvalidAddr, fmt.Errorf("port %q is not a number in 0..65535", portStr))
	}
	if port == 0 && op == "dial" {
		return nil, t.opErr(op, addr, transport.ErrInvalidAddr, errors.New("cannot dial port 0"))
	}
	ip, err := netip.ParseAddr(host)
	switch {
	case err == nil && ip.Is4In6():
		return nil, t.opErr(op, addr, transport.ErrInvalidAddr, fmt.Errorf("%s is an IPv4-mapped IPv6 address; use %s", host, ip.Unmap()))
	case err == nil && (ip.IsLoopback() || t.cfg.AllowNonLoopback):
		return net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port))), nil
	case err == nil:
		return nil, t.opErr(op, addr, transport.ErrInvalidAddr, fmt.Errorf("%s is not a loopback address (set Config.AllowNonLoopback to use it)", host))
	case !t.cfg.AllowNonLoopback:
		return nil, t.opErr(op, addr, transport.ErrInvalidAddr, fmt.Errorf("host %q is not a literal loopback IP", host))
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, t.opErr(op, addr, transport.ErrInvalidAddr, err)
	}
	return net.UDPAddrFromAddrPort(netip.AddrPortFrom(ips[0].Unmap(), uint16(port))), nil
}

func udpNetwork(a *net.UDPAddr) string {
	if a.IP.To4() != nil {
		return "udp4"
	}
	return "udp6"
}

// Listen binds the UDP address addr exclusively (no SO_REUSEADDR or
// SO_REUSEPORT; SO_EXCLUSIVEADDRUSE on Windows) and serves KCP on it. If
// the port is held, by this package or by any other UDP socket, the error
// matches transport.ErrAddrInUse and wraps the OS error. Port 0 picks a
// free port; the listener's Addr tells which.
func (t *Transport) Listen(ctx context.Context, addr string) (net.Listener, error) {
	ua, err := t.resolve(ctx, "listen", addr)
	if err != nil {
		return nil, err
	}
	lc := net.ListenConfig{Control: transport.ExclusiveAddr}
	pc, err := lc.ListenPacket(ctx, udpNetwork(ua), ua.String())
	if err != nil {
		var kind error
		if transport.IsAddrInUse(err) {
			kind = transport.ErrAddrInUse
		}
		return nil, t.opErr("listen", addr, kind, err)
	}
	l, err := newListener(t, pc.(*net.UDPConn))
	if err != nil {
		pc.Close()
		return nil, t.opErr("listen", addr, nil, err)
	}
	return l, nil
}

// Dial opens a new KCP conversation with the listener at addr and
// completes the hello exchange. Each Dial uses a new connected UDP socket
// and a new random conversation id and nonce, so nothing of an earlier
// conversation (with an earlier leader) is ever taken for this one.
//
// Dial waits for the listener's answer until the context's deadline or
// Config.HandshakeTimeout, whichever comes first. If nothing is bound to
// the port, or nothing answers in time, the error matches
// transport.ErrNoListener; if something answers wrongly, ErrHandshake; if
// the context ends first, ctx.Err().
func (t *Transport) Dial(ctx context.Context, addr string) (net.Conn, error) {
	ua, err := t.resolve(ctx, "dial", addr)
	if err != nil {
		return nil, err
	}
	wait, ctxBound := t.cfg.HandshakeTimeout, false
	if d, ok := ctx.Deadline(); ok && time.Until(d) < wait {
		wait, ctxBound = time.Until(d), true
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, udpNetwork(ua), ua.String())
	if err != nil {
		return nil, t.opErr("dial", addr, nil, err)
	}
	pc := nc.(*net.UDPConn)

	var rnd [12]byte
	rand.Read(rnd[:])
	conv, nonce := binary.LittleEndian.Uint32(rnd[:4]), binary.LittleEndian.Uint64(rnd[4:])

	ep := newEndpoint(&t.cfg, pc, ua, nil)
	c := newConn(ep, conv, ua)
	ep.add(c)
	sess, err := kcpgo.NewConn3(conv, ua, nil, 0, 0, packetConn{ep})
	if err != nil {
		ep.close()
		return nil, t.opErr("dial", addr, nil, err)
	}
	c.attach(sess)
	ep.start()

	c.rd.Set(time.Now().Add(wait))
	stop := context.AfterFunc(ctx, func() { c.rd.Set(aLongTimeAgo) })
	err = t.handshake(c, nonce)
	stop()
	if err == nil {
		c.rd.Set(time.Time{})
		c.setEstablished()
		return c, nil
	}
	c.reject(err)
	var kind error
	switch {
	case ctx.Err() != nil:
		err = ctx.Err()
	case ctxBound && errors.Is(err, os.ErrDeadlineExceeded):
		err = context.DeadlineExceeded // the context's timer has not run yet
	case transport.IsPortUnreachable(err):
		kind, err = transport.ErrNoListener, fmt.Errorf("nothing is bound there: %w", osError(err))
	case errors.Is(err, os.ErrDeadlineExceeded):
		kind, err = transport.ErrNoListener, fmt.Errorf("no hello-ack within %v (the port may be held by something that is not a kcp listener)", wait.Round(time.Millisecond))
	case errors.Is(err, ErrPeerReset):
		err = fmt.Errorf("%w: the listener refused the hello: %w", ErrHandshake, err)
	}
	return nil, t.opErr("dial", addr, kind, err)
}

// osError returns the OS error inside err, or err.
func osError(err error) error {
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se
	}
	return err
}

// handshake sends the hello and checks the answer.
func (t *Transport) handshake(c *Conn, nonce uint64) error {
	if _, err := c.sess.Write(appendHandshake(make([]byte, 0, helloLen), helloMagic, nonce)); err != nil {
		return err
	}
	var ack [ackLen]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		return err
	}
	echo, err := parseHandshake(ack[:], ackMagic)
	if err != nil {
		return err
	}
	if echo != nonce {
		return fmt.Errorf("%w: hello-ack answers nonce %#x, not ours %#x", ErrHandshake, echo, nonce)
	}
	return nil
}
