package grpcshare_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/grpcshare"
	"github.com/go-clusterclient/clusterclient/internal/childproc"
	"github.com/go-clusterclient/clusterclient/transport/transporttest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

const mpChannel = "grpcshare-mp"

func dialShared(addr, target string, mode cluster.Mode) (*grpcshare.Conn, error) {
	return grpcshare.New(mpChannel, target,
		grpcshare.WithDialOptions(grpc.WithTransportCredentials(insecure.NewCredentials())),
		grpcshare.WithClusterOptions(cluster.WithAddr(addr), cluster.WithMode(mode), cluster.WithLogger(quiet)))
}

// checked is what a worker answers to "check".
type checked struct {
	Leader   bool
	Serving  bool
	FailCode codes.Code
	Err      string
}

// workerMain is one process of the multi-process test: args are the
// cluster address and the gRPC target. It answers the parent's events:
// "check" (a health check and a failing call, through the generated
// health stub), "inflight" (a unary call, a server stream and a bidi
// stream that stay in flight, each reporting its end), "exit".
func workerMain(args []string) int {
	c, err := dialShared(args[0], args[1], cluster.Auto)
	if err != nil {
		childproc.Fatalf("worker: %v", err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	err = c.Client().Ready(ctx)
	cancel()
	if err != nil {
		childproc.Fatalf("worker: ready: %v", err)
	}
	childproc.Emit("ready", map[string]any{"pid": os.Getpid(), "leader": c.Client().IsLeader()})
	for {
		switch ev := childproc.Receive(); ev.Name {
		case "check":
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			var r checked
			resp, err := healthpb.NewHealthClient(c).Check(ctx, &healthpb.HealthCheckRequest{Service: "probe"})
			r.Serving = resp.GetStatus() == healthpb.HealthCheckResponse_SERVING
			if err != nil {
				r.Err = err.Error()
			}
			_, err = echo(ctx, c, "fail")
			r.FailCode = status.Code(err)
			r.Leader = c.Client().IsLeader()
			cancel()
			childproc.Emit("checked", r)
		case "inflight":
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				_, err := echo(ctx, c, "wait")
				childproc.Emit("unary-end", map[string]any{"code": status.Code(err), "err": fmt.Sprint(err)})
			}()
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				s, err := openStream(ctx, c, "Forever", 0)
				if err == nil {
					err = s.RecvMsg(new(wrapperspb.UInt32Value))
				}
				childproc.Emit("streaming", nil)
				err = drain(s, err)
				childproc.Emit("stream-end", map[string]any{"code": status.Code(err), "err": fmt.Sprint(err)})
			}()
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				s, err := c.NewStream(ctx, &probeDesc.Streams[4], "/"+probeService+"/Chat")
				if err == nil {
					err = s.SendMsg(wrapperspb.UInt32(1))
				}
				if err == nil {
					err = s.RecvMsg(new(wrapperspb.UInt32Value))
				}
				childproc.Emit("chatting", nil)
				err = drain(s, err)
				childproc.Emit("bidi-end", map[string]any{"code": status.Code(err), "err": fmt.Sprint(err)})
			}()
		case "exit":
			return 0
		}
	}
}

// leaderMain leads the channel until told to exit: the benchmark's
// leader process.
func leaderMain(args []string) int {
	c, err := dialShared(args[0], args[1], cluster.ForceLeader)
	if err != nil {
		childproc.Fatalf("leader: %v", err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	err = c.Client().Ready(ctx)
	cancel()
	if err != nil {
		childproc.Fatalf("leader: ready: %v", err)
	}
	childproc.Emit("ready", nil)
	for childproc.Receive().Name != "exit" {
	}
	return 0
}

// collect reads ch's events until it has one of each name in want.
func collect(t *testing.T, ch *childproc.Child, want ...string) map[string]childproc.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	got := map[string]childproc.Event{}
	for len(got) < len(want) {
		ev, err := ch.Next(ctx)
		if err != nil {
			t.Fatalf("%s (pid %d): waiting for %v: %v; stderr: %s", ch.Mode(), ch.Pid(), want, err, ch.Stderr())
		}
		for _, w := range want {
			if ev.Name == w {
				got[w] = ev
			}
		}
	}
	return got
}

// Four processes share one gRPC connection: the health stub works from
// each, errors have the same code on the leader and the followers, the
// server sees one HTTP/2 connection. Then the leader is SIGKILLed with a
// unary call, a server stream and a bidi stream in flight in every
// process: the followers' end with Unavailable, a survivor leads, calls
// work again from every survivor, and the server again sees one
// connection (the new leader's; 2 in all).
func TestFourProcessesFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 4 processes")
	}
	ts := startServer(t)
	addr := transporttest.FreeAddr(t, "tcp", "127.0.0.1")
	var procs []*childproc.Child
	var leader *childproc.Child
	for i := 0; i < 4; i++ {
		ch := childproc.Start(t, "worker", addr, ts.addr)
		procs = append(procs, ch)
	}
	for _, ch := range procs {
		var r struct{ Leader bool }
		if err := collect(t, ch, "ready")["ready"].Decode(&r); err != nil {
			t.Fatal(err)
		}
		if r.Leader {
			if leader != nil {
				t.Fatalf("two leaders: pids %d and %d", leader.Pid(), ch.Pid())
			}
			leader = ch
		}
	}
	if leader == nil {
		t.Fatal("no process leads")
	}
	check := func(procs []*childproc.Child) (leaders int) {
		for _, ch := range procs {
			if err := ch.Send("check", nil); err != nil {
				t.Fatal(err)
			}
		}
		for _, ch := range procs {
			var r checked
			if err := collect(t, ch, "checked")["checked"].Decode(&r); err != nil {
				t.Fatal(err)
			}
			if !r.Serving || r.Err != "" || r.FailCode != codes.FailedPrecondition {
				t.Errorf("pid %d (leader %v): serving %v (%s), failing call's code %v, want SERVING and FailedPrecondition",
					ch.Pid(), r.Leader, r.Serving, r.Err, r.FailCode)
			}
			if r.Leader {
				leaders++
			}
		}
		return leaders
	}
	if n := check(procs); n != 1 {
		t.Fatalf("%d processes say they lead", n)
	}
	if open, total := ts.conns.open.Load(), ts.conns.total.Load(); open != 1 || total != 1 {
		t.Fatalf("the server sees %d connections (%d in all) for 4 processes, want 1", open, total)
	}

	for _, ch := range procs {
		if err := ch.Send("inflight", nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, ch := range procs {
		collect(t, ch, "streaming", "chatting")
	}
	for range procs {
		ts.nextStart(t, "Echo") // every process's unary call is upstream
	}
	if err := leader.Kill(); err != nil {
		t.Fatal(err)
	}
	var survivors []*childproc.Child
	for _, ch := range procs {
		if ch == leader {
			continue
		}
		survivors = append(survivors, ch)
		for name, ev := range collect(t, ch, "unary-end", "stream-end", "bidi-end") {
			var r struct {
				Code codes.Code
				Err  string
			}
			if err := ev.Decode(&r); err != nil {
				t.Fatal(err)
			}
			if r.Code != codes.Unavailable {
				t.Errorf("pid %d: %s with %v (%s), want Unavailable", ch.Pid(), name, r.Code, r.Err)
			}
		}
	}
	if n := check(survivors); n != 1 {
		t.Fatalf("after the kill %d survivors say they lead", n)
	}
	waitFor(t, "the server sees one connection, the new leader's", func() bool {
		return ts.conns.open.Load() == 1 && ts.conns.total.Load() == 2
	})
	for _, ch := range survivors {
		_ = ch.Send("exit", nil)
	}
	for _, ch := range survivors {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		if err := ch.Wait(ctx); err != nil {
			t.Errorf("pid %d: %v; stderr: %s", ch.Pid(), err, ch.Stderr())
		}
		cancel()
	}
}
