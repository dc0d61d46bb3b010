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
	// listens, the error matches ErrNoListener.
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
type Socket interface {
	Socket() syscall.Conn
}

// MultiProcess is implemented by transports whose addresses can be shared
// by several OS processes. The in-memory transport does not implement it.
type MultiProcess interface {
	MultiProcess() bool
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
