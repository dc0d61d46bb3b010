package grpcshare

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// maxBatch bounds the message bytes of one recv answer, well under the
// cluster's default frame limit (protocol.DefaultMaxAppLen, 16 MiB, which
// base64 inflates by a third). A single larger message still goes alone.
const maxBatch = 4 << 20

// upstream is the leader's side of one term: the one real connection and
// its server streams.
//
// Concurrency: the cluster's handler goroutines (one per call) and each
// stream's reader goroutine touch it. mu guards streams, nextID and
// closed. Lock order: a stream's mu, then upstream.mu (upstream.mu is a
// leaf: nothing is locked while it is held).
type upstream struct {
	name string
	cc   *grpc.ClientConn
	max  limits // the leader's own options: the budget of every caller's streams

	mu      sync.Mutex
	streams map[uint64]*lstream
	opening int // streams being opened (counted against max.streams)
	nextID  uint64
	closed  bool
}

// limits are the leader's bounds on the streams it holds for callers.
type limits struct {
	window  int           // messages waiting per stream
	idle    time.Duration // how long a stream nobody polls lives
	streams int           // streams open for the whole host
}

func newUpstream(name, target string, dial []grpc.DialOption, max limits) (*cluster.Service, error) {
	cc, err := grpc.NewClient(target, dial...)
	if err != nil {
		return nil, fmt.Errorf("grpcshare: channel %q: dial %s: %w", name, target, err)
	}
	cc.Connect() // the leader connects at once, as a process that dials itself would on its first call
	u := &upstream{name: name, cc: cc, max: max, streams: map[uint64]*lstream{}, nextID: rand.Uint64() >> 1}
	return &cluster.Service{
		Methods: map[string]cluster.Handler{
			methodUnary:  u.unary,
			methodOpen:   u.open,
			methodRecv:   u.recv,
			methodCancel: u.cancel,
			methodSend:   u.send,
			methodClose:  u.closeSend,
		},
		Close: u.close,
	}, nil
}

func (u *upstream) close(context.Context) error {
	u.mu.Lock()
	u.closed = true
	streams := u.streams
	u.streams = map[uint64]*lstream{}
	u.mu.Unlock()
	for _, s := range streams {
		s.stop()
	}
	return u.cc.Close()
}

func decodeArg(args cluster.Args, req *request) error {
	var b []byte
	if err := args.Decode(0, &b); err != nil {
		return fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	return req.unmarshal(b)
}

// rawCodec passes the caller's bytes through: the leader never sees the
// generated types. Its name is the content-subtype the caller's own gRPC
// would have sent ("" for the default proto codec, so none).
type rawCodec struct{ name string }

func (c rawCodec) Name() string { return c.name }

func (c rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("grpcshare: raw codec marshals *[]byte, not %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(*b)}, nil
}

func (c rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("grpcshare: raw codec unmarshals into *[]byte, not %T", v)
	}
	*b = data.Materialize()
	return nil
}

var (
	codecMu sync.Mutex
	codecs  = map[string]grpc.CallOption{}
)

// callOptions turns the forwarded call options into the real call's.
func (r *request) callOptions(extra ...grpc.CallOption) []grpc.CallOption {
	name := r.subtype // "": the default codec, and no content-subtype, as the caller's gRPC would send
	codecMu.Lock()
	fc, ok := codecs[name]
	if !ok {
		fc = grpc.ForceCodecV2(rawCodec{name: name})
		codecs[name] = fc
	}
	codecMu.Unlock()
	opts := append(extra, fc)
	switch r.ready {
	case 1:
		opts = append(opts, grpc.WaitForReady(true))
	case 2:
		opts = append(opts, grpc.WaitForReady(false))
	}
	if r.comp != "" {
		opts = append(opts, grpc.UseCompressor(r.comp))
	}
	return opts
}

func statusBytes(err error) []byte {
	st, _ := status.FromError(err)
	b, merr := proto.Marshal(st.Proto())
	if merr != nil {
		b, _ = proto.Marshal(status.New(codes.Internal, "grpcshare: status not marshallable: "+merr.Error()).Proto())
	}
	if b == nil {
		b = []byte{}
	}
	return b
}

// unary runs one unary call on the real connection, with the handler's
// context: it carries the caller's deadline and ends when the caller gives
// up, on either role.
func (u *upstream) unary(ctx context.Context, args cluster.Args) (any, error) {
	var req request
	if err := decodeArg(args, &req); err != nil {
		return nil, err
	}
	if req.md != nil {
		ctx = metadata.NewOutgoingContext(ctx, req.md)
	}
	var hdr, trl metadata.MD
	var p peer.Peer
	var out []byte
	msg := req.msg
	err := u.cc.Invoke(ctx, req.method, &msg, &out, req.callOptions(grpc.Header(&hdr), grpc.Trailer(&trl), grpc.Peer(&p))...)
	resp := response{header: hdr, hasHeader: hdr != nil, trailer: trl, done: true, status: statusBytes(err)}
	if err == nil {
		resp.msgs = [][]byte{out}
	}
	if p.Addr != nil {
		resp.peer, resp.network = p.Addr.String(), p.Addr.Network()
	}
	return resp.marshal(), nil
}

// lstream is one server stream on the leader.
//
// Concurrency: its reader goroutine (read) fills it; recv handlers (one
// at a time in practice: a caller polls sequentially) drain it; cancel,
// the idle timer and upstream.close stop it. mu guards every field below
// it; wake is closed (and replaced) whenever something a poll waits for
// changes.
type lstream struct {
	u      *upstream
	id     uint64
	window int
	idle   time.Duration
	cancel context.CancelFunc
	cs     grpc.ClientStream // set before the stream is in the table

	// sendMu orders SendMsg and CloseSend on cs (the caller sends one at a
	// time; this keeps a confused caller from breaking gRPC's rule).
	sendMu sync.Mutex

	mu        sync.Mutex
	wake      chan struct{}
	msgs      [][]byte
	header    metadata.MD
	hasHeader bool
	hdrSent   bool
	done      bool
	status    []byte
	trailer   metadata.MD
	peer      peer.Peer
	polls     int
	lastPoll  time.Time // when the last poll started or ended
	timer     *time.Timer
	stopped   bool
}

// notify wakes the polls and the reader. Called with mu held.
func (s *lstream) notify() {
	close(s.wake)
	s.wake = make(chan struct{})
}

// stop cancels the upstream stream; the reader then ends it.
func (s *lstream) stop() {
	s.mu.Lock()
	s.stopped = true
	if s.timer != nil {
		s.timer.Stop()
	}
	s.notify()
	s.mu.Unlock()
	s.cancel()
}

func (u *upstream) remove(id uint64) {
	u.mu.Lock()
	delete(u.streams, id)
	u.mu.Unlock()
}

// open starts a stream upstream: for a server-streaming call it sends the
// request and closes the sending side; for a client-streaming or bidi call
// the caller's grpc.send and grpc.closesend calls do.
func (u *upstream) open(ctx context.Context, args cluster.Args) (any, error) {
	var req request
	if err := decodeArg(args, &req); err != nil {
		return nil, err
	}
	// A stream the host's budget has no room for is refused before it
	// costs anything upstream.
	u.mu.Lock()
	if n := len(u.streams) + u.opening; n >= u.max.streams {
		u.mu.Unlock()
		err := status.Errorf(codes.ResourceExhausted, "grpcshare: channel %q: %d streams open on the leader (WithMaxStreams)", u.name, n)
		return (&response{done: true, status: statusBytes(err)}).marshal(), nil
	}
	u.opening++
	u.mu.Unlock()
	defer func() {
		u.mu.Lock()
		u.opening--
		u.mu.Unlock()
	}()
	// The stream outlives this call: its context is its own, with the
	// caller's deadline and metadata, ended by cancel, the idle timer or
	// the end of the term.
	var sctx context.Context
	var cancel context.CancelFunc
	if req.timeout > 0 {
		sctx, cancel = context.WithTimeout(context.Background(), req.timeout)
	} else {
		sctx, cancel = context.WithCancel(context.Background())
	}
	if req.md != nil {
		sctx = metadata.NewOutgoingContext(sctx, req.md)
	}
	// NewStream may wait for the connection: not longer than the caller.
	stopWait := context.AfterFunc(ctx, cancel)
	window := int(min(req.max, uint64(u.max.window)))
	if window < 1 {
		window = u.max.window
	}
	idle := min(req.idle, u.max.idle)
	if idle <= 0 {
		idle = u.max.idle
	}
	s := &lstream{u: u, window: window, idle: idle, cancel: cancel, wake: make(chan struct{}), lastPoll: time.Now()}
	desc := &grpc.StreamDesc{ServerStreams: true, ClientStreams: req.client}
	cs, err := u.cc.NewStream(sctx, desc, req.method, req.callOptions(grpc.Peer(&s.peer))...)
	s.cs = cs
	if err == nil && !req.client {
		msg := req.msg
		if err = cs.SendMsg(&msg); err == nil {
			err = cs.CloseSend()
		}
		if err == io.EOF {
			err = nil // the stream ended already: RecvMsg tells how
		}
	}
	if !stopWait() || err != nil {
		cancel()
		if err == nil {
			err = ctx.Err()
		}
		return (&response{done: true, status: statusBytes(err)}).marshal(), nil
	}
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		cancel()
		return (&response{done: true, status: statusBytes(status.Error(codes.Unavailable, "grpcshare: the leader is closing"))}).marshal(), nil
	}
	u.nextID++
	s.id = u.nextID
	s.timer = time.AfterFunc(idle, s.expire) // before any recv can find s
	u.streams[s.id] = s
	u.mu.Unlock()
	go s.read(sctx, cs)
	return (&response{id: s.id}).marshal(), nil
}

// expire ends a stream nobody polled for the idle timeout. The timer may
// fire while a poll starts (Stop came too late): a poll since then keeps
// the stream, and the timer is armed again for what is left.
func (s *lstream) expire() {
	s.mu.Lock()
	since := time.Since(s.lastPoll)
	idle := s.polls == 0 && !s.stopped && since >= s.idle
	if !idle && s.polls == 0 && !s.stopped {
		s.timer.Reset(s.idle - since)
	}
	s.mu.Unlock()
	if idle {
		s.u.remove(s.id)
		s.stop()
	}
}

// read moves the upstream stream's header, messages and end into s,
// waiting while the window is full (HTTP/2 flow control then holds the
// server back).
func (s *lstream) read(ctx context.Context, cs grpc.ClientStream) {
	hdr, herr := cs.Header()
	s.mu.Lock()
	if herr == nil {
		s.header, s.hasHeader = hdr, true
		if hdr == nil {
			s.header = metadata.MD{}
		}
	}
	s.notify()
	s.mu.Unlock()
	var err error
	for {
		var m []byte
		if err = cs.RecvMsg(&m); err != nil {
			break
		}
		s.mu.Lock()
		s.msgs = append(s.msgs, m)
		s.notify()
		for len(s.msgs) >= s.window && !s.stopped {
			wake := s.wake
			s.mu.Unlock()
			select {
			case <-wake:
			case <-ctx.Done():
			}
			s.mu.Lock()
			if ctx.Err() != nil {
				break
			}
		}
		s.mu.Unlock()
	}
	if err == io.EOF {
		err = nil
	}
	s.mu.Lock()
	s.done, s.status, s.trailer = true, statusBytes(err), cs.Trailer()
	s.notify()
	s.mu.Unlock()
	s.cancel() // frees the stream's context; the upstream call is over
}

// recv answers a poll: the waiting messages (up to the caller's room),
// the header once, and the end once every message went out. With nothing
// to say it holds the poll up to the caller's hold.
func (u *upstream) recv(ctx context.Context, args cluster.Args) (any, error) {
	s, req, err := u.stream(args)
	if err != nil {
		return nil, err
	}
	hold := req.hold
	if hold <= 0 || hold > s.idle/2 {
		hold = s.idle / 2
	}
	var timeout <-chan time.Time
	s.mu.Lock()
	s.polls++
	s.lastPoll = time.Now()
	s.timer.Stop()
	defer func() {
		s.polls--
		s.lastPoll = time.Now()
		if s.polls == 0 && !s.stopped {
			s.timer.Reset(s.idle)
		}
		s.mu.Unlock()
	}()
	for {
		var resp response
		if s.hasHeader && !s.hdrSent {
			resp.header, resp.hasHeader, s.hdrSent = s.header, true, true
		}
		if n := len(s.msgs); n > 0 && req.max > 0 {
			size, k := 0, 0
			for k < n && uint64(k) < req.max && (k == 0 || size+len(s.msgs[k]) <= maxBatch) {
				size += len(s.msgs[k])
				k++
			}
			resp.msgs = append([][]byte(nil), s.msgs[:k]...)
			s.msgs = append(s.msgs[:0], s.msgs[k:]...)
			s.notify() // room for the reader
		}
		if s.done && len(s.msgs) == 0 {
			resp.done, resp.status, resp.trailer = true, s.status, s.trailer
			if s.peer.Addr != nil {
				resp.peer, resp.network = s.peer.Addr.String(), s.peer.Addr.Network()
			}
			s.stopped = true
			s.timer.Stop()
			u.remove(s.id) // s.mu, then u.mu: the lock order
		}
		if resp.hasHeader || len(resp.msgs) > 0 || resp.done || req.max == 0 {
			return resp.marshal(), nil
		}
		if s.stopped {
			return nil, fmt.Errorf("%w: stream %d of %s was cancelled", ErrStreamGone, req.id, req.method)
		}
		if timeout == nil {
			t := time.NewTimer(hold)
			defer t.Stop()
			timeout = t.C
		}
		wake := s.wake
		s.mu.Unlock()
		select {
		case <-wake:
		case <-timeout:
			s.mu.Lock()
			return (&response{}).marshal(), nil
		case <-ctx.Done():
			s.mu.Lock()
			return nil, ctx.Err()
		}
		s.mu.Lock()
	}
}

// send sends one message of a client-streaming or bidi call upstream. It
// returns once gRPC took it (HTTP/2 flow control may hold it), so a
// caller's SendMsg has the pace of the server's reading.
func (u *upstream) send(_ context.Context, args cluster.Args) (any, error) {
	return u.onSend(args, func(cs grpc.ClientStream, req *request) error {
		msg := req.msg
		return cs.SendMsg(&msg)
	})
}

// closeSend closes the sending side of a client-streaming or bidi call.
func (u *upstream) closeSend(_ context.Context, args cluster.Args) (any, error) {
	return u.onSend(args, func(cs grpc.ClientStream, _ *request) error { return cs.CloseSend() })
}

// stream decodes a stream call's request and finds its stream, or fails
// with ErrStreamGone.
func (u *upstream) stream(args cluster.Args) (*lstream, *request, error) {
	req := new(request)
	if err := decodeArg(args, req); err != nil {
		return nil, nil, err
	}
	u.mu.Lock()
	s := u.streams[req.id]
	u.mu.Unlock()
	if s == nil {
		return nil, nil, fmt.Errorf("%w: stream %d of %s", ErrStreamGone, req.id, req.method)
	}
	return s, req, nil
}

func (u *upstream) onSend(args cluster.Args, f func(grpc.ClientStream, *request) error) (any, error) {
	s, req, err := u.stream(args)
	if err != nil {
		return nil, err
	}
	s.sendMu.Lock()
	err = f(s.cs, req)
	s.sendMu.Unlock()
	if err != nil {
		// io.EOF or another error: the stream is over upstream, and its
		// status reaches the caller through recv, as with gRPC itself.
		return (&response{eof: true}).marshal(), nil
	}
	return (&response{}).marshal(), nil
}

// cancel ends a stream at its caller's request: the upstream server sees
// the cancellation.
func (u *upstream) cancel(_ context.Context, args cluster.Args) (any, error) {
	var req request
	if err := decodeArg(args, &req); err != nil {
		return nil, err
	}
	u.mu.Lock()
	s := u.streams[req.id]
	delete(u.streams, req.id)
	u.mu.Unlock()
	if s != nil {
		s.stop()
	}
	return nil, nil
}
