package main

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/grpcshare"
	"github.com/go-clusterclient/clusterclient/internal/childproc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// channel is the cluster channel the workers share the connection on.
const channel = "grpc-share"

// workerStats is what a worker reports every 100 ms.
type workerStats struct {
	PID     int
	Leader  bool
	Calls   int            // health checks that succeeded
	Failed  map[string]int // failed checks by status code
	Updates int            // health Watch messages received
	Ends    map[string]int // Watch streams ended, by status code
	LastErr string         // the last failed check's error
}

// workerMain is one worker process: args are the cluster address, the
// gRPC target and the calls per second. It shares the connection, calls
// Check at the rate and keeps a Watch stream open (opening a new one when
// one ends), and reports until the coordinator says "exit".
func workerMain(args []string) int {
	addr, target := args[0], args[1]
	rate, err := strconv.Atoi(args[2])
	if err != nil || rate < 1 {
		childproc.Fatalf("worker: bad rate %q", args[2])
	}
	conn, err := grpcshare.New(channel, target,
		grpcshare.WithDialOptions(grpc.WithTransportCredentials(insecure.NewCredentials())),
		grpcshare.WithClusterOptions(cluster.WithAddr(addr), cluster.WithLogger(slog.New(slog.DiscardHandler))))
	if err != nil {
		childproc.Fatalf("worker: %v", err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	err = conn.Client().Ready(rctx)
	rcancel()
	if err != nil {
		childproc.Fatalf("worker: ready: %v", err)
	}
	childproc.Emit("ready", map[string]any{"pid": os.Getpid(), "leader": conn.Client().IsLeader()})

	var mu sync.Mutex
	st := workerStats{PID: os.Getpid(), Failed: map[string]int{}, Ends: map[string]int{}}
	hc := healthpb.NewHealthClient(conn) // the generated stub, unchanged
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { // unary calls
		defer wg.Done()
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := hc.Check(cctx, &healthpb.HealthCheckRequest{})
			ccancel()
			mu.Lock()
			if err == nil {
				st.Calls++
			} else if ctx.Err() == nil {
				st.Failed[status.Code(err).String()]++
				st.LastErr = err.Error()
			}
			mu.Unlock()
		}
	}()
	go func() { // a server stream, open for as long as the worker lives
		defer wg.Done()
		for ctx.Err() == nil {
			w, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{Service: "demo"})
			for err == nil {
				if _, err = w.Recv(); err == nil {
					mu.Lock()
					st.Updates++
					mu.Unlock()
				}
			}
			if ctx.Err() == nil {
				mu.Lock()
				st.Ends[status.Code(err).String()]++
				mu.Unlock()
				if status.Code(err) != codes.Unavailable { // not a failover: do not spin
					time.Sleep(100 * time.Millisecond)
				}
			}
		}
	}()
	go func() { // reports
		defer wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			mu.Lock()
			st.Leader = conn.Client().IsLeader()
			childproc.Emit("stats", st)
			mu.Unlock()
		}
	}()
	for childproc.Receive().Name != "exit" {
	}
	cancel()
	wg.Wait()
	return 0
}
