package main

import (
	"context"
	"net"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/stats"
)

// server is the upstream: a real gRPC server with the standard health
// service, on a free loopback port.
type server struct {
	addr   string
	srv    *grpc.Server
	health *health.Server
	conns  *connCounter
	done   chan struct{}
}

func startServer() (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &server{addr: ln.Addr().String(), conns: &connCounter{}, health: health.NewServer(), done: make(chan struct{})}
	s.srv = grpc.NewServer(grpc.StatsHandler(s.conns))
	healthpb.RegisterHealthServer(s.srv, s.health)
	s.health.SetServingStatus("demo", healthpb.HealthCheckResponse_SERVING)
	go func() { defer close(s.done); _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *server) setDemo(serving bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.health.SetServingStatus("demo", st)
}

func (s *server) stop() {
	s.srv.Stop()
	<-s.done
}

// connCounter is a stats.Handler counting the server's HTTP/2
// connections (ConnBegin, ConnEnd).
type connCounter struct{ open, total, ended atomic.Int64 }

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
		c.ended.Add(1)
	}
}

// freePort returns a TCP port the kernel just handed out on 127.0.0.1.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
