package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
)

// EnvSoakDuration overrides SoakConfig.Duration (a time.ParseDuration
// string), to soak longer than CI does.
const EnvSoakDuration = "CLUSTERCLIENT_SOAK_DURATION"

// SoakConfig tunes Soak. The zero value is the default.
type SoakConfig struct {
	// Processes is how many member processes run at once (default 6).
	Processes int
	// Duration is how long processes are killed (default 45 s, or
	// $CLUSTERCLIENT_SOAK_DURATION).
	Duration time.Duration
	// KillMin and KillMax bound the random pause between two kills
	// (default 200..600 ms).
	KillMin, KillMax time.Duration
	// Seed seeds the random choices (default: from the clock; the seed is
	// logged so a run can be repeated).
	Seed uint64
}

// SoakReport is what a Soak run did.
type SoakReport struct {
	Kills, LeaderKills int           // SIGKILLs, and how many hit the leader
	Settled            int           // settled moments checked
	Publishes          int           // publications accepted
	Calls, CallErrors  int           // invokes answered, and of those failed (a failover's retryable errors)
	SlowestCall        time.Duration // the longest an answered invoke took
	Failures           int           // checks that failed (must be 0)
}

// soakKey is the subscription every member holds; soakChannel the channel.
const (
	soakKey     = "soak"
	soakChannel = "Soak"
	// callBound: a call returns within its context (opTimeout); an answer
	// later than this is a hang.
	callBound = opTimeout + 5*time.Second
)

// retryable are the errors a call may fail with while leaders die: the
// leader was lost with the call in flight, it timed out, or no leader was
// ready in time.
var retryable = []string{"ErrLeaderLost", "ErrTimeout", "ErrNoLeader", "ErrNotReady", "context.DeadlineExceeded"}

// Soak is the chaos test of issue 7: cfg.Processes member processes of one
// channel on h's transport subscribe one key; for cfg.Duration a random
// member (the leader half of the time) is killed with SIGKILL every few
// hundred milliseconds and replaced by a new process, while members
// publish and invoke without pause. It checks that at every settled moment
// (every fourth kill, after the survivors re-elected) exactly one member
// leads and every member's calls reach that leader's one real client;
// that no call hangs past its timeout and every failed call failed with a
// retryable error; that once the kills stop every live subscriber ends
// with the last value published; and that the survivors close without a
// goroutine left. The transport must be multi-process; h's TestMain must
// call Main.
func Soak(t *testing.T, h Harness, cfg SoakConfig) SoakReport {
	t.Helper()
	if cfg.Processes <= 0 {
		cfg.Processes = 6
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 45 * time.Second
		if d, err := time.ParseDuration(os.Getenv(EnvSoakDuration)); err == nil && d > 0 {
			cfg.Duration = d
		}
	}
	if cfg.KillMin <= 0 || cfg.KillMax < cfg.KillMin {
		cfg.KillMin, cfg.KillMax = 200*time.Millisecond, 600*time.Millisecond
	}
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	s := &soak{t: t, h: h, cfg: cfg, addr: h.NewAddr(t), rng: rand.New(rand.NewPCG(cfg.Seed, 1))}
	s.name = h.NewTransport(t).Name() + " " + s.addr
	t.Logf("soak: %d processes on %s for %v, kills every %v..%v, seed %d",
		cfg.Processes, s.name, cfg.Duration, cfg.KillMin, cfg.KillMax, cfg.Seed)
	return s.run()
}

type soak struct {
	t    *testing.T
	h    Harness
	cfg  SoakConfig
	addr string
	name string     // transport and address, for messages
	rng  *rand.Rand // main goroutine only

	mu    sync.Mutex
	procs []*Process
	rep   SoakReport
	seq   atomic.Int64
}

func (s *soak) failf(format string, args ...any) {
	s.t.Helper()
	s.mu.Lock()
	s.rep.Failures++
	s.mu.Unlock()
	s.t.Errorf("soak: "+format, args...)
}

// start starts a member process and subscribes it (the subscription is
// queued until a leader is ready).
func (s *soak) start() *Process {
	p := StartProcess(s.t, s.h, ProcessConfig{Channel: soakChannel, Addr: s.addr, LeakCheck: true})
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := p.Subscribe(ctx, soakKey); err != nil {
		s.failf("process %d: subscribe: %v", p.Pid(), err)
	}
	return p
}

func (s *soak) live() []*Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.procs)
}

// pick returns a random live process, or nil.
func pick(ps []*Process) *Process {
	if len(ps) == 0 {
		return nil
	}
	return ps[rand.IntN(len(ps))]
}

func (s *soak) run() SoakReport {
	for range s.cfg.Processes {
		s.procs = append(s.procs, s.start())
	}
	s.settle("the start")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { s.caller(stop) })
	}
	wg.Go(func() { s.publisher(stop) })

	end := time.Now().Add(s.cfg.Duration)
	for n := 1; time.Now().Before(end); n++ {
		time.Sleep(s.cfg.KillMin + time.Duration(s.rng.Int64N(int64(s.cfg.KillMax-s.cfg.KillMin)+1)))
		s.killOne()
		if n%4 == 0 {
			s.settle(fmt.Sprintf("kill %d", n))
		}
	}
	close(stop)
	wg.Wait()
	s.settle("the last kill")
	s.finish()
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rep
	s.t.Logf("soak on %s: %d kills (%d of the leader), %d settled moments checked, %d publications, %d calls answered (%d failed with a retryable error), slowest call %v, %d failures",
		s.name, r.Kills, r.LeaderKills, r.Settled, r.Publishes, r.Calls, r.CallErrors, r.SlowestCall.Round(time.Millisecond), r.Failures)
	return r
}

// killOne kills the leader half of the time, a random member otherwise,
// and starts a replacement.
func (s *soak) killOne() {
	ps := s.live()
	victim := -1
	if s.rng.IntN(2) == 0 {
		for i, p := range ps {
			if st := p.State(); st.Role == cluster.RoleLeader {
				victim = i
				break
			}
		}
	}
	if victim < 0 {
		victim = s.rng.IntN(len(ps))
	}
	v := ps[victim]
	leader := v.State().Role == cluster.RoleLeader
	v.Kill()
	<-v.Exited()
	s.mu.Lock()
	s.procs = slices.DeleteFunc(s.procs, func(p *Process) bool { return p == v })
	s.rep.Kills++
	if leader {
		s.rep.LeaderKills++
	}
	s.mu.Unlock()
	p := s.start()
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
}

// settle waits until every live member is ready, then checks that exactly
// one leads and that every member's calls reach its one real client.
func (s *soak) settle(after string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*opTimeout)
	defer cancel()
	// Right after a kill, survivors may still report the dead leader's
	// term as ready (they have not read its EOF yet), so a moment is
	// settled once every member is ready AND exactly one leads; it must
	// come within the bound.
	var ps, leaders []*Process
	for {
		ps, leaders = s.live(), nil
		for _, p := range ps {
			if _, err := p.WaitReady(ctx); err != nil {
				s.failf("after %s: process %d not ready: %v", after, p.Pid(), err)
				return
			}
		}
		for _, p := range ps {
			if p.State().Role == cluster.RoleLeader {
				leaders = append(leaders, p)
			}
		}
		if len(leaders) == 1 {
			break
		}
		select {
		case <-ctx.Done():
			s.failf("after %s: %d leaders among %d members after %v", after, len(leaders), len(ps), 2*opTimeout)
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
	built := leaders[0].State().Built
	if len(built) == 0 {
		s.failf("after %s: the leader %d built no real client", after, leaders[0].Pid())
		return
	}
	want := built[len(built)-1]
	for _, p := range ps {
		res, err := p.Invoke(ctx, MethodWhoami)
		var id string
		if err != nil || json.Unmarshal(res, &id) != nil {
			s.failf("after %s: whoami from %d: %s, %v", after, p.Pid(), res, err)
			continue
		}
		if id != want {
			s.failf("after %s: process %d reaches real client %q, the leader's is %q", after, p.Pid(), id, want)
		}
	}
	s.mu.Lock()
	s.rep.Settled++
	s.mu.Unlock()
}

// caller invokes through random members until stop: every answered call
// must come back within its bound, and fail only with a retryable error.
func (s *soak) caller(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		p := pick(s.live())
		if p == nil {
			continue
		}
		arg := strconv.FormatInt(s.seq.Add(1), 10)
		ctx, cancel := context.WithTimeout(context.Background(), callBound+opTimeout)
		start := time.Now()
		res, err := p.Invoke(ctx, MethodEcho, arg)
		took := time.Since(start)
		cancel()
		var ce *CallError
		switch {
		case err == nil:
			if string(res) != strconv.Quote(arg) {
				s.failf("echo %q through %d returned %s", arg, p.Pid(), res)
			}
		case errors.As(err, &ce):
			if !slices.ContainsFunc(retryable, ce.Matches) {
				s.failf("a call through %d failed with a non-retryable error: %v", p.Pid(), ce)
			}
		default:
			continue // the process was killed with the call: no answer to judge
		}
		if took > callBound {
			s.failf("a call through %d took %v (bound %v)", p.Pid(), took, callBound)
		}
		s.mu.Lock()
		s.rep.Calls++
		if err != nil {
			s.rep.CallErrors++
		}
		s.rep.SlowestCall = max(s.rep.SlowestCall, took)
		s.mu.Unlock()
	}
}

// publisher publishes a new value through a random member every few
// milliseconds until stop.
func (s *soak) publisher(stop <-chan struct{}) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		p := pick(s.live())
		if p == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		err := p.Publish(ctx, soakKey, fmt.Sprintf("v%d", n))
		cancel()
		var ce *CallError
		if errors.As(err, &ce) {
			s.failf("publish through %d: %v", p.Pid(), ce)
		} else if err == nil {
			s.mu.Lock()
			s.rep.Publishes++
			s.mu.Unlock()
		}
	}
}

// finish publishes a last value and checks that every live subscriber
// ends with it, then closes the survivors, each checking that its Client
// left no goroutine behind.
func (s *soak) finish() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*opTimeout)
	defer cancel()
	ps := s.live()
	if err := pick(ps).Publish(ctx, soakKey, "last"); err != nil {
		s.failf("the last publication: %v", err)
	}
	for _, p := range ps {
		if _, err := p.WaitSnapshot(ctx, soakKey, func(sn Snapshot) bool { return sn.Has("last") }); err != nil {
			s.failf("process %d never received the last value: %v", p.Pid(), err)
		}
	}
	for _, p := range ps {
		if err := p.Close(ctx); err != nil {
			s.failf("closing survivor %d: %v", p.Pid(), err)
		}
	}
}
