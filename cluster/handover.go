package cluster

import (
	"context"
	"log/slog"
	"time"

	"github.com/go-clusterclient/clusterclient/election"
	"github.com/go-clusterclient/clusterclient/protocol"
	"github.com/go-clusterclient/clusterclient/transport"
)

// A closing leader hands over (WithHandoverTimeout) in four steps:
//
//  1. It stops leading the channel on the address (a follower arriving now
//     hears that the leader left, ErrLeaderLeft, and tries again shortly)
//     and frees the address, so that
//     the next election can succeed at once. Conns already accepted live
//     on (transport.ConnsOutliveListener; on a transport whose conns end
//     with their listener, the address is freed only at the end).
//  2. It sends leaving to each Go follower that said it understands it.
//     The follower ends its term (its new calls wait for the next leader,
//     which it elects at once), waits for its calls in flight on this
//     connection, then answers leaving_res: it sends nothing more.
//  3. It keeps serving meanwhile, and closes each follower's connection
//     once that follower has nothing running or queued here and, for a Go
//     follower, answered leaving. A Node follower is not told: it sees its
//     connection close once its calls were answered, as when a Node
//     leader exits.
//  4. When every connection is closed, the bound passed or Close's context
//     ended, leaderTerm.end closes what is left (their calls fail with
//     ErrLeaderLost) and the real client closes.
//
// Followers that were not admitted yet are dropped at step 1: they will
// register with the next leader.

// handoverPoll is how often a hand-over looks for followers it is done with.
const handoverPoll = time.Millisecond

// handOver runs steps 1 to 3 on a closing leader's term, on the
// supervisor's goroutine. It returns the lease's release error, and
// whether the lease was released.
func (lt *leaderTerm) handOver(ctx context.Context, lease *election.Lease) (relErr error, released bool) {
	cfg := &lt.c.cfg
	start := time.Now()
	lt.srv.leave(lt)
	if transport.ConnsOutliveListener(cfg.transport) {
		relErr, released = lease.Release(), true
	}
	lt.mu.Lock()
	peers := make([]*peer, 0, len(lt.peers))
	for p := range lt.peers {
		peers = append(peers, p)
	}
	lt.mu.Unlock()
	told := 0
	for _, p := range peers {
		switch {
		case !p.adm.isMember():
			p.close(ErrClosed)
		case p.handover.Load():
			if p.l.Send(false, ids.Next(), 0, &protocol.ConnObject{Type: protocol.KindLeaving}, nil) == nil {
				told++
			}
		}
	}
	bound := time.NewTimer(cfg.handover)
	defer bound.Stop()
	tick := time.NewTicker(handoverPoll)
	defer tick.Stop()
	for {
		left := 0
		for _, p := range peers {
			if p.isClosed() {
				continue
			}
			if p.handedOver() {
				p.close(ErrClosed)
				continue
			}
			left++
		}
		if left == 0 {
			lt.log.Debug("handed over", slog.Int("told", told), slog.Int("followers", len(peers)),
				slog.Duration("took", time.Since(start)))
			return relErr, released
		}
		select {
		case <-tick.C:
		case <-bound.C:
			lt.log.Warn("hand-over bound reached; closing the followers still in it",
				slog.Int("followers", left), slog.Duration("bound", cfg.handover))
			return relErr, released
		case <-ctx.Done():
			lt.log.Warn("Close's context ended during the hand-over; closing the followers still in it",
				slog.Int("followers", left), slog.Any("error", ctx.Err()))
			return relErr, released
		}
	}
}

// handedOver reports whether the leader is done with this follower in a
// hand-over: nothing of it runs or waits here, and a Go follower that
// understands leaving answered it (so nothing more is on its way).
func (p *peer) handedOver() bool {
	if p.handover.Load() && !p.left.Load() {
		return false
	}
	return p.inflight.Load() == 0 && !p.l.OrderedBusy()
}

func (p *peer) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}
