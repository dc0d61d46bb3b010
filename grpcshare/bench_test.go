package grpcshare_test

import (
	"context"
	"io"
	"testing"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/grpcshare"
	"github.com/go-clusterclient/clusterclient/internal/childproc"
	"github.com/go-clusterclient/clusterclient/transport/transporttest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// BenchmarkUnary is one unary health check, the benchmark row:
//
//   - direct: this process's own *grpc.ClientConn to the server;
//   - follower: through the shared connection, from this process as a
//     follower of a leader that is another process (a child);
//   - leader: through the shared connection, with this process leading
//     (its calls take the same path minus the hop).
func BenchmarkUnary(b *testing.B) {
	ts := startServer(b)
	req := &healthpb.HealthCheckRequest{Service: "probe"}
	ctx := context.Background()
	run := func(b *testing.B, cc grpc.ClientConnInterface) {
		hc := healthpb.NewHealthClient(cc)
		if _, err := hc.Check(ctx, req); err != nil { // connect outside the timing
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if _, err := hc.Check(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	}

	onThreeConns(b, ts.addr, run)
}

// BenchmarkServerStream reads a stream of 1000 small messages (Count),
// per message, on the same three connections as BenchmarkUnary.
func BenchmarkServerStream(b *testing.B) {
	ts := startServer(b)
	const n = 1000
	run := func(b *testing.B, cc grpc.ClientConnInterface) {
		b.ReportAllocs()
		for b.Loop() {
			s, err := openStream(context.Background(), cc, "Count", n)
			if err != nil {
				b.Fatal(err)
			}
			m := new(wrapperspb.UInt32Value)
			for i := 0; i < n; i++ {
				if err := s.RecvMsg(m); err != nil {
					b.Fatal(err)
				}
			}
			if err := s.RecvMsg(m); err != io.EOF {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/msg")
	}
	onThreeConns(b, ts.addr, run)
}

func benchConn(b *testing.B, addr, target string, mode cluster.Mode) *grpcshare.Conn {
	b.Helper()
	c, err := grpcshare.New(mpChannel, target,
		grpcshare.WithDialOptions(grpc.WithTransportCredentials(insecure.NewCredentials())),
		grpcshare.WithClusterOptions(cluster.WithAddr(addr), cluster.WithMode(mode), cluster.WithLogger(quiet)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := c.Client().Ready(ctx); err != nil {
		b.Fatal(err)
	}
	return c
}

// onThreeConns runs run as sub-benchmarks on a direct gRPC connection to
// upstream, on a follower whose leader is another process, and on the
// leader itself.
func onThreeConns(b *testing.B, upstream string, run func(*testing.B, grpc.ClientConnInterface)) {
	b.Run("direct", func(b *testing.B) {
		direct, err := grpc.NewClient(upstream, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		defer direct.Close()
		run(b, direct)
	})
	b.Run("follower", func(b *testing.B) {
		addr := transporttest.FreeAddr(b, "tcp", "127.0.0.1")
		ch := childproc.Start(b, "leader", addr, upstream)
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if _, err := ch.Expect(ctx, "ready"); err != nil {
			b.Fatal(err, ch.Stderr())
		}
		run(b, benchConn(b, addr, upstream, cluster.ForceFollower))
		_ = ch.Send("exit", nil)
	})
	b.Run("leader", func(b *testing.B) {
		addr := transporttest.FreeAddr(b, "tcp", "127.0.0.1")
		run(b, benchConn(b, addr, upstream, cluster.ForceLeader))
	})
}
