package cluster

import (
	"context"
	"fmt"
	"github.com/go-clusterclient/clusterclient/cluster/internal/link"
	"log/slog"
	"maps"
	"math"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/go-clusterclient/clusterclient/auth"
	"github.com/go-clusterclient/clusterclient/election"
	"github.com/go-clusterclient/clusterclient/protocol"
	"github.com/go-clusterclient/clusterclient/transport"
	"github.com/go-clusterclient/clusterclient/transport/tcp"
)

// Defaults. They are Node's (cluster-client 3.7.0) unless said otherwise.
const (
	// DefaultResponseTimeout bounds a follower's call from the moment it is
	// sent to the leader until its answer (Node's responseTimeout). It is
	// also the deadline the leader gives the real client's method, and how
	// long the leader waits for a follower to acknowledge a pushed value.
	DefaultResponseTimeout = 3 * time.Second
	// DefaultHeartbeatInterval: a follower sends a heartbeat this often; the
	// leader drops a follower silent for three intervals, and a follower
	// drops a leader that answers nothing for two.
	DefaultHeartbeatInterval = 20 * time.Second
	// DefaultConnectTimeout bounds one dial to the leader's address.
	DefaultConnectTimeout = 10 * time.Second
	// DefaultMaxWait is how long a forced follower waits for a leader.
	DefaultMaxWait = 30 * time.Second
	// DefaultRegisterRetry: how long a follower waits before sending
	// register_channel again when the leader has not answered within the
	// response timeout (Node: 3 s), and before electing again after a
	// leader answered that it does not lead the channel.
	DefaultRegisterRetry = 3 * time.Second
	// DefaultRegisterDeadline is how long the leader waits for a new
	// connection's register_channel before dropping it (Node waits
	// forever).
	DefaultRegisterDeadline = 10 * time.Second
	// DefaultMaxWriteBuffer bounds the bytes queued on one connection that
	// the peer has not read yet (not in Node). Beyond it a leader drops the
	// follower and a follower's call fails with ErrOverloaded.
	DefaultMaxWriteBuffer = 32 << 20
	// DefaultMaxPending bounds the calls in flight on one follower
	// connection (not in Node): beyond it a follower fails a call at once
	// with ErrOverloaded, and a leader answers a follower's call with
	// ErrOverloaded without running it (and drops a one-way call, with an
	// event).
	DefaultMaxPending = 10000
	// DefaultMaxConns bounds the connections a leader accepts on its
	// address (not in Node). At the bound a new connection replaces the
	// oldest one that has not completed registration (a stranger holding
	// connections open cannot lock followers out), or is closed when every
	// connection is registered. An unregistered connection costs about
	// 50 KB until the register deadline drops it.
	DefaultMaxConns = 1024
	// DefaultMaxSubscriptions bounds the keys one follower connection
	// subscribes on the leader (not in Node). A subscribe beyond it is
	// refused: the leader does not subscribe it and reports ErrOverloaded
	// (in an event and a log line, once per interval with a count); the
	// follower's other keys keep working.
	DefaultMaxSubscriptions = 10000
	// DefaultMaxKeys bounds the distinct keys a leader subscribes upstream
	// for its followers (not in Node). A follower's subscribe that would
	// add a key beyond it is refused as above; subscribing to a key the
	// leader already has is not, nor are the leader process's own
	// subscriptions.
	DefaultMaxKeys = 100000
	// DefaultUnprovenBuffer bounds the bytes a leader queues for a
	// connection that has not proved itself yet (not registered, or, with
	// authentication, not confirmed). A stranger that sends requests and
	// does not read the answers is dropped at it.
	DefaultUnprovenBuffer = 4 << 10
	// DefaultEventBuffer is how many events (and subscription deliveries)
	// may wait for the client's callback goroutine before events are
	// dropped (deliveries are never dropped) and counted in Stats.
	DefaultEventBuffer = 1024
	// DefaultStartRetryMin and DefaultStartRetryMax bound the pause before
	// a leader runs its factory again after it failed (not Node's: Node's
	// leader stays failed until it dies). The pause doubles from the
	// minimum after each failure up to the maximum (WithStartRetry).
	DefaultStartRetryMin = 100 * time.Millisecond
	DefaultStartRetryMax = 5 * time.Second
	// DefaultHandoverTimeout bounds a leader's hand-over on Close (not in
	// Node, whose leader just hangs up): how long the closing leader keeps
	// answering the calls its followers have in flight while they elect
	// the next leader (WithHandoverTimeout).
	DefaultHandoverTimeout = 10 * time.Second
)

// Environment variables read by New when the matching option is not given.
const (
	// EnvPort sets the port of the default address (Node's
	// NODE_CLUSTER_CLIENT_PORT). It applies to transports whose addresses
	// are host:port; the host stays the transport's default (127.0.0.1).
	EnvPort = "CLUSTER_CLIENT_PORT"
	// EnvSingleMode = "1" selects single mode (Node's
	// NODE_CLUSTER_CLIENT_SINGLE_MODE).
	EnvSingleMode = "CLUSTER_CLIENT_SINGLE_MODE"
)

// Mode selects how the client takes part in the election: Auto (the
// default: the first process to bind the address leads), ForceLeader (egg's
// agent: bind or fail) or ForceFollower (egg's workers: wait for a leader up
// to the maximum wait).
type Mode = election.Mode

// Election modes (re-exported from package election).
const (
	Auto          = election.Auto
	ForceLeader   = election.ForceLeader
	ForceFollower = election.ForceFollower
)

// Option configures New.
type Option func(*config) error

type config struct {
	transport         transport.Transport
	addr              string
	addrSet           bool
	codec             protocol.Codec
	responseTimeout   time.Duration
	heartbeat         time.Duration
	idleCheck         bool
	connectTimeout    time.Duration
	maxWait           time.Duration
	subscribeTimeout  time.Duration
	registerRetry     time.Duration
	startRetryMin     time.Duration // 0: a failed start is final for the term
	startRetryMax     time.Duration
	registerDeadline  time.Duration
	maxWriteBuffer    int
	maxPending        int
	maxConns          int
	maxSubs           int // keys per follower connection
	maxKeys           int // distinct keys subscribed for followers
	unprovenBuffer    int // bytes queued for a connection before its proof
	eventBuffer       int
	broadcast         bool
	mode              Mode
	single            bool
	singleSet         bool
	logger            *slog.Logger
	onEvent           func(Event)
	stats             StatsHandler // WithStatsHandler; nil: none
	limits            protocol.Limits
	registry          *election.Registry
	handshake         Handshake // the session layer; built from auth unless insecure
	auth              auth.Config
	insecure          bool
	electionBackoffLo time.Duration
	electionBackoffHi time.Duration
	handover          time.Duration // a closing leader's hand-over bound; 0: none (hang up at once)
	inlineBudget      time.Duration // how long a follower's call runs on the leader's reader before reading moves on (tests lengthen it)
}

func defaultConfig() config {
	return config{
		codec:            protocol.JSON,
		responseTimeout:  DefaultResponseTimeout,
		heartbeat:        DefaultHeartbeatInterval,
		idleCheck:        true,
		connectTimeout:   DefaultConnectTimeout,
		maxWait:          DefaultMaxWait,
		registerRetry:    DefaultRegisterRetry,
		startRetryMin:    DefaultStartRetryMin,
		startRetryMax:    DefaultStartRetryMax,
		registerDeadline: DefaultRegisterDeadline,
		maxWriteBuffer:   DefaultMaxWriteBuffer,
		maxPending:       DefaultMaxPending,
		maxConns:         DefaultMaxConns,
		maxSubs:          DefaultMaxSubscriptions,
		maxKeys:          DefaultMaxKeys,
		unprovenBuffer:   DefaultUnprovenBuffer,
		eventBuffer:      DefaultEventBuffer,
		broadcast:        true,
		mode:             Auto,
		inlineBudget:     link.DefaultInlineBudget,
		handover:         DefaultHandoverTimeout,
	}
}

func optErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...)
}

// WithTransport selects the medium (default: TCP, tcp.New(tcp.Config{}),
// on 127.0.0.1:7777).
func WithTransport(t transport.Transport) Option {
	return func(c *config) error {
		if t == nil {
			return optErr("nil transport")
		}
		c.transport = t
		return nil
	}
}

// WithAddr sets the address competed for (default: the transport's default
// address, with the port from CLUSTER_CLIENT_PORT when set).
func WithAddr(addr string) Option {
	return func(c *config) error {
		if addr == "" {
			return optErr("empty address")
		}
		c.addr, c.addrSet = addr, true
		return nil
	}
}

// WithPort sets the port of the transport's default host:port address
// (Node's port option). It must be in 1..65535 (Node once waited a minute on
// "port:undefined").
func WithPort(port int) Option {
	return func(c *config) error {
		if port < 1 || port > 65535 {
			return optErr("port should be a number in 1..65535, but got %d", port)
		}
		c.addr, c.addrSet = ":"+strconv.Itoa(port), true // host filled in by New
		return nil
	}
}

// WithCodec selects the codec of app objects (arguments, results, pushed
// values). Default protocol.JSON; use protocol.SerializeJSON in clusters
// that mix Go and Node processes. Every process of a channel must use the
// same codec (a Go leader refuses a Go follower that announces another).
// Other codecs, such as the CBOR one of the module codec/cbor, are
// accepted as long as their Name is not empty: the register handshake
// compares names, and an empty one would not be compared.
func WithCodec(codec protocol.Codec) Option {
	return func(c *config) error {
		if codec == nil {
			return optErr("nil codec")
		}
		if codec.Name() == "" {
			return optErr("codec %T has an empty Name: the register handshake tells codecs apart by name", codec)
		}
		c.codec = codec
		return nil
	}
}

// WithResponseTimeout sets the response timeout (default
// DefaultResponseTimeout). It must be positive and at most 2^31-1 ms (the
// wire's timeout field).
func WithResponseTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 || d.Milliseconds() > math.MaxInt32 || d < time.Millisecond {
			return optErr("response timeout %v must be between 1ms and %v", d, time.Duration(math.MaxInt32)*time.Millisecond)
		}
		c.responseTimeout = d
		return nil
	}
}

// WithHeartbeatInterval sets the heartbeat interval (default
// DefaultHeartbeatInterval). Zero turns heartbeats off entirely: followers
// send none and neither side checks liveness, so a hung leader is then only
// noticed through call timeouts. Not for KCP, which has no FIN.
func WithHeartbeatInterval(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return optErr("heartbeat interval %v is negative", d)
		}
		c.heartbeat = d
		return nil
	}
}

// WithIdleCheck turns the leader's check for idle followers on or off
// (default on; Node's isCheckHeartbeat).
func WithIdleCheck(on bool) Option {
	return func(c *config) error { c.idleCheck = on; return nil }
}

// WithConnectTimeout bounds one dial to the leader (default
// DefaultConnectTimeout).
func WithConnectTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return optErr("connect timeout %v must be positive", d)
		}
		c.connectTimeout = d
		return nil
	}
}

// WithMaxWait sets how long a forced follower waits for a leader (default
// DefaultMaxWait).
func WithMaxWait(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return optErr("max wait %v must be positive", d)
		}
		c.maxWait = d
		return nil
	}
}

// WithSubscribeTimeout reports ErrSubscribeTimeout (once per key) when a new
// subscription gets no value within d. Zero (the default) turns it off. A
// key that already has a cached value never times out.
func WithSubscribeTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return optErr("subscribe timeout %v is negative", d)
		}
		c.subscribeTimeout = d
		return nil
	}
}

// WithRegisterRetry sets the pause before a follower registers again
// (default DefaultRegisterRetry).
func WithRegisterRetry(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return optErr("register retry %v must be positive", d)
		}
		c.registerRetry = d
		return nil
	}
}

// WithStartRetry sets how the leader (and single mode) retries a factory
// that failed: after each failure it waits, then runs the factory again,
// for as long as its term lives; the wait starts at min and doubles up to
// max (default DefaultStartRetryMin, DefaultStartRetryMax). Meanwhile
// Ready and calls on the leader and on every follower fail at once with
// the latest failure (ErrNotReady wrapping the factory's error), each
// failure is an EventReady with that error, and once a start succeeds
// every role becomes ready by itself (an EventReady without error).
// WithStartRetry(0, 0) turns retrying off: a failed start is final until
// the leader's term ends, as in Node. A Service the factory returned but
// that is invalid (a reserved method name, ...) is never retried.
func WithStartRetry(min, max time.Duration) Option {
	return func(c *config) error {
		switch {
		case min == 0 && max == 0:
		case min <= 0 || max < min:
			return optErr("start retry [%v, %v]: want 0 < min <= max, or both 0 to turn retrying off", min, max)
		}
		c.startRetryMin, c.startRetryMax = min, max
		return nil
	}
}

// WithHandoverTimeout sets how long a leader that closes hands over (default
// DefaultHandoverTimeout). Close on a leader then frees the address at
// once, tells its Go followers it is leaving so that they elect the next
// leader without waiting, keeps answering the calls they sent before they
// heard it (and those of Node followers, which it then disconnects), and
// only then closes the real client. Followers' new calls wait for the next
// leader. The hand-over ends when every follower has finished with this
// leader, after d, or when Close's context ends, whichever comes first;
// what is left then fails as a crash would (ErrLeaderLost). d = 0 turns
// the hand-over off: a closing leader hangs up at once, as in Node.
func WithHandoverTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return optErr("handover timeout %v must not be negative", d)
		}
		c.handover = d
		return nil
	}
}

// WithRegisterDeadline sets how long a leader waits for a new connection to
// register (default DefaultRegisterDeadline).
func WithRegisterDeadline(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return optErr("register deadline %v must be positive", d)
		}
		c.registerDeadline = d
		return nil
	}
}

// WithMaxPending bounds the calls in flight on one follower connection
// (default DefaultMaxPending), on both sides: a follower fails the call
// beyond it at once, and a leader refuses it, with ErrOverloaded.
func WithMaxPending(n int) Option {
	return func(c *config) error {
		if n <= 0 {
			return optErr("max pending calls %d must be positive", n)
		}
		c.maxPending = n
		return nil
	}
}

// WithMaxConns bounds the connections a leader accepts on its address
// (default DefaultMaxConns; see it for what happens at the bound). The
// address's first leading Client sets it for every channel there.
func WithMaxConns(n int) Option {
	return func(c *config) error {
		if n <= 0 {
			return optErr("max connections %d must be positive", n)
		}
		c.maxConns = n
		return nil
	}
}

// WithMaxWriteBuffer bounds the unread bytes queued on one connection
// (default DefaultMaxWriteBuffer).
func WithMaxWriteBuffer(n int) Option {
	return func(c *config) error {
		if n < 64<<10 {
			return optErr("max write buffer %d is below 64 KiB", n)
		}
		c.maxWriteBuffer = n
		return nil
	}
}

// WithMaxSubscriptions bounds the keys one follower connection subscribes
// on the leader (default DefaultMaxSubscriptions) and the distinct keys
// the leader subscribes for all its followers (default DefaultMaxKeys).
func WithMaxSubscriptions(perFollower, keys int) Option {
	return func(c *config) error {
		if perFollower <= 0 || keys <= 0 {
			return optErr("max subscriptions %d per follower and %d keys must be positive", perFollower, keys)
		}
		c.maxSubs, c.maxKeys = perFollower, keys
		return nil
	}
}

// WithUnprovenBuffer bounds the bytes a leader queues for a connection
// that has not proved itself yet (default DefaultUnprovenBuffer; at least
// 1 KiB, so that a register reply always fits).
func WithUnprovenBuffer(n int) Option {
	return func(c *config) error {
		if n < 1<<10 {
			return optErr("unproven buffer %d is below 1 KiB", n)
		}
		c.unprovenBuffer = n
		return nil
	}
}

// WithBroadcast turns broadcast on (the default: every subscriber gets
// every value, and late subscribers get the cached value) or off (each
// value goes to one subscriber chosen at random, and nothing is replayed;
// Node's isBroadcast: false).
func WithBroadcast(on bool) Option {
	return func(c *config) error { c.broadcast = on; return nil }
}

// WithMode forces a role (default Auto).
func WithMode(m Mode) Option {
	return func(c *config) error {
		if m < Auto || m > ForceFollower {
			return optErr("unknown mode %d", int(m))
		}
		c.mode = m
		return nil
	}
}

// WithSingleMode selects single mode: no network, one real client per name
// in this process shared by every Client of that name (default: from
// CLUSTER_CLIENT_SINGLE_MODE).
func WithSingleMode(on bool) Option {
	return func(c *config) error { c.single, c.singleSet = on, true; return nil }
}

// WithLogger sets the logger (default: slog.Default()). Records carry the
// attributes channel, addr, role and term.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return optErr("nil logger")
		}
		c.logger = l
		return nil
	}
}

// WithEventHandler receives role changes, readiness, lost leaders,
// background errors and the real client's own events (see Event). The
// handler runs on the client's callback goroutine, in order, after the
// events happened; it must not block for long (it delays subscription
// deliveries).
func WithEventHandler(h func(Event)) Option {
	return func(c *config) error {
		if h == nil {
			return optErr("nil event handler")
		}
		c.onEvent = h
		return nil
	}
}

// WithEventBuffer bounds the events waiting for the event handler (default
// DefaultEventBuffer); events beyond it are dropped and counted.
func WithEventBuffer(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return optErr("event buffer %d must be positive", n)
		}
		c.eventBuffer = n
		return nil
	}
}

// WithLimits bounds the frames this client accepts (default
// protocol.DefaultLimits).
func WithLimits(l protocol.Limits) Option {
	return func(c *config) error {
		if l.MaxConnLen < 0 || l.MaxAppLen < 0 {
			return optErr("negative limits %+v", l)
		}
		c.limits = l
		return nil
	}
}

// WithRegistry sets the per-process table of listeners (default
// election.Default). Clients that use different registries behave as if
// they were in different processes; tests use it to run several "processes"
// in one.
func WithRegistry(r *election.Registry) Option {
	return func(c *config) error {
		if r == nil {
			return optErr("nil registry")
		}
		c.registry = r
		return nil
	}
}

// WithAuth configures the authentication every connection goes through
// (package auth): by default auth.Config{}, that is the same user only,
// proven by the kernel on unix sockets and by the per-user secret file on
// other transports, and no configuration fingerprint. Set
// auth.Config.Fingerprint to keep clients of one name but different
// configurations apart. New fails if the secret file cannot be
// used (the error matches auth.ErrSecretFile). Single mode authenticates
// nothing. WithAuth, WithHandshake, WithInsecure and WithNodeCompat
// replace each other: the last one given counts.
func WithAuth(cfg auth.Config) Option {
	return func(c *config) error {
		if err := cfg.Validate(); err != nil {
			return fmt.Errorf("%w: WithAuth: %w", ErrInvalidOption, err)
		}
		c.auth, c.handshake, c.insecure = cfg, nil, false
		return nil
	}
}

// WithHandshake replaces the default authentication (WithAuth) with
// another session layer.
func WithHandshake(h Handshake) Option {
	return func(c *config) error {
		if h == nil {
			return optErr("nil handshake")
		}
		c.handshake, c.insecure = h, false
		return nil
	}
}

// WithInsecure turns authentication off: registration carries no
// handshake, as with Node. Any local process that can reach the address
// can then join the cluster, call every declared method, publish and read
// every value, and whoever binds the address first leads and receives
// every follower's calls (SECURITY.md). New logs a warning saying so.
// Only a cluster whose every member turns it off works; WithNodeCompat
// implies it.
func WithInsecure() Option {
	return func(c *config) error {
		c.handshake, c.insecure = nil, true
		return nil
	}
}

// WithElectionBackoff bounds the pause between failed probes of the
// address (defaults election.DefaultMinBackoff .. election.DefaultMaxBackoff).
func WithElectionBackoff(lo, hi time.Duration) Option {
	return func(c *config) error {
		if lo <= 0 || hi < lo {
			return optErr("election backoff %v..%v: want 0 < min <= max", lo, hi)
		}
		c.electionBackoffLo, c.electionBackoffHi = lo, hi
		return nil
	}
}

// resolve applies the environment and fills what depends on other options.
func (c *config) resolve(getenv func(string) string) error {
	if !c.singleSet {
		c.single = getenv(EnvSingleMode) == "1"
	}
	if c.transport == nil {
		c.transport = tcp.New(tcp.Config{})
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	if c.registry == nil {
		c.registry = election.Default
	}
	def := c.transport.DefaultAddr()
	switch {
	case c.addrSet && len(c.addr) > 0 && c.addr[0] == ':':
		// WithPort: keep the default host.
		host, _, err := net.SplitHostPort(def)
		if err != nil {
			return optErr("WithPort: the %s transport's addresses are not host:port (default %q)", c.transport.Name(), def)
		}
		c.addr = net.JoinHostPort(host, c.addr[1:])
	case c.addrSet:
	default:
		c.addr = def
		if v, ok := lookupEnv(getenv, EnvPort); ok {
			port, err := strconv.Atoi(v)
			if err != nil || port < 1 || port > 65535 {
				return optErr("%s: port should be a number in 1..65535, but got %q", EnvPort, v)
			}
			host, _, err := net.SplitHostPort(def)
			if err != nil {
				return optErr("%s is set but the %s transport's addresses are not host:port (default %q)", EnvPort, c.transport.Name(), def)
			}
			c.addr = net.JoinHostPort(host, strconv.Itoa(port))
		}
	}
	if c.heartbeat > 0 && c.heartbeat < time.Millisecond {
		return optErr("heartbeat interval %v is below 1ms", c.heartbeat)
	}
	if c.handshake == nil && !c.insecure && !c.single {
		h, err := auth.New(c.auth)
		if err != nil {
			return fmt.Errorf("authentication: %w", err)
		}
		c.handshake = h
	}
	return nil
}

// checkChannel refuses a channel name that no follower could ever
// register under this configuration: the register_channel conn object a
// follower sends (the name, and with package auth a hello that names it
// again, each JSON-escaped) must fit the conn object limit, and package
// auth refuses a name over auth.MaxIdentityField. The conn object is
// measured as a follower builds it, with the hello of a connection that
// has kernel credentials (the longest); another session layer
// (WithHandshake) adds fields of its own that are not counted.
func (c *config) checkChannel(name string) error {
	if c.single {
		return nil
	}
	maxConn, limit := c.limits.MaxConnLen, fmt.Sprintf("WithLimits(MaxConnLen: %d)", c.limits.MaxConnLen)
	if maxConn <= 0 {
		maxConn, limit = protocol.DefaultMaxConnLen, "protocol.DefaultMaxConnLen (WithLimits raises it)"
	}
	ah, withAuth := c.handshake.(*auth.Handshake)
	size := func(name string) (int, error) {
		ext := Ext{extKey: ourExt(c.codec)}
		if withAuth {
			info := PeerInfo{Channel: name, Transport: c.transport.Name(), Addr: c.addr, Conn: credConn{}}
			hello, err := ah.Hello(context.Background(), info)
			if err != nil {
				return 0, err
			}
			maps.Copy(ext, hello)
		}
		co := protocol.ConnObject{Type: protocol.KindRegisterChannel, ChannelName: name, Ext: ext}
		return len(protocol.AppendConn(nil, &co)), nil
	}
	n, err := size(name)
	if err != nil {
		return optErr("channel name of %d bytes cannot be registered: %w", len(name), err)
	}
	if n <= maxConn {
		return nil
	}
	fit := maxConn
	if base, err := size(""); err == nil {
		fit = maxConn - base
		if withAuth {
			fit /= 2 // the name is in channelName and in the hello
		}
	}
	return optErr("channel name of %d bytes cannot be registered: a follower's register_channel conn object would be %d bytes, "+
		"over the %d bytes of %s (a name of at most %d bytes fits, fewer if JSON escapes some of its characters)",
		len(name), n, maxConn, limit, max(fit, 0))
}

// credConn stands for a connection whose peer credentials the kernel
// reports, for a hello as long as any a follower sends. Only PeerCred
// is called.
type credConn struct{ net.Conn }

func (credConn) PeerCred() (transport.Cred, error) { return transport.Cred{}, nil }

func lookupEnv(getenv func(string) string, name string) (string, bool) {
	if getenv == nil {
		getenv = os.Getenv
	}
	v := getenv(name)
	return v, v != ""
}

// electionConfig is the election's view of the options.
func (c *config) electionConfig(channel string) election.Config {
	return election.Config{
		Transport:   c.transport,
		Addr:        c.addr,
		Channel:     channel,
		Mode:        c.mode,
		DialTimeout: c.connectTimeout,
		MaxWait:     c.maxWait,
		MinBackoff:  c.electionBackoffLo,
		MaxBackoff:  c.electionBackoffHi,
		Logger:      c.logger,
	}
}

// timeoutMS is the response timeout as the wire's int32 milliseconds.
func (c *config) timeoutMS() int32 { return int32(c.responseTimeout.Milliseconds()) }
