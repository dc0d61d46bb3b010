package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kinds of leader change, for the summary's failed calls per kind.
const (
	kindPlanned = "planned" // SIGTERM: the worker closes its Client gracefully, a leader hands over
	kindCrash   = "crash"   // SIGKILL of the leader: calls in flight on it are lost
)

// change is one leader change (a crash) or one rolling restart (planned
// changes, one per worker): the calls answered and failed from its start
// until every worker had calls answered again.
type change struct {
	kind     string
	restarts int // workers restarted (planned)
	leaders  int // leader changes it caused
	took     time.Duration
	calls    callTotals // calls answered and failed during it
}

// callTotals are the call counters summed over every worker.
type callTotals struct {
	calls, lost, timeouts, errs uint64
}

func (t callTotals) failed() uint64 { return t.lost + t.timeouts + t.errs }

func (t callTotals) sub(u callTotals) callTotals {
	return callTotals{t.calls - u.calls, t.lost - u.lost, t.timeouts - u.timeouts, t.errs - u.errs}
}

func (t callTotals) add(u callTotals) callTotals {
	return callTotals{t.calls + u.calls, t.lost + u.lost, t.timeouts + u.timeouts, t.errs + u.errs}
}

// totals sums the last reports of every worker, those gone included (d.mu
// held).
func (d *demo) totals() callTotals {
	var t callTotals
	for _, p := range d.procs {
		t.calls += p.st.Calls
		t.lost += p.st.LeaderLost
		t.timeouts += p.st.Timeouts
		t.errs += p.st.Errors
	}
	return t
}

// fresh waits until every live worker reported a call answered after
// this moment, so that the counters it reported include every call that
// failed before it.
func (d *demo) fresh(ctx context.Context) error {
	d.mu.Lock()
	base := map[*proc]uint64{}
	for _, p := range d.live() {
		base[p] = p.st.Calls
	}
	d.mu.Unlock()
	return d.waitUntil(ctx, failoverTimeout, "every worker has calls answered", func() bool {
		for p, n := range base {
			if p.alive && p.st.Calls <= n {
				return false
			}
		}
		return true
	})
}

// measure runs one leader change (or a rolling restart) and records the
// calls answered and failed from its start until every worker had calls
// answered again.
func (d *demo) measure(ctx context.Context, kind string, run func(context.Context, *change) error) error {
	if err := d.fresh(ctx); err != nil {
		return err
	}
	c := &change{kind: kind}
	d.mu.Lock()
	before := d.totals()
	d.mu.Unlock()
	start := time.Now()
	if err := run(ctx, c); err != nil {
		return err
	}
	if err := d.fresh(ctx); err != nil {
		return err
	}
	c.took = time.Since(start)
	d.mu.Lock()
	c.calls = d.totals().sub(before)
	d.changes = append(d.changes, *c)
	d.mu.Unlock()
	return nil
}

// rolling restarts every worker in turn, the current leader first while
// it was not restarted yet: SIGTERM, the worker closes its Client (a
// leader hands over to the next one) and exits 0, and a new worker takes
// its place, all while the others call.
func (d *demo) rolling(ctx context.Context, c *change) error {
	if err := d.quiesce(ctx); err != nil {
		return err
	}
	d.mu.Lock()
	n := len(d.live())
	d.mu.Unlock()
	d.say("rolling restart of %d workers: each in turn, the leader first, gets SIGTERM, closes its Client gracefully and exits; a new worker takes its place", n)
	restarted := map[*proc]bool{}
	for range n {
		d.mu.Lock()
		var old *proc
		leader := d.leader()
		for _, p := range d.live() {
			if !restarted[p] && (old == nil || p == leader) {
				old = p
			}
		}
		if old != nil {
			old.stopping = true
		}
		d.mu.Unlock()
		if old == nil {
			return errors.New("rolling restart: no worker left to restart")
		}
		wasLeader := old == leader
		sent := time.Now()
		if err := terminate(old); err != nil {
			return fmt.Errorf("SIGTERM %s: %w", old, err)
		}
		select {
		case <-old.exited:
		case <-time.After(stopTimeout):
			return fmt.Errorf("%s did not exit within %v of SIGTERM", old, stopTimeout)
		}
		if old.err != nil {
			return fmt.Errorf("%s exited with %v after SIGTERM: %s", old, old.err, old.stderr.String())
		}
		exited := time.Since(sent)
		next, err := d.startWorker()
		if err != nil {
			return err
		}
		restarted[next] = true
		c.restarts++
		var now *proc
		err = d.waitUntil(ctx, failoverTimeout, "one leader, every worker ready", func() bool {
			now = d.leader()
			return now != nil && d.allReady() && next.st.Ready
		})
		if err != nil {
			return err
		}
		if !wasLeader {
			d.say("%s, a follower, closed gracefully and exited %v after SIGTERM; %s joined", old, exited.Round(time.Millisecond), next)
			continue
		}
		c.leaders++
		if err := d.waitOneConn(ctx, now); err != nil {
			return err
		}
		d.say("%s, the leader, handed over, closed and exited %v after SIGTERM; %s leads; NATS client connections back to 1 (%q); %s joined",
			old, exited.Round(time.Millisecond), now, connName(now.cmd.Process.Pid), next)
	}
	if err := d.sendTick(ctx, nil); err != nil {
		return err
	}
	if err := d.quiesce(ctx); err != nil {
		return err
	}
	d.say("rolling restart done: %d workers restarted, %d leader change(s); the next tick reached every worker", c.restarts, c.leaders)
	return nil
}

// changesSummary writes the calls that failed per kind of leader change,
// and outside them, and returns the failures of planned changes.
func changesSummary(b *strings.Builder, changes []change, all callTotals) (plannedFailed uint64) {
	if len(changes) == 0 {
		return 0
	}
	byKind := map[string]*change{}
	var during callTotals
	for _, c := range changes {
		k := byKind[c.kind]
		if k == nil {
			k = &change{kind: c.kind}
			byKind[c.kind] = k
		}
		k.restarts += c.restarts
		k.leaders += c.leaders
		k.took += c.took
		k.calls = k.calls.add(c.calls)
		during = during.add(c.calls)
	}
	fmt.Fprintf(b, "  calls per kind of leader change (from its start until every worker had calls answered again):\n")
	line := func(title string, t callTotals) {
		fmt.Fprintf(b, "    %s: %d failed of %d (lost %d, timed out %d, other %d)\n", title, t.failed(), t.calls+t.failed(), t.lost, t.timeouts, t.errs)
	}
	if k := byKind[kindPlanned]; k != nil {
		line(fmt.Sprintf("planned (SIGTERM, graceful Close; %d workers restarted, %d leader change(s), %v)", k.restarts, k.leaders, k.took.Round(time.Millisecond)), k.calls)
		plannedFailed = k.calls.failed()
	}
	if k := byKind[kindCrash]; k != nil {
		line(fmt.Sprintf("crash (SIGKILL of the leader; %d leader change(s), %v)", k.leaders, k.took.Round(time.Millisecond)), k.calls)
	}
	line("outside any leader change", all.sub(during))
	return plannedFailed
}
