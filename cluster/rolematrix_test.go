package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/transport/tcp"
)

// The role matrix: each behaviour runs twice, with the caller as the
// leader and as a follower of a leader in another Client over loopback
// TCP, and must have the same outcome. A behaviour added later gets a
// row.

// matrixService records what its handlers saw.
type matrixService struct {
	cancelled chan time.Duration     // how long after its start a "wait" call saw its context end
	noted     chan map[string]string // the metadata "note" calls saw
}

func (m *matrixService) factory(context.Context, cluster.Emit) (*cluster.Service, error) {
	var mu sync.Mutex
	pushes := map[string]func(any){}
	return &cluster.Service{
		Subscribe: func(reg cluster.Reg, push func(any)) error {
			mu.Lock()
			pushes[reg.Key()] = push
			mu.Unlock()
			return nil
		},
		Publish: func(_ context.Context, reg cluster.Reg) error {
			var r reg2
			if err := reg.Decode(&r); err != nil {
				return err
			}
			key, _ := json.Marshal(reg2{Key: r.Key})
			mu.Lock()
			push := pushes["$$inner$$__"+string(key)]
			mu.Unlock()
			if push != nil {
				push(r.Value)
			}
			return nil
		},
		Methods: map[string]cluster.Handler{
			// sleep: answers after ms milliseconds, whatever its context says.
			"sleep": cluster.Method(func(_ context.Context, ms int) (int, error) {
				time.Sleep(time.Duration(ms) * time.Millisecond)
				return ms, nil
			}),
			// deadline: how far away the handler's deadline is, in ms (-1: none).
			"deadline": cluster.Method(func(ctx context.Context, _ int) (int64, error) {
				dl, ok := ctx.Deadline()
				if !ok {
					return -1, nil
				}
				return time.Until(dl).Milliseconds(), nil
			}),
			// wait: blocks until its context ends, and says when it did.
			"wait": func(ctx context.Context, _ cluster.Args) (any, error) {
				start := time.Now()
				<-ctx.Done()
				m.cancelled <- time.Since(start)
				return nil, ctx.Err()
			},
			// notfound: fails with a registered sentinel, wrapped.
			"notfound": cluster.Method(func(_ context.Context, name string) (int, error) {
				return 0, fmt.Errorf("lookup %q: %w", name, errMatrixNotFound)
			}),
			// coded: fails with an error that names its own code.
			"coded": cluster.Method(func(_ context.Context, _ int) (int, error) {
				return 0, codedError{"quota exceeded"}
			}),
			// note: a one-way call that records the metadata it saw.
			"note": func(ctx context.Context, _ cluster.Args) (any, error) {
				m.noted <- cluster.Metadata(ctx)
				return nil, nil
			},
			// metadata: the caller's metadata, as the handler sees it.
			"metadata": cluster.Method(func(ctx context.Context, _ int) (map[string]string, error) {
				return cluster.Metadata(ctx), nil
			}),
		}}, nil
}

// reg2 is a registration whose publication pushes Value to the
// subscribers of {key}.
type reg2 struct {
	Key   string `json:"key"`
	Value string `json:"value,omitempty"`
}

// roleMatrix runs f with the caller as leader, then as follower; the
// response timeout of both Clients is responseTimeout.
func roleMatrix(t *testing.T, name string, responseTimeout time.Duration, f func(t *testing.T, c *cluster.Client, m *matrixService)) {
	roleMatrix2(t, name, responseTimeout, func(t *testing.T, c, _ *cluster.Client, m *matrixService) { f(t, c, m) })
}

// roleMatrix2 is roleMatrix whose f also gets the other Client. Each
// behaviour runs on a Go cluster and on a Node-compatible one
// (WithNodeCompat: serialize-json, no authentication), Go processes
// both.
func roleMatrix2(t *testing.T, name string, responseTimeout time.Duration, f func(t *testing.T, c, other *cluster.Client, m *matrixService)) {
	for _, variant := range []struct {
		name string
		opts []cluster.Option
	}{{"go", nil}, {"node-compatible", []cluster.Option{cluster.WithNodeCompat()}}} {
		t.Run(variant.name, func(t *testing.T) {
			m := &matrixService{cancelled: make(chan time.Duration, 16), noted: make(chan map[string]string, 16)}
			tr, addr := tcp.New(tcp.Config{}), "127.0.0.1:"+strconv.Itoa(freePort(t))
			opts := append(fastOpts(), cluster.WithTransport(tr), cluster.WithAddr(addr), cluster.WithResponseTimeout(responseTimeout))
			opts = append(opts, variant.opts...)
			var clients []*cluster.Client
			for range 2 {
				c, err := cluster.New(name, m.factory, opts...)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close(context.Background()) })
				ready(t, c)
				clients = append(clients, c)
			}
			if !clients[0].IsLeader() || clients[1].IsLeader() {
				t.Fatal("the first Client does not lead")
			}
			for i, role := range []string{"leader", "follower"} {
				t.Run(role, func(t *testing.T) { f(t, clients[i], clients[1-i], m) })
			}
		})
	}
}

// Calls, subscriptions and publications: the same results on both roles.
func TestRoleMatrixBasics(t *testing.T) {
	roleMatrix2(t, "MatrixBasics", 5*time.Second, func(t *testing.T, c, other *cluster.Client, _ *matrixService) {
		if got, err := cluster.Call[int](tctx(t, wait), c, "sleep", 1); err != nil || got != 1 {
			t.Fatalf("call: %v, %v", got, err)
		}
		if _, err := c.Invoke(tctx(t, wait), "nosuchmethod"); !errors.Is(err, cluster.ErrUnknownMethod) {
			t.Fatalf("unknown method: %v", err)
		}
		key := "basics-" + c.Role().String()
		mine, theirs := newStrings(), newStrings()
		if _, err := c.Subscribe(reg2{Key: key}, mine.listener(t)); err != nil {
			t.Fatal(err)
		}
		if _, err := other.Subscribe(reg2{Key: key}, theirs.listener(t)); err != nil {
			t.Fatal(err)
		}
		if err := c.Publish(reg2{Key: key, Value: "p1"}); err != nil {
			t.Fatal(err)
		}
		mine.waitFor(t, "the caller's listener", "p1")
		theirs.waitFor(t, "the other process's listener", "p1")
	})
}

// A call's deadline is its context's when it has one: the case,
// a 4 s context on a 3.5 s method with the default 3 s response timeout,
// succeeds on both roles (a follower's call failed with ErrTimeout at 3 s
// before), and the method's context carries the caller's deadline. (A
// follower's call without a deadline of its own has the response timeout:
// TestCC011_ResponseTimeout.)
func TestRoleMatrixDeadline(t *testing.T) {
	roleMatrix(t, "MatrixDeadline", cluster.DefaultResponseTimeout, func(t *testing.T, c *cluster.Client, _ *matrixService) {
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
		defer cancel()
		start := time.Now()
		if got, err := cluster.Call[int](ctx, c, "sleep", 3500); err != nil || got != 3500 {
			t.Fatalf("a 3.5 s call with a 4 s context: %v, %v", got, err)
		}
		t.Logf("a 3.5 s call with a 4 s context answered in %v", time.Since(start).Round(time.Millisecond))
		ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		left, err := cluster.Call[int64](ctx, c, "deadline", 0)
		if err != nil || left <= 0 || left > 5000 {
			t.Fatalf("the method's deadline is %d ms away (%v), want the caller's 5 s", left, err)
		}
	})
}

// A caller that gives up (its context ends) ends the method's context,
// on the leader and from a follower; the time it takes is reported.
func TestRoleMatrixCancellation(t *testing.T) {
	roleMatrix(t, "MatrixCancel", 5*time.Second, func(t *testing.T, c *cluster.Client, m *matrixService) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := c.Invoke(ctx, "wait")
			done <- err
		}()
		// Cancel once the method runs: it has not ended yet.
		eventually(t, wait, "the method runs", func() bool { return runningOn(c) })
		start := time.Now()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled call: %v", err)
		}
		select {
		case <-m.cancelled:
			t.Logf("the method's context ended %v after the caller cancelled", time.Since(start).Round(time.Microsecond))
		case <-time.After(wait):
			t.Fatal("the method's context did not end when the caller cancelled")
		}
	})
}

// runningOn reports whether a call runs on the leader of c's channel
// (Stats of the leader count the calls that run; a follower's only its
// own in flight).
func runningOn(c *cluster.Client) bool { return c.Stats().InFlight > 0 }

// Metadata attached to the caller's context reaches the handler on both
// roles; too much of it fails the call on both roles.
func TestRoleMatrixMetadata(t *testing.T) {
	roleMatrix(t, "MatrixMetadata", 5*time.Second, func(t *testing.T, c *cluster.Client, m *matrixService) {
		ctx := cluster.WithMetadata(tctx(t, wait), "tenant", "t-1", "traceparent", "00-abc-def-01")
		ctx = cluster.WithMetadata(ctx, "tenant", "t-2")
		got, err := cluster.Call[map[string]string](ctx, c, "metadata", 0)
		want := map[string]string{"tenant": "t-2", "traceparent": "00-abc-def-01"}
		if err != nil || !maps.Equal(got, want) {
			t.Fatalf("the handler saw %v (%v), want %v", got, err, want)
		}
		if got, err := cluster.Call[map[string]string](tctx(t, wait), c, "metadata", 0); err != nil || len(got) != 0 {
			t.Fatalf("without metadata the handler saw %v (%v)", got, err)
		}
		big := cluster.WithMetadata(tctx(t, wait), "k", strings.Repeat("v", cluster.MaxMetadataBytes))
		if _, err := c.Invoke(big, "metadata", 0); !errors.Is(err, cluster.ErrInvalidOption) {
			t.Fatalf("metadata over the bound: %v", err)
		}
		if err := c.InvokeOnewayContext(big, "note"); !errors.Is(err, cluster.ErrInvalidOption) {
			t.Fatalf("one-way metadata over the bound: %v", err)
		}
		// One-way calls carry metadata too.
		if err := c.InvokeOnewayContext(ctx, "note"); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-m.noted:
			if !maps.Equal(got, want) {
				t.Fatalf("the one-way handler saw %v, want %v", got, want)
			}
		case <-time.After(wait):
			t.Fatal("the one-way call never ran")
		}
	})
}

// errMatrixNotFound is registered with a code: it matches on both roles.
var errMatrixNotFound = errors.New("not found")

func init() {
	if err := cluster.RegisterErrorCode(errMatrixNotFound, "MATRIX_NOT_FOUND"); err != nil {
		panic(err)
	}
}

type codedError struct{ msg string }

func (e codedError) Error() string       { return e.msg }
func (e codedError) ClusterCode() string { return "MATRIX_QUOTA" }

// A method's error keeps its identity on both roles: errors.Is finds a
// registered sentinel, ErrorCode finds the code (a registered sentinel's
// or a Coder's), and the message is the same.
func TestRoleMatrixErrors(t *testing.T) {
	roleMatrix(t, "MatrixErrors", 5*time.Second, func(t *testing.T, c *cluster.Client, _ *matrixService) {
		_, err := c.Invoke(tctx(t, wait), "notfound", "x")
		if !errors.Is(err, errMatrixNotFound) || cluster.ErrorCode(err) != "MATRIX_NOT_FOUND" ||
			!strings.Contains(err.Error(), `lookup "x": not found`) {
			t.Fatalf("registered sentinel: %v (code %q)", err, cluster.ErrorCode(err))
		}
		_, err = c.Invoke(tctx(t, wait), "coded", 0)
		if cluster.ErrorCode(err) != "MATRIX_QUOTA" || !strings.Contains(err.Error(), "quota exceeded") {
			t.Fatalf("Coder: %v (code %q)", err, cluster.ErrorCode(err))
		}
		_, err = c.Invoke(tctx(t, wait), "nosuchmethod")
		if !errors.Is(err, cluster.ErrUnknownMethod) || cluster.ErrorCode(err) != cluster.CodeUnknownMethod {
			t.Fatalf("package sentinel: %v (code %q)", err, cluster.ErrorCode(err))
		}
	})
}

func TestRegisterErrorCodeRefuses(t *testing.T) {
	for name, err := range map[string]error{
		"package code": cluster.RegisterErrorCode(errors.New("x"), "ERR_CLUSTER_X"),
		"empty code":   cluster.RegisterErrorCode(errors.New("x"), ""),
		"nil":          cluster.RegisterErrorCode(nil, "X"),
		"same code":    cluster.RegisterErrorCode(errors.New("y"), "MATRIX_NOT_FOUND"),
		"same error":   cluster.RegisterErrorCode(errMatrixNotFound, "OTHER"),
	} {
		if !errors.Is(err, cluster.ErrInvalidOption) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// strings collects the string values one listener receives.
type strings_ struct {
	mu   sync.Mutex
	got  []string
	wake chan struct{}
}

func newStrings() *strings_ { return &strings_{wake: make(chan struct{}, 1)} }

func (s *strings_) listener(t *testing.T) cluster.Listener {
	return func(v cluster.Value) {
		var x string
		if err := v.Decode(&x); err != nil {
			t.Errorf("decode: %v", err)
		}
		s.mu.Lock()
		s.got = append(s.got, x)
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// waitFor waits until the values received are exactly want.
func (s *strings_) waitFor(t *testing.T, what string, want ...string) {
	t.Helper()
	deadline := time.After(wait)
	for {
		s.mu.Lock()
		got := slices.Clone(s.got)
		s.mu.Unlock()
		if slices.Equal(got, want) {
			return
		}
		if len(got) > len(want) {
			t.Fatalf("%s received %q, want %q", what, got, want)
		}
		select {
		case <-s.wake:
		case <-deadline:
			t.Fatalf("%s received %q within %v, want %q", what, got, wait, want)
		}
	}
}

// A state listener (the default) that subscribes late gets the last value
// first; a stream listener gets only what arrives after it subscribed; on
// both roles.
func TestRoleMatrixStreamAndState(t *testing.T) {
	roleMatrix(t, "MatrixStream", 5*time.Second, func(t *testing.T, c *cluster.Client, _ *matrixService) {
		key := "topic-" + c.Role().String()
		first := newStrings()
		if _, err := c.Subscribe(reg2{Key: key}, first.listener(t)); err != nil {
			t.Fatal(err)
		}
		if err := c.Publish(reg2{Key: key, Value: "v1"}); err != nil {
			t.Fatal(err)
		}
		first.waitFor(t, "the first listener", "v1")
		state, stream := newStrings(), newStrings()
		if _, err := c.Subscribe(reg2{Key: key}, state.listener(t)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Subscribe(reg2{Key: key}, stream.listener(t), cluster.Stream()); err != nil {
			t.Fatal(err)
		}
		state.waitFor(t, "a late state listener", "v1")
		if err := c.Publish(reg2{Key: key, Value: "v2"}); err != nil {
			t.Fatal(err)
		}
		state.waitFor(t, "a late state listener", "v1", "v2")
		stream.waitFor(t, "a late stream listener", "v2")
	})
}

// A stream listener of a key this process does not hold yet skips the
// leader's cached replay (sent to a follower marked "cached"), and a state
// listener gets it; on both roles.
func TestRoleMatrixStreamSkipsLeaderCache(t *testing.T) {
	roleMatrix2(t, "MatrixStreamCache", 5*time.Second, func(t *testing.T, c, other *cluster.Client, _ *matrixService) {
		key := "cached-" + c.Role().String()
		first := newStrings()
		if _, err := other.Subscribe(reg2{Key: key}, first.listener(t)); err != nil {
			t.Fatal(err)
		}
		if err := other.Publish(reg2{Key: key, Value: "v1"}); err != nil {
			t.Fatal(err)
		}
		first.waitFor(t, "the other process's listener", "v1")
		stream := newStrings()
		if _, err := c.Subscribe(reg2{Key: key}, stream.listener(t), cluster.Stream()); err != nil {
			t.Fatal(err)
		}
		state := newStrings()
		stateKey := key + "-state"
		if _, err := other.Subscribe(reg2{Key: stateKey}, newStrings().listener(t)); err != nil {
			t.Fatal(err)
		}
		if err := other.Publish(reg2{Key: stateKey, Value: "s1"}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Subscribe(reg2{Key: stateKey}, state.listener(t)); err != nil {
			t.Fatal(err)
		}
		state.waitFor(t, "a state listener", "s1")
		if err := other.Publish(reg2{Key: key, Value: "v2"}); err != nil {
			t.Fatal(err)
		}
		stream.waitFor(t, "a stream listener", "v2")
	})
}
