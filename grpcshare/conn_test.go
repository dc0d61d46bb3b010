package grpcshare_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/grpcshare"
	"github.com/go-clusterclient/clusterclient/internal/childproc"
	"github.com/go-clusterclient/clusterclient/transport/transporttest"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestMain(m *testing.M) {
	childproc.Main(map[string]func(args []string) int{
		"worker": workerMain,
		"leader": leaderMain,
	})
	goleak.VerifyTestMain(m)
}

const testTimeout = 20 * time.Second

// quiet drops the cluster's logs: the tests check events, not lines.
var quiet = slog.New(slog.DiscardHandler)

// pair is a leader and a follower of one channel in this process (each
// Client its own member over a real loopback connection), the server,
// and a direct gRPC connection to compare with.
type pair struct {
	ts       *testServer
	leader   *grpcshare.Conn
	follower *grpcshare.Conn
	direct   *grpc.ClientConn
}

func newPair(t *testing.T, opts ...grpcshare.Option) *pair {
	t.Helper()
	return newPairOf(t, opts, opts)
}

// newPairOf is newPair with the leader's and the follower's own options.
func newPairOf(t *testing.T, leaderOpts, followerOpts []grpcshare.Option) *pair {
	t.Helper()
	ts := startServer(t)
	addr := transporttest.FreeAddr(t, "tcp", "127.0.0.1")
	mk := func(mode cluster.Mode) *grpcshare.Conn {
		opts := followerOpts
		if mode == cluster.ForceLeader {
			opts = leaderOpts
		}
		o := append([]grpcshare.Option{
			grpcshare.WithDialOptions(grpc.WithTransportCredentials(insecure.NewCredentials())),
			grpcshare.WithClusterOptions(cluster.WithAddr(addr), cluster.WithMode(mode), cluster.WithLogger(quiet)),
		}, opts...)
		c, err := grpcshare.New("grpcshare-test", ts.addr, o...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := c.Client().Ready(ctx); err != nil {
			t.Fatal(err)
		}
		return c
	}
	p := &pair{ts: ts, leader: mk(cluster.ForceLeader)}
	p.follower = mk(cluster.ForceFollower)
	if !p.leader.Client().IsLeader() || p.follower.Client().IsLeader() {
		t.Fatalf("roles: leader %v, follower %v", p.leader.Client().Role(), p.follower.Client().Role())
	}
	direct, err := grpc.NewClient(ts.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = direct.Close() })
	p.direct = direct
	return p
}

// roles runs f with the caller as leader, as follower, and (as the
// reference) on a direct gRPC connection.
func (p *pair) roles(t *testing.T, f func(t *testing.T, cc grpc.ClientConnInterface)) {
	for _, r := range []struct {
		name string
		cc   grpc.ClientConnInterface
	}{{"leader", p.leader}, {"follower", p.follower}, {"direct", p.direct}} {
		t.Run(r.name, func(t *testing.T) { f(t, r.cc) })
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// sameStatus checks that every role gives the status the first one gave
// (direct, then leader, then follower).
type sameStatus struct{ first *status.Status }

func (s *sameStatus) check(t *testing.T, role string, st *status.Status) {
	t.Helper()
	if s.first == nil {
		s.first = st
	} else if !proto.Equal(st.Proto(), s.first.Proto()) {
		t.Errorf("%s status %v, the first role gave %v", role, st.Proto(), s.first.Proto())
	}
}

// A generated stub (the health client) works unchanged on every role, and
// its errors have the same status as on a direct connection.
func TestHealthStub(t *testing.T) {
	p := newPair(t)
	var want sameStatus
	for _, name := range []string{"direct", "leader", "follower"} {
		cc := map[string]grpc.ClientConnInterface{"direct": p.direct, "leader": p.leader, "follower": p.follower}[name]
		hc := healthpb.NewHealthClient(cc)
		resp, err := hc.Check(testCtx(t), &healthpb.HealthCheckRequest{Service: "probe"})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("%s: Check(probe) = %v, %v; want SERVING", name, resp, err)
		}
		_, err = hc.Check(testCtx(t), &healthpb.HealthCheckRequest{Service: "nope"})
		st, _ := status.FromError(err)
		if st.Code() != codes.NotFound {
			t.Fatalf("%s: Check(nope) = %v, want NotFound", name, err)
		}
		want.check(t, name, st)
	}
}

// Code, message and details of an upstream error, and its trailer, are
// the same on every role.
func TestStatusDetailsAndTrailer(t *testing.T) {
	p := newPair(t)
	var want sameStatus
	p.roles(t, func(t *testing.T, cc grpc.ClientConnInterface) {
		var trl metadata.MD
		_, err := echo(testCtx(t), cc, "fail", grpc.Trailer(&trl))
		st, ok := status.FromError(err)
		if !ok || st.Code() != codes.FailedPrecondition || st.Message() != "precondition failed" {
			t.Fatalf("err %v, want FailedPrecondition", err)
		}
		if d := st.Details(); len(d) != 1 || d[0].(*wrapperspb.StringValue).GetValue() != "detail-1" {
			t.Errorf("details %v", d)
		}
		if got := trl.Get("x-fail"); len(got) != 1 || got[0] != "yes" {
			t.Errorf("trailer %v", trl)
		}
		want.check(t, "", st)
	})
}

// Outgoing metadata, multi-valued and binary, reaches the server as sent,
// and the header and trailer come back as the server set them.
func TestMetadataHeaderTrailer(t *testing.T) {
	p := newPair(t)
	bin := string([]byte{0, 0xff, 1, '\n', 0x80})
	p.roles(t, func(t *testing.T, cc grpc.ClientConnInterface) {
		ctx := metadata.AppendToOutgoingContext(testCtx(t), "x-a", "1", "x-a", "2", "x-data-bin", bin, "x-empty", "")
		var hdr, trl metadata.MD
		v, err := echo(ctx, cc, "md", grpc.Header(&hdr), grpc.Trailer(&trl))
		if err != nil || v != "ok" {
			t.Fatalf("echo md = %q, %v", v, err)
		}
		for _, c := range []struct {
			md   metadata.MD
			key  string
			want []string
		}{
			{hdr, "echo-x-a", []string{"1", "2"}}, {hdr, "echo-x-data-bin", []string{bin}}, {hdr, "echo-x-empty", []string{""}},
			{trl, "trail-x-a", []string{"1", "2"}}, {trl, "trail-x-data-bin", []string{bin}},
		} {
			if got := c.md.Get(c.key); len(got) != len(c.want) || (len(got) > 0 && got[0] != c.want[0]) || (len(got) > 1 && got[1] != c.want[1]) {
				t.Errorf("%s = %q, want %q (header %v, trailer %v)", c.key, got, c.want, hdr, trl)
			}
		}
	})
}

// The caller's deadline is the upstream call's: the server sees it, and
// the caller gets DeadlineExceeded.
func TestDeadline(t *testing.T) {
	p := newPair(t)
	p.roles(t, func(t *testing.T, cc grpc.ClientConnInterface) {
		ctx, cancel := context.WithTimeout(testCtx(t), 300*time.Millisecond)
		defer cancel()
		_, err := echo(ctx, cc, "wait")
		if status.Code(err) != codes.DeadlineExceeded {
			t.Fatalf("err %v, want DeadlineExceeded", err)
		}
		// The server's context ends by its own timer (DeadlineExceeded)
		// or by the client's RST_STREAM when the client's timer fired
		// first (Canceled): a race within gRPC, direct calls too.
		end := p.ts.nextEnd(t, "Echo")
		if !end.hadDeadline || end.err == nil {
			t.Errorf("the server's call ended with %v (deadline %v), want its deadline", end.err, end.hadDeadline)
		}
	})
}

// A call without deadline gets the call timeout, on every role.
func TestCallTimeout(t *testing.T) {
	p := newPair(t, grpcshare.WithCallTimeout(300*time.Millisecond))
	for _, cc := range []*grpcshare.Conn{p.leader, p.follower} {
		_, err := echo(context.Background(), cc, "wait")
		if status.Code(err) != codes.DeadlineExceeded {
			t.Fatalf("err %v, want DeadlineExceeded", err)
		}
		if end := p.ts.nextEnd(t, "Echo"); !end.hadDeadline {
			t.Errorf("the server's call had no deadline")
		}
	}
}

// A caller that cancels cancels the upstream call.
func TestCancel(t *testing.T) {
	p := newPair(t)
	p.roles(t, func(t *testing.T, cc grpc.ClientConnInterface) {
		ctx, cancel := context.WithCancel(testCtx(t))
		errc := make(chan error, 1)
		go func() { _, err := echo(ctx, cc, "wait"); errc <- err }()
		p.ts.nextStart(t, "Echo") // the call is in flight upstream
		cancel()
		if err := <-errc; status.Code(err) != codes.Canceled {
			t.Fatalf("err %v, want Canceled", err)
		}
		if end := p.ts.nextEnd(t, "Echo"); !errors.Is(end.err, context.Canceled) {
			t.Errorf("the server's call ended with %v, want Canceled", end.err)
		}
	})
}

// Server streaming: every message in order through windows much smaller
// than the stream, the header, then io.EOF and the trailer.
func TestServerStream(t *testing.T) {
	p := newPair(t, grpcshare.WithStreamWindow(4))
	const n = 300
	p.roles(t, func(t *testing.T, cc grpc.ClientConnInterface) {
		s, err := openStream(testCtx(t), cc, "Count", n)
		if err != nil {
			t.Fatal(err)
		}
		hdr, err := s.Header()
		if err != nil || len(hdr.Get("x-stream")) != 1 || hdr.Get("x-stream")[0] != "count" {
			t.Errorf("header %v, %v", hdr, err)
		}
		for i := uint32(0); i < n; i++ {
			m := new(wrapperspb.UInt32Value)
			if err := s.RecvMsg(m); err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			if m.Value != i {
				t.Fatalf("message %d is %d", i, m.Value)
			}
		}
		if err := s.RecvMsg(new(wrapperspb.UInt32Value)); err != io.EOF {
			t.Fatalf("after the messages: %v, want io.EOF", err)
		}
		if got := s.Trailer().Get("x-end"); len(got) != 1 || got[0] != "done" {
			t.Errorf("trailer %v", s.Trailer())
		}
	})
}

// A stream that ends with an error delivers its messages, then the same
// status as a direct stream.
func TestServerStreamStatus(t *testing.T) {
	p := newPair(t)
	var want sameStatus
	p.roles(t, func(t *testing.T, cc grpc.ClientConnInterface) {
		s, err := openStream(testCtx(t), cc, "CountFail", 5)
		if err != nil {
			t.Fatal(err)
		}
		var got int
		for {
			if err = s.RecvMsg(new(wrapperspb.UInt32Value)); err != nil {
				break
			}
			got++
		}
		st, _ := status.FromError(err)
		if got != 5 || st.Code() != codes.Aborted {
			t.Fatalf("%d messages then %v, want 5 then Aborted", got, err)
		}
		want.check(t, "", st)
	})
}

// Cancelling a stream's context cancels the upstream stream.
func TestServerStreamCancel(t *testing.T) {
	p := newPair(t)
	p.roles(t, func(t *testing.T, cc grpc.ClientConnInterface) {
		ctx, cancel := context.WithCancel(testCtx(t))
		defer cancel()
		s, err := openStream(ctx, cc, "Forever", 0)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 10; i++ {
			if err := s.RecvMsg(new(wrapperspb.UInt32Value)); err != nil {
				t.Fatal(err)
			}
		}
		cancel()
		err = drain(s, err)
		if status.Code(err) != codes.Canceled {
			t.Fatalf("after cancel: %v, want Canceled", err)
		}
		if end := p.ts.nextEnd(t, "Forever"); !errors.Is(end.err, context.Canceled) {
			t.Errorf("the server's stream ended with %v, want Canceled", end.err)
		}
	})
}

// A stream's deadline is the upstream stream's.
func TestServerStreamDeadline(t *testing.T) {
	p := newPair(t)
	p.roles(t, func(t *testing.T, cc grpc.ClientConnInterface) {
		ctx, cancel := context.WithTimeout(testCtx(t), 300*time.Millisecond)
		defer cancel()
		s, err := openStream(ctx, cc, "Forever", 0)
		if err != nil {
			t.Fatal(err)
		}
		err = drain(s, err)
		if status.Code(err) != codes.DeadlineExceeded {
			t.Fatalf("stream ended with %v, want DeadlineExceeded", err)
		}
		if end := p.ts.nextEnd(t, "Forever"); !end.hadDeadline {
			t.Errorf("the server's stream had no deadline")
		}
	})
}

// Client streaming: the messages reach the server in order, the one
// reply and the trailer come back; an error status ends the stream with
// the same code on every role.
func TestClientStreaming(t *testing.T) {
	p := newPair(t, grpcshare.WithStreamWindow(4))
	collect := &probeDesc.Streams[3]
	p.roles(t, func(t *testing.T, cc grpc.ClientConnInterface) {
		s, err := cc.NewStream(testCtx(t), collect, "/"+probeService+"/Collect")
		if err != nil {
			t.Fatal(err)
		}
		for i := uint32(1); i <= 100; i++ {
			if err := s.SendMsg(wrapperspb.UInt32(2 * i)); err != nil { // even: never 13
				t.Fatalf("send %d: %v", i, err)
			}
		}
		if err := s.CloseSend(); err != nil {
			t.Fatal(err)
		}
		sum := new(wrapperspb.UInt32Value)
		if err := s.RecvMsg(sum); err != nil || sum.Value != 10100 {
			t.Fatalf("sum %v, %v; want 10100", sum.Value, err)
		}
		if got := s.Trailer().Get("x-count"); len(got) != 1 || got[0] != "100" {
			t.Errorf("trailer %v", s.Trailer())
		}

		s, err = cc.NewStream(testCtx(t), collect, "/"+probeService+"/Collect")
		if err != nil {
			t.Fatal(err)
		}
		for i := uint32(10); i <= 13; i++ {
			// Nil, or io.EOF once the server's end arrived.
			if err := s.SendMsg(wrapperspb.UInt32(i)); err != nil && err != io.EOF {
				t.Fatalf("send %d: %v", i, err)
			}
		}
		err = s.RecvMsg(new(wrapperspb.UInt32Value))
		if status.Code(err) != codes.InvalidArgument {
			t.Fatalf("RecvMsg: %v, want InvalidArgument", err)
		}
		if err := s.SendMsg(wrapperspb.UInt32(14)); err != io.EOF {
			t.Fatalf("SendMsg after the stream ended: %v, want io.EOF", err)
		}
	})
}

// Bidirectional streaming: each reply arrives before the next message is
// sent, so the two directions really run at once.
func TestBidiStreaming(t *testing.T) {
	p := newPair(t)
	p.roles(t, func(t *testing.T, cc grpc.ClientConnInterface) {
		s, err := cc.NewStream(testCtx(t), &probeDesc.Streams[4], "/"+probeService+"/Chat")
		if err != nil {
			t.Fatal(err)
		}
		for i := uint32(0); i < 50; i++ {
			if err := s.SendMsg(wrapperspb.UInt32(i)); err != nil {
				t.Fatal(err)
			}
			m := new(wrapperspb.UInt32Value)
			if err := s.RecvMsg(m); err != nil || m.Value != 2*i {
				t.Fatalf("reply %d: %v, %v", i, m.Value, err)
			}
		}
		if err := s.CloseSend(); err != nil {
			t.Fatal(err)
		}
		if err := s.RecvMsg(new(wrapperspb.UInt32Value)); err != io.EOF {
			t.Fatalf("after CloseSend: %v, want io.EOF", err)
		}
	})
}

// Cancelling a bidi stream cancels it upstream.
func TestBidiCancel(t *testing.T) {
	p := newPair(t)
	p.roles(t, func(t *testing.T, cc grpc.ClientConnInterface) {
		ctx, cancel := context.WithCancel(testCtx(t))
		s, err := cc.NewStream(ctx, &probeDesc.Streams[4], "/"+probeService+"/Chat")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SendMsg(wrapperspb.UInt32(1)); err != nil {
			t.Fatal(err)
		}
		if err := s.RecvMsg(new(wrapperspb.UInt32Value)); err != nil {
			t.Fatal(err)
		}
		cancel()
		err = drain(s, err)
		if status.Code(err) != codes.Canceled {
			t.Fatalf("after cancel: %v, want Canceled", err)
		}
		if err := s.SendMsg(wrapperspb.UInt32(2)); err != io.EOF {
			t.Errorf("SendMsg after cancel: %v, want io.EOF", err)
		}
	})
}

// A stream whose reader went away (its process closed its Conn without
// cancelling) is cancelled upstream once nobody polled it for the idle
// timeout.
func TestAbandonedStreamExpires(t *testing.T) {
	p := newPair(t, grpcshare.WithPollHold(50*time.Millisecond), grpcshare.WithStreamIdle(300*time.Millisecond))
	s, err := openStream(context.Background(), p.follower, "Forever", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RecvMsg(new(wrapperspb.UInt32Value)); err != nil {
		t.Fatal(err)
	}
	if err := p.follower.Close(); err != nil {
		t.Fatal(err)
	}
	if end := p.ts.nextEnd(t, "Forever"); !errors.Is(end.err, context.Canceled) {
		t.Errorf("the abandoned stream ended with %v, want Canceled", end.err)
	}
	err = drain(s, err)
	if status.Code(err) != codes.Canceled {
		t.Errorf("the closed Conn's stream ended with %v, want Canceled", err)
	}
}

// A slow reader keeps its stream: the poll for nothing every hold tells
// the leader it is alive.
func TestSlowReaderKeepsStream(t *testing.T) {
	p := newPair(t, grpcshare.WithStreamWindow(2), grpcshare.WithPollHold(20*time.Millisecond), grpcshare.WithStreamIdle(400*time.Millisecond))
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	s, err := openStream(ctx, p.follower, "Count", 10)
	if err != nil {
		t.Fatal(err)
	}
	for i := uint32(0); i < 10; i++ {
		m := new(wrapperspb.UInt32Value)
		if err := s.RecvMsg(m); err != nil || m.Value != i {
			t.Fatalf("message %d: %v, %v", i, m.Value, err)
		}
		if i == 0 {
			// A reader slower than the idle timeout: what is tested is
			// the passing of time itself, so this one sleep is the test.
			time.Sleep(1200 * time.Millisecond)
		}
	}
	if err := s.RecvMsg(new(wrapperspb.UInt32Value)); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
}

func TestOptions(t *testing.T) {
	for _, o := range []grpcshare.Option{
		grpcshare.WithCallTimeout(0), grpcshare.WithStreamWindow(0), grpcshare.WithPollHold(-1),
		grpcshare.WithStreamIdle(0), grpcshare.WithStreamIdle(time.Second), nil,
	} {
		if _, err := grpcshare.New("x", "127.0.0.1:1", o); !errors.Is(err, grpcshare.ErrInvalidOption) {
			t.Errorf("New with a bad option: %v", err)
		}
	}
	if _, err := grpcshare.New("x", ""); !errors.Is(err, grpcshare.ErrInvalidOption) {
		t.Errorf("New without target: %v", err)
	}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// grpc.Peer names the server on every role (the leader's view of it), and
// WaitForReady and a content-subtype reach the real call.
func TestCallOptions(t *testing.T) {
	p := newPair(t)
	p.roles(t, func(t *testing.T, cc grpc.ClientConnInterface) {
		var pr peer.Peer
		v, err := echo(testCtx(t), cc, "x", grpc.Peer(&pr), grpc.WaitForReady(true), grpc.CallContentSubtype("proto"))
		if err != nil || v != "x" {
			t.Fatalf("echo = %q, %v", v, err)
		}
		if pr.Addr == nil || pr.Addr.String() != p.ts.addr || pr.Addr.Network() != "tcp" {
			t.Errorf("peer %v, want tcp %s", pr.Addr, p.ts.addr)
		}
		_, err = echo(testCtx(t), cc, "x", grpc.CallContentSubtype("nosuchcodec"))
		if status.Code(err) != codes.Internal {
			t.Errorf("unknown content-subtype: %v, want Internal", err)
		}
	})
}

// In the cluster's single mode (no network, one real client per name in
// the process) the Conn works the same.
func TestSingleMode(t *testing.T) {
	ts := startServer(t)
	c, err := grpcshare.New("grpcshare-single", ts.addr,
		grpcshare.WithDialOptions(grpc.WithTransportCredentials(insecure.NewCredentials())),
		grpcshare.WithClusterOptions(cluster.WithSingleMode(true), cluster.WithLogger(quiet)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	resp, err := healthpb.NewHealthClient(c).Check(testCtx(t), &healthpb.HealthCheckRequest{Service: "probe"})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Check = %v, %v", resp, err)
	}
	s, err := openStream(testCtx(t), c, "Count", 3)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for err = s.RecvMsg(new(wrapperspb.UInt32Value)); err == nil; err = s.RecvMsg(new(wrapperspb.UInt32Value)) {
		n++
	}
	if n != 3 || err != io.EOF {
		t.Fatalf("%d messages then %v, want 3 then io.EOF", n, err)
	}
}

// A leader that closes (the cluster's hand-over) ends its followers'
// streams with Unavailable, also when no process takes over (the follower
// here is forced to follow): the stream is lost with its leader, and the
// poll that waits for the next one is no deadline of the caller's.
func TestLeaderCloseEndsStreams(t *testing.T) {
	p := newPair(t, grpcshare.WithPollHold(200*time.Millisecond), grpcshare.WithStreamIdle(time.Second))
	s, err := openStream(testCtx(t), p.follower, "Forever", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RecvMsg(new(wrapperspb.UInt32Value)); err != nil {
		t.Fatal(err)
	}
	if err := p.leader.Close(); err != nil {
		t.Fatal(err)
	}
	err = drain(s, err)
	if status.Code(err) != codes.Unavailable {
		t.Errorf("the follower's stream ended with %v, want Unavailable", err)
	}
	if end := p.ts.nextEnd(t, "Forever"); !errors.Is(end.err, context.Canceled) {
		t.Errorf("the upstream stream ended with %v, want Canceled", end.err)
	}
}

// The leader holds at most WithMaxStreams streams open for the whole host:
// one more fails with ResourceExhausted on either role, the open ones go
// on, and a stream that ends makes room again.
func TestMaxStreams(t *testing.T) {
	p := newPair(t, grpcshare.WithMaxStreams(2))
	for _, cc := range []*grpcshare.Conn{p.follower, p.leader} {
		role := cc.Client().Role()
		ctx, cancel := context.WithCancel(testCtx(t))
		var open []grpc.ClientStream
		for range 2 {
			s, err := openStream(ctx, cc, "Forever", 0)
			if err != nil {
				t.Fatalf("%v: open: %v", role, err)
			}
			if err := s.RecvMsg(new(wrapperspb.UInt32Value)); err != nil {
				t.Fatalf("%v: first message: %v", role, err)
			}
			open = append(open, s)
		}
		err := error(nil)
		if s, oerr := openStream(ctx, cc, "Forever", 0); oerr != nil {
			err = oerr
		} else {
			err = s.RecvMsg(new(wrapperspb.UInt32Value))
		}
		if status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("%v: a third stream with WithMaxStreams(2): %v, want ResourceExhausted", role, err)
		}
		for _, s := range open {
			if err := s.RecvMsg(new(wrapperspb.UInt32Value)); err != nil {
				t.Fatalf("%v: an open stream after the refusal: %v", role, err)
			}
		}
		cancel() // both streams end: room again
		deadline := time.Now().Add(testTimeout)
		for {
			s, err := openStream(testCtx(t), cc, "Count", 1)
			if err == nil {
				if err = s.RecvMsg(new(wrapperspb.UInt32Value)); err == nil {
					break
				}
			}
			if status.Code(err) != codes.ResourceExhausted || time.Now().After(deadline) {
				t.Fatalf("%v: a stream after the others ended: %v", role, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// The leader's options bound what a follower asks for: a follower whose
// idle timeout is an hour still has its abandoned stream cancelled after
// the leader's.
func TestLeaderBoundsStreamIdle(t *testing.T) {
	p := newPairOf(t,
		[]grpcshare.Option{grpcshare.WithPollHold(50 * time.Millisecond), grpcshare.WithStreamIdle(300 * time.Millisecond)},
		[]grpcshare.Option{grpcshare.WithPollHold(50 * time.Millisecond), grpcshare.WithStreamIdle(time.Hour)})
	s, err := openStream(context.Background(), p.follower, "Forever", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RecvMsg(new(wrapperspb.UInt32Value)); err != nil {
		t.Fatal(err)
	}
	if err := p.follower.Close(); err != nil {
		t.Fatal(err)
	}
	if end := p.ts.nextEnd(t, "Forever"); !errors.Is(end.err, context.Canceled) {
		t.Errorf("the abandoned stream ended with %v, want Canceled after the leader's idle timeout", end.err)
	}
}
