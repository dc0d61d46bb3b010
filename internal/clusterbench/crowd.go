package clusterbench

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/election"
)

// crowdArgs: N idle forced followers of the channel at the address.
type crowdArgs struct {
	memberArgs
	N int `json:"n"`
}

// crowdRole runs N idle followers in one process, each with its own
// election registry, so that each behaves (and connects) as a follower in
// its own process would. The leader's memory per idle follower is measured
// with crowds; a thousand follower processes would not fit a small host.
func crowdRole(raw json.RawMessage) (any, map[string]command, func(), error) {
	var a crowdArgs
	if err := decodeArgs(raw, &a); err != nil {
		return nil, nil, nil, err
	}
	a.Mode = "follower"
	clients := make([]*cluster.Client, a.N)
	errs := make([]error, a.N)
	sem := make(chan struct{}, 16) // bounded concurrency of elections and handshakes
	var wg sync.WaitGroup
	for i := range a.N {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			clients[i], errs[i] = newMember(a.memberArgs, election.NewRegistry(), nil)
		})
	}
	wg.Wait()
	closeAll := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		for _, c := range clients {
			if c != nil {
				wg.Go(func() { c.Close(ctx) })
			}
		}
		wg.Wait()
	}
	for i, err := range errs {
		if err != nil {
			closeAll()
			return nil, nil, nil, fmt.Errorf("crowd follower %d of %d: %w", i+1, a.N, err)
		}
	}
	return struct {
		N int `json:"n"`
	}{a.N}, map[string]command{"mem": func(json.RawMessage) (any, error) { return readMem(), nil }}, closeAll, nil
}
