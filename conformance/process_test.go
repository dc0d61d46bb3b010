package conformance_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/conformance"
	"github.com/go-clusterclient/clusterclient/transport"
	"github.com/go-clusterclient/clusterclient/transport/tcp"
)

// tcpHarness runs member processes over TCP (kind "tcp" in childFactory).
func tcpHarness() conformance.Harness {
	return conformance.Harness{
		Kind:         "tcp",
		NewTransport: func(testing.TB) transport.Transport { return tcp.New(tcp.DefaultConfig()) },
		NewAddr: func(tb testing.TB) string {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				tb.Fatal(err)
			}
			defer l.Close()
			return l.Addr().String()
		},
	}
}

// The exported child-process helper: two member processes form a cluster,
// report their roles, the real client built and the values received, obey
// subscribe, publish, invoke and close, and report call errors with the
// sentinels they match.
func TestProcess(t *testing.T) {
	h := tcpHarness()
	addr := h.NewAddr(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	leader := conformance.StartProcess(t, h, conformance.ProcessConfig{Channel: "Proc", Addr: addr, Mode: cluster.ForceLeader})
	if role, err := leader.WaitReady(ctx); err != nil || role != cluster.RoleLeader {
		t.Fatalf("leader process: %v, %v", role, err)
	}
	follower := conformance.StartProcess(t, h, conformance.ProcessConfig{Channel: "Proc", Addr: addr, Mode: cluster.ForceFollower})
	if role, err := follower.WaitReady(ctx); err != nil || role != cluster.RoleFollower {
		t.Fatalf("follower process: %v, %v", role, err)
	}
	built := leader.State().Built
	if len(built) != 1 || !strings.HasPrefix(built[0], fmt.Sprintf("pid %d ", leader.Pid())) {
		t.Fatalf("leader process built %q", built)
	}
	if s := follower.State(); len(s.Built) != 0 {
		t.Fatalf("follower process built %q", s.Built)
	}

	res, err := follower.Invoke(ctx, conformance.MethodWhoami)
	var id string
	if err != nil || json.Unmarshal(res, &id) != nil || id != built[0] {
		t.Fatalf("whoami from the follower process: %s, %v; want %q", res, err, built[0])
	}
	res, err = follower.Invoke(ctx, conformance.MethodSquare, 12)
	if err != nil || string(res) != "144" {
		t.Fatalf("square(12): %s, %v", res, err)
	}
	_, err = follower.Invoke(ctx, conformance.MethodFail)
	var ce *conformance.CallError
	if !errors.As(err, &ce) || ce.Remote == nil || ce.Remote.Code != conformance.FailCode || len(ce.Is) != 0 {
		t.Fatalf("fail: %#v", err)
	}
	_, err = follower.Invoke(ctx, "noSuchMethod")
	if !errors.As(err, &ce) || !ce.Matches("ErrUnknownMethod") || ce.Matches("ErrTimeout") {
		t.Fatalf("noSuchMethod: %#v", err)
	}

	if err := follower.Subscribe(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if err := leader.Publish(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	snap, err := follower.WaitSnapshot(ctx, "k", func(s conformance.Snapshot) bool { return s.Has("v") })
	if err != nil || snap.By != built[0] {
		t.Fatalf("snapshot %+v, %v", snap, err)
	}
	if n := len(follower.Snapshots("k")); n < 1 {
		t.Fatalf("%d snapshots recorded", n)
	}

	// A held call is reported, and Close ends it (it answers "released")
	// before the process exits.
	type result struct {
		res json.RawMessage
		err error
	}
	held := make(chan result, 1)
	go func() {
		res, err := leader.Invoke(ctx, conformance.MethodHold)
		held <- result{res, err}
	}()
	if _, err := leader.WaitState(ctx, "a held call", func(s conformance.ProcessState) bool { return s.Holding == 1 }); err != nil {
		t.Fatal(err)
	}
	if err := follower.Close(ctx); err != nil {
		t.Fatalf("close the follower process: %v", err)
	}
	if err := leader.Close(ctx); err != nil {
		t.Fatalf("close the leader process: %v", err)
	}
	if r := <-held; r.err != nil || string(r.res) != `"released"` {
		t.Fatalf("held call: %s, %v", r.res, r.err)
	}
	if s := leader.State(); !s.Exited {
		t.Fatalf("leader process state after Close: %+v", s)
	}
	// Commands to an exited process fail instead of waiting.
	if err := leader.Publish(ctx, "k", "late"); err == nil {
		t.Fatal("publish through an exited process succeeded")
	}
}
