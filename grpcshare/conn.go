package grpcshare

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registers the "proto" codec Conn marshals with by default
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Names of the cluster methods the leader's Service declares. They are the
// whole protocol between a caller and the leader; each takes one []byte
// argument (a request envelope) and returns one []byte (a response
// envelope), see wire.go.
const (
	methodUnary  = "grpc.unary"
	methodOpen   = "grpc.open"
	methodRecv   = "grpc.recv"
	methodCancel = "grpc.cancel"
	methodSend   = "grpc.send"
	methodClose  = "grpc.closesend"
)

// Defaults of the options.
const (
	// DefaultCallTimeout bounds a call whose context has no deadline, on
	// every role alike (WithCallTimeout): a call that crosses to the
	// leader needs a deadline, and the leader's own calls get the same one
	// so that they behave the same. It is also the gRPC deadline the
	// upstream server sees for such a call. A stream without deadline is
	// not bounded by it, but each of its steps is: the open, and each
	// SendMsg of a client-streaming or bidi call (one that the server's
	// flow control holds back that long ends the stream).
	DefaultCallTimeout = 30 * time.Second
	// DefaultStreamWindow is how many messages of one server stream wait,
	// received and not yet read, on the leader and again in the caller's
	// process (WithStreamWindow). When both are full the leader stops
	// reading the upstream stream and HTTP/2 flow control holds the
	// server back, as with a direct stream whose reader is slow.
	DefaultStreamWindow = 64
	// DefaultPollHold is how long the leader holds a caller's poll for
	// stream messages when none are waiting (WithPollHold): an idle stream
	// costs one call per hold.
	DefaultPollHold = 5 * time.Second
	// DefaultStreamIdle is how long the leader keeps a server stream that
	// nobody polls before it cancels it upstream (WithStreamIdle): it frees
	// the streams of a caller process that died or hung. A live caller
	// polls at least every hold, even when its reader is slow.
	DefaultStreamIdle = 30 * time.Second
	// DefaultMaxStreams bounds the streams the leader holds open upstream
	// for the whole host (WithMaxStreams). Opening one more fails at once
	// with codes.ResourceExhausted; the others are not disturbed.
	DefaultMaxStreams = 1024
	// minPollMargin: a poll's deadline is its hold plus the hold again, at
	// least this much.
	minPollMargin = time.Second
)

var (
	// ErrInvalidOption: New was given an invalid name, target or option.
	ErrInvalidOption = errors.New("grpcshare: invalid option")
	// ErrProtocol: an envelope between a caller and the leader could not
	// be read (a peer of another version, or a cluster of another kind on
	// the channel). Such calls fail with codes.Internal.
	ErrProtocol = errors.New("grpcshare: malformed envelope")
	// ErrStreamGone: the leader has no such server stream: it was
	// cancelled after nobody polled it for the idle timeout, or the stream
	// was opened on a leader that has since been replaced. The stream ends
	// with codes.Unavailable.
	ErrStreamGone = errors.New("grpcshare: server stream unknown to the leader")
	// ErrSendTwice: SendMsg called more than once on a server-streaming
	// call (generated code never does it).
	ErrSendTwice = errors.New("grpcshare: SendMsg called again on a server-streaming call")
)

// Error is the error of a call that failed on the way to or from the
// leader, rather than upstream: status.Code finds its Code (GRPCStatus),
// and errors.Is finds the cause (cluster.ErrLeaderLost, a context error,
// ErrStreamGone, ...). A call that reached the upstream server fails
// with that server's status error itself, unchanged, on every role.
type Error struct {
	Op     string // "invoke", "stream", "recv", "open"
	Name   string // the channel
	Method string // the gRPC method
	Code   codes.Code
	Err    error
}

func (e *Error) Error() string {
	return fmt.Sprintf("grpcshare: %s %s on channel %q: %s: %v", e.Op, e.Method, e.Name, e.Code, e.Err)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// GRPCStatus makes status.Code and status.FromError see the code.
func (e *Error) GRPCStatus() *status.Status { return status.New(e.Code, e.Error()) }

// codeOf maps an error of the hop to the code grpc-go gives the same
// situation: a lost or absent leader is codes.Unavailable (gRPC's retry
// policies retry it), a context's end is DeadlineExceeded or Canceled.
func codeOf(ctx context.Context, err error) codes.Code {
	switch {
	case errors.Is(err, cluster.ErrClosed):
		return codes.Canceled // grpc-go: "the client connection is closing"
	case errors.Is(err, cluster.ErrLeaderLost), errors.Is(err, cluster.ErrLeaderUnresponsive),
		errors.Is(err, cluster.ErrLeaderLeft),
		errors.Is(err, cluster.ErrNoLeader), errors.Is(err, cluster.ErrNotReady),
		errors.Is(err, cluster.ErrNoChannel), errors.Is(err, ErrStreamGone):
		return codes.Unavailable
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, cluster.ErrTimeout):
		return codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	case errors.Is(err, cluster.ErrOverloaded):
		return codes.ResourceExhausted
	case errors.Is(err, ErrProtocol), errors.Is(err, cluster.ErrProtocol),
		errors.Is(err, cluster.ErrUnknownMethod), errors.Is(err, cluster.ErrPanic):
		return codes.Internal
	}
	if ctx != nil && ctx.Err() != nil {
		return status.FromContextError(ctx.Err()).Code()
	}
	return codes.Unknown
}

func (c *Conn) hopError(ctx context.Context, op, method string, err error) error {
	return &Error{Op: op, Name: c.name, Method: method, Code: codeOf(ctx, err), Err: err}
}

// Conn is a gRPC client connection shared by every process of the host
// that creates one with the same name: it implements
// grpc.ClientConnInterface, so generated client stubs take it as they
// take a *grpc.ClientConn.
//
// Concurrency: every method is safe for concurrent use. A Conn holds no
// lock of its own: the cluster.Client serialises what it must, and each
// server stream has its own state (see clientStream).
type Conn struct {
	name   string
	target string
	cfg    config
	cl     *cluster.Client
}

var (
	_ grpc.ClientConnInterface   = (*Conn)(nil)
	_ interface{ Close() error } = (*Conn)(nil)
)

type config struct {
	dial        []grpc.DialOption
	cluster     []cluster.Option
	callTimeout time.Duration
	window      int
	hold        time.Duration
	idle        time.Duration
	maxStreams  int
}

// An Option configures New.
type Option func(*config) error

// WithDialOptions are the options of the one real connection, built with
// grpc.NewClient(target, opts...) by whichever process leads (default:
// none; gRPC then refuses to build a connection without transport
// security, so give at least grpc.WithTransportCredentials). Every
// process should give the same: any of them may lead.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(c *config) error { c.dial = append(c.dial, opts...); return nil }
}

// WithClusterOptions passes options to cluster.New (default: none, so
// TCP 127.0.0.1:7777 and the library's defaults). Every process of the
// channel gives the same address, transport and codec.
func WithClusterOptions(opts ...cluster.Option) Option {
	return func(c *config) error { c.cluster = append(c.cluster, opts...); return nil }
}

// WithCallTimeout sets the deadline of calls whose context has none
// (default DefaultCallTimeout). It must be positive.
func WithCallTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: call timeout %v, want > 0", ErrInvalidOption, d)
		}
		c.callTimeout = d
		return nil
	}
}

// WithStreamWindow sets how many messages of a server stream may wait on
// the leader and in the reading process (default DefaultStreamWindow).
func WithStreamWindow(n int) Option {
	return func(c *config) error {
		if n < 1 || n > 1<<16 {
			return fmt.Errorf("%w: stream window %d, want 1..65536", ErrInvalidOption, n)
		}
		c.window = n
		return nil
	}
}

// WithPollHold sets how long the leader holds an idle stream's poll
// (default DefaultPollHold), and WithStreamIdle how long it keeps a stream
// nobody polls (default DefaultStreamIdle). The idle timeout must be at
// least twice the hold.
func WithPollHold(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: poll hold %v, want > 0", ErrInvalidOption, d)
		}
		c.hold = d
		return nil
	}
}

// WithMaxStreams bounds the streams the leader holds open for the whole
// host (default DefaultMaxStreams); beyond it opening a stream fails with
// codes.ResourceExhausted. The leader's own options are the budget: a
// follower that asks for a larger window or idle timeout than the
// leader's WithStreamWindow and WithStreamIdle gets the leader's.
func WithMaxStreams(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("%w: max streams %d, want >= 1", ErrInvalidOption, n)
		}
		c.maxStreams = n
		return nil
	}
}

// WithStreamIdle: see WithPollHold.
func WithStreamIdle(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: stream idle timeout %v, want > 0", ErrInvalidOption, d)
		}
		c.idle = d
		return nil
	}
}

// New returns the shared connection of channel name to target. The
// process that leads the channel runs grpc.NewClient(target, dial
// options...) and holds the only *grpc.ClientConn of the host; every
// other process forwards its calls to it. Which process leads may change
// (failover); the Conn behaves the same on every role.
//
// New does not wait for a leader: calls wait for one, bounded by their
// context. Invalid options fail here (ErrInvalidOption, or cluster's).
func New(name, target string, opts ...Option) (*Conn, error) {
	cfg := config{callTimeout: DefaultCallTimeout, window: DefaultStreamWindow, hold: DefaultPollHold, idle: DefaultStreamIdle,
		maxStreams: DefaultMaxStreams}
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: nil Option", ErrInvalidOption)
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if target == "" {
		return nil, fmt.Errorf("%w: empty target for channel %q", ErrInvalidOption, name)
	}
	if cfg.idle < 2*cfg.hold {
		return nil, fmt.Errorf("%w: stream idle timeout %v is less than twice the poll hold %v", ErrInvalidOption, cfg.idle, cfg.hold)
	}
	c := &Conn{name: name, target: target, cfg: cfg}
	dial := append([]grpc.DialOption(nil), cfg.dial...)
	cl, err := cluster.New(name, func(ctx context.Context, _ cluster.Emit) (*cluster.Service, error) {
		return newUpstream(name, target, dial, limits{window: cfg.window, idle: cfg.idle, streams: cfg.maxStreams})
	}, cfg.cluster...)
	if err != nil {
		return nil, fmt.Errorf("grpcshare: channel %q to %s: %w", name, target, err)
	}
	c.cl = cl
	return c, nil
}

// Client returns the cluster.Client under the connection: its role,
// readiness, events and statistics.
func (c *Conn) Client() *cluster.Client { return c.cl }

// Target returns the target the leader dials.
func (c *Conn) Target() string { return c.target }

// Close closes this process's side: a follower hangs up, a leader closes
// the real connection (its calls and streams end) and another process
// takes over. Calls made after Close fail with codes.Canceled.
func (c *Conn) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.cl.Close(ctx)
}

// bound gives ctx the call timeout when it has no deadline.
func (c *Conn) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.cfg.callTimeout)
}

// Invoke performs a unary call: the request is marshalled here with the
// call's codec (proto by default), crosses to the leader as bytes, is sent
// upstream on the one real connection, and the reply's bytes come back to
// be unmarshalled here. The caller's deadline, cancellation and outgoing
// metadata go upstream; the upstream status (code, message, details),
// header and trailer come back, so errors are the same on every role.
func (c *Conn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	co, err := parseCallOptions(opts)
	if err != nil {
		return err
	}
	msg, err := co.marshal(args)
	if err != nil {
		return status.Errorf(codes.Internal, "grpc: error while marshaling: %v", err)
	}
	req := request{method: method, msg: msg, ready: co.ready, subtype: co.subtype, comp: co.comp}
	req.md, _ = metadata.FromOutgoingContext(ctx)
	bctx, cancel := c.bound(ctx)
	defer cancel()
	res, err := c.cl.Invoke(bctx, methodUnary, req.marshal())
	if err != nil {
		return c.hopError(bctx, "invoke", method, err)
	}
	var resp response
	if err := decodeResult(res, &resp); err != nil {
		return c.hopError(bctx, "invoke", method, err)
	}
	co.after(&resp)
	if err := resp.err(); err != nil {
		return err
	}
	if len(resp.msgs) != 1 {
		return c.hopError(bctx, "invoke", method, fmt.Errorf("%w: %d reply messages, want 1", ErrProtocol, len(resp.msgs)))
	}
	if err := co.unmarshal(resp.msgs[0], reply); err != nil {
		return status.Errorf(codes.Internal, "grpc: failed to unmarshal the received message: %v", err)
	}
	return nil
}

func decodeResult(res cluster.Result, resp *response) error {
	var b []byte
	if err := res.Decode(&b); err != nil {
		return fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	return resp.unmarshal(b)
}

// err returns the upstream status of a finished call as gRPC would (nil
// for OK).
func (r *response) err() error {
	if !r.done {
		return nil
	}
	var p spb.Status
	if err := proto.Unmarshal(r.status, &p); err != nil {
		return status.Errorf(codes.Internal, "grpcshare: undecodable status from the leader: %v", err)
	}
	if codes.Code(p.Code) == codes.OK {
		return nil
	}
	return status.ErrorProto(&p)
}

// callOpts are the call options a Conn honours. The others are ignored,
// on every role (see the package doc).
type callOpts struct {
	codec   encoding.CodecV2
	subtype string
	comp    string
	ready   uint64
	header  *metadata.MD
	trailer *metadata.MD
	peer    *peer.Peer
}

func parseCallOptions(opts []grpc.CallOption) (callOpts, error) {
	var co callOpts
	for _, o := range opts {
		switch o := o.(type) {
		case grpc.HeaderCallOption:
			co.header = o.HeaderAddr
		case grpc.TrailerCallOption:
			co.trailer = o.TrailerAddr
		case grpc.PeerCallOption:
			co.peer = o.PeerAddr
		case grpc.FailFastCallOption:
			if o.FailFast {
				co.ready = 2
			} else {
				co.ready = 1
			}
		case grpc.CompressorCallOption:
			co.comp = o.CompressorType
		case grpc.ForceCodecV2CallOption:
			co.codec = o.CodecV2
		case grpc.ForceCodecCallOption:
			co.codec = codecV1{o.Codec}
		case grpc.ContentSubtypeCallOption:
			co.subtype = strings.ToLower(o.ContentSubtype)
		}
	}
	switch {
	case co.codec != nil:
		// As grpc-go: a forced codec names the content-subtype unless
		// CallContentSubtype did.
		if co.subtype == "" {
			co.subtype = strings.ToLower(co.codec.Name())
		}
	default:
		name := co.subtype
		if name == "" {
			name = "proto" // and no content-subtype, as grpc-go sends it
		}
		co.codec = encoding.GetCodecV2(name)
		if co.codec == nil {
			return co, status.Errorf(codes.Internal, "no codec registered for content-subtype %s", name)
		}
	}
	return co, nil
}

func (co *callOpts) marshal(v any) ([]byte, error) {
	bs, err := co.codec.Marshal(v)
	if err != nil {
		return nil, err
	}
	b := bs.Materialize()
	bs.Free()
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

func (co *callOpts) unmarshal(b []byte, v any) error {
	return co.codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, v)
}

// after fills the header, trailer and peer the caller asked for.
func (co *callOpts) after(r *response) {
	if co.header != nil && r.hasHeader {
		*co.header = r.header
	}
	if co.trailer != nil && r.done {
		*co.trailer = r.trailer
	}
	if co.peer != nil && r.peer != "" {
		*co.peer = peer.Peer{Addr: peerAddr{network: r.network, addr: r.peer}}
	}
}

// peerAddr is the upstream server's address as the leader saw it.
type peerAddr struct{ network, addr string }

func (a peerAddr) Network() string { return a.network }
func (a peerAddr) String() string  { return a.addr }

var _ net.Addr = peerAddr{}

// codecV1 adapts a grpc.ForceCodec codec.
type codecV1 struct{ c encoding.Codec }

func (c codecV1) Name() string { return c.c.Name() }
func (c codecV1) Marshal(v any) (mem.BufferSlice, error) {
	b, err := c.c.Marshal(v)
	if err != nil {
		return nil, err
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}
func (c codecV1) Unmarshal(data mem.BufferSlice, v any) error {
	return c.c.Unmarshal(data.Materialize(), v)
}

// Codes of this package's sentinels across the hop (cluster.RegisterErrorCode):
// a follower matches them with errors.Is as the leader does.
const (
	CodeStreamGone = "GRPCSHARE_STREAM_GONE"
	CodeProtocol   = "GRPCSHARE_PROTOCOL"
)

func init() {
	for sentinel, code := range map[error]string{ErrStreamGone: CodeStreamGone, ErrProtocol: CodeProtocol} {
		if err := cluster.RegisterErrorCode(sentinel, code); err != nil {
			panic(err)
		}
	}
}
