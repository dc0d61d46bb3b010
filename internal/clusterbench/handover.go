package clusterbench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// The handover workload (issue 17): what a planned or unplanned leader
// change costs the callers, with the features that make it cost nothing
// (the hand-over of a closing leader, WithHandoverTimeout; idempotent
// methods sent again to the next leader, Service.Idempotent) and, in the
// same run, without them (WithHandoverTimeout(0); nothing declared
// idempotent), so that the figures are a measurement that can fail. On
// tcp and unix, three scenarios, each once with and once without:
//
//   - rolling: 4 member processes call continuously (2 goroutines each, a
//     call every 2 ms; the leader's method works 1 ms, so calls are in
//     flight when it leaves); each process in turn, the current leader
//     first while it was not restarted yet, closes its Client and exits,
//     and a fresh process takes its place. Failed calls of every process,
//     and the p99 of the answered calls that started during the changes
//     (from the exit request until a leader is settled and every process
//     had 20 more calls answered) against the p99 of a steady window
//     before them;
//   - sigkill: 4 members call an idempotent method (2 goroutines each, a
//     call every 1 ms, 2 ms of work); the leader is SIGKILLed
//     HandoverKills times, a fresh process replacing it each time. Failed
//     calls of the survivors (the killed process's own calls die with it);
//   - shortlived: HandoverRounds rounds of 20 processes started at once
//     on a fresh address, each creating a Client, making one call when
//     told (all at once), closing and exiting: no long-lived leader.
//     Failed calls.
//
// Each scenario reports its figures as a Measurement with Handover set;
// the target is 0 failed calls with the features.

// Scenarios of the handover workload.
const (
	scenarioRolling    = "rolling"
	scenarioSIGKILL    = "sigkill"
	scenarioShortLived = "shortlived"
)

// handoverScenarios in report order.
var handoverScenarios = []string{scenarioRolling, scenarioSIGKILL, scenarioShortLived}

// handoverTransports are the transports the workload runs on.
var handoverTransports = []string{"tcp", "unix"}

// Sizes of the scenarios (issue 17 point 4).
const (
	rollingMembers   = 4
	sigkillMembers   = 4
	shortLivedProcs  = 20
	settleCalls      = 20 // calls every process has answered before a change is over
	stateWaitTimeout = 30 * time.Second
)

// HandoverFigures are one scenario's figures, with or without the
// features.
type HandoverFigures struct {
	Scenario string `json:"scenario"`
	// Features: the hand-over on, and (sigkill) the method declared
	// idempotent; false is the control run without them.
	Features bool `json:"features"`
	// OK and Failed calls, and the failed ones by kind: ErrLeaderLost,
	// a timeout (ErrTimeout or the 10 s call budget), anything else.
	OK        int64  `json:"ok"`
	Failed    int64  `json:"failed"`
	Lost      int64  `json:"lost"`
	Timeouts  int64  `json:"timeouts"`
	Other     int64  `json:"other"`
	LastError string `json:"last_error,omitempty"`
	// Retried: idempotent calls sent again to the next leader, over the
	// processes that closed (Stats().Retried).
	Retried uint64 `json:"retried,omitempty"`
	// Changes: leaders closed (rolling), leaders killed (sigkill), or
	// processes that led when their call returned (shortlived).
	Changes int `json:"changes"`
	// Processes started in all.
	Processes int `json:"processes"`
	// Rolling only: p99 of the answered calls that started in a steady window
	// before the changes and of those that started during them, and how
	// many calls each holds.
	SteadyP99   int64 `json:"steady_p99_ns,omitempty"`
	ChangeP99   int64 `json:"change_p99_ns,omitempty"`
	SteadyCalls int   `json:"steady_calls,omitempty"`
	ChangeCalls int   `json:"change_calls,omitempty"`
}

func handoverName(scenario string, features bool) string {
	if features {
		return "handover/" + scenario + "/with"
	}
	return "handover/" + scenario + "/without"
}

// addedP99 is the p99 during the changes minus the steady p99.
func (f *HandoverFigures) addedP99() int64 { return f.ChangeP99 - f.SteadyP99 }

func (f *HandoverFigures) addCalls(o callOutcome) {
	f.OK += o.OK
	f.Lost += o.Lost
	f.Timeouts += o.Timeouts
	f.Other += o.Other
	f.Failed = f.Lost + f.Timeouts + f.Other
	if o.LastErr != "" {
		f.LastError = o.LastErr
	}
}

// handoverBench runs the handover workload on transport t, if selected.
func (r *runner) handoverBench(ctx context.Context, t string) {
	if !r.cfg.has("handover") {
		return
	}
	if !slices.Contains(handoverTransports, t) {
		return // by design (issue 17 asks for tcp and unix); doc.go says so
	}
	for _, sc := range handoverScenarios {
		for _, features := range []bool{true, false} {
			name := handoverName(sc, features)
			r.section(ctx, "ours "+t+" "+name, func() error {
				f, err := r.handover(ctx, t, sc, features)
				if err != nil {
					return err
				}
				r.res.Measurements = append(r.res.Measurements, Measurement{Impl: implOurs, Transport: t, Name: name, Handover: &f})
				r.progress("  %-6s %-5s %-26s %s", implOurs, t, name, handoverLine(&f))
				return nil
			})
		}
	}
}

func (r *runner) handover(ctx context.Context, t, scenario string, features bool) (HandoverFigures, error) {
	addr, err := newAddr(t, r.dir)
	if err != nil {
		return HandoverFigures{}, err
	}
	h := &handoverRun{r: r, t: t, f: HandoverFigures{Scenario: scenario, Features: features},
		args: callerArgs{memberArgs: memberArgs{Transport: t, Addr: addr, Channel: channel, Mode: "auto"}, Features: features}}
	defer func() { r.procs.stopAll(h.live...) }()
	switch scenario {
	case scenarioRolling:
		err = h.rolling(ctx)
	case scenarioSIGKILL:
		err = h.sigkill(ctx)
	case scenarioShortLived:
		err = h.shortLived(ctx)
	default:
		err = fmt.Errorf("clusterbench: unknown handover scenario %q", scenario)
	}
	return h.f, err
}

// handoverRun is one scenario's run. It is used by the runner's
// goroutine only.
type handoverRun struct {
	r    *runner
	t    string
	args callerArgs
	f    HandoverFigures
	live []*proc // member processes running
	seq  int     // members started, for names
}

// spawn starts a caller member and waits until it is ready.
func (h *handoverRun) spawn(ctx context.Context) (*proc, error) {
	h.seq++
	h.f.Processes++
	p, err := h.r.procs.goChild(ctx, fmt.Sprintf("ours %s %s member %d", h.t, h.f.Scenario, h.seq), "caller", h.args, nil)
	if err != nil {
		return nil, err
	}
	h.live = append(h.live, p)
	return p, nil
}

// states asks every live member for its state.
func (h *handoverRun) states(ctx context.Context) ([]callerState, error) {
	out := make([]callerState, len(h.live))
	for i, p := range h.live {
		if err := p.call(ctx, "state", nil, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// settled waits until exactly one live member leads, every one is ready,
// and each had n more calls answered; it returns the leader.
func (h *handoverRun) settled(ctx context.Context, n int64) (*proc, error) {
	deadline := time.Now().Add(stateWaitTimeout)
	var base map[*proc]int64
	var last []callerState
	for {
		st, err := h.states(ctx)
		if err != nil {
			return nil, err
		}
		last = st
		var leader *proc
		leaders, ready := 0, true
		for i, s := range st {
			if s.Role == "leader" {
				leaders++
				leader = h.live[i]
			}
			ready = ready && s.Ready
		}
		if leaders == 1 && ready {
			if base == nil {
				base = map[*proc]int64{}
				for i, s := range st {
					base[h.live[i]] = s.OK
				}
			}
			done := true
			for i, s := range st {
				b, ok := base[h.live[i]]
				done = done && ok && s.OK >= b+n
			}
			if done {
				return leader, nil
			}
		} else {
			base = nil // a change is still going on: count from its end
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s %s: no settled cluster of one leader with %d more calls answered by every member within %v (states %+v)",
				h.t, h.f.Scenario, n, stateWaitTimeout, last)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// exit closes p's Client, counts every call it made, and stops it.
func (h *handoverRun) exit(ctx context.Context, p *proc) (callerExit, error) {
	var x callerExit
	err := p.call(ctx, "exit", nil, &x)
	h.drop(p)
	if err != nil {
		return x, err
	}
	h.f.addCalls(x.callOutcome)
	h.f.Retried += x.Retried
	if x.CloseErr != "" {
		return x, fmt.Errorf("%s: Close: %s", p.name, x.CloseErr)
	}
	return x, nil
}

// drop stops p and forgets it.
func (h *handoverRun) drop(p *proc) {
	h.r.procs.stopAll(p)
	h.live = slices.DeleteFunc(h.live, func(q *proc) bool { return q == p })
}

// exitAll closes every live member, the followers first and the leader
// last (so that the end of the scenario is no leader change), and returns
// their calls' samples.
func (h *handoverRun) exitAll(ctx context.Context) ([]callerExit, error) {
	st, err := h.states(ctx)
	if err != nil {
		return nil, err
	}
	order := slices.Clone(h.live)
	for i, s := range st {
		if s.Role == "leader" {
			order = append(slices.Delete(order, i, i+1), h.live[i])
			break
		}
	}
	var xs []callerExit
	var errs []error
	for _, p := range order {
		x, err := h.exit(ctx, p)
		xs = append(xs, x)
		errs = append(errs, err)
	}
	return xs, errors.Join(errs...)
}

// rolling restarts every member once, one at a time, while all call.
func (h *handoverRun) rolling(ctx context.Context) error {
	h.args.Callers, h.args.Every, h.args.Work = 2, int64(2*time.Millisecond), int64(time.Millisecond)
	for range rollingMembers {
		if _, err := h.spawn(ctx); err != nil {
			return err
		}
	}
	if _, err := h.settled(ctx, settleCalls); err != nil {
		return err
	}
	steady0 := monoNow()
	time.Sleep(h.r.cfg.Duration)
	if _, err := h.settled(ctx, settleCalls); err != nil {
		return err
	}
	steady1 := monoNow()
	var windows [][2]int64
	var xs []callerExit
	restarted := map[*proc]bool{}
	for range rollingMembers {
		st, err := h.states(ctx)
		if err != nil {
			return err
		}
		// Each process once; the leader first whenever it was not
		// restarted yet (the worst order: a leader change each time).
		i := -1
		for j, p := range h.live {
			if !restarted[p] && (i < 0 || st[j].Role == "leader") {
				i = j
			}
		}
		if i < 0 {
			return errors.New("rolling restart: no member left to restart")
		}
		if st[i].Role == "leader" {
			h.f.Changes++
		}
		w0 := monoNow()
		x, err := h.exit(ctx, h.live[i])
		xs = append(xs, x)
		if err != nil {
			return err
		}
		p, err := h.spawn(ctx)
		if err != nil {
			return err
		}
		restarted[p] = true
		if _, err := h.settled(ctx, settleCalls); err != nil {
			return err
		}
		windows = append(windows, [2]int64{w0, monoNow()})
	}
	rest, err := h.exitAll(ctx)
	xs = append(xs, rest...)
	if err != nil {
		return err
	}
	var steady, change []int64
	for _, x := range xs {
		for k, s := range x.Start {
			switch {
			case s >= steady0 && s < steady1:
				steady = append(steady, x.Lat[k])
			case slices.ContainsFunc(windows, func(w [2]int64) bool { return s >= w[0] && s < w[1] }):
				change = append(change, x.Lat[k])
			}
		}
	}
	h.f.SteadyCalls, h.f.ChangeCalls = len(steady), len(change)
	h.f.SteadyP99, h.f.ChangeP99 = summarize(steady).P99, summarize(change).P99
	if h.f.Changes == 0 {
		return errors.New("rolling restart: no leader was closed, the run proved nothing")
	}
	return nil
}

// sigkill SIGKILLs the leader HandoverKills times while every member calls
// an idempotent method (with the features).
func (h *handoverRun) sigkill(ctx context.Context) error {
	h.args.Idempotent = true
	h.args.Callers, h.args.Every, h.args.Work = 2, int64(time.Millisecond), int64(2*time.Millisecond)
	for range sigkillMembers {
		if _, err := h.spawn(ctx); err != nil {
			return err
		}
	}
	for range h.r.cfg.HandoverKills {
		leader, err := h.settled(ctx, 100)
		if err != nil {
			return err
		}
		if err := leader.Kill(); err != nil {
			return fmt.Errorf("SIGKILL %s: %w", leader.name, err)
		}
		if err := leader.wait(ctx); err != nil {
			return err
		}
		h.drop(leader)
		h.f.Changes++
		if _, err := h.spawn(ctx); err != nil {
			return err
		}
	}
	if _, err := h.settled(ctx, 100); err != nil {
		return err
	}
	_, err := h.exitAll(ctx)
	return err
}

// shortLived runs HandoverRounds rounds of 20 one-call processes.
func (h *handoverRun) shortLived(ctx context.Context) error {
	for round := range h.r.cfg.HandoverRounds {
		addr, err := newAddr(h.t, h.r.dir)
		if err != nil {
			return err
		}
		a := h.args
		a.Addr = addr
		ps, err := h.r.spawnN(shortLivedProcs, func(i int) (*proc, error) {
			return h.r.procs.goChild(ctx, fmt.Sprintf("ours %s oneshot %d.%d", h.t, round+1, i+1), "oneshot", a, nil)
		})
		h.live = append(h.live, ps...)
		h.f.Processes += len(ps)
		if err != nil {
			return err
		}
		for _, p := range ps {
			if err := p.Send("go", nil); err != nil {
				return err
			}
		}
		var errs []error
		for _, p := range ps {
			var rep oneshotReply
			if err := p.recv(ctx, &rep); err != nil {
				errs = append(errs, fmt.Errorf("go: %w", err))
				continue
			}
			var o callOutcome
			switch {
			case rep.Err == "":
				o.OK++
			case rep.Lost:
				o.Lost++
				o.LastErr = rep.Err
			case rep.Timeout:
				o.Timeouts++
				o.LastErr = rep.Err
			default:
				o.Other++
				o.LastErr = rep.Err
			}
			h.f.addCalls(o)
			if rep.Role == "leader" {
				h.f.Changes++
			}
			if rep.CloseErr != "" {
				errs = append(errs, fmt.Errorf("%s: Close: %s", p.name, rep.CloseErr))
			}
		}
		h.r.procs.stopAll(ps...)
		h.live = slices.DeleteFunc(h.live, func(q *proc) bool { return slices.Contains(ps, q) })
		if err := errors.Join(errs...); err != nil {
			return err
		}
	}
	return nil
}

// handoverLine is a progress line's figures.
func handoverLine(f *HandoverFigures) string {
	s := fmt.Sprintf("%d calls ok, %d failed (lost %d, timed out %d, other %d)", f.OK, f.Failed, f.Lost, f.Timeouts, f.Other)
	if f.Retried > 0 {
		s += fmt.Sprintf(", %d retried", f.Retried)
	}
	if f.Scenario == scenarioRolling {
		s += fmt.Sprintf(", p99 %s steady, %s during the changes", fmtDur(f.SteadyP99), fmtDur(f.ChangeP99))
	}
	return s
}
