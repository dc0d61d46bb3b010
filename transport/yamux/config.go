package yamux

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	hyamux "github.com/hashicorp/yamux"

	"github.com/go-clusterclient/clusterclient/transport"
)

// Defaults used by DefaultConfig and for zero Config fields. They are
// chosen so that a hung leader is noticed within about three seconds
// (KeepAliveInterval plus ConnectionWriteTimeout), not yamux's 40 s; a
// leader that dies is noticed at once, by the underlying transport's EOF.
const (
	// DefaultKeepAliveInterval is how often a session pings its peer.
	DefaultKeepAliveInterval = time.Second
	// DefaultConnectionWriteTimeout bounds a write on the session's
	// connection and the wait for a ping's answer.
	DefaultConnectionWriteTimeout = 2 * time.Second
	// DefaultStreamOpenTimeout is how long an opened stream may wait for
	// the peer's acknowledgement before its session is closed.
	DefaultStreamOpenTimeout = 5 * time.Second
	// DefaultStreamCloseTimeout is how long a closed stream waits for the
	// peer's close before it is reset.
	DefaultStreamCloseTimeout = 5 * time.Second
	// DefaultMaxStreamWindowSize is the receive window of a stream, in
	// bytes (yamux's minimum).
	DefaultMaxStreamWindowSize = 256 << 10
	// DefaultAcceptBacklog is the number of streams a listener queues for
	// Accept, and the number of unacknowledged streams a session may open.
	DefaultAcceptBacklog = 256
)

// ErrInvalidConfig is returned (wrapped) by Config.Validate and by New.
var ErrInvalidConfig = errors.New("yamux: invalid config")

// Config tunes a Transport. Underlying is required; the zero value of every
// other field means its default.
type Config struct {
	// Underlying is the transport the sessions run over: tcp.New(...) or
	// unix.New(...). Listen and Dial go through it, so its exclusivity,
	// addresses and errors are the Transport's.
	Underlying transport.Transport

	// KeepAliveInterval is how often each session pings its peer. A ping
	// unanswered for ConnectionWriteTimeout closes the session.
	// Default DefaultKeepAliveInterval.
	KeepAliveInterval time.Duration

	// ConnectionWriteTimeout bounds each write on the underlying conn and
	// the wait for a ping's answer; beyond it the session is closed.
	// Default DefaultConnectionWriteTimeout.
	ConnectionWriteTimeout time.Duration

	// StreamOpenTimeout is how long a dialed stream may wait for the
	// listener side to acknowledge it before the whole session is closed
	// (the peer is taken for hung). Default DefaultStreamOpenTimeout.
	StreamOpenTimeout time.Duration

	// StreamCloseTimeout is how long a closed stream waits for its peer to
	// close too before it is reset. Default DefaultStreamCloseTimeout.
	StreamCloseTimeout time.Duration

	// MaxStreamWindowSize is each stream's receive window, in bytes: what
	// a peer may send ahead of a slow reader. Default and minimum
	// DefaultMaxStreamWindowSize.
	MaxStreamWindowSize uint32

	// AcceptBacklog is the number of streams a listener queues for Accept
	// (over all its sessions); a stream that arrives when the queue is
	// full is closed at once. It is also yamux's per-session backlog.
	// Default DefaultAcceptBacklog.
	AcceptBacklog int

	// Logger receives yamux's own diagnostics (keepalive failures, resets)
	// at Warn level. Default: discarded.
	Logger *slog.Logger
}

// DefaultConfig returns the configuration New uses for zero fields, over
// the given underlying transport.
func DefaultConfig(underlying transport.Transport) Config {
	return Config{
		Underlying:             underlying,
		KeepAliveInterval:      DefaultKeepAliveInterval,
		ConnectionWriteTimeout: DefaultConnectionWriteTimeout,
		StreamOpenTimeout:      DefaultStreamOpenTimeout,
		StreamCloseTimeout:     DefaultStreamCloseTimeout,
		MaxStreamWindowSize:    DefaultMaxStreamWindowSize,
		AcceptBacklog:          DefaultAcceptBacklog,
		Logger:                 slog.New(slog.DiscardHandler),
	}
}

// withDefaults returns c with its zero fields set to their defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig(c.Underlying)
	c.KeepAliveInterval = cmp.Or(c.KeepAliveInterval, d.KeepAliveInterval)
	c.ConnectionWriteTimeout = cmp.Or(c.ConnectionWriteTimeout, d.ConnectionWriteTimeout)
	c.StreamOpenTimeout = cmp.Or(c.StreamOpenTimeout, d.StreamOpenTimeout)
	c.StreamCloseTimeout = cmp.Or(c.StreamCloseTimeout, d.StreamCloseTimeout)
	c.MaxStreamWindowSize = cmp.Or(c.MaxStreamWindowSize, d.MaxStreamWindowSize)
	c.AcceptBacklog = cmp.Or(c.AcceptBacklog, d.AcceptBacklog)
	c.Logger = cmp.Or(c.Logger, d.Logger)
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
	case c.Underlying == nil:
		return bad("Underlying is nil")
	case c.KeepAliveInterval < 0:
		return bad("KeepAliveInterval %v is negative", c.KeepAliveInterval)
	case c.ConnectionWriteTimeout < 0:
		return bad("ConnectionWriteTimeout %v is negative", c.ConnectionWriteTimeout)
	case c.StreamOpenTimeout < 0:
		return bad("StreamOpenTimeout %v is negative", c.StreamOpenTimeout)
	case c.StreamCloseTimeout < 0:
		return bad("StreamCloseTimeout %v is negative", c.StreamCloseTimeout)
	case c.MaxStreamWindowSize < DefaultMaxStreamWindowSize:
		return bad("MaxStreamWindowSize %d is below yamux's minimum %d", c.MaxStreamWindowSize, DefaultMaxStreamWindowSize)
	case c.AcceptBacklog < 0:
		return bad("AcceptBacklog %d is negative", c.AcceptBacklog)
	}
	if err := hyamux.VerifyConfig(c.yamux()); err != nil {
		return bad("%v", err)
	}
	return nil
}

// yamux returns the hashicorp/yamux configuration of c (with defaults).
func (c Config) yamux() *hyamux.Config {
	return &hyamux.Config{
		AcceptBacklog:          c.AcceptBacklog,
		EnableKeepAlive:        true,
		KeepAliveInterval:      c.KeepAliveInterval,
		ConnectionWriteTimeout: c.ConnectionWriteTimeout,
		MaxStreamWindowSize:    c.MaxStreamWindowSize,
		StreamOpenTimeout:      c.StreamOpenTimeout,
		StreamCloseTimeout:     c.StreamCloseTimeout,
		Logger:                 yamuxLogger{c.Logger},
	}
}

// yamuxLogger adapts a slog.Logger to yamux's Logger.
type yamuxLogger struct{ l *slog.Logger }

func (y yamuxLogger) log(msg string) {
	y.l.Warn(strings.TrimSpace(msg), slog.String("transport", "yamux"))
}

func (y yamuxLogger) Print(v ...any) { y.log(fmt.Sprint(v...)) }

func (y yamuxLogger) Printf(format string, v ...any) { y.log(fmt.Sprintf(format, v...)) }

func (y yamuxLogger) Println(v ...any) { y.log(fmt.Sprintln(v...)) }
