package election

import (
	"cmp"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-clusterclient/clusterclient/transport"
)

// Mode selects how a process takes part in an election.
type Mode int

const (
	// Auto competes: the first process to bind the address leads, every
	// other one follows. This is Node's default (no isLeader option).
	Auto Mode = iota
	// ForceLeader binds the address once and fails at once if it cannot
	// (Node's isLeader: true, egg's agent).
	ForceLeader
	// ForceFollower never binds: it dials until a leader answers or MaxWait
	// passes (Node's isLeader: false, egg's workers).
	ForceFollower
)

// String returns "auto", "leader" or "follower".
func (m Mode) String() string {
	switch m {
	case Auto:
		return "auto"
	case ForceLeader:
		return "leader"
	case ForceFollower:
		return "follower"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// describe is the mode as written in error messages.
func (m Mode) describe() string {
	switch m {
	case ForceLeader:
		return "forced leader"
	case ForceFollower:
		return "forced follower"
	}
	return m.String()
}

// Role is the result of an election.
type Role int

const (
	// Follower holds a dialed connection to the leader's listener.
	Follower Role = iota + 1
	// Leader holds a Lease on the address's listener.
	Leader
)

// String returns "follower" or "leader".
func (r Role) String() string {
	switch r {
	case Follower:
		return "follower"
	case Leader:
		return "leader"
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// Defaults applied by Elect to zero fields of Config.
const (
	// DefaultDialTimeout bounds one dial attempt. A loopback dial takes
	// microseconds; the margin covers a loaded host and transports that
	// handshake on dial (kcp). A stranger that accepts and never speaks is
	// not caught here: the dial succeeds and the cluster layer's hello
	// times out.
	DefaultDialTimeout = time.Second
	// DefaultMaxWait is how long a forced follower waits for a leader.
	DefaultMaxWait = 30 * time.Second
	// DefaultMinBackoff is the first pause between probes. It doubles on
	// every failed probe up to DefaultMaxBackoff, with jitter (in the
	// first 50 ms of an election only up to 2 ms: a leader that comes
	// moments later is found at once). Node probes
	// every 3 s; a loopback probe costs microseconds, so we probe often.
	DefaultMinBackoff = 1 * time.Millisecond
	// DefaultMaxBackoff caps the pause between probes, so a forced follower
	// finds a leader that starts late within about 100 ms.
	DefaultMaxBackoff = 100 * time.Millisecond
	// DefaultJitter bounds the random delay Reelect waits before its first
	// attempt, so survivors that all see the leader's EOF in the same
	// microsecond do not all bind and dial at once. It is kept small
	// because it adds directly to failover time.
	DefaultJitter = 1 * time.Millisecond
)

// Config describes one election. The zero value of every optional field
// selects its default; Transport and Channel are required.
//
// A Config is a plain value: Elect copies it and never modifies the
// caller's copy.
type Config struct {
	// Transport is the medium competed on. Required.
	Transport transport.Transport
	// Addr is the address competed for. Default: Transport.DefaultAddr().
	Addr string
	// Channel is the name of the client competing (Node's class name or
	// `name` option). Several channels share one address. Required.
	Channel string
	// Mode is Auto (the zero value), ForceLeader or ForceFollower.
	Mode Mode
	// DialTimeout bounds each dial attempt. Default DefaultDialTimeout.
	DialTimeout time.Duration
	// MaxWait is how long a forced follower waits for a leader before
	// failing with ErrNoLeader. A probe is made at the deadline itself, so
	// the wait may exceed MaxWait by one dial (at most DialTimeout).
	// Ignored in the other modes, which wait as long as their context
	// allows. Default DefaultMaxWait.
	MaxWait time.Duration
	// MinBackoff and MaxBackoff bound the pause between failed probes.
	// Defaults DefaultMinBackoff and DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// Jitter bounds the random delay [0, Jitter) that Reelect waits before
	// its first attempt. Default DefaultJitter.
	Jitter time.Duration
	// Logger receives one Info record per outcome (role, channel,
	// address), a Warn record per failure and Debug records per retry.
	// Default: discard.
	Logger *slog.Logger
}

// DefaultConfig returns a Config for channel on t with every default
// filled in.
func DefaultConfig(t transport.Transport, channel string) Config {
	c := Config{Transport: t, Channel: channel}
	c.fill()
	return c
}

// fill replaces zero optional fields with their defaults.
func (c *Config) fill() {
	if c.Addr == "" && c.Transport != nil {
		c.Addr = c.Transport.DefaultAddr()
	}
	c.DialTimeout = cmp.Or(c.DialTimeout, DefaultDialTimeout)
	c.MaxWait = cmp.Or(c.MaxWait, DefaultMaxWait)
	c.MinBackoff = c.backoffMin()
	c.MaxBackoff = c.backoffMax()
	c.Jitter = cmp.Or(c.Jitter, DefaultJitter)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports the first problem with c, as an error matching
// ErrInvalidConfig. Zero optional fields are valid (they select defaults).
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	switch {
	case c.Transport == nil:
		return bad("Transport is required (channel %q)", c.Channel)
	case c.Channel == "":
		return bad("Channel is required (address %q)", c.Addr)
	case c.Mode < Auto || c.Mode > ForceFollower:
		return bad("unknown Mode %d", int(c.Mode))
	case c.DialTimeout < 0:
		return bad("DialTimeout %v is negative", c.DialTimeout)
	case c.MaxWait < 0:
		return bad("MaxWait %v is negative", c.MaxWait)
	case c.MinBackoff < 0:
		return bad("MinBackoff %v is negative", c.MinBackoff)
	case c.MaxBackoff < 0:
		return bad("MaxBackoff %v is negative", c.MaxBackoff)
	case c.backoffMin() > c.backoffMax():
		return bad("MinBackoff %v exceeds MaxBackoff %v", c.backoffMin(), c.backoffMax())
	case c.Jitter < 0:
		return bad("Jitter %v is negative", c.Jitter)
	}
	return nil
}

// backoffMin and backoffMax are the effective bounds, defaults included.
func (c Config) backoffMin() time.Duration { return cmp.Or(c.MinBackoff, DefaultMinBackoff) }
func (c Config) backoffMax() time.Duration { return cmp.Or(c.MaxBackoff, DefaultMaxBackoff) }
