package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
)

// echoMethod is the one unary method: it answers its request bytes.
const echoMethod = "/grpcecho.Echo/Echo"

// rawCodec is a gRPC codec for []byte messages: the bytes travel as they
// are, with no protobuf (and no code generation) in between, as a Go user
// comparing transports would set it up. Unmarshal copies: gRPC may reuse
// the buffer it decodes from.
type rawCodec struct{}

func (rawCodec) Name() string { return "raw" }

func (rawCodec) Marshal(v any) ([]byte, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("grpcecho: raw codec marshals *[]byte, not %T", v)
	}
	return *b, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("grpcecho: raw codec unmarshals into *[]byte, not %T", v)
	}
	*b = append((*b)[:0], data...)
	return nil
}

var _ encoding.Codec = rawCodec{}

// echoService is the service description gRPC's generated code would
// give: one unary method that returns its request.
var echoService = grpc.ServiceDesc{
	ServiceName: "grpcecho.Echo",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Echo",
		Handler: func(_ any, ctx context.Context, dec func(any) error, icp grpc.UnaryServerInterceptor) (any, error) {
			var req []byte
			if err := dec(&req); err != nil {
				return nil, err
			}
			return &req, nil
		},
	}},
}

// server is a gRPC server answering echoMethod on a loopback TCP port.
type server struct {
	srv  *grpc.Server
	addr string
	done chan error
}

// listen starts a server on addr ("127.0.0.1:0" for any free port).
func listen(addr string) (*server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}))
	srv.RegisterService(&echoService, struct{}{})
	s := &server{srv: srv, addr: ln.Addr().String(), done: make(chan error, 1)}
	go func() { s.done <- srv.Serve(ln) }()
	return s, nil
}

func (s *server) close() {
	s.srv.Stop()
	<-s.done
}

// client is one connection (one HTTP/2 session) to the server.
type client struct {
	cc *grpc.ClientConn
}

// dial connects to addr and makes one call, so that the connection is up
// before anything is measured.
func dial(ctx context.Context, addr string) (*client, error) {
	cc, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
	if err != nil {
		return nil, err
	}
	c := &client{cc: cc}
	if err := c.echo(ctx, []byte("hello"), new([]byte)); err != nil {
		cc.Close()
		return nil, fmt.Errorf("first call to %s: %w", addr, err)
	}
	return c, nil
}

func (c *client) close() { c.cc.Close() }

// echo calls echoMethod with msg and checks that the answer is msg.
func (c *client) echo(ctx context.Context, msg []byte, back *[]byte) error {
	if err := c.cc.Invoke(ctx, echoMethod, &msg, back); err != nil {
		return err
	}
	if !bytes.Equal(*back, msg) {
		return errEchoMismatch
	}
	return nil
}

var errEchoMismatch = errors.New("grpcecho: the echo returned other bytes than sent")

// pingPongArgs, samplesReply, loadArgs and loadReply are clusterbench's
// (internal/clusterbench/raw.go): the same requests and replies as its raw
// client's, so clusterbench drives this program as it drives its own
// children.
type pingPongArgs struct {
	Size     int   `json:"size"`
	Duration int64 `json:"duration_ns"`
	Warmup   int64 `json:"warmup_ns"`
	// Calls, when positive, ends the run after that many sampled calls
	// (for tests) instead of after Duration.
	Calls int `json:"calls,omitempty"`
}

type samplesReply struct {
	Samples []int64 `json:"samples"`
}

type loadArgs struct {
	Size     int   `json:"size"`
	InFlight int   `json:"inflight"`
	Start    int64 `json:"start_ns"` // monoNow clock
	Duration int64 `json:"duration_ns"`
}

type loadReply struct {
	Ops     int64  `json:"ops"`
	Elapsed int64  `json:"elapsed_ns"`
	Failed  int64  `json:"failed,omitempty"`
	Error   string `json:"error,omitempty"`
}

// pingPong makes sequential calls of p.Size bytes and returns the
// latency of each call after the warm-up.
func (c *client) pingPong(ctx context.Context, p pingPongArgs) ([]int64, error) {
	msg := bytes.Repeat([]byte{'x'}, max(p.Size, 1))
	back := make([]byte, 0, len(msg))
	samples := make([]int64, 0, 1<<16)
	now := time.Now()
	warmEnd, end := now.Add(time.Duration(p.Warmup)), now.Add(time.Duration(p.Warmup+p.Duration))
	for {
		start := time.Now()
		if err := c.echo(ctx, msg, &back); err != nil {
			return nil, fmt.Errorf("ping-pong: %w", err)
		}
		done := time.Now()
		if start.After(warmEnd) || p.Calls > 0 {
			samples = append(samples, done.Sub(start).Nanoseconds())
		}
		if p.Calls > 0 && len(samples) >= p.Calls || p.Calls <= 0 && done.After(end) && len(samples) > 0 {
			return samples, nil
		}
	}
}

// load keeps p.InFlight calls of p.Size bytes outstanding on the one
// connection, each from a goroutine of its own, from p.Start until
// p.Duration has passed; the calls in flight then finish and count.
func (c *client) load(ctx context.Context, p loadArgs) loadReply {
	if d := p.Start - monoNow(); d > 0 {
		time.Sleep(time.Duration(d))
	}
	end := p.Start + p.Duration
	var ops, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range max(p.InFlight, 1) {
		wg.Go(func() {
			msg := bytes.Repeat([]byte{'x'}, max(p.Size, 1))
			back := make([]byte, 0, len(msg))
			for monoNow() < end {
				if err := c.echo(ctx, msg, &back); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					if ctx.Err() != nil {
						return
					}
					continue
				}
				ops.Add(1)
			}
		})
	}
	wg.Wait()
	rep := loadReply{Ops: ops.Load(), Elapsed: monoNow() - p.Start, Failed: failed.Load()}
	if s, ok := firstErr.Load().(string); ok {
		rep.Error = s
	}
	return rep
}
