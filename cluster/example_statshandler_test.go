package cluster_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/go-clusterclient/clusterclient/cluster"
)

// callLog is a StatsHandler that prints each call when it ends and counts
// the events it sees by kind.
type callLog struct {
	mu     sync.Mutex
	events map[cluster.StatsKind]int
}

func (l *callLog) TagCall(ctx context.Context, _ *cluster.CallInfo) context.Context { return ctx }

func (l *callLog) HandleCall(_ context.Context, ci *cluster.CallInfo) {
	fmt.Printf("%s %s/%s role=%s err=%q\n", ci.Side, ci.Channel, ci.Method, ci.Role, ci.Code)
}

func (l *callLog) HandleEvent(ev *cluster.StatsEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events[ev.Kind]++
}

// A StatsHandler observes every call at its start and end, and the
// Client's events (package clusterclient/otel is one for OpenTelemetry).
func ExampleWithStatsHandler() {
	h := &callLog{events: map[cluster.StatsKind]int{}}
	c, err := cluster.New("Observed", func(context.Context, cluster.Emit) (*cluster.Service, error) {
		return &cluster.Service{Methods: map[string]cluster.Handler{
			"double": cluster.Method(func(_ context.Context, n int) (int, error) { return 2 * n, nil }),
		}}, nil
	}, cluster.WithSingleMode(true), cluster.WithStatsHandler(h), cluster.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	n, _ := cluster.Call[int](ctx, c, "double", 21)
	_, err = c.Invoke(ctx, "triple", 1)
	fmt.Println(n, err != nil)
	c.Close(ctx)

	st := c.Stats().Methods["double"]
	h.mu.Lock()
	fmt.Println("double: calls", st.Calls, "errors", st.Errors, "| role events", h.events[cluster.StatsRole], "ready events", h.events[cluster.StatsReady])
	h.mu.Unlock()
	// Output:
	// caller Observed/double role=single err=""
	// caller Observed/triple role=single err="unknown_method"
	// 42 true
	// double: calls 1 errors 0 | role events 1 ready events 1
}
