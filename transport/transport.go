// Package transport defines how clusterclient moves bytes between the
// processes of one host, and nothing else.
//
// A Transport is a driver: it knows how to listen on and dial an address of
// its medium (a TCP port, a unix socket path, a UDP port for KCP, ...). It
// knows nothing of packets, leaders or channels, and it never retries: policy
// (timeouts, re-election, backoff) belongs to the election and cluster
// packages.
//
// The one property election relies on is that Listen is EXCLUSIVE: while one
// listener holds an address, every other Listen on it, from this process or
// any other, fails with an error that matches ErrAddrInUse.
//
// Optional capabilities (peer credentials, half-close, ...) are small
// interfaces a transport or its conns may implement; callers probe them with
// a type assertion, as io.WriterTo is probed.
//
// # What a transport must do
//
// Every point below is checked by the transport kit (package
// transport/transporttest) and the conformance suite (package
// conformance), which runs the kit:
//
//   - Listen is exclusive, across processes for a MultiProcess transport;
//     a held address fails with ErrAddrInUse wrapping the OS error, also
//     when the holder is a plain socket that speaks no protocol.
//   - Dial completes without the accepting side doing any I/O. The cluster
//     layer, and the suite's capability probe, may accept a conn and not
//     read or write it for a while (a leader reads a new conn only when it
//     gets to it); a Dial that waits for the acceptor to read (a TLS server
//     handshake run lazily, on the first Read, as crypto/tls does) waits
//     forever. Run such a handshake on the accepting side yourself, as
//     soon as the conn is accepted, in a goroutine of its own (or before
//     Accept returns it, without blocking other conns).
//   - Dial honours its context's deadline and cancellation in every step,
//     a handshake included: the error then matches ctx.Err(). Nobody
//     listening is ErrNoListener, before the context ends where the medium
//     can tell (a refused connect).
//   - Conns are full net.Conns: they pass
//     golang.org/x/net/nettest.TestConn, deadlines included. A Read or
//     Write that timed out leaves the conn usable: a wrapper whose writes
//     must not be interrupted (crypto/tls) keeps its write deadline
//     outside the socket, with package transport/deadline's Writer.
//   - Closing a listener unblocks Accept (net.ErrClosed or ErrClosed) and
//     keeps the conns it accepted; after Close the address can be listened
//     on again at once.
//
// # Configuration
//
// A transport package has a Config struct whose zero fields mean their
// defaults, and a constructor New(cfg Config). A bad Config fails at New,
// never later: New returns (*Transport, error), the error wraps the package's
// ErrInvalidConfig sentinel and names the field (Config.Validate gives the
// same error without building a Transport), and a Transport that New returns
// never fails a Listen or Dial because of its Config. A transport whose every
// Config is valid has no ErrInvalidConfig and a New that returns no error, and
// says so in its Config's doc. In this module: mem, unix, yamux and kcp
// return an error; tcp (two fields, no invalid values) does not.
//
// # Transports on the host's sockets
//
// ExclusiveAddr, IsAddrInUse, IsRefused and IsPortUnreachable are what a
// transport on the host's sockets needs to know about the OS: how to make
// a bind exclusive (Windows lets another socket take over a bound port
// unless told otherwise), and which errors of package net mean
// ErrAddrInUse and ErrNoListener on Linux, the BSDs, macOS and Windows,
// whose error numbers differ. The tcp, unix and kcp transports use them;
// so can a transport outside this module:
//
//	lc := net.ListenConfig{Control: transport.ExclusiveAddr}
//	l, err := lc.Listen(ctx, "tcp", addr)
//	if err != nil {
//		var kind error
//		if transport.IsAddrInUse(err) {
//			kind = transport.ErrAddrInUse
//		}
//		return nil, &transport.OpError{Op: "listen", Transport: "mine", Addr: addr, Kind: kind, Err: err}
//	}
//
// Package transport/deadline has the deadlines of conns that cannot pass
// them to a socket.
package transport

import (
	"context"
	"errors"
	"net"
	"syscall"
)

// Errors returned (wrapped) by transports. Match them with errors.Is; the
// wrapping error names the transport and address and wraps the OS error.
var (
	// ErrAddrInUse means another listener (in this or another process)
	// holds the address.
	ErrAddrInUse = errors.New("transport: address in use")
	// ErrNoListener means nothing listens on the address (connection
	// refused, socket file missing, no handshake answer).
	ErrNoListener = errors.New("transport: no listener at address")
	// ErrInvalidAddr means the address cannot be used by this transport
	// (malformed, too long, not loopback when loopback is required).
	ErrInvalidAddr = errors.New("transport: invalid address")
	// ErrClosed is returned by operations on a closed listener or transport.
	ErrClosed = errors.New("transport: closed")
)

// Transport is a driver for one medium.
//
// Concurrency: all methods are safe for concurrent use by many goroutines.
//
// Ownership: the caller owns every returned Listener and Conn and must
// Close it. Closing a Listener releases the address (so a later Listen can
// succeed) but does not close conns it already accepted.
type Transport interface {
	// Name is a short lowercase name ("tcp", "unix", "yamux", "kcp", "mem")
	// used in errors and logs.
	Name() string

	// DefaultAddr is the address used when the caller gives none.
	DefaultAddr() string

	// Listen binds addr exclusively. If another listener holds it, the
	// error matches ErrAddrInUse and wraps the OS error. The context bounds
	// only the bind itself, not the listener's lifetime.
	Listen(ctx context.Context, addr string) (net.Listener, error)

	// Dial connects to the listener at addr. It honours the context's
	// deadline and cancellation: if ctx ends first, the error matches
	// ctx.Err() (context.DeadlineExceeded or context.Canceled). If nobody
	// listens, the error matches ErrNoListener. It completes without the
	// accepting side reading or writing the conn (see the package doc).
	Dial(ctx context.Context, addr string) (net.Conn, error)
}

// PeerCredentials is implemented by conns that can report the identity of
// the process at the other end as established by the kernel (SO_PEERCRED on
// unix sockets).
type PeerCredentials interface {
	// PeerCred returns the peer's pid, uid and gid.
	PeerCred() (Cred, error)
}

// Cred is a peer's identity as reported by the kernel.
type Cred struct {
	PID int32
	UID uint32
	GID uint32
}

// HalfCloser is implemented by conns that can close their write side while
// still reading (TCP's CloseWrite).
type HalfCloser interface {
	CloseWrite() error
}

// Socket is implemented by conns that write their bytes unchanged to one
// connected stream socket of the operating system: a wrapper that only
// adds methods to a *net.TCPConn or *net.UnixConn, say. Socket returns
// that socket; a caller may then write to it directly, without blocking
// (the cluster layer does, to skip a hand-over to its writer goroutine).
// A conn that frames, encrypts or otherwise changes its bytes must not
// implement it. *net.TCPConn and *net.UnixConn themselves qualify without
// it.
//
// Why it is part of the driver contract, although only one optimisation
// uses it: a conn's Write blocks until the kernel took every byte, so a
// writer that must never block (a leader answering many followers from one
// goroutine) either hands every frame to a goroutine of its own — on a
// small host that hand-over costs more than the loopback round trip — or
// writes what the socket takes at once with a non-blocking write, which
// needs the socket. A transport that wraps a plain socket without changing
// its bytes can offer that speed by implementing Socket; one that does not
// loses nothing but the speed (its frames go through the writer
// goroutine). It is optional, and the conformance suite does not require
// it.
type Socket interface {
	Socket() syscall.Conn
}

// MultiProcess is implemented by transports whose addresses can be shared
// by several OS processes. The in-memory transport does not implement it.
type MultiProcess interface {
	MultiProcess() bool
}

// ListenerBound is implemented by transports whose accepted conns end
// when their listener closes (KCP: the listener's one UDP socket carries
// every conn). Conns of other transports must outlive their listener, as a
// *net.TCPListener's do (the kit's listener-close-keeps-conns subtest
// checks it). A closing leader frees its address and keeps serving its
// followers' conns while they elect the next leader; on a ListenerBound
// transport it cannot, and keeps the address until it is done.
type ListenerBound interface {
	ConnsEndWithListener() bool
}

// ConnsOutliveListener reports whether conns accepted from t's listeners
// live on after the listener closes (see ListenerBound).
func ConnsOutliveListener(t Transport) bool {
	lb, ok := t.(ListenerBound)
	return !ok || !lb.ConnsEndWithListener()
}

// IsMultiProcess reports whether t can be used across OS processes.
func IsMultiProcess(t Transport) bool {
	mp, ok := t.(MultiProcess)
	return ok && mp.MultiProcess()
}

// OpError describes a failed transport operation. It wraps both a sentinel
// (ErrAddrInUse, ...) and the underlying OS error so errors.Is matches
// either.
type OpError struct {
	Op        string // "listen" or "dial"
	Transport string // Transport.Name()
	Addr      string
	Kind      error // one of the sentinels above, or nil
	Err       error // the underlying error
}

func (e *OpError) Error() string {
	s := e.Transport + " " + e.Op + " " + e.Addr
	if e.Kind != nil {
		s += ": " + e.Kind.Error()
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the sentinel and the underlying error.
func (e *OpError) Unwrap() []error {
	var errs []error
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}
