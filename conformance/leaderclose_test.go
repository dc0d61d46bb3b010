package conformance_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/election"
)

// A regression test for a cluster bug the suite's failover/leader-closes
// case found: when a leader closes, calls in flight on it must fail on
// their followers with the retryable cluster.ErrLeaderLost. The leader's
// term ended by cancelling its methods' contexts first and closing the
// followers' connections second, so a method that honours its context (or
// a call still waiting behind a subscribe) returned context.Canceled in
// between, and that reply often reached the follower before its connection
// closed: the call failed with a bare remote "Error: context canceled" that
// matched no sentinel, and the caller could not tell that retrying was
// safe. The bug shows in a fraction of the calls, so many are made.
//
// Since the hand-over (cluster.WithHandoverTimeout), a closing leader first
// waits for its followers' calls; these long polls end only with their
// context, so they are cut when the hand-over's bound passes, by the same
// end of term. Even rounds hang up at once (no hand-over), odd rounds hand
// over with a short bound: both must fail the calls with ErrLeaderLost.
func TestLeaderCloseFailsInFlightCallsWithLeaderLost(t *testing.T) {
	const rounds, followers, calls = 20, 16, 4
	var wrong []string
	total, bad := 0, 0
	for round := range rounds {
		var started atomic.Int32
		factory := func(context.Context, cluster.Emit) (*cluster.Service, error) {
			return &cluster.Service{Methods: map[string]cluster.Handler{
				// A long poll: it answers when its context ends.
				"wait": func(ctx context.Context, _ cluster.Args) (any, error) {
					started.Add(1)
					<-ctx.Done()
					return nil, ctx.Err()
				},
			}}, nil
		}
		tr := memTransport(t)
		handover := time.Duration(0)
		if round%2 == 1 {
			handover = 50 * time.Millisecond
		}
		opts := []cluster.Option{cluster.WithTransport(tr), cluster.WithAddr(fmt.Sprintf("leader-close-%d", round)),
			cluster.WithHandoverTimeout(handover),
			cluster.WithSingleMode(false), cluster.WithResponseTimeout(10 * time.Second), cluster.WithLogger(slog.New(slog.DiscardHandler))}
		newClient := func(mode cluster.Mode) *cluster.Client {
			c, err := cluster.New("LeaderClose", factory, append(opts, cluster.WithMode(mode), cluster.WithRegistry(election.NewRegistry()))...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close(context.Background()) })
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			if err := c.Ready(ctx); err != nil {
				t.Fatal(err)
			}
			return c
		}
		leader := newClient(cluster.ForceLeader)
		var wg sync.WaitGroup
		errs := make(chan error, followers*calls)
		for range followers {
			f := newClient(cluster.ForceFollower)
			for range calls {
				wg.Go(func() {
					ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
					defer cancel()
					_, err := f.Invoke(ctx, "wait")
					errs <- err
				})
			}
		}
		deadline := time.Now().Add(10 * time.Second)
		for started.Load() < followers*calls {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: %d of %d calls started on the leader", round, started.Load(), followers*calls)
			}
			time.Sleep(time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		if err := leader.Close(ctx); err != nil {
			t.Errorf("round %d: leader Close: %v", round, err)
		}
		cancel()
		wg.Wait()
		close(errs)
		for err := range errs {
			total++
			if errors.Is(err, cluster.ErrLeaderLost) {
				continue
			}
			if bad++; len(wrong) < 5 {
				wrong = append(wrong, fmt.Sprintf("round %d: %v", round, err))
			}
		}
	}
	if len(wrong) > 0 {
		t.Errorf("%d of %d calls in flight when their leader closed failed otherwise than with cluster.ErrLeaderLost; the first:\n%s",
			bad, total, strings.Join(wrong, "\n"))
	}
}
