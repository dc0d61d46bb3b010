package election_test

import (
	"context"
	"io"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/election"
	"github.com/go-clusterclient/clusterclient/internal/childproc"
	"github.com/go-clusterclient/clusterclient/transport/transporttest"
)

// childModes are the modes a re-executed test binary can run (see
// TestMain).
var childModes = map[string]func(args []string) int{
	"elect": electChild,
}

// status is a child's answer to the parent's "status" event.
type status struct {
	Pid  int    `json:"pid"`
	Term int    `json:"term"` // elections won so far (as leader or follower)
	Role string `json:"role"` // "electing", "leader" or "follower"
	// Followers is, for a leader, the number of follower conns it holds
	// open.
	Followers int64 `json:"followers"`
	// ElectedAt is the wall-clock time (Unix ns) the current role began.
	ElectedAt int64  `json:"elected_at"`
	Attempts  int    `json:"attempts"`
	Error     string `json:"error,omitempty"`
}

// electChild competes for args[0] over tcp in auto mode, from the
// parent's "go" event on and forever: as a leader it holds its followers' conns; as a follower it reads its conn
// until the leader dies, then re-elects. It answers every "status" event
// from the parent with its current status.
func electChild(args []string) int {
	if len(args) != 1 {
		childproc.Fatalf("elect: want one argument, the address; got %q", args)
	}
	var mu sync.Mutex
	st := status{Pid: os.Getpid(), Role: "electing"}
	var acc *acceptor
	set := func(f func(*status)) {
		mu.Lock()
		defer mu.Unlock()
		f(&st)
	}

	elect := func() {
		tr := newTCPTransport()
		cfg := election.Config{Transport: tr, Addr: args[0], Channel: "DataClient"}
		// The parent kills this process; the bound is only against a
		// parent that vanished without closing stdin.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := election.Default.Elect(ctx, cfg)
		for {
			if err != nil {
				set(func(s *status) { s.Error = err.Error() })
				childproc.Fatalf("elect: %v", err)
			}
			now := time.Now().UnixNano()
			if out.Role == election.Leader {
				a := attach(out.Lease)
				set(func(s *status) {
					s.Term++
					s.Role, s.ElectedAt, s.Attempts = "leader", now, out.Attempts
					acc = a
				})
				return // lead until killed
			}
			set(func(s *status) {
				s.Term++
				s.Role, s.ElectedAt, s.Attempts = "follower", now, out.Attempts
			})
			io.Copy(io.Discard, out.Conn) // until the leader dies
			out.Conn.Close()
			set(func(s *status) { s.Role = "electing" })
			out, err = election.Default.Reelect(ctx, cfg)
		}
	}

	started := false
	for {
		ev := childproc.Receive()
		switch {
		case ev.Name == "go" && !started:
			started = true
			go elect()
			continue
		case ev.Name != "status":
			childproc.Fatalf("elect: unexpected event %q", ev.Name)
		}
		mu.Lock()
		s := st
		if acc != nil {
			s.Followers = acc.live.Load()
		}
		mu.Unlock()
		childproc.Emit("status", s)
	}
}

// group is a set of elect children on one address, and what the parent
// knows of them.
type group struct {
	t     testing.TB
	addr  string
	alive []*childproc.Child
}

func startGroup(t testing.TB, addr string, n int) *group {
	g := &group{t: t, addr: addr}
	for range n {
		g.add()
	}
	return g
}

// add starts a child; it competes once it gets "go".
func (g *group) add() *childproc.Child {
	c := childproc.Start(g.t, "elect", g.addr)
	g.alive = append(g.alive, c)
	return c
}

// start sends "go" to every live child, as close together as the parent
// can, so that they compete at once.
func (g *group) start() {
	for _, c := range g.alive {
		if err := c.Send("go", nil); err != nil {
			g.t.Fatal(err)
		}
	}
}

// poll asks every live child for its status.
func (g *group) poll(ctx context.Context) ([]status, error) {
	for _, c := range g.alive {
		if err := c.Send("status", nil); err != nil {
			return nil, err
		}
	}
	out := make([]status, len(g.alive))
	for i, c := range g.alive {
		ev, err := c.Expect(ctx, "status")
		if err != nil {
			return nil, err
		}
		if err := ev.Decode(&out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// settle polls until every live child i has finished need[i] elections
// and none is electing, and exactly one leads with every other child connected to
// it. It fails the test if two children ever lead at once, or if that
// state is not reached in time. It returns the leader's index and the
// statuses.
func (g *group) settle(ctx context.Context, need []int) (int, []status) {
	g.t.Helper()
	var last []status
	for {
		sts, err := g.poll(ctx)
		if err != nil {
			g.t.Fatalf("polling children (last statuses %+v): %v", last, err)
		}
		last = sts
		leader, leaders, done := -1, 0, true
		for i, s := range sts {
			if s.Role == "leader" {
				leader = i
				leaders++
			}
			if s.Term < need[i] || s.Role == "electing" {
				done = false
			}
		}
		if leaders > 1 {
			g.t.Fatalf("%d children lead at once: %+v", leaders, sts)
		}
		if done && leaders == 1 && sts[leader].Followers == int64(len(sts)-1) {
			return leader, sts
		}
		select {
		case <-ctx.Done():
			g.t.Fatalf("no settled election: %v; last statuses %+v", ctx.Err(), last)
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// terms returns each child's current term plus add.
func terms(sts []status, add int) []int {
	out := make([]int, len(sts))
	for i, s := range sts {
		out[i] = s.Term + add
	}
	return out
}

// ones is the need of n fresh children: one election each.
func ones(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = 1
	}
	return out
}

// CC-028, CC-030: 8 processes compete for one address at once and
// exactly one leads, with the 7 others connected to it. SIGKILL the
// leader: the survivors see EOF, re-elect, and again exactly one leads,
// with all the others connected to it. Repeat until one process is left
// (7 kills), three times over.
func TestMultiProcessFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 8 processes")
	}
	for run := range 3 {
		ctx := testContext(t)
		g := startGroup(t, freeTCPAddr(t), 8)
		g.start()
		leader, sts := g.settle(ctx, ones(len(g.alive)))
		for round := 1; ; round++ {
			t.Logf("run %d round %d: pid %d leads %d followers (%d attempts)",
				run, round, sts[leader].Pid, sts[leader].Followers, sts[leader].Attempts)
			if len(g.alive) == 1 {
				g.alive[0].Kill() // done with this run
				break
			}
			victim := g.alive[leader]
			killed := time.Now()
			if err := victim.Kill(); err != nil {
				t.Fatal(err)
			}
			g.alive = slices.Delete(g.alive, leader, leader+1)
			next := slices.Delete(terms(sts, 1), leader, leader+1)

			leader, sts = g.settle(ctx, next)
			t.Logf("run %d round %d: new leader %v after SIGKILL",
				run, round, time.Unix(0, sts[leader].ElectedAt).Sub(killed))
		}
	}
}

// BenchmarkFailoverReelect measures the time from SIGKILL of the leader
// process to a survivor leading again (its Reelect returning Leader), with
// 3 processes on tcp. The clocks compared are the parent's and the
// child's wall clocks, on one host.
func BenchmarkFailoverReelect(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	g := startGroup(b, freeTCPAddr(b), 3)
	g.start()
	leader, sts := g.settle(ctx, ones(3))

	var samples []time.Duration
	b.ResetTimer()
	for range b.N {
		victim := g.alive[leader]
		killed := time.Now()
		victim.Kill()
		g.alive = slices.Delete(g.alive, leader, leader+1)
		next := slices.Delete(terms(sts, 1), leader, leader+1)
		leader, sts = g.settle(ctx, next)
		samples = append(samples, time.Unix(0, sts[leader].ElectedAt).Sub(killed))

		b.StopTimer()
		<-victim.Exited()
		if err := g.add().Send("go", nil); err != nil {
			b.Fatal(err)
		}
		leader, sts = g.settle(ctx, append(terms(sts, 0), 1))
		b.StartTimer()
	}
	b.StopTimer()
	slices.Sort(samples)
	b.ReportMetric(float64(percentile(samples, 50).Microseconds()), "p50-µs")
	b.ReportMetric(float64(percentile(samples, 99).Microseconds()), "p99-µs")
}

func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[(len(sorted)-1)*p/100]
}

// freeTCPAddr returns a loopback address with a port nobody listened on a
// moment ago.
func freeTCPAddr(t testing.TB) string { return transporttest.FreeAddr(t, "tcp", "127.0.0.1") }
