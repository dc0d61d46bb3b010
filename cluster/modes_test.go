package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/internal/childproc"
	"github.com/go-clusterclient/clusterclient/transport/tcp"
)

// childModes are the modes a child process of this test binary can run
// (see internal/childproc).
var childModes = map[string]func(args []string) int{
	"member":  memberMode,
	"prefork": preforkMode,
}

// memberArgs configures a member process.
type memberArgs struct {
	Name       string
	Port       int
	Mode       string // auto, leader, follower
	Heartbeat  time.Duration
	CallEvery  time.Duration // 0: no continuous calls
	PubEvery   time.Duration // 0: no continuous publishes
	CallBudget time.Duration // each call's context timeout
	NoHandover bool          // WithHandoverTimeout(0): Close hangs up at once
	Idempotent bool          // the Service declares whoami idempotent
	CallWork   time.Duration // how long whoami works on the leader
}

func (a memberArgs) list() []string {
	return []string{a.Name, strconv.Itoa(a.Port), a.Mode, a.Heartbeat.String(), a.CallEvery.String(),
		a.PubEvery.String(), a.CallBudget.String(), strconv.FormatBool(a.NoHandover), strconv.FormatBool(a.Idempotent),
		a.CallWork.String()}
}

func parseMemberArgs(args []string) (memberArgs, error) {
	if len(args) != 10 {
		return memberArgs{}, fmt.Errorf("want 10 args, got %q", args)
	}
	a := memberArgs{Name: args[0], Mode: args[2], NoHandover: args[7] == "true", Idempotent: args[8] == "true"}
	var err error
	if a.CallWork, err = time.ParseDuration(args[9]); err != nil {
		return a, err
	}
	if a.Port, err = strconv.Atoi(args[1]); err != nil {
		return a, err
	}
	ds := []*time.Duration{&a.Heartbeat, &a.CallEvery, &a.PubEvery, &a.CallBudget}
	for i, p := range ds {
		if *p, err = time.ParseDuration(args[3+i]); err != nil {
			return a, err
		}
	}
	return a, nil
}

// memberStats is what a member reports about its calls.
type memberStats struct {
	OK, Lost, Timeouts, NotReady, Other int64
	Hangs                               int64 // calls that outlived their budget by more than a second
	MaxCallMS                           int64
	LastErr                             string
	Publishes                           int64
}

// memberMode is one process of a multi-process cluster: a Client on TCP
// whose real client is a registry; it reports its role, readiness, lost
// leaders, real client constructions and received values as events; it
// calls and publishes continuously if asked; the parent sends it
// "publish" {key, value} and "stats".
func memberMode(args []string) int {
	a, err := parseMemberArgs(args)
	if err != nil {
		childproc.Fatalf("member: %v", err)
	}
	mode := cluster.Auto
	switch a.Mode {
	case "leader":
		mode = cluster.ForceLeader
	case "follower":
		mode = cluster.ForceFollower
	}
	pid := os.Getpid()
	var builds atomic.Int32
	factory := func(ctx context.Context, emit cluster.Emit) (*cluster.Service, error) {
		childproc.Emit("built", builds.Add(1))
		rc := &childRegistry{latest: map[string]string{}, subs: map[string]func(any){}, work: a.CallWork}
		svc := rc.service(pid)
		if a.Idempotent {
			svc.Idempotent = []string{"whoami"}
		}
		return svc, nil
	}
	handover := cluster.DefaultHandoverTimeout
	if a.NoHandover {
		handover = 0
	}
	c, err := cluster.New(a.Name, factory, cluster.WithHandoverTimeout(handover),
		cluster.WithTransport(tcp.New(tcp.Config{})), cluster.WithPort(a.Port), cluster.WithMode(mode),
		cluster.WithSingleMode(false), cluster.WithHeartbeatInterval(a.Heartbeat),
		cluster.WithResponseTimeout(time.Second), cluster.WithRegisterRetry(100*time.Millisecond),
		cluster.WithLogger(testLogger()),
		cluster.WithEventHandler(func(ev cluster.Event) {
			data := map[string]any{"role": ev.Role.String(), "term": ev.Term}
			if ev.Err != nil {
				data["err"] = ev.Err.Error()
			}
			switch ev.Kind {
			case cluster.EventRole:
				childproc.Emit("role", data)
			case cluster.EventReady:
				childproc.Emit("ready", data)
			case cluster.EventLeaderLost:
				childproc.Emit("lost", data)
			case cluster.EventError:
				childproc.Emit("error", data)
			}
		}))
	if err != nil {
		childproc.Fatalf("member: %v", err)
	}
	if _, err := cluster.SubscribeTyped(c, reg{Key: "k"}, func(v string) { childproc.Emit("value", v) }); err != nil {
		childproc.Fatalf("member subscribe: %v", err)
	}
	var st memberStats
	var mu sync.Mutex
	stop := make(chan struct{})
	var wg sync.WaitGroup
	if a.CallEvery > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(a.CallEvery):
				}
				ctx, cancel := context.WithTimeout(context.Background(), a.CallBudget)
				start := time.Now()
				_, err := cluster.Call[int](ctx, c, "whoami")
				el := time.Since(start)
				cancel()
				mu.Lock()
				st.MaxCallMS = max(st.MaxCallMS, el.Milliseconds())
				if el > a.CallBudget+time.Second {
					st.Hangs++
				}
				switch {
				case err == nil:
					st.OK++
				case errors.Is(err, cluster.ErrLeaderLost):
					st.Lost++
				case errors.Is(err, cluster.ErrTimeout):
					st.Timeouts++
				case errors.Is(err, context.DeadlineExceeded):
					st.NotReady++
				default:
					st.Other++
					st.LastErr = err.Error()
				}
				mu.Unlock()
			}
		}()
	}
	if a.PubEvery > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("load-%d", pid)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(a.PubEvery):
				}
				if i > 0 {
					c.Unpublish(reg{Key: key, Value: strconv.Itoa(i - 1)})
				}
				c.Publish(reg{Key: key, Value: strconv.Itoa(i)})
				mu.Lock()
				st.Publishes++
				mu.Unlock()
			}
		}()
	}
	childproc.Emit("started", pid)
	var prev *reg
	for {
		ev := childproc.Receive()
		switch ev.Name {
		case "publish":
			var r reg
			if err := ev.Decode(&r); err != nil {
				childproc.Fatalf("publish: %v", err)
			}
			if prev != nil {
				c.Unpublish(*prev)
			}
			if err := c.Publish(r); err != nil {
				childproc.Fatalf("publish: %v", err)
			}
			prev = &r
		case "whoami":
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			leader, err := cluster.Call[int](ctx, c, "whoami")
			cancel()
			if err != nil {
				childproc.Emit("whoami", -1)
			} else {
				childproc.Emit("whoami", leader)
			}
		case "stats":
			mu.Lock()
			s := st
			mu.Unlock()
			childproc.Emit("stats", s)
		case "exit":
			close(stop)
			wg.Wait()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := c.Close(ctx); err != nil {
				childproc.Fatalf("close: %v", err)
			}
			mu.Lock()
			s := st
			mu.Unlock()
			childproc.Emit("closed", s) // every call it made, to the last

			return 0
		}
	}
}

// childRegistry is a member's real client: latest value per key, pushed to
// the key's subscriber; whoami answers the leader's pid.
type childRegistry struct {
	work   time.Duration // whoami's work
	mu     sync.Mutex
	latest map[string]string
	subs   map[string]func(any)
}

func (r *childRegistry) service(pid int) *cluster.Service {
	return &cluster.Service{
		Subscribe: func(g cluster.Reg, push func(any)) error {
			var k reg
			if err := g.Decode(&k); err != nil {
				return err
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			r.subs[k.Key] = push
			if v, ok := r.latest[k.Key]; ok {
				push(v)
			}
			return nil
		},
		Publish: func(_ context.Context, g cluster.Reg) error {
			var k reg
			if err := g.Decode(&k); err != nil {
				return err
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			r.latest[k.Key] = k.Value
			if push := r.subs[k.Key]; push != nil {
				push(k.Value)
			}
			return nil
		},
		Unpublish: func(_ context.Context, g cluster.Reg) error {
			var k reg
			if err := g.Decode(&k); err != nil {
				return err
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			if r.latest[k.Key] == k.Value {
				delete(r.latest, k.Key)
			}
			return nil
		},
		Methods: map[string]cluster.Handler{
			"whoami": func(context.Context, cluster.Args) (any, error) {
				if r.work > 0 {
					time.Sleep(r.work)
				}
				return pid, nil
			},
		},
	}
}
