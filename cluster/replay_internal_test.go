package cluster

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"testing"
)

// notSentInner is an inner whose term ends after it sent n one-way calls:
// the next ones are not sent (errNotSent), as on a session whose leader
// died or is leaving.
type notSentInner struct {
	n    int
	sent []string
}

func (in *notSentInner) invoke(_ context.Context, method string, _ []any, _ bool) (Result, error) {
	if len(in.sent) == in.n {
		return Result{}, errNotSent
	}
	in.sent = append(in.sent, method)
	return Result{}, nil
}
func (in *notSentInner) subscribe(string, json.RawMessage)   {}
func (in *notSentInner) unsubscribe(string, json.RawMessage) {}
func (in *notSentInner) publish([]byte, bool) error          { return nil }
func (in *notSentInner) fill(*Stats)                         {}
func (in *notSentInner) idempotent(string) bool              { return false }

// One-way calls queued while no leader was ready, replayed into a term that
// ends before all are sent, wait for the next term in their order: none is
// dropped, none runs twice, and the term does not become ready.
func TestReplayKeepsCallsNotSent(t *testing.T) {
	in := &notSentInner{n: 1}
	tm := newTermState(1, RoleFollower)
	tm.inner, tm.phase = in, termReplaying
	c := &Client{ctx: context.Background(), log: slog.New(slog.DiscardHandler), pubs: map[string]*wpub{}, cur: tm,
		queued: []queuedCall{{method: "a"}, {method: "b"}, {method: "c"}}}
	c.replayAndReady(tm)
	if !slices.Equal(in.sent, []string{"a"}) {
		t.Fatalf("sent %v, want [a]", in.sent)
	}
	var left []string
	for _, q := range c.queued {
		left = append(left, q.method)
	}
	if !slices.Equal(left, []string{"b", "c"}) {
		t.Fatalf("queued after the term ended: %v, want [b c] (the calls not sent, in order)", left)
	}
	if tm.ready() {
		t.Fatal("a term whose calls could not be sent became ready")
	}
}
