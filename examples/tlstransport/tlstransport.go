// Package tlstransport is a clusterclient transport written as a transport
// author outside the library would write it, with only its exported API:
// TLS 1.3 over TCP on the loopback interface. The README's "Writing a
// transport" section quotes its conformance test, which CI runs (cd
// examples && go test ./...).
//
// Every process of a cluster derives the same identity from a shared
// 32-byte secret (New): an Ed25519 certificate that listeners present and
// dialers require, so only holders of the secret can lead.
//
// What the conformance suite asks of a transport with a handshake, and
// how this one answers:
//
//   - Dial completes without the accepting side doing any I/O. crypto/tls
//     runs a server's handshake lazily, on the first Read or Write, and a
//     leader may not read a new conn at once, so the listener runs each
//     server handshake in a goroutine of its own as soon as the TCP conn is
//     accepted, and Accept returns conns whose handshake is done.
//   - Dial honours its context during the handshake too
//     (tls.Conn.HandshakeContext), and a context error matches ctx.Err().
//   - Listen is exclusive on every OS (transport.ExclusiveAddr), and OS
//     errors map to transport.ErrAddrInUse and transport.ErrNoListener
//     (transport.IsAddrInUse, transport.IsRefused) on every OS.
//   - A *tls.Conn whose socket write timed out is corrupt for good, while a
//     net.Conn must survive a write deadline: the write deadline is kept
//     outside the socket (deadline.Writer).
package tlstransport

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/go-clusterclient/clusterclient/transport"
	"github.com/go-clusterclient/clusterclient/transport/deadline"
)

// serverName is the name in the certificate, checked by dialers.
const serverName = "clusterclient.invalid"

// handshakeTimeout bounds a server handshake: a peer that connects and
// says nothing is dropped after it.
const handshakeTimeout = 10 * time.Second

// maxHandshakes bounds the accepted conns whose handshake runs or waits for
// Accept; beyond it the listener stops taking conns from the kernel.
const maxHandshakes = 256

// Transport is TLS 1.3 over TCP on loopback. Addresses are a literal
// loopback IP and a port ("127.0.0.1:7777").
//
// Concurrency: all methods are safe for concurrent use, and so are the
// listeners and conns it returns.
type Transport struct {
	server, client *tls.Config
}

var (
	_ transport.Transport    = (*Transport)(nil)
	_ transport.MultiProcess = (*Transport)(nil)
	_ transport.HalfCloser   = (*conn)(nil)
)

// New returns a Transport whose identity derives from secret: every
// process that passes the same secret presents and accepts the same
// certificate.
func New(secret [32]byte) (*Transport, error) {
	key := ed25519.NewKeyFromSeed(secret[:])
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: serverName},
		DNSNames:              []string{serverName},
		NotBefore:             time.Unix(0, 0),
		NotAfter:              time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("tlstransport: certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("tlstransport: certificate: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	return &Transport{
		// No session tickets: a TLS 1.3 server writes them after its
		// handshake, and nothing here resumes sessions.
		server: &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}, SessionTicketsDisabled: true},
		client: &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: roots, ServerName: serverName},
	}, nil
}

// Name returns "tls".
func (*Transport) Name() string { return "tls" }

// DefaultAddr returns "127.0.0.1:7777".
func (*Transport) DefaultAddr() string { return "127.0.0.1:7777" }

// MultiProcess returns true: the address space is the host's.
func (*Transport) MultiProcess() bool { return true }

func (tr *Transport) opError(op, addr string, kind, err error) error {
	return &transport.OpError{Op: op, Transport: tr.Name(), Addr: addr, Kind: kind, Err: err}
}

// parseAddr accepts a literal loopback IP and a port (0 only to listen).
func parseAddr(addr string, portZeroOK bool) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(addr)
	switch {
	case err != nil:
		return ap, err
	case !ap.Addr().IsLoopback() || ap.Addr().Is4In6():
		return ap, fmt.Errorf("%s is not a loopback IP", ap.Addr())
	case ap.Port() == 0 && !portZeroOK:
		return ap, errors.New("port 0 cannot be dialed")
	}
	return ap, nil
}

// Listen binds addr exclusively; a held address matches
// transport.ErrAddrInUse.
func (tr *Transport) Listen(ctx context.Context, addr string) (net.Listener, error) {
	ap, err := parseAddr(addr, true)
	if err != nil {
		return nil, tr.opError("listen", addr, transport.ErrInvalidAddr, err)
	}
	lc := net.ListenConfig{Control: transport.ExclusiveAddr}
	l, err := lc.Listen(ctx, "tcp", ap.String())
	if err != nil {
		var kind error
		if transport.IsAddrInUse(err) {
			kind = transport.ErrAddrInUse
		}
		return nil, tr.opError("listen", addr, kind, err)
	}
	return newListener(l, tr.server), nil
}

// Dial connects to addr and runs the client handshake, both within ctx.
// A refused connection matches transport.ErrNoListener.
func (tr *Transport) Dial(ctx context.Context, addr string) (net.Conn, error) {
	ap, err := parseAddr(addr, false)
	if err != nil {
		return nil, tr.opError("dial", addr, transport.ErrInvalidAddr, err)
	}
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", ap.String())
	if err != nil {
		var kind error
		if transport.IsRefused(err) {
			kind = transport.ErrNoListener
		}
		return nil, tr.opError("dial", addr, kind, transport.ContextError(ctx, err))
	}
	tc := tls.Client(raw, tr.client)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, tr.opError("dial", addr, nil, transport.ContextError(ctx, err))
	}
	return newConn(tc, raw), nil
}

// listener accepts TCP conns in a goroutine of its own and runs each
// server handshake in another, so a Dial completes whether or not anybody
// calls Accept; Accept returns conns whose handshake is done.
type listener struct {
	tcp   net.Listener
	cfg   *tls.Config
	ready chan net.Conn
	ctx   context.Context // ends with Close
	stop  context.CancelFunc
	slots chan struct{} // one per handshake running or waiting for Accept
	wg    sync.WaitGroup
	once  sync.Once
}

func newListener(l net.Listener, cfg *tls.Config) *listener {
	ctx, stop := context.WithCancel(context.Background())
	ln := &listener{tcp: l, cfg: cfg, ready: make(chan net.Conn), ctx: ctx, stop: stop, slots: make(chan struct{}, maxHandshakes)}
	ln.wg.Add(1)
	go ln.acceptLoop()
	return ln
}

func (l *listener) acceptLoop() {
	defer l.wg.Done()
	for {
		select {
		case l.slots <- struct{}{}:
		case <-l.ctx.Done():
			return
		}
		raw, err := l.tcp.Accept()
		if err != nil {
			<-l.slots
			if l.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(5 * time.Millisecond) // out of descriptors, say
			continue
		}
		l.wg.Add(1)
		go l.handshake(raw)
	}
}

func (l *listener) handshake(raw net.Conn) {
	defer l.wg.Done()
	defer func() { <-l.slots }()
	ctx, cancel := context.WithTimeout(l.ctx, handshakeTimeout)
	defer cancel()
	tc := tls.Server(raw, l.cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close() // a stranger, or the listener closed
		return
	}
	select {
	case l.ready <- newConn(tc, raw):
	case <-l.ctx.Done():
		raw.Close()
	}
}

// Accept returns the next conn whose handshake is done. After Close the
// error matches net.ErrClosed.
func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.ctx.Done():
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.tcp.Addr(), Err: net.ErrClosed}
	}
}

// Close releases the address, drops the conns not yet accepted and waits
// for the listener's goroutines. Accepted conns live on.
func (l *listener) Close() error {
	var err error
	l.once.Do(func() {
		l.stop()
		err = l.tcp.Close()
		l.wg.Wait()
	})
	return err
}

func (l *listener) Addr() net.Addr { return l.tcp.Addr() }

// conn is a TLS conn whose write deadline is kept outside the socket.
type conn struct {
	tls *tls.Conn
	raw net.Conn
	w   *deadline.Writer
}

func newConn(tc *tls.Conn, raw net.Conn) *conn {
	return &conn{tls: tc, raw: raw, w: deadline.NewWriter(tc)}
}

func (c *conn) Read(p []byte) (int, error)  { return c.tls.Read(p) }
func (c *conn) Write(p []byte) (int, error) { return c.w.Write(p) }

// CloseWrite sends TLS's close_notify once the Writes before it are out
// (a Write of nothing waits for them): the peer reads io.EOF and can still
// answer. No Write may follow.
func (c *conn) CloseWrite() error {
	if _, err := c.w.Write(nil); err != nil {
		return err
	}
	return c.tls.CloseWrite()
}

// Close closes the socket without a close_notify alert (which could block
// on a peer that does not read); the peer reads io.EOF all the same.
func (c *conn) Close() error { return c.raw.Close() }

func (c *conn) LocalAddr() net.Addr  { return c.raw.LocalAddr() }
func (c *conn) RemoteAddr() net.Addr { return c.raw.RemoteAddr() }

func (c *conn) SetDeadline(t time.Time) error {
	c.w.SetDeadline(t)
	return c.raw.SetReadDeadline(t)
}

// SetReadDeadline sets the socket's: a *tls.Conn survives a read timeout.
func (c *conn) SetReadDeadline(t time.Time) error { return c.raw.SetReadDeadline(t) }

// SetWriteDeadline never reaches the socket (see deadline.Writer).
func (c *conn) SetWriteDeadline(t time.Time) error {
	c.w.SetDeadline(t)
	return nil
}
