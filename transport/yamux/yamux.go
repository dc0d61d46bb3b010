package yamux

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	hyamux "github.com/hashicorp/yamux"

	"github.com/go-clusterclient/clusterclient/transport"
)

// Transport multiplexes streams over sessions of an underlying transport.
//
// Concurrency: all methods are safe for concurrent use, and so are the
// listeners and conns it returns. Dials through one Transport share its
// sessions, so a process should use one Transport per underlying medium.
type Transport struct {
	cfg  Config
	ycfg *hyamux.Config

	mu       sync.Mutex
	sessions map[string]*dialing // by address
}

// dialing is the session of one address: being dialed until done closes,
// then s (or err).
type dialing struct {
	done chan struct{}
	s    *session
	err  error
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
	cfg = cfg.withDefaults()
	return &Transport{cfg: cfg, ycfg: cfg.yamux(), sessions: make(map[string]*dialing)}, nil
}

// Name returns "yamux".
func (*Transport) Name() string { return "yamux" }

// DefaultAddr returns the underlying transport's default address.
func (t *Transport) DefaultAddr() string {
	if t.cfg.Underlying == nil {
		return ""
	}
	return t.cfg.Underlying.DefaultAddr()
}

// MultiProcess reports whether the underlying transport is multi-process.
func (t *Transport) MultiProcess() bool {
	return t.cfg.Underlying != nil && transport.IsMultiProcess(t.cfg.Underlying)
}

func (t *Transport) opErr(op, addr string, kind, err error) error {
	return &transport.OpError{Op: op, Transport: t.Name(), Addr: addr, Kind: kind, Err: err}
}

// Listen listens on addr through the underlying transport (so it is as
// exclusive as that one is: a held address fails with an error matching
// transport.ErrAddrInUse), runs a yamux server session on every conn it
// accepts, and returns a listener whose Accept yields the streams of all
// of them.
func (t *Transport) Listen(ctx context.Context, addr string) (net.Listener, error) {
	inner, err := t.cfg.Underlying.Listen(ctx, addr)
	if err != nil {
		return nil, t.opErr("listen", addr, nil, err)
	}
	return newListener(t, inner), nil
}

// Dial opens a stream to the listener at addr, on the session this
// Transport holds for addr; if it holds none, or only one that is dead,
// retired or does not answer, Dial first dials the underlying transport
// (once) and starts a new session. Dial returns once the peer's session
// has answered a ping sent after the new stream, so it never returns a
// stream on a session whose peer is gone, nor to something that is not a
// yamux listener. Errors of the underlying Dial pass through wrapped, so a
// missing listener matches transport.ErrNoListener. Dial honours ctx
// throughout.
func (t *Transport) Dial(ctx context.Context, addr string) (net.Conn, error) {
	for attempt := 1; ; attempt++ {
		s, fresh, err := t.session(ctx, addr)
		if err != nil {
			return nil, t.opErr("dial", addr, nil, err)
		}
		c, err := t.open(ctx, s)
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, t.opErr("dial", addr, nil, err)
		}
		// The session cannot carry the stream: it died, failed a write,
		// does not answer, or takes no new streams. Streams already on a
		// session that is merely retired, or told to go away, drain.
		t.forget(addr, s, errors.Is(err, errSessionRetired) || errors.Is(err, hyamux.ErrRemoteGoAway))
		if fresh || attempt == maxDialAttempts {
			return nil, t.opErr("dial", addr, nil, err)
		}
		// It was an older session: start a new one.
	}
}

// maxDialAttempts bounds the sessions one Dial tries: the held one, then
// one it starts (another Dial may have started one meanwhile, which it
// tries first).
const maxDialAttempts = 3

// errNoAnswer is returned by Dial when the session's peer does not answer.
var errNoAnswer = errors.New("yamux: the peer's session does not answer")

// session returns the usable session of addr, dialing a new one if there
// is none (fresh is then true). Concurrent callers for one address wait
// for a single dial; if it fails, each dials on its own.
func (t *Transport) session(ctx context.Context, addr string) (s *session, fresh bool, err error) {
	for {
		t.mu.Lock()
		d := t.sessions[addr]
		if d != nil {
			select {
			case <-d.done:
				if d.err == nil && d.s.usable() {
					t.mu.Unlock()
					return d.s, false, nil
				}
			default:
				t.mu.Unlock()
				select {
				case <-d.done:
					continue
				case <-ctx.Done():
					return nil, false, ctx.Err()
				}
			}
		}
		d = &dialing{done: make(chan struct{})}
		t.sessions[addr] = d
		t.mu.Unlock()

		d.s, d.err = t.dialSession(ctx, addr)
		if d.err != nil {
			t.mu.Lock()
			if t.sessions[addr] == d {
				delete(t.sessions, addr)
			}
			t.mu.Unlock()
		}
		close(d.done)
		return d.s, true, d.err
	}
}

func (t *Transport) dialSession(ctx context.Context, addr string) (*session, error) {
	nc, err := t.cfg.Underlying.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	ys, err := hyamux.Client(nc, t.ycfg)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return newSession(ys, nc, true, &t.cfg), nil
}

// forget drops s as addr's session and retires it, or closes it at once
// if its peer is not answering (nothing can be drained then).
func (t *Transport) forget(addr string, s *session, drain bool) {
	t.mu.Lock()
	if d := t.sessions[addr]; d != nil && d.s == s {
		delete(t.sessions, addr)
	}
	t.mu.Unlock()
	s.retire()
	if !drain {
		s.ys.Close()
	}
}

// open opens a stream on s and waits for the peer's session to answer a
// ping sent after it; ctx bounds the wait.
func (t *Transport) open(ctx context.Context, s *session) (net.Conn, error) {
	if err := s.acquire(); err != nil {
		return nil, err
	}
	type opened struct {
		st  *hyamux.Stream
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		st, err := s.ys.OpenStream()
		if err == nil {
			// The answer to a ping sent after the stream's SYN proves the
			// peer's session took the SYN: a session whose peer just died
			// (its EOF not handled yet) or that is no yamux peer at all
			// does not answer.
			if _, err = s.ys.Ping(); err != nil {
				st.Close()
				st = nil
				if errors.Is(err, hyamux.ErrTimeout) {
					err = fmt.Errorf("%w: no answer to a ping within %v", errNoAnswer, t.cfg.ConnectionWriteTimeout)
				}
			}
		}
		ch <- opened{st, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			s.release()
			return nil, r.err
		}
		return s.wrap(r.st), nil
	case <-ctx.Done():
		go func() { // the open ends when a slot frees or the session dies
			if r := <-ch; r.err == nil {
				r.st.Close()
			}
			s.release()
		}()
		return nil, ctx.Err()
	}
}
