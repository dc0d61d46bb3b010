package election

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"time"

	"github.com/go-clusterclient/clusterclient/transport"
)

// Outcome is the result of a successful election.
type Outcome struct {
	Role Role
	// Lease is this channel's hold on the listener (Leader only). The
	// caller must Release it.
	Lease *Lease
	// Conn is a dialed connection to the listener (Follower only), not yet
	// handshaken: it may reach a stranger that holds the address, which
	// only the cluster layer's hello can tell. The caller must Close it.
	Conn net.Conn
	// Attempts counts the binds and dials tried, for diagnostics.
	Attempts int
}

// Elect runs one election for cfg.Channel on cfg.Addr.
//
// Auto loops until it has a role or ctx ends: bind the address, or join
// this process's listener on it, and lead; if the address is held, dial it
// and follow with the connection; if that dial finds nobody (the holder
// just died, or is not accepting yet), back off with jitter and compete
// again. A bind refused for another reason (permission, ...) while nobody
// answers a dial fails at once with ErrCannotElect and the real OS error,
// as does an invalid address.
//
// ForceLeader binds once, or joins this process's listener for a new
// channel, and otherwise fails at once with ErrLeaderBind wrapping the
// transport's error (which names the address and wraps the OS error), or
// with ErrChannelLeading.
//
// ForceFollower dials with backoff until a dial succeeds or MaxWait passes,
// then fails with ErrNoLeader naming the address and the time waited.
//
// Election cannot tell a leader from a stranger that accepts connections
// on the address: both yield a Follower outcome (Node cannot
// tell them apart either). The
// cluster layer's handshake detects the stranger and may elect again.
//
// An invalid cfg fails with an error matching ErrInvalidConfig; every
// other error is an *Error. If ctx ends first, the error wraps ctx.Err().
func (r *Registry) Elect(ctx context.Context, cfg Config) (Outcome, error) {
	if err := cfg.Validate(); err != nil {
		return Outcome{}, err
	}
	cfg.fill()
	now := time.Now()
	e := &election{reg: r, cfg: cfg, start: now, fastUntil: now.Add(fastProbes), backoff: cfg.MinBackoff}
	e.log = cfg.Logger.With(
		slog.String("channel", cfg.Channel),
		// One key for the address, as package cluster writes it.
		slog.String("addr", cfg.Transport.Name()+" "+cfg.Addr),
		slog.String("mode", cfg.Mode.String()),
	)
	var out Outcome
	var err error
	switch cfg.Mode {
	case ForceLeader:
		out, err = e.forceLeader(ctx)
	case ForceFollower:
		out, err = e.forceFollower(ctx)
	default:
		out, err = e.auto(ctx)
	}
	out.Attempts = e.attempts
	if err != nil {
		level := slog.LevelWarn
		if ctx.Err() != nil {
			level = slog.LevelDebug // the caller gave up: not news
		}
		e.log.Log(ctx, level, "election failed", slog.Int("attempts", e.attempts), slog.Any("error", err))
		return out, err
	}
	e.log.Debug("elected", slog.String("role", out.Role.String()),
		slog.Int("attempts", e.attempts), slog.Duration("elapsed", time.Since(e.start)))
	return out, nil
}

// Reelect is Elect after a lost leader: it first waits a random delay in
// [0, cfg.Jitter) so that survivors which saw the same EOF at the same
// moment do not all compete at once.
func (r *Registry) Reelect(ctx context.Context, cfg Config) (Outcome, error) {
	if err := cfg.Validate(); err != nil {
		return Outcome{}, err
	}
	jitter := cmp.Or(cfg.Jitter, DefaultJitter)
	if err := sleep(ctx, rand.N(jitter)); err != nil {
		c := cfg
		c.fill()
		return Outcome{}, &Error{Channel: c.Channel, Transport: c.Transport.Name(),
			Addr: c.Addr, Mode: c.Mode, Err: err}
	}
	return r.Elect(ctx, cfg)
}

// election is the state of one Elect call.
type election struct {
	reg      *Registry
	cfg      Config
	log      *slog.Logger
	start    time.Time
	attempts int
	backoff  time.Duration // next pause before jitter

	fastUntil time.Time // until then pauses stay short (fastProbes)
}

// For fastProbes after an election starts, probes are at most
// fastProbeMax apart (or MinBackoff, if larger); then the pause doubles
// up to MaxBackoff. A leader that comes a few milliseconds after the
// loss (a supervisor's new forced leader process, a winner binding) is
// then found within 2 ms, not at the next doubled step: doubling from
// 1 ms probes at about 1, 2, 5, 11, 23 and 47 ms, so a leader ready at
// 12 ms was found at 23 and one ready at 24 at 47, which is why the
// forced-role failover moved between 12 and 34 ms from one run to the
// next (issue 19). A refused loopback dial costs microseconds.
const (
	fastProbes   = 50 * time.Millisecond
	fastProbeMax = 2 * time.Millisecond
)

func (e *election) fail(kind, cause error) *Error {
	err := &Error{
		Channel:   e.cfg.Channel,
		Transport: e.cfg.Transport.Name(),
		Addr:      e.cfg.Addr,
		Mode:      e.cfg.Mode,
		Kind:      kind,
		Waited:    time.Since(e.start),
		Attempts:  e.attempts,
		Err:       cause,
	}
	if kind == ErrNoLeader {
		err.MaxWait = e.cfg.MaxWait
	}
	return err
}

func (e *election) claim(ctx context.Context) (*Lease, bool, error) {
	e.attempts++
	return e.reg.claim(ctx, e.cfg.Transport, e.cfg.Addr, e.cfg.Channel)
}

// dial makes one dial attempt bounded by DialTimeout.
func (e *election) dial(ctx context.Context) (net.Conn, error) {
	e.attempts++
	dctx, cancel := context.WithTimeout(ctx, e.cfg.DialTimeout)
	defer cancel()
	return e.cfg.Transport.Dial(dctx, e.cfg.Addr)
}

// pause sleeps for nextPause(limit).
func (e *election) pause(ctx context.Context, limit time.Duration) error {
	return sleep(ctx, e.nextPause(limit))
}

// nextPause returns the current backoff with jitter in its upper half,
// [b/2, b], but at most limit (when non-zero), and doubles the backoff up
// to MaxBackoff (up to fastProbeMax during fastProbes).
func (e *election) nextPause(limit time.Duration) time.Duration {
	d := e.backoff/2 + rand.N(e.backoff-e.backoff/2+1)
	if limit > 0 && d > limit {
		d = limit
	}
	ceiling := e.cfg.MaxBackoff
	if time.Now().Before(e.fastUntil) {
		ceiling = min(ceiling, max(fastProbeMax, e.cfg.MinBackoff))
	}
	e.backoff = min(2*e.backoff, ceiling)
	return d
}

func (e *election) leader(l *Lease, how string) Outcome {
	e.log.Debug("leading", slog.String("how", how), slog.Int("channels", len(l.Channels())))
	return Outcome{Role: Leader, Lease: l}
}

func (e *election) auto(ctx context.Context) (Outcome, error) {
	for {
		lease, taken, lerr := e.claim(ctx)
		if lease != nil {
			return e.leader(lease, "bound or joined"), nil
		}
		if ctx.Err() != nil {
			return Outcome{}, e.fail(nil, ctx.Err())
		}
		if lerr != nil && permanent(lerr) {
			return Outcome{}, e.fail(ErrCannotElect, lerr)
		}
		conn, derr := e.dial(ctx)
		if derr == nil {
			return Outcome{Role: Follower, Conn: conn}, nil
		}
		if ctx.Err() != nil {
			return Outcome{}, e.fail(nil, ctx.Err())
		}
		if permanent(derr) {
			return Outcome{}, e.fail(ErrCannotElect, derr)
		}
		// Lost the bind for a reason other than "in use" and nobody
		// answers: retrying cannot help (EACCES on a privileged port,
		// EADDRNOTAVAIL, ...). Report the real bind error.
		if lerr != nil && !errors.Is(lerr, transport.ErrAddrInUse) && errors.Is(derr, transport.ErrNoListener) {
			return Outcome{}, e.fail(ErrCannotElect, errors.Join(lerr, derr))
		}
		e.log.Debug("no leader answered; competing again",
			slog.Bool("channel_taken_here", taken), slog.Any("listen_error", lerr), slog.Any("dial_error", derr))
		if err := e.pause(ctx, 0); err != nil {
			return Outcome{}, e.fail(nil, err)
		}
	}
}

func (e *election) forceLeader(ctx context.Context) (Outcome, error) {
	lease, taken, err := e.claim(ctx)
	switch {
	case lease != nil:
		return e.leader(lease, "bound or joined"), nil
	case ctx.Err() != nil:
		return Outcome{}, e.fail(nil, ctx.Err())
	case taken:
		return Outcome{}, e.fail(ErrChannelLeading, nil)
	}
	return Outcome{}, e.fail(ErrLeaderBind, err)
}

func (e *election) forceFollower(ctx context.Context) (Outcome, error) {
	deadline := e.start.Add(e.cfg.MaxWait)
	for {
		conn, err := e.dial(ctx)
		if err == nil {
			return Outcome{Role: Follower, Conn: conn}, nil
		}
		if ctx.Err() != nil {
			return Outcome{}, e.fail(nil, ctx.Err())
		}
		if permanent(err) {
			return Outcome{}, e.fail(ErrCannotElect, err)
		}
		left := time.Until(deadline)
		if left <= 0 {
			return Outcome{}, e.fail(ErrNoLeader, err)
		}
		e.log.Debug("waiting for a leader", slog.Any("dial_error", err), slog.Duration("left", left))
		if err := e.pause(ctx, left); err != nil {
			return Outcome{}, e.fail(nil, err)
		}
	}
}

// permanent reports whether a transport error cannot be cured by waiting.
func permanent(err error) bool {
	return errors.Is(err, transport.ErrInvalidAddr) || errors.Is(err, transport.ErrClosed)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
