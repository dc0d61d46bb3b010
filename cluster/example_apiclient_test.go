package cluster_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/transport/mem"
)

// configServer stands for a remote configuration service, reached through
// the one connection the processes of the host share.
type configServer struct {
	conns atomic.Int32 // open upstream connections

	mu       sync.Mutex
	values   map[string]string
	watchers map[string][]func(any)
}

func newConfigServer() *configServer {
	return &configServer{values: map[string]string{}, watchers: map[string][]func(any){}}
}

type kv struct {
	Key   string `json:"key"`
	Value string `json:"value,omitempty"`
}

// dial is the Factory: it opens the upstream connection (only the leader
// does) and declares what other processes may use.
func (s *configServer) dial(ctx context.Context, emit cluster.Emit) (*cluster.Service, error) {
	s.conns.Add(1)
	return &cluster.Service{
		Subscribe: func(reg cluster.Reg, push func(any)) error {
			var k kv
			if err := reg.Decode(&k); err != nil {
				return err
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			s.watchers[k.Key] = append(s.watchers[k.Key], push)
			push(s.values[k.Key])
			return nil
		},
		Methods: map[string]cluster.Handler{
			"set": cluster.Method(func(_ context.Context, k kv) (bool, error) {
				s.mu.Lock()
				defer s.mu.Unlock()
				s.values[k.Key] = k.Value
				for _, push := range s.watchers[k.Key] {
					push(k.Value)
				}
				return true, nil
			}),
		},
		Close: func(context.Context) error { s.conns.Add(-1); return nil },
	}, nil
}

// ConfigClient is business logic over a cluster client (Node's APIClient
// "best practice"): Get answers synchronously from its own cache, which
// subscriptions keep fresh; Set goes through whichever process leads.
type ConfigClient struct {
	c *cluster.Client

	mu      sync.Mutex
	cache   map[string]string
	changed chan struct{} // closed and replaced on every change
}

// NewConfigClient creates the cluster client and runs its own init:
// subscribe to keys and wait for their first values (Node's initMethod:
// the APIClient is ready when its init is done).
func NewConfigClient(ctx context.Context, server *configServer, keys []string, opts ...cluster.Option) (*ConfigClient, error) {
	c, err := cluster.New("ConfigClient", server.dial, opts...)
	if err != nil {
		return nil, err
	}
	cc := &ConfigClient{c: c, cache: map[string]string{}, changed: make(chan struct{})}
	var first sync.WaitGroup
	for _, k := range keys {
		first.Add(1)
		var once sync.Once
		_, err := cluster.SubscribeTyped(c, kv{Key: k}, func(v string) {
			cc.mu.Lock()
			cc.cache[k] = v
			close(cc.changed)
			cc.changed = make(chan struct{})
			cc.mu.Unlock()
			once.Do(first.Done)
		})
		if err != nil {
			c.Close(ctx)
			return nil, err
		}
	}
	done := make(chan struct{})
	go func() { first.Wait(); close(done) }()
	select {
	case <-done:
		return cc, nil
	case <-ctx.Done():
		c.Close(context.Background())
		return nil, fmt.Errorf("config client init: %w", ctx.Err())
	}
}

// Get returns the cached value of key.
func (cc *ConfigClient) Get(key string) (string, bool) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	v, ok := cc.cache[key]
	return v, ok
}

// Await waits until the cached value of key is want.
func (cc *ConfigClient) Await(ctx context.Context, key, want string) error {
	for {
		cc.mu.Lock()
		v, ch := cc.cache[key], cc.changed
		cc.mu.Unlock()
		if v == want {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Set stores a value through the shared upstream connection.
func (cc *ConfigClient) Set(ctx context.Context, key, value string) error {
	_, err := cluster.Call[bool](ctx, cc.c, "set", kv{Key: key, Value: value})
	return err
}

// IsLeader says whether this process holds the upstream connection.
func (cc *ConfigClient) IsLeader() bool { return cc.c.IsLeader() }

// Close closes the cluster client (the APIClient's default close).
func (cc *ConfigClient) Close(ctx context.Context) error { return cc.c.Close(ctx) }

// Example_apiClient composes a business client with its own cache over a
// cluster client: two processes' ConfigClients share one upstream
// connection, and each answers Get from its own cache.
func Example_apiClient() {
	server := newConfigServer()
	tr, _ := mem.New(mem.Config{})
	opts := []cluster.Option{cluster.WithTransport(tr), cluster.WithAddr("example-apiclient"), quiet}
	ctx := context.Background()

	a, err := NewConfigClient(ctx, server, []string{"color"}, opts...)
	if err != nil {
		panic(err)
	}
	defer a.Close(ctx)
	b, _ := NewConfigClient(ctx, server, []string{"color"}, opts...)
	defer b.Close(ctx)

	if err := b.Set(ctx, "color", "blue"); err != nil {
		panic(err)
	}
	a.Await(ctx, "color", "blue")
	b.Await(ctx, "color", "blue")
	va, _ := a.Get("color")
	vb, _ := b.Get("color")
	fmt.Println(va, vb, a.IsLeader(), b.IsLeader(), server.conns.Load())
	// Output:
	// blue blue true false 1
}
