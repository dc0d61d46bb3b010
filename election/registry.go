package election

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"sync"

	"github.com/go-clusterclient/clusterclient/transport"
)

// Registry is the per-process table of the addresses this process listens
// on, and of the channels that lead on each (Node's global serverMap and
// typeSet).
//
// The first channel to win an address binds it; every later channel on
// the same address in this process joins that listener and leads too. A
// second claim of a channel that already leads on the address makes the
// newcomer a follower that dials the listener over a real connection
// (as in Node), so heartbeats and timeouts behave as across processes. The
// listener closes when the last channel on it releases its Lease.
//
// Addresses are keyed by Transport.Name() and the address string: all
// transports of one name share one address space in a process (the OS's
// for tcp, unix and kcp; a process-wide table for mem), however many
// Transport values point at it. Give the same address the same spelling
// everywhere ("127.0.0.1:7777", not "127.1:7777").
//
// The zero value is an empty registry ready to use.
//
// Concurrency: a Registry is safe for concurrent use. Elections on
// different addresses run in parallel; on one address, a bind or a close in
// progress makes the others wait for its result instead of racing it.
type Registry struct {
	mu    sync.Mutex
	addrs map[addrKey]*shared // guarded by mu
}

// Default is the process-wide registry. Use it unless a test needs
// isolated registries (two registries in one process behave like two
// processes).
var Default = NewRegistry()

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{addrs: make(map[addrKey]*shared)}
}

type addrKey struct {
	transport string // Transport.Name()
	addr      string
}

func keyOf(t transport.Transport, addr string) addrKey {
	return addrKey{transport: t.Name(), addr: addr}
}

// state of a shared listener.
type state int

const (
	binding state = iota // Listen in progress; wait on shared.settled
	open                 // listening; channels may join
	closing              // Close in progress; wait on shared.settled
	dead                 // closed; no longer in Registry.addrs
)

// shared is one listener and the channels leading on it.
type shared struct {
	reg       *Registry
	key       addrKey
	transport transport.Transport
	addr      string

	// guarded by reg.mu
	state    state
	settled  chan struct{} // closed when binding or closing ends
	ln       *sharedListener
	channels map[string]*Lease

	attachMu   sync.Mutex
	attached   bool      // guarded by attachMu: init has run
	attachment io.Closer // guarded by attachMu
	shutdown   bool      // guarded by attachMu: last lease released
}

// claim makes one attempt to lead channel on key. It returns a lease when
// this process leads the channel (a fresh bind or a join), taken=true when
// the channel already leads on this address in this process, or the
// transport's Listen error.
func (r *Registry) claim(ctx context.Context, t transport.Transport, addr, channel string) (lease *Lease, taken bool, err error) {
	key := keyOf(t, addr)
	for {
		r.mu.Lock()
		if r.addrs == nil {
			r.addrs = make(map[addrKey]*shared)
		}
		sh := r.addrs[key]
		if sh == nil {
			break // r.mu still held: bind below
		}
		switch sh.state {
		case open:
			defer r.mu.Unlock()
			if sh.channels[channel] != nil {
				return nil, true, nil
			}
			return sh.join(channel), false, nil
		default: // binding or closing: wait for the outcome, then look again
			settled := sh.settled
			r.mu.Unlock()
			select {
			case <-settled:
			case <-ctx.Done():
				return nil, false, ctx.Err()
			}
		}
	}

	sh := &shared{
		reg: r, key: key, transport: t, addr: addr,
		state:    binding,
		settled:  make(chan struct{}),
		channels: make(map[string]*Lease),
	}
	r.addrs[key] = sh
	r.mu.Unlock()

	ln, err := t.Listen(ctx, addr)

	r.mu.Lock()
	defer r.mu.Unlock()
	defer close(sh.settled)
	if err != nil {
		delete(r.addrs, key)
		sh.state = dead
		return nil, false, err
	}
	sh.ln = &sharedListener{Listener: ln, sh: sh}
	sh.state = open
	return sh.join(channel), false, nil
}

// join adds a lease for channel. r.mu must be held and sh open.
func (sh *shared) join(channel string) *Lease {
	l := &Lease{sh: sh, channel: channel}
	sh.channels[channel] = l
	return l
}

// beginClose moves an open listener to closing and reports whether the
// caller now owns the close (and must call endClose). r.mu must be held.
func (sh *shared) beginClose() bool {
	if sh.state != open {
		return false
	}
	sh.state = closing
	sh.settled = make(chan struct{})
	return true
}

// endClose removes a closed listener from the registry and wakes waiters.
func (sh *shared) endClose() {
	r := sh.reg
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.addrs[sh.key] == sh {
		delete(r.addrs, sh.key)
	}
	sh.state = dead
	close(sh.settled)
}

// sharedListener is the listener handed to leases. Its Close is idempotent,
// and closing it directly (rather than through Release) takes the address
// out of the registry so that the next election binds afresh.
type sharedListener struct {
	net.Listener
	sh   *shared
	once sync.Once
	err  error
}

// Close closes the listener once; later calls return the first result.
func (s *sharedListener) Close() error {
	sh := s.sh
	sh.reg.mu.Lock()
	owner := sh.beginClose()
	sh.reg.mu.Unlock()
	s.closeOnce()
	if owner {
		sh.endClose()
	}
	return s.err
}

func (s *sharedListener) closeOnce() {
	s.once.Do(func() {
		s.err = s.Listener.Close()
		if errors.Is(s.err, net.ErrClosed) || errors.Is(s.err, transport.ErrClosed) {
			s.err = nil
		}
	})
}

// Lease is one channel's hold on a listener that may be shared with other
// channels of this process. A Leader outcome carries one.
//
// Concurrency: a Lease is safe for concurrent use. Release may race with
// Attach and with other leases' Release; the attachment and the listener
// are closed exactly once, after the last lease on them is released.
type Lease struct {
	sh       *shared
	channel  string
	released bool // guarded by sh.reg.mu
}

// Addr returns the address leased.
func (l *Lease) Addr() string { return l.sh.addr }

// Channel returns the channel this lease leads.
func (l *Lease) Channel() string { return l.channel }

// Listener returns the listener shared by every channel on the address in
// this process. Do not Close it directly: Release does that when the last
// channel goes. (Closing it anyway is safe and idempotent: it frees the
// address at once, the next election in this process binds afresh, and
// the leases still held keep only their bookkeeping.)
func (l *Lease) Listener() net.Listener { return l.sh.ln }

// Attach returns the value attached to l's shared listener, creating it by
// calling init on the first call for that listener (from any lease on it).
// Concurrent callers wait for that one init and all get its value. The
// cluster package attaches its accept loop and channel demultiplexer here.
//
// Attach is a function, not a method of Lease, so that the value comes back
// as the caller's own type T, with no type assertion at the call site. Every
// caller on one listener must attach the same T: ok is false when the
// attachment already there is not a T (in practice, two libraries sharing
// one address of one Registry; the cluster package is the only user in this
// module).
//
// When the last lease on the listener is released, the attachment's Close
// is called first, then the listener is closed. So Close can tell a
// deliberate shutdown from a failure. Close may itself close ln (its Close
// is idempotent), for example to unblock an Accept before waiting for its
// loop to return; it must not wait for a goroutine blocked in Accept
// without doing so.
//
// init must not call Attach, nor Release a lease on this listener. Once the
// last lease is released, Attach returns ok false and does not call init.
// If init returns a nil interface value, Attach returns ok false and init
// is not called again.
func Attach[T io.Closer](l *Lease, init func(ln net.Listener) T) (v T, ok bool) {
	sh := l.sh
	sh.attachMu.Lock()
	defer sh.attachMu.Unlock()
	if sh.shutdown {
		return v, false
	}
	if !sh.attached {
		if a := init(sh.ln); any(a) != nil {
			sh.attachment = a
		}
		sh.attached = true
	}
	v, ok = sh.attachment.(T)
	return v, ok
}

// Release gives up the channel. When the last channel on the address
// releases, the attachment is closed and then the listener, freeing the
// address for the next listener. Release is idempotent: later
// calls return nil. The error is the attachment's or the listener's Close
// error.
func (l *Lease) Release() error {
	sh := l.sh
	r := sh.reg
	r.mu.Lock()
	if l.released {
		r.mu.Unlock()
		return nil
	}
	l.released = true
	if sh.channels[l.channel] == l {
		delete(sh.channels, l.channel)
	}
	if len(sh.channels) > 0 {
		r.mu.Unlock()
		return nil
	}
	owner := sh.beginClose()
	r.mu.Unlock()

	sh.attachMu.Lock()
	sh.shutdown = true
	att := sh.attachment
	sh.attachMu.Unlock()

	var attErr error
	if att != nil {
		attErr = att.Close()
	}
	sh.ln.closeOnce()
	if owner {
		sh.endClose()
	}
	return errors.Join(attErr, sh.ln.err)
}

// Channels lists, sorted, the channels currently leading on this lease's
// address in this process.
func (l *Lease) Channels() []string {
	sh := l.sh
	sh.reg.mu.Lock()
	defer sh.reg.mu.Unlock()
	names := make([]string, 0, len(sh.channels))
	for name := range sh.channels {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}
