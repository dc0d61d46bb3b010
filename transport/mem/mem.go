// Package mem is an in-memory, process-local transport: the reference
// transport for fast tests of the layers above.
//
// # Model
//
// All mem Transports of a process share one address space, as the sockets of
// one host share the loopback interface: an address is any non-empty string,
// and while one listener holds it, every other Listen on it, through any mem
// Transport of the process, fails with an error matching
// transport.ErrAddrInUse. Closing the listener frees the address at once.
// Nothing crosses a process boundary, so a mem Transport does not implement
// transport.MultiProcess.
//
// A listener has a backlog like a kernel accept queue: Dial succeeds as soon
// as the new conn is queued, before Accept takes it. When the queue is full,
// Dial waits for room and honours its context, so a listener that never
// accepts is an address where Dial times out, as with a TCP listener whose
// accept queue overflows. Closing a listener closes the conns still queued
// (their dialers read io.EOF), but not the conns already accepted.
//
// # Why a buffered pipe
//
// net.Pipe is synchronous: a Write returns only when the peer has read every
// byte. That passes nettest.TestConn, but it is not how a socket behaves, and
// code tested against it can hide or invent deadlocks: two peers that each
// write a request before reading deadlock on net.Pipe and work on TCP. A mem
// conn buffers up to Config.BufferSize bytes per direction, like a socket's
// send and receive buffers: a Write returns once its bytes are buffered and
// blocks (honouring the write deadline) only while the buffer is full. Close
// is graceful: the peer reads what was buffered, then io.EOF; the peer's
// later Writes fail with io.ErrClosedPipe, as a socket's fail with EPIPE.
// Conns implement transport.HalfCloser.
//
// Conns pass golang.org/x/net/nettest.TestConn in full.
package mem

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"github.com/go-clusterclient/clusterclient/transport"
)

// Defaults used by DefaultConfig and for zero Config fields.
const (
	// DefaultBufferSize is the number of bytes each direction of a conn
	// buffers before Write blocks (about a loopback socket's buffers).
	DefaultBufferSize = 256 << 10
	// DefaultBacklog is the number of dialed conns a listener queues
	// before Accept takes them (the kernel's default somaxconn).
	DefaultBacklog = 4096
	// DefaultAddr is the address used when the caller gives none.
	DefaultAddr = "clusterclient"
)

// ErrInvalidConfig is returned (wrapped) by New when a Config field is out
// of range.
var ErrInvalidConfig = errors.New("mem: invalid config")

// Config tunes a mem Transport. The zero value of a field means its default.
type Config struct {
	// BufferSize is the number of bytes each direction of a conn dialed or
	// accepted by this transport buffers before Write blocks.
	// Default DefaultBufferSize; must not be negative.
	BufferSize int
	// Backlog is the number of dialed conns a listener of this transport
	// queues before Accept; Dial waits while the queue is full.
	// Default DefaultBacklog; must not be negative.
	Backlog int
}

// DefaultConfig returns the configuration New uses for zero fields.
func DefaultConfig() Config {
	return Config{BufferSize: DefaultBufferSize, Backlog: DefaultBacklog}
}

// Validate reports whether c can be used, naming the first bad field.
func (c Config) Validate() error {
	if c.BufferSize < 0 {
		return fmt.Errorf("%w: BufferSize %d is negative", ErrInvalidConfig, c.BufferSize)
	}
	if c.Backlog < 0 {
		return fmt.Errorf("%w: Backlog %d is negative", ErrInvalidConfig, c.Backlog)
	}
	return nil
}

// Transport is the in-memory transport.
//
// Concurrency: all methods are safe for concurrent use, and so are the
// listeners and conns it returns (as net.Listener and net.Conn require).
type Transport struct {
	cfg Config
}

var _ transport.Transport = (*Transport)(nil)

// New returns a Transport using cfg, with zero fields set to their
// defaults. It fails only if cfg.Validate does.
func New(cfg Config) (*Transport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	def := DefaultConfig()
	cfg.BufferSize = cmp.Or(cfg.BufferSize, def.BufferSize)
	cfg.Backlog = cmp.Or(cfg.Backlog, def.Backlog)
	return &Transport{cfg: cfg}, nil
}

// Name returns "mem".
func (*Transport) Name() string { return "mem" }

// DefaultAddr returns DefaultAddr.
func (*Transport) DefaultAddr() string { return DefaultAddr }

// Addr is a mem address. Its Network is "mem".
type Addr string

// Network returns "mem".
func (Addr) Network() string { return "mem" }

func (a Addr) String() string { return string(a) }

// registry is the process-wide address space.
var registry = struct {
	mu        sync.Mutex
	listeners map[string]*listener
}{listeners: make(map[string]*listener)}

// dialSeq numbers dialers so each conn has a distinct local address.
var dialSeq atomic.Uint64

func (tr *Transport) opError(op, addr string, kind, err error) error {
	return &transport.OpError{Op: op, Transport: tr.Name(), Addr: addr, Kind: kind, Err: err}
}

// Listen claims addr in the process-wide address space. If a listener
// already holds it, the error matches transport.ErrAddrInUse. An empty
// address matches transport.ErrInvalidAddr.
func (tr *Transport) Listen(ctx context.Context, addr string) (net.Listener, error) {
	if addr == "" {
		return nil, tr.opError("listen", addr, transport.ErrInvalidAddr, errors.New("empty address"))
	}
	if err := ctx.Err(); err != nil {
		return nil, tr.opError("listen", addr, nil, err)
	}
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if _, held := registry.listeners[addr]; held {
		return nil, tr.opError("listen", addr, transport.ErrAddrInUse, nil)
	}
	l := &listener{
		tr:      tr,
		addr:    Addr(addr),
		backlog: make(chan *conn, tr.cfg.Backlog),
		done:    make(chan struct{}),
	}
	registry.listeners[addr] = l
	return l, nil
}

// Dial connects to the listener holding addr. The conn is queued on the
// listener's backlog; if the backlog is full, Dial waits until Accept makes
// room, the listener closes (transport.ErrNoListener) or ctx is done (the
// error matches ctx.Err()). If nobody listens, the error matches
// transport.ErrNoListener.
func (tr *Transport) Dial(ctx context.Context, addr string) (net.Conn, error) {
	if addr == "" {
		return nil, tr.opError("dial", addr, transport.ErrInvalidAddr, errors.New("empty address"))
	}
	if err := ctx.Err(); err != nil {
		return nil, tr.opError("dial", addr, nil, err)
	}
	registry.mu.Lock()
	l := registry.listeners[addr]
	registry.mu.Unlock()
	if l == nil {
		return nil, tr.opError("dial", addr, transport.ErrNoListener, nil)
	}
	local := Addr(fmt.Sprintf("mem-dialer-%d", dialSeq.Add(1)))
	client, server := newConnPair(local, l.addr, tr.cfg.BufferSize)
	switch err := l.enqueue(ctx, server); {
	case err == nil:
		return client, nil
	case errors.Is(err, errListenerClosed):
		return nil, tr.opError("dial", addr, transport.ErrNoListener, err)
	default:
		return nil, tr.opError("dial", addr, nil, fmt.Errorf("backlog full: %w", err))
	}
}

// listener is a mem net.Listener.
type listener struct {
	tr      *Transport
	addr    Addr
	backlog chan *conn
	done    chan struct{} // closed by Close

	// enqueueMu is held for reading by Dials that may still queue a conn
	// and for writing by Close before it drains the queue, so no conn is
	// queued after the drain.
	enqueueMu sync.RWMutex
	closeOnce sync.Once
}

// errListenerClosed is what enqueue reports when the listener closes.
var errListenerClosed = errors.New("listener closed")

// enqueue queues c on the backlog. It returns nil, errListenerClosed or
// ctx.Err().
func (l *listener) enqueue(ctx context.Context, c *conn) error {
	l.enqueueMu.RLock()
	defer l.enqueueMu.RUnlock()
	select {
	case <-l.done:
		return errListenerClosed
	default:
	}
	select {
	case l.backlog <- c:
		return nil
	case <-l.done:
		return errListenerClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Accept waits for the next dialed conn. After Close it returns an error
// matching both transport.ErrClosed and net.ErrClosed.
func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.backlog:
		select {
		case <-l.done: // Close won the race: it drains what Accept did not take.
			c.Close()
		default:
			return c, nil
		}
	case <-l.done:
	}
	return nil, l.tr.opError("accept", string(l.addr), transport.ErrClosed, net.ErrClosed)
}

// Close frees the address and closes the conns still queued. A second Close
// returns an error matching transport.ErrClosed and net.ErrClosed.
func (l *listener) Close() error {
	first := false
	l.closeOnce.Do(func() {
		first = true
		close(l.done)
	})
	if !first {
		return l.tr.opError("close", string(l.addr), transport.ErrClosed, net.ErrClosed)
	}
	registry.mu.Lock()
	if registry.listeners[string(l.addr)] == l {
		delete(registry.listeners, string(l.addr))
	}
	registry.mu.Unlock()

	l.enqueueMu.Lock() // waits for Dials in enqueue; they see done
	defer l.enqueueMu.Unlock()
	for {
		select {
		case c := <-l.backlog:
			c.Close()
		default:
			return nil
		}
	}
}

// Addr returns the address the listener holds.
func (l *listener) Addr() net.Addr { return l.addr }
