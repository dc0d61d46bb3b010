package cluster_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
)

// nopHook is the cheapest StatsHandler: what a call costs the Client
// itself once a handler is installed (the handler's own work aside).
type nopHook struct{}

func (nopHook) TagCall(ctx context.Context, _ *cluster.CallInfo) context.Context { return ctx }
func (nopHook) HandleCall(context.Context, *cluster.CallInfo)                    {}
func (nopHook) HandleEvent(*cluster.StatsEvent)                                  {}

// BenchmarkInvokeFollowerHooked: BenchmarkInvokeFollower's mem/json/64B
// case with a do-nothing StatsHandler on the leader and the follower (its
// figures against the unhooked case show what the hook costs).
func BenchmarkInvokeFollowerHooked(b *testing.B) {
	tr, addr := benchNets[0].make(b)
	mk := func() *cluster.Client {
		c, err := cluster.New("Bench", benchEcho, cluster.WithTransport(tr), cluster.WithAddr(addr),
			cluster.WithLogger(testLogger()), cluster.WithSingleMode(false), cluster.WithResponseTimeout(10*time.Second),
			cluster.WithStatsHandler(nopHook{}))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close(context.Background()) })
		ready(b, c)
		return c
	}
	mk()
	f := mk()
	arg := strings.Repeat("x", 64)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := f.Invoke(ctx, "echo", arg); err != nil {
			b.Fatal(err)
		}
	}
}
