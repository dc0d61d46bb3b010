package grpcshare_test

import (
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The test service, written by hand as protoc would generate it:
//
//	service Probe {
//	  rpc Echo(StringValue) returns (StringValue);            // see echo
//	  rpc Count(UInt32Value) returns (stream UInt32Value);    // n messages 0..n-1, then OK
//	  rpc CountFail(UInt32Value) returns (stream UInt32Value); // n messages, then ABORTED with details
//	  rpc Forever(UInt32Value) returns (stream UInt32Value);  // until cancelled
//	  rpc Collect(stream UInt32Value) returns (UInt32Value);  // the sum; INVALID_ARGUMENT on a 13
//	  rpc Chat(stream UInt32Value) returns (stream UInt32Value); // each value doubled, at once
//	}
const probeService = "grpcshare.test.Probe"

// probeServer records what the handlers saw, for the tests to check.
type probeServer struct {
	// ends receives, for each "wait" call and each Forever stream, how
	// its context ended and whether it had a deadline.
	ends chan ctxEnd
	// started receives the method of each "wait" call and Forever stream
	// once its handler runs.
	started chan string
}

type ctxEnd struct {
	method      string
	err         error
	hadDeadline bool
}

func (p *probeServer) start(method string) {
	select {
	case p.started <- method:
	default:
	}
}

func (p *probeServer) recordEnd(ctx context.Context, method string) {
	_, dl := ctx.Deadline()
	select {
	case p.ends <- ctxEnd{method: method, err: ctx.Err(), hadDeadline: dl}:
	default:
	}
}

// echo answers by its request's value:
//   - "md": the header echoes the request's x-* metadata as echo-*, the
//     trailer as trail-*;
//   - "fail": FAILED_PRECONDITION with a StringValue detail and a trailer;
//   - "wait": waits for the call's context to end and records how;
//   - anything else: the value itself.
func (p *probeServer) echo(ctx context.Context, req *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
	switch req.Value {
	case "md":
		in, _ := metadata.FromIncomingContext(ctx)
		hdr, trl := metadata.MD{}, metadata.MD{}
		for k, vs := range in {
			if strings.HasPrefix(k, "x-") {
				hdr["echo-"+k] = vs
				trl["trail-"+k] = vs
			}
		}
		if err := grpc.SetHeader(ctx, hdr); err != nil {
			return nil, err
		}
		if err := grpc.SetTrailer(ctx, trl); err != nil {
			return nil, err
		}
		return wrapperspb.String("ok"), nil
	case "fail":
		_ = grpc.SetTrailer(ctx, metadata.Pairs("x-fail", "yes"))
		st, err := status.New(codes.FailedPrecondition, "precondition failed").WithDetails(wrapperspb.String("detail-1"))
		if err != nil {
			return nil, err
		}
		return nil, st.Err()
	case "wait":
		p.start("Echo")
		<-ctx.Done()
		p.recordEnd(ctx, "Echo")
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	return wrapperspb.String(req.Value), nil
}

func (p *probeServer) count(req *wrapperspb.UInt32Value, ss grpc.ServerStream, fail bool) error {
	if err := ss.SendHeader(metadata.Pairs("x-stream", "count")); err != nil {
		return err
	}
	for i := uint32(0); i < req.Value; i++ {
		if err := ss.SendMsg(wrapperspb.UInt32(i)); err != nil {
			return err
		}
	}
	ss.SetTrailer(metadata.Pairs("x-end", "done"))
	if fail {
		st, _ := status.New(codes.Aborted, "aborted after the messages").WithDetails(wrapperspb.UInt32(req.Value))
		return st.Err()
	}
	return nil
}

func (p *probeServer) forever(_ *wrapperspb.UInt32Value, ss grpc.ServerStream) error {
	p.start("Forever")
	for i := uint32(0); ; i++ {
		if err := ss.SendMsg(wrapperspb.UInt32(i)); err != nil {
			// A reset stream can fail SendMsg a moment before gRPC
			// cancels the stream's context: record the context's end.
			select {
			case <-ss.Context().Done():
			case <-time.After(5 * time.Second):
			}
			p.recordEnd(ss.Context(), "Forever")
			return err
		}
		if ss.Context().Err() != nil {
			p.recordEnd(ss.Context(), "Forever")
			return ss.Context().Err()
		}
	}
}

func streamHandler(f func(*probeServer, *wrapperspb.UInt32Value, grpc.ServerStream) error) grpc.StreamHandler {
	return func(srv any, ss grpc.ServerStream) error {
		req := new(wrapperspb.UInt32Value)
		if err := ss.RecvMsg(req); err != nil {
			return err
		}
		return f(srv.(*probeServer), req, ss)
	}
}

var probeDesc = grpc.ServiceDesc{
	ServiceName: probeService,
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Echo",
		Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			req := new(wrapperspb.StringValue)
			if err := dec(req); err != nil {
				return nil, err
			}
			return srv.(*probeServer).echo(ctx, req)
		},
	}},
	Streams: []grpc.StreamDesc{
		{StreamName: "Count", ServerStreams: true, Handler: streamHandler(func(p *probeServer, r *wrapperspb.UInt32Value, ss grpc.ServerStream) error {
			return p.count(r, ss, false)
		})},
		{StreamName: "CountFail", ServerStreams: true, Handler: streamHandler(func(p *probeServer, r *wrapperspb.UInt32Value, ss grpc.ServerStream) error {
			return p.count(r, ss, true)
		})},
		{StreamName: "Forever", ServerStreams: true, Handler: streamHandler((*probeServer).forever)},
		{StreamName: "Collect", ClientStreams: true, Handler: func(_ any, ss grpc.ServerStream) error {
			var sum, n uint32
			for {
				m := new(wrapperspb.UInt32Value)
				err := ss.RecvMsg(m)
				if err == io.EOF {
					ss.SetTrailer(metadata.Pairs("x-count", strconv.Itoa(int(n))))
					return ss.SendMsg(wrapperspb.UInt32(sum))
				}
				if err != nil {
					return err
				}
				if m.Value == 13 {
					return status.Error(codes.InvalidArgument, "13 is not welcome")
				}
				sum += m.Value
				n++
			}
		}},
		{StreamName: "Chat", ServerStreams: true, ClientStreams: true, Handler: func(_ any, ss grpc.ServerStream) error {
			for {
				m := new(wrapperspb.UInt32Value)
				err := ss.RecvMsg(m)
				if err == io.EOF {
					return nil
				}
				if err != nil {
					return err
				}
				if err := ss.SendMsg(wrapperspb.UInt32(2 * m.Value)); err != nil {
					return err
				}
			}
		}},
	},
}

// The client side, as generated code would write it.
func echo(ctx context.Context, cc grpc.ClientConnInterface, v string, opts ...grpc.CallOption) (string, error) {
	out := new(wrapperspb.StringValue)
	err := cc.Invoke(ctx, "/"+probeService+"/Echo", wrapperspb.String(v), out, opts...)
	return out.GetValue(), err
}

func openStream(ctx context.Context, cc grpc.ClientConnInterface, name string, n uint32, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	desc := &probeDesc.Streams[0]
	for i := range probeDesc.Streams {
		if probeDesc.Streams[i].StreamName == name {
			desc = &probeDesc.Streams[i]
		}
	}
	s, err := cc.NewStream(ctx, desc, "/"+probeService+"/"+name, opts...)
	if err != nil {
		return nil, err
	}
	if err := s.SendMsg(wrapperspb.UInt32(n)); err != nil {
		return nil, err
	}
	if err := s.CloseSend(); err != nil {
		return nil, err
	}
	return s, nil
}

// connCounter is a stats.Handler that counts the server's HTTP/2
// connections: the number the issue asks to see as 1.
type connCounter struct {
	open, total atomic.Int64
}

func (c *connCounter) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context   { return ctx }
func (c *connCounter) HandleRPC(context.Context, stats.RPCStats)                         {}
func (c *connCounter) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (c *connCounter) HandleConn(_ context.Context, s stats.ConnStats) {
	switch s.(type) {
	case *stats.ConnBegin:
		c.open.Add(1)
		c.total.Add(1)
	case *stats.ConnEnd:
		c.open.Add(-1)
	}
}

// testServer is a real gRPC server on a loopback port: the health
// service (with "probe" SERVING) and the probe service.
type testServer struct {
	addr  string
	probe *probeServer
	conns *connCounter
	srv   *grpc.Server
}

func startServer(tb testing.TB) *testServer {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ts := &testServer{addr: ln.Addr().String(), probe: &probeServer{ends: make(chan ctxEnd, 64), started: make(chan string, 64)}, conns: &connCounter{}}
	ts.srv = grpc.NewServer(grpc.StatsHandler(ts.conns))
	hs := health.NewServer()
	hs.SetServingStatus("probe", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(ts.srv, hs)
	ts.srv.RegisterService(&probeDesc, ts.probe)
	done := make(chan struct{})
	go func() { defer close(done); _ = ts.srv.Serve(ln) }()
	tb.Cleanup(func() { ts.srv.Stop(); <-done })
	return ts
}

// nextStart waits for a "wait" call or a Forever stream to reach its
// handler.
func (ts *testServer) nextStart(tb testing.TB, method string) {
	tb.Helper()
	deadline := time.After(testTimeout)
	for {
		select {
		case m := <-ts.probe.started:
			if m == method {
				return
			}
		case <-deadline:
			tb.Fatalf("no %s call reached the server within %v", method, testTimeout)
		}
	}
}

// nextEnd waits for the server to record how a call's context ended.
func (ts *testServer) nextEnd(tb testing.TB, method string) ctxEnd {
	tb.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case e := <-ts.probe.ends:
			if e.method == method {
				return e
			}
		case <-deadline:
			tb.Fatalf("the server saw no end of a %s call within 10 s", method)
			return ctxEnd{}
		}
	}
}

// drain reads s until it ends and returns how (err itself if it is
// already an error: the stream ended before).
func drain(s grpc.ClientStream, err error) error {
	for err == nil {
		err = s.RecvMsg(new(wrapperspb.UInt32Value))
	}
	return err
}
