package cluster_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
)

// A follower's listeners may run on the goroutine that reads its
// connection (issue 19: no hand-over per pushed value). A listener that
// blocks must not hold up the subscriber's calls (reading moves on), and
// the values after it come after it, in order; the same with the
// subscriber as leader or as follower.
func TestBlockedListenerHoldsNothingUp(t *testing.T) {
	for _, role := range []string{"leader", "follower"} {
		t.Run(role, func(t *testing.T) {
			w := newWorld()
			l, f := pair(t, "Inline", w)
			sub, pub := f, l
			if role == "leader" {
				sub, pub = l, f
			}
			entered, release := make(chan struct{}), make(chan struct{})
			got := make(chan []string, 10)
			_, err := cluster.SubscribeTyped(sub, reg{Key: "foo"}, func(v []string) {
				if slices.Equal(v, []string{"v1"}) {
					close(entered)
					<-release
				}
				got <- v
			})
			if err != nil {
				t.Fatal(err)
			}
			next := func() []string {
				t.Helper()
				select {
				case v := <-got:
					return v
				case <-time.After(wait):
					t.Fatal("no value")
					return nil
				}
			}
			if v := next(); len(v) != 0 {
				t.Fatalf("first value %v, want the empty list", v)
			}
			for _, v := range []string{"v1"} {
				if err := pub.Publish(reg{Key: "foo", Value: v}); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case <-entered:
			case <-time.After(wait):
				t.Fatal("the listener never got v1")
			}
			// The listener blocks: calls from the subscriber still answer,
			// more than once (the reader has moved on).
			for range 3 {
				ctx, cancel := context.WithTimeout(context.Background(), wait)
				if got := mustInvokeCtx(t, ctx, sub, "echo", "x"); got != "x" {
					t.Fatalf("echo answered %q", got)
				}
				cancel()
			}
			for _, v := range []string{"v2", "v3"} {
				if err := pub.Publish(reg{Key: "foo", Value: v}); err != nil {
					t.Fatal(err)
				}
			}
			// v2 and v3 wait for v1's listener.
			close(release)
			for _, want := range [][]string{{"v1"}, {"v1", "v2"}, {"v1", "v2", "v3"}} {
				if v := next(); !slices.Equal(v, want) {
					t.Fatalf("value %v, want %v (in order, after the blocked one)", v, want)
				}
			}
			if st := l.Stats(); role == "follower" && st.Followers != 1 {
				t.Fatalf("the leader has %d followers, want 1", st.Followers)
			}
		})
	}
}

func mustInvokeCtx(t *testing.T, ctx context.Context, c *cluster.Client, method string, args ...any) string {
	t.Helper()
	res, err := c.Invoke(ctx, method, args...)
	if err != nil {
		t.Fatalf("invoke %s while a listener blocks: %v", method, err)
	}
	var s string
	if err := res.Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}
