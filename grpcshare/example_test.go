package grpcshare_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/grpcshare"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// Every process of the host runs the same lines; the generated health
// client takes the shared connection as it takes a *grpc.ClientConn. Here
// one process plays both parts: a leader and a follower of one channel.
func Example() {
	// A gRPC server to share a connection to (your upstream).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(ln)
	defer srv.Stop()

	clusterAddr := freeAddr() // the address the processes compete for; 127.0.0.1:7777 by default
	share := func() *grpcshare.Conn {
		conn, err := grpcshare.New("health", ln.Addr().String(),
			grpcshare.WithDialOptions(grpc.WithTransportCredentials(insecure.NewCredentials())),
			grpcshare.WithClusterOptions(cluster.WithAddr(clusterAddr), cluster.WithLogger(slog.New(slog.DiscardHandler))))
		if err != nil {
			panic(err)
		}
		return conn
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first := share()
	defer first.Close()
	if err := first.Client().Ready(ctx); err != nil { // not needed: calls wait for a leader
		panic(err)
	}
	second := share()
	defer second.Close()

	for _, conn := range []*grpcshare.Conn{first, second} {
		hc := healthpb.NewHealthClient(conn)
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
		fmt.Println(conn.Client().Role(), resp.GetStatus(), err)
		_, err = hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "unknown"})
		fmt.Println(conn.Client().Role(), status.Code(err) == codes.NotFound)
	}
	// Output:
	// leader SERVING <nil>
	// leader true
	// follower SERVING <nil>
	// follower true
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
