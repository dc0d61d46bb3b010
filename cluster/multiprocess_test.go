package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/election"
	"github.com/go-clusterclient/clusterclient/internal/childproc"
	"github.com/go-clusterclient/clusterclient/transport/tcp"
)

// member is the parent's view of a member process, kept up to date from
// its events by one reader goroutine.
type member struct {
	t  *testing.T
	ch *childproc.Child

	mu      sync.Mutex
	role    string
	term    uint64
	ready   bool
	values  map[string]bool
	builds  int
	lost    []string
	errs    []string
	replies chan childproc.Event
	exited  bool
	wake    chan struct{}
}

func startMember(t *testing.T, a memberArgs) *member {
	t.Helper()
	m := &member{t: t, ch: childproc.Start(t, "member", a.list()...), values: map[string]bool{},
		replies: make(chan childproc.Event, 16), wake: make(chan struct{}, 1)}
	go m.read()
	t.Cleanup(func() {
		// A child built with -race reports races on its stderr and is
		// usually killed before it could exit with status 66.
		if s := m.ch.Stderr(); strings.Contains(s, "WARNING: DATA RACE") || strings.Contains(s, "panic:") {
			t.Errorf("member %d:\n%s", m.ch.Pid(), s)
		}
	})
	return m
}

func (m *member) read() {
	for {
		ev, err := m.ch.Next(context.Background())
		m.mu.Lock()
		if err != nil {
			m.exited, m.ready = true, false
			m.mu.Unlock()
			m.poke()
			return
		}
		var d struct {
			Role string `json:"role"`
			Term uint64 `json:"term"`
			Err  string `json:"err"`
		}
		json.Unmarshal(ev.Data, &d)
		switch ev.Name {
		case "role":
			m.role, m.term, m.ready = d.Role, d.Term, false
		case "ready":
			if d.Term == m.term {
				m.ready = d.Err == ""
			}
		case "lost":
			m.ready = false
			m.role = "none"
			m.lost = append(m.lost, d.Err)
		case "error":
			m.errs = append(m.errs, d.Err)
		case "built":
			m.builds++
		case "value":
			var v string
			json.Unmarshal(ev.Data, &v)
			m.values[v] = true
		case "stats", "whoami", "closed":
			m.mu.Unlock()
			m.replies <- ev
			m.poke()
			continue
		}
		m.mu.Unlock()
		m.poke()
	}
}

func (m *member) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func (m *member) state() (role string, ready, exited bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.role, m.ready, m.exited
}

func (m *member) has(v string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.values[v]
}

func (m *member) request(name string, data any) childproc.Event {
	m.t.Helper()
	if err := m.ch.Send(name, data); err != nil {
		m.t.Fatal(err)
	}
	select {
	case ev := <-m.replies:
		return ev
	case <-time.After(10 * time.Second):
		m.t.Fatalf("member %d: no reply to %s", m.ch.Pid(), name)
		return childproc.Event{}
	}
}

func (m *member) stats() memberStats {
	var s memberStats
	if err := m.request("stats", nil).Decode(&s); err != nil {
		m.t.Fatal(err)
	}
	return s
}

// live returns the members that have not exited.
func live(ms []*member) []*member {
	var out []*member
	for _, m := range ms {
		if _, _, exited := m.state(); !exited {
			out = append(out, m)
		}
	}
	return out
}

// waitOneLeader waits until every live member is ready and exactly one of
// them leads; it returns the leader.
func waitOneLeader(t *testing.T, ms []*member, d time.Duration) *member {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		var leaders []*member
		allReady := true
		for _, m := range live(ms) {
			role, ready, _ := m.state()
			if !ready {
				allReady = false
			}
			if role == "leader" {
				leaders = append(leaders, m)
			}
		}
		if allReady && len(leaders) == 1 {
			return leaders[0]
		}
		if time.Now().After(deadline) {
			var states []string
			for _, m := range live(ms) {
				role, ready, _ := m.state()
				states = append(states, fmt.Sprintf("pid %d: %s ready=%v", m.ch.Pid(), role, ready))
			}
			t.Fatalf("no single ready leader within %v: %s", d, strings.Join(states, "; "))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func totalBuilds(ms []*member) int {
	n := 0
	for _, m := range ms {
		m.mu.Lock()
		n += m.builds
		m.mu.Unlock()
	}
	return n
}

// RP-01, CC-027, CC-030, RG-19: four processes on one port share one real
// client: exactly one construction across the host, every process reaches
// the same leader, and a value published by one process reaches all four.
func TestRP01_FourProcessesOneRealClient(t *testing.T) {
	port := freePort(t)
	var ms []*member
	for range 4 {
		ms = append(ms, startMember(t, memberArgs{Name: "Shared", Port: port, Mode: "auto", Heartbeat: time.Second, CallBudget: time.Second}))
	}
	leader := waitOneLeader(t, ms, 20*time.Second)
	if n := totalBuilds(ms); n != 1 {
		t.Fatalf("%d real clients built across 4 processes, want 1", n)
	}
	for _, m := range ms {
		var pid int
		if err := m.request("whoami", nil).Decode(&pid); err != nil || pid != leader.ch.Pid() {
			t.Fatalf("member %d reaches %d (%v), leader is %d", m.ch.Pid(), pid, err, leader.ch.Pid())
		}
	}
	ms[3].ch.Send("publish", reg{Key: "k", Value: "receive val"})
	eventually(t, 10*time.Second, "all four receive the value", func() bool {
		for _, m := range ms {
			if !m.has("receive val") {
				return false
			}
		}
		return true
	})
}

// Scenario 6 (CC-028, RP-03, RG-12, RG-23): SIGKILL the leader process 20
// times in a row while every process calls and publishes continuously.
// After each kill exactly one leader is elected among the survivors (one
// new real client, none elsewhere), every subscriber (in every process and
// in this one) receives the next published value, and no call outlives
// its timeout.
func TestCC028_SIGKILLLeader20Times(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process failover loop skipped in -short mode")
	}
	port := freePort(t)
	args := memberArgs{Name: "Killable", Port: port, Mode: "auto", Heartbeat: 500 * time.Millisecond,
		CallEvery: 5 * time.Millisecond, PubEvery: 20 * time.Millisecond, CallBudget: 2 * time.Second}
	var ms []*member
	for range 4 {
		ms = append(ms, startMember(t, args))
	}
	waitOneLeader(t, ms, 20*time.Second)

	// This process takes part as a forced follower: it is never a leader,
	// so it survives every kill, and publishes the values to check.
	parent, err := cluster.New("Killable", func(context.Context, cluster.Emit) (*cluster.Service, error) {
		return nil, errors.New("a forced follower never builds")
	}, cluster.WithTransport(tcp.New(tcp.Config{})), cluster.WithPort(port), cluster.WithMode(cluster.ForceFollower),
		cluster.WithRegistry(election.NewRegistry()), cluster.WithSingleMode(false), cluster.WithLogger(testLogger()),
		cluster.WithResponseTimeout(time.Second), cluster.WithHeartbeatInterval(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer parent.Close(context.Background())
	ready(t, parent)
	got := newSink()
	var gotMu sync.Mutex
	gotVals := map[string]bool{}
	if _, err := cluster.SubscribeTyped(parent, reg{Key: "k"}, func(v string) {
		gotMu.Lock()
		gotVals[v] = true
		gotMu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	_ = got

	// This process calls continuously too.
	stopCalls := make(chan struct{})
	var callsWG sync.WaitGroup
	var pmu sync.Mutex
	var pStats memberStats
	callsWG.Add(1)
	go func() {
		defer callsWG.Done()
		for {
			select {
			case <-stopCalls:
				return
			case <-time.After(5 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			start := time.Now()
			_, err := cluster.Call[int](ctx, parent, "whoami")
			el := time.Since(start)
			cancel()
			pmu.Lock()
			pStats.MaxCallMS = max(pStats.MaxCallMS, el.Milliseconds())
			if el > 3*time.Second {
				pStats.Hangs++
			}
			switch {
			case err == nil:
				pStats.OK++
			case errors.Is(err, cluster.ErrLeaderLost):
				pStats.Lost++
			case errors.Is(err, cluster.ErrTimeout):
				pStats.Timeouts++
			default:
				pStats.Other++
				pStats.LastErr = err.Error()
			}
			pmu.Unlock()
		}
	}()
	defer func() { close(stopCalls); callsWG.Wait() }()

	const kills = 20
	var failovers []time.Duration
	all := append([]*member(nil), ms...)
	var sum memberStats
	add := func(s memberStats, pid int) {
		sum.OK += s.OK
		sum.Lost += s.Lost
		sum.Timeouts += s.Timeouts
		sum.NotReady += s.NotReady
		sum.Other += s.Other
		sum.Hangs += s.Hangs
		sum.Publishes += s.Publishes
		sum.MaxCallMS = max(sum.MaxCallMS, s.MaxCallMS)
		if s.Other > 0 {
			t.Errorf("member %d: %d unexpected call errors, last: %s", pid, s.Other, s.LastErr)
		}
	}
	prev := reg{}
	for i := 0; i < kills; i++ {
		leader := waitOneLeader(t, ms, 20*time.Second)
		add(leader.stats(), leader.ch.Pid())
		start := time.Now()
		if err := leader.ch.Kill(); err != nil {
			t.Fatal(err)
		}
		<-leader.ch.Exited()
		var survivors []*member
		for _, m := range live(ms) {
			if m != leader {
				survivors = append(survivors, m)
			}
		}
		next := waitOneLeader(t, survivors, 20*time.Second)
		eventually(t, 20*time.Second, "parent ready again", func() bool { return parent.Stats().Ready })
		failovers = append(failovers, time.Since(start))
		if next == leader {
			t.Fatal("the killed process still leads")
		}
		// Keep four processes alive.
		fresh := startMember(t, args)
		all = append(all, fresh)
		ms = append(survivors, fresh)
		waitOneLeader(t, ms, 20*time.Second)

		val := fmt.Sprintf("value-%d", i)
		if prev.Value != "" {
			if err := parent.Unpublish(prev); err != nil {
				t.Fatal(err)
			}
		}
		prev = reg{Key: "k", Value: val}
		if err := parent.Publish(prev); err != nil {
			t.Fatal(err)
		}
		eventually(t, 20*time.Second, "every subscriber receives "+val, func() bool {
			for _, m := range live(ms) {
				if !m.has(val) {
					return false
				}
			}
			gotMu.Lock()
			defer gotMu.Unlock()
			return gotVals[val]
		})
	}
	waitOneLeader(t, ms, 20*time.Second)
	// One real client per term: the first, plus one after each kill.
	if n := totalBuilds(all); n != kills+1 {
		t.Fatalf("%d real clients built for %d terms", n, kills+1)
	}
	for _, m := range live(ms) {
		add(m.stats(), m.ch.Pid())
	}
	pmu.Lock()
	ps := pStats
	pmu.Unlock()
	if ps.Hangs != 0 || ps.Other != 0 {
		t.Errorf("parent calls: %+v", ps)
	}
	if sum.Hangs != 0 {
		t.Fatalf("%d calls outlived their budget", sum.Hangs)
	}
	sort.Slice(failovers, func(i, j int) bool { return failovers[i] < failovers[j] })
	t.Logf("%d kills: SIGKILL -> one ready leader among the survivors, all survivors and this process ready: p50 %v, max %v", kills,
		failovers[len(failovers)/2].Round(time.Millisecond), failovers[len(failovers)-1].Round(time.Millisecond))
	t.Logf("member calls (each member's stats taken before it was killed or at the end): ok %d, leader lost %d, timeouts %d, ctx expired %d, other %d, longest %dms; continuous publishes %d",
		sum.OK, sum.Lost, sum.Timeouts, sum.NotReady, sum.Other, sum.MaxCallMS, sum.Publishes)
	t.Logf("this process (forced follower): calls ok %d, leader lost %d, timeouts %d, longest %dms; %d elections",
		ps.OK, ps.Lost, ps.Timeouts, ps.MaxCallMS, parent.Stats().Elections)
	if sum.OK == 0 {
		t.Fatal("no call succeeded")
	}
}
