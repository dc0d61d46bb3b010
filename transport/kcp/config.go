package kcp

import (
	"cmp"
	"errors"
	"fmt"
	"time"
)

// Defaults used by DefaultConfig and for zero Config fields.
const (
	// DefaultAddr is the address used when the caller gives none.
	DefaultAddr = "127.0.0.1:7777"
	// DefaultPingInterval is how often each side of a conn sends a
	// heartbeat datagram.
	DefaultPingInterval = time.Second
	// DefaultDeadPeerTimeout is how long a conn waits without hearing
	// anything from its peer before it fails with ErrPeerTimeout.
	DefaultDeadPeerTimeout = 3 * time.Second
	// DefaultHandshakeTimeout bounds the hello exchange.
	DefaultHandshakeTimeout = 2 * time.Second
	// DefaultLinger is how long a closed conn keeps delivering its unsent
	// data while it waits for the peer to acknowledge the close.
	DefaultLinger = time.Second
	// DefaultWindow is the KCP send and receive window, in packets. 128
	// packets of DefaultMTU bytes stay below Linux's default UDP receive
	// buffer (208 KiB), so a full window never overflows a loopback socket.
	DefaultWindow = 128
	// DefaultMTU is the largest UDP payload KCP sends.
	DefaultMTU = 1400
	// DefaultAcceptBacklog is the number of conns a listener holds between
	// the first hello packet and Accept.
	DefaultAcceptBacklog = 128
)

// Limits checked by Config.Validate.
const (
	// MinMTU is the smallest MTU accepted: a KCP header and the hello.
	MinMTU = 64
	// MaxMTU is the largest MTU kcp-go sends (an IPv4 Ethernet frame).
	MaxMTU = 1472
	// MaxWindow is the largest window accepted (KCP counts fragments of
	// one message in a byte, and its buffers grow with the window).
	MaxWindow = 32768
)

// ErrInvalidConfig is returned (wrapped) by Config.Validate and by New.
var ErrInvalidConfig = errors.New("kcp: invalid config")

// Config tunes a Transport. The zero value of a field means its default.
//
// A conn fails with ErrPeerTimeout once nothing (data, acknowledgement or
// heartbeat) has arrived from its peer for DeadPeerTimeout. The check runs
// every PingInterval/4, so the failure surfaces at most that much later.
type Config struct {
	// AllowNonLoopback permits addresses that are not loopback IPs, and
	// host names. Default false: only literal loopback IPs (127.0.0.0/8,
	// ::1) are accepted, and "localhost" is refused.
	AllowNonLoopback bool

	// PingInterval is how often each side of an established conn sends a
	// heartbeat datagram. Default DefaultPingInterval.
	PingInterval time.Duration

	// DeadPeerTimeout is how long a conn may hear nothing from its peer
	// before Read and Write fail with ErrPeerTimeout. It must be at least
	// twice PingInterval. Default DefaultDeadPeerTimeout.
	DeadPeerTimeout time.Duration

	// HandshakeTimeout bounds the hello exchange: Dial waits at most this
	// long for the listener's answer (less if its context says so), and a
	// listener drops a conversation whose hello does not complete in time.
	// Default DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration

	// Linger is how long a closed conn keeps its KCP session, so data
	// written before Close is still delivered, while it waits for the
	// peer to read up to the close. Close itself does not wait.
	// Default DefaultLinger.
	Linger time.Duration

	// Window is the KCP send and receive window, in packets; it bounds the
	// data in flight and the data a peer buffers for a slow reader.
	// Default DefaultWindow; at most MaxWindow.
	Window int

	// MTU is the largest UDP payload sent, in bytes. Default DefaultMTU;
	// between MinMTU and MaxMTU.
	MTU int

	// AcceptBacklog is the number of conns a listener holds between their
	// first hello packet and Accept (handshaking or handshaken). Hellos
	// beyond it are dropped, and the dialer's retransmissions try again
	// until its deadline. Default DefaultAcceptBacklog.
	AcceptBacklog int
}

// DefaultConfig returns the configuration New uses for zero fields.
func DefaultConfig() Config {
	return Config{
		PingInterval:     DefaultPingInterval,
		DeadPeerTimeout:  DefaultDeadPeerTimeout,
		HandshakeTimeout: DefaultHandshakeTimeout,
		Linger:           DefaultLinger,
		Window:           DefaultWindow,
		MTU:              DefaultMTU,
		AcceptBacklog:    DefaultAcceptBacklog,
	}
}

// withDefaults returns c with its zero fields set to their defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.PingInterval = cmp.Or(c.PingInterval, d.PingInterval)
	c.DeadPeerTimeout = cmp.Or(c.DeadPeerTimeout, d.DeadPeerTimeout)
	c.HandshakeTimeout = cmp.Or(c.HandshakeTimeout, d.HandshakeTimeout)
	c.Linger = cmp.Or(c.Linger, d.Linger)
	c.Window = cmp.Or(c.Window, d.Window)
	c.MTU = cmp.Or(c.MTU, d.MTU)
	c.AcceptBacklog = cmp.Or(c.AcceptBacklog, d.AcceptBacklog)
	return c
}

// Validate reports whether c (with zero fields taken as their defaults)
// can be used, naming the first bad field. The error matches
// ErrInvalidConfig.
func (c Config) Validate() error {
	c = c.withDefaults()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	switch {
	case c.PingInterval < 0:
		return bad("PingInterval %v is negative", c.PingInterval)
	case c.DeadPeerTimeout < 2*c.PingInterval:
		return bad("DeadPeerTimeout %v is less than twice PingInterval %v", c.DeadPeerTimeout, c.PingInterval)
	case c.HandshakeTimeout < 0:
		return bad("HandshakeTimeout %v is negative", c.HandshakeTimeout)
	case c.Linger < 0:
		return bad("Linger %v is negative", c.Linger)
	case c.Window < 0 || c.Window > MaxWindow:
		return bad("Window %d is outside 1..%d", c.Window, MaxWindow)
	case c.MTU < MinMTU || c.MTU > MaxMTU:
		return bad("MTU %d is outside %d..%d", c.MTU, MinMTU, MaxMTU)
	case c.AcceptBacklog < 0:
		return bad("AcceptBacklog %d is negative", c.AcceptBacklog)
	}
	return nil
}

// tick is how often an endpoint checks its conns' heartbeats, lingers and
// handshakes.
func (c Config) tick() time.Duration { return c.PingInterval / 4 }
