package cluster_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/transport/mem"
)

// quiet keeps the examples' output to what they print.
var quiet = cluster.WithLogger(slog.New(slog.DiscardHandler))

// greeter is a tiny real client.
func greeter(ctx context.Context, emit cluster.Emit) (*cluster.Service, error) {
	return &cluster.Service{
		Methods: map[string]cluster.Handler{
			"greet": cluster.Method(func(_ context.Context, name string) (string, error) {
				return "hello, " + name, nil
			}),
		},
	}, nil
}

// Two Clients of one channel share one real client: the first leads and
// builds it, the second follows over a real connection. (Real processes
// use the default TCP transport on 127.0.0.1:7777, or WithPort; the
// in-memory transport keeps the example self-contained.)
func ExampleNew() {
	tr, _ := mem.New(mem.Config{})
	opts := []cluster.Option{cluster.WithTransport(tr), cluster.WithAddr("example-new"), quiet}
	ctx := context.Background()

	leader, err := cluster.New("Greeter", greeter, opts...)
	if err != nil {
		panic(err)
	}
	defer leader.Close(ctx)
	leader.Ready(ctx)

	follower, _ := cluster.New("Greeter", greeter, opts...)
	defer follower.Close(ctx)
	follower.Ready(ctx)

	fmt.Println(leader.Role(), follower.Role())
	res, err := follower.Invoke(ctx, "greet", "follower")
	if err != nil {
		panic(err)
	}
	var s string
	res.Decode(&s)
	fmt.Println(s)
	// Output:
	// leader follower
	// hello, follower
}

// Typed calls: Method adapts a typed function on the real client's side,
// Call and Bind give typed results on the caller's side.
func ExampleCall() {
	type sum struct{ A, B int }
	factory := func(ctx context.Context, emit cluster.Emit) (*cluster.Service, error) {
		return &cluster.Service{Methods: map[string]cluster.Handler{
			"add": cluster.Method(func(_ context.Context, s sum) (int, error) { return s.A + s.B, nil }),
		}}, nil
	}
	tr, _ := mem.New(mem.Config{})
	opts := []cluster.Option{cluster.WithTransport(tr), cluster.WithAddr("example-call"), quiet}
	ctx := context.Background()
	leader, _ := cluster.New("Adder", factory, opts...)
	defer leader.Close(ctx)
	leader.Ready(ctx)
	follower, _ := cluster.New("Adder", factory, opts...)
	defer follower.Close(ctx)

	n, err := cluster.Call[int](ctx, follower, "add", sum{2, 3})
	fmt.Println(n, err)

	add := cluster.Bind[sum, int](follower, "add")
	n, err = add(ctx, sum{40, 2})
	fmt.Println(n, err)

	_, err = follower.Invoke(ctx, "mul", sum{2, 3})
	fmt.Println(strings.Contains(err.Error(), `"mul"`), err != nil)
	// Output:
	// 5 <nil>
	// 42 <nil>
	// true true
}

// A subscription gets the cached last value at once, then every new
// value; each listener decodes its own copy.
func ExampleClient_Subscribe() {
	// The real client: a one-topic registry that remembers its value.
	factory := func(ctx context.Context, emit cluster.Emit) (*cluster.Service, error) {
		var mu sync.Mutex
		var push func(any)
		var latest string
		return &cluster.Service{
			Subscribe: func(reg cluster.Reg, p func(any)) error {
				mu.Lock()
				defer mu.Unlock()
				push = p
				if latest != "" {
					p(latest)
				}
				return nil
			},
			Publish: func(_ context.Context, reg cluster.Reg) error {
				var r struct{ Value string }
				if err := reg.Decode(&r); err != nil {
					return err
				}
				mu.Lock()
				defer mu.Unlock()
				latest = r.Value
				if push != nil {
					push(latest)
				}
				return nil
			},
		}, nil
	}
	tr, _ := mem.New(mem.Config{})
	ctx := context.Background()
	c, _ := cluster.New("Watcher", factory, cluster.WithTransport(tr), cluster.WithAddr("example-sub"), quiet)
	defer c.Close(ctx)
	c.Ready(ctx)

	got := make(chan string)
	topic := map[string]string{"topic": "news"}
	cluster.SubscribeTyped(c, topic, func(v string) { got <- "first: " + v })
	c.Publish(map[string]string{"topic": "news", "Value": "v1"})
	fmt.Println(<-got)

	// A late subscriber gets the cached value without a new publish.
	cluster.SubscribeTyped(c, topic, func(v string) { got <- "late: " + v })
	fmt.Println(<-got)
	// Output:
	// first: v1
	// late: v1
}

// Single mode keeps the API without any network: Clients of one name in a
// process share one real client, closed with the last of them.
func ExampleWithSingleMode() {
	builds := 0
	factory := func(ctx context.Context, emit cluster.Emit) (*cluster.Service, error) {
		builds++
		return greeter(ctx, emit)
	}
	ctx := context.Background()
	a, _ := cluster.New("SingleGreeter", factory, cluster.WithSingleMode(true), quiet)
	b, _ := cluster.New("SingleGreeter", factory, cluster.WithSingleMode(true), quiet)
	a.Ready(ctx)
	b.Ready(ctx)
	s, _ := cluster.Call[string](ctx, b, "greet", "b")
	fmt.Println(s, a.IsLeader(), b.IsLeader(), builds)
	a.Close(ctx)
	b.Close(ctx)
	// Output:
	// hello, b true true 1
}

// Forced roles (egg's agent and workers): a forced follower may start
// before its leader and waits for it, up to the maximum wait.
func ExampleWithMode() {
	tr, _ := mem.New(mem.Config{})
	opts := []cluster.Option{cluster.WithTransport(tr), cluster.WithAddr("example-mode"), quiet}
	ctx := context.Background()

	worker, _ := cluster.New("Greeter", greeter, append(opts, cluster.WithMode(cluster.ForceFollower), cluster.WithMaxWait(5*time.Second))...)
	defer worker.Close(ctx)
	time.Sleep(10 * time.Millisecond) // the agent starts later
	agent, _ := cluster.New("Greeter", greeter, append(opts, cluster.WithMode(cluster.ForceLeader))...)
	defer agent.Close(ctx)

	fmt.Println(worker.Ready(ctx), agent.Ready(ctx))
	s, _ := cluster.Call[string](ctx, worker, "greet", "worker")
	fmt.Println(s, worker.Role(), agent.Role())
	// Output:
	// <nil> <nil>
	// hello, worker follower leader
}
