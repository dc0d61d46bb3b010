package clusterbench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// clusterImpl is a cluster under test: ours on one transport, or Node's
// (TCP). Its members answer the same requests (see member.go and
// node/bench.js), so every cluster measurement below is written once.
type clusterImpl struct {
	impl      string
	transport string
	// codec is the members' codec name (ours; "" for Node's).
	codec string
	// addr returns a fresh address to compete for.
	addr func() (string, error)
	// spawn starts a member in mode "auto", "leader" or "follower" and
	// waits until it is ready.
	spawn func(ctx context.Context, name, addr, mode string) (*proc, memberReady, error)
	// publishN: the subscriber counts measured.
	publishN []int
	// kills per failover mode.
	autoKills, forcedKills int
	// memory: measure the leader's memory with idle followers.
	memory bool
}

// oursImpl is clusterclient on transport t, every member with the codec
// of that name.
func (r *runner) oursImpl(t, codec string) clusterImpl {
	impl := oursImplName(codec)
	return clusterImpl{
		impl:      impl,
		transport: t,
		codec:     codec,
		addr:      func() (string, error) { return newAddr(t, r.dir) },
		spawn: func(ctx context.Context, name, addr, mode string) (*proc, memberReady, error) {
			var info memberReady
			p, err := r.procs.goChild(ctx, impl+" "+t+" "+name, "member",
				memberArgs{Transport: t, Addr: addr, Channel: channel, Mode: mode, Codec: codec}, &info)
			if err == nil && info.Codec != codec {
				err = fmt.Errorf("%w: %s %s %s runs codec %q, want %q", errCodecMismatch, impl, t, name, info.Codec, codec)
				r.procs.stopAll(p)
				p = nil
			}
			return p, info, err
		},
		publishN:    r.cfg.PublishN,
		autoKills:   r.cfg.Kills,
		forcedKills: r.cfg.Kills,
		memory:      true,
	}
}

// clusterBench runs every cluster measurement of ci.
func (r *runner) clusterBench(ctx context.Context, ci clusterImpl) {
	label := ci.impl + " " + ci.transport
	if r.cfg.has("invoke") {
		r.section(ctx, label+" invoke", func() error { return r.invokes(ctx, ci) })
	}
	if r.cfg.has("publish") {
		for _, n := range ci.publishN {
			r.section(ctx, fmt.Sprintf("%s publish N=%d", label, n), func() error { return r.publish(ctx, ci, n) })
		}
	}
	if r.cfg.has("failover") && ci.autoKills > 0 {
		r.section(ctx, label+" failover auto", func() error { return r.failover(ctx, ci, "auto", ci.autoKills) })
	}
	if r.cfg.has("failover") && ci.forcedKills > 0 {
		r.section(ctx, label+" failover forced", func() error { return r.failover(ctx, ci, "forced", ci.forcedKills) })
	}
	if r.cfg.has("memory") && ci.memory {
		r.section(ctx, label+" memory", func() error { return r.memory(ctx, ci) })
	}
}

// leaderAt starts the first member of a fresh address and checks that it
// leads.
func (r *runner) leaderAt(ctx context.Context, ci clusterImpl, addr, mode string) (*proc, error) {
	p, info, err := ci.spawn(ctx, "leader", addr, mode)
	if err != nil {
		return nil, err
	}
	if !info.Leader {
		r.procs.stopAll(p)
		return nil, fmt.Errorf("%s %s: the first member at %s is not the leader", ci.impl, ci.transport, addr)
	}
	return p, nil
}

// autoLeader takes a fresh address and starts its leader there, in auto
// mode.
func (r *runner) autoLeader(ctx context.Context, ci clusterImpl) (addr string, leader *proc, err error) {
	if addr, err = ci.addr(); err != nil {
		return "", nil, err
	}
	leader, err = r.leaderAt(ctx, ci, addr, "auto")
	return addr, leader, err
}

// followersAt starts n members that must follow.
func (r *runner) followersAt(ctx context.Context, ci clusterImpl, addr, mode, what string, n int) ([]*proc, error) {
	return r.spawnN(n, func(i int) (*proc, error) {
		p, info, err := ci.spawn(ctx, fmt.Sprintf("%s %d", what, i+1), addr, mode)
		if err != nil {
			return nil, err
		}
		if info.Leader {
			r.procs.stopAll(p)
			return nil, fmt.Errorf("%s %s: %s %d leads at %s, where a leader already was", ci.impl, ci.transport, what, i+1, addr)
		}
		return p, nil
	})
}

// invokes measures sequential invokes through one follower, and
// throughput with 64 calls in flight per follower.
func (r *runner) invokes(ctx context.Context, ci clusterImpl) error {
	addr, leader, err := r.autoLeader(ctx, ci)
	if err != nil {
		return err
	}
	followers, err := r.followersAt(ctx, ci, addr, "auto", "follower", 4)
	defer func() { r.procs.stopAll(append(followers, leader)...) }()
	if err != nil {
		return err
	}
	for _, w := range latencyWorkloads {
		var runs []Summary
		var allocs, codec []float64
		for range r.cfg.Runs {
			var rep samplesReply
			a := seqArgs{Kind: w.kind, Size: w.size, Duration: int64(r.cfg.Duration), Warmup: int64(r.warmup())}
			if err := followers[0].call(ctx, "seq", a, &rep); err != nil {
				return err
			}
			runs = append(runs, summarize(rep.Samples))
			if rep.AllocsPerOp > 0 {
				allocs = append(allocs, rep.AllocsPerOp)
				codec = append(codec, rep.CodecAllocsPerOp)
			}
		}
		m := r.addLatency(ci.impl, ci.transport, invokeName(w.size, w.kind), runs)
		m.AllocsPerOp, m.CodecAllocsPerOp = median(allocs), median(codec)
	}
	for _, w := range throughputWorkloads {
		profile := r.cfg.Profile && isOurs(ci.impl) && w.size == 64 && w.n == 4
		profName := ci.transport // <transport>-leader.cpu.pprof; -<codec> added for codecs other than json
		if ci.impl != implOurs {
			profName += "-" + ci.codec
		}
		if profile {
			if err := r.profile(ctx, profName, leader, followers[0], true); err != nil {
				return err
			}
		}
		rates, failed, err := r.load(ctx, followers[:w.n], "load", loadArgs{Size: w.size, Kind: w.kind, InFlight: inFlight})
		if profile {
			err = errors.Join(err, r.profile(ctx, profName, leader, followers[0], false))
		}
		if err != nil {
			return err
		}
		r.addRate(ci.impl, ci.transport, tputName(w.size, w.kind, w.n), rates).Failed = failed
	}
	return nil
}

// profile starts (or stops) CPU profiles of the leader and a follower,
// written to <out>/<transport>-leader.cpu.pprof and -follower.cpu.pprof.
func (r *runner) profile(ctx context.Context, t string, leader, follower *proc, start bool) error {
	out, err := filepath.Abs(r.cfg.Out)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	var errs []error
	for role, p := range map[string]*proc{"leader": leader, "follower": follower} {
		path := ""
		if start {
			path = filepath.Join(out, t+"-"+role+".cpu.pprof")
		}
		errs = append(errs, p.call(ctx, "profile", map[string]string{"path": path}, nil))
		if !start {
			r.progress("  wrote %s", filepath.Join(out, t+"-"+role+".cpu.pprof"))
		}
	}
	return errors.Join(errs...)
}

// publish measures publish → delivered to every one of n subscribers: a
// publisher (a follower that does not subscribe) publishes paced values
// that carry their publish time; each subscriber (a follower) records
// when it got each; a value's latency is that of its last delivery.
func (r *runner) publish(ctx context.Context, ci clusterImpl, n int) error {
	addr, leader, err := r.autoLeader(ctx, ci)
	if err != nil {
		return err
	}
	members, err := r.followersAt(ctx, ci, addr, "auto", "follower", n+1)
	defer func() { r.procs.stopAll(append(members, leader)...) }()
	if err != nil {
		return err
	}
	return r.publishRuns(ctx, ci.impl, ci.transport, members[0], members[1:])
}

// publishRuns measures publish → every subscriber between processes that
// answer "subscribe", "publish" and "collect": cluster members, or raw
// clients of a relay (the raw baseline).
func (r *runner) publishRuns(ctx context.Context, impl, transport string, pub *proc, subs []*proc) error {
	n := len(subs)
	const dataID = "bench"
	for _, s := range subs {
		if err := s.call(ctx, "subscribe", map[string]string{"data_id": dataID}, nil); err != nil {
			return err
		}
	}
	// Subscribing is asynchronous: publish value 0 until every subscriber
	// has it, so that every subscription is in place before measuring.
	warm, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for {
		if err := pub.call(warm, "publish", publishArgs{DataID: dataID, Count: 1, Start: monoNow()}, nil); err != nil {
			return err
		}
		time.Sleep(20 * time.Millisecond)
		ready := true
		for _, s := range subs {
			var d deliveries
			if err := s.call(warm, "collect", map[string]int64{"from": 0}, &d); err != nil {
				return fmt.Errorf("waiting for every subscription: %w", err)
			}
			ready = ready && slices.Contains(d.Seq, 0)
		}
		if ready {
			break
		}
	}

	count := max(10, int64(r.cfg.Duration/r.cfg.PublishInterval))
	first := int64(1)
	var runs []Summary
	lost := 0
	for range r.cfg.Runs {
		a := publishArgs{DataID: dataID, First: first, Count: count, Interval: int64(r.cfg.PublishInterval), Start: monoNow() + int64(20*time.Millisecond)}
		if err := pub.call(ctx, "publish", a, nil); err != nil {
			return err
		}
		worst, missing, err := r.gatherDeliveries(ctx, subs, first, count)
		if err != nil {
			return err
		}
		runs = append(runs, summarize(worst))
		lost += missing
		first += count
	}
	r.addLatency(impl, transport, publishName(n), runs).Lost = lost
	if lost > 0 {
		r.progress("  %d publications did not reach every subscriber", lost)
	}
	return nil
}

// gatherDeliveries waits (up to 2 s) until every subscriber has the values
// first..first+count-1 and returns, for each value every subscriber got,
// its latest delivery's latency, and how many values some subscriber
// missed.
func (r *runner) gatherDeliveries(ctx context.Context, subs []*proc, first, count int64) ([]int64, int, error) {
	deadline := time.Now().Add(2 * time.Second)
	got := make([]deliveries, len(subs))
	for {
		complete := true
		for i, s := range subs {
			if err := s.call(ctx, "collect", map[string]int64{"from": first}, &got[i]); err != nil {
				return nil, 0, err
			}
			complete = complete && int64(len(got[i].Seq)) >= count
		}
		if complete || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	worst := make([]int64, count)
	seen := make([]int, count)
	for _, d := range got {
		for j, seq := range d.Seq {
			k := seq - first
			if k < 0 || k >= count {
				continue
			}
			seen[k]++
			worst[k] = max(worst[k], d.Lat[j])
		}
	}
	var all []int64
	missing := 0
	for k := range count {
		if seen[k] < len(subs) {
			missing++
			continue
		}
		all = append(all, worst[k])
	}
	if len(all) == 0 {
		return nil, missing, fmt.Errorf("no publication reached every subscriber (%d sent)", count)
	}
	return all, missing, nil
}

// failover measures, over kills SIGKILLs of the leader, the time from the
// kill until every survivor (4 followers) has an invoke answered by a new
// leader. In auto mode every member competes and a survivor takes over (a
// new follower then replaces the dead leader, untimed). In forced mode the
// followers are forced followers and a new forced leader process is started
// as soon as the dead one is reaped, as a supervisor would; its start is
// part of the time.
func (r *runner) failover(ctx context.Context, ci clusterImpl, mode string, kills int) error {
	leaderMode, followerMode := "auto", "auto"
	if mode == "forced" {
		leaderMode, followerMode = "leader", "follower"
	}
	addr, err := ci.addr()
	if err != nil {
		return err
	}
	leader, err := r.leaderAt(ctx, ci, addr, leaderMode)
	if err != nil {
		return err
	}
	followers, err := r.followersAt(ctx, ci, addr, followerMode, "follower", 4)
	defer func() { r.procs.stopAll(append(followers, leader)...) }()
	if err != nil {
		return err
	}
	var samples, lost, ready []int64
	for k := range kills {
		dead := leader
		leader = nil
		kl, next, err := r.killLeader(ctx, ci, addr, mode, dead, followers, k+2)
		newPID := kl.newPID
		r.procs.stopAll(dead)
		if next != nil {
			leader = next
		}
		if err != nil {
			return fmt.Errorf("kill %d: %w", k+1, err)
		}
		samples = append(samples, kl.took)
		if kl.lost > 0 && kl.ready > 0 {
			lost, ready = append(lost, kl.lost), append(ready, kl.ready)
		}
		if mode == "auto" {
			i := slices.IndexFunc(followers, func(p *proc) bool { return p.Pid() == newPID })
			if i < 0 {
				return fmt.Errorf("kill %d: the new leader pid %d is none of the survivors", k+1, newPID)
			}
			leader = followers[i]
			followers = slices.Delete(followers, i, i+1)
			replacement, err := r.followersAt(ctx, ci, addr, followerMode, fmt.Sprintf("follower %d", k+5), 1)
			followers = append(followers, replacement...)
			if err != nil {
				return err
			}
		}
	}
	m := r.addLatency(ci.impl, ci.transport, failoverName(mode), []Summary{summarize(slices.Clone(samples))})
	m.Samples = samples
	if len(lost) == len(samples) {
		m.LostSamples, m.ReadySamples = lost, ready
		l, rd := summarize(slices.Clone(lost)), summarize(slices.Clone(ready))
		r.progress("  every survivor saw the leader lost: p50 %s, p99 %s; ready again: p50 %s, p99 %s",
			fmtDur(l.P50), fmtDur(l.P99), fmtDur(rd.P50), fmtDur(rd.P99))
	}
	return nil
}

// killLeader SIGKILLs dead, the leader, and measures how long it took
// until every survivor had an invoke answered by a new leader. In forced mode it also starts the new forced leader once
// dead is reaped, and returns it (even with an error, so that the caller
// stops it).
func (r *runner) killLeader(ctx context.Context, ci clusterImpl, addr, mode string, dead *proc, survivors []*proc, term int) (k kill, next *proc, err error) {
	type spawned struct {
		p    *proc
		info memberReady
		err  error
	}
	nextCh := make(chan spawned, 1)
	t0 := monoNow()
	dead.Kill()
	if mode == "forced" {
		if err := dead.wait(ctx); err != nil {
			return k, nil, err
		}
		go func() {
			p, info, err := ci.spawn(ctx, fmt.Sprintf("leader %d", term), addr, "leader")
			nextCh <- spawned{p, info, err}
		}()
	}
	var errs []error
	last, lost, ready := t0, t0, t0
	phased := true
	sent := make([]bool, len(survivors))
	for i, f := range survivors {
		err := f.Send("probe", probeArgs{DeadPID: dead.Pid(), Timeout: int64(20 * time.Second), KilledAt: t0})
		sent[i] = err == nil
		errs = append(errs, err)
	}
	for i, f := range survivors {
		if !sent[i] {
			continue
		}
		var p probeReply
		if err := f.recv(ctx, &p); err != nil {
			errs = append(errs, fmt.Errorf("probe: %w", err))
			continue
		}
		if k.newPID != 0 && p.PID != k.newPID {
			errs = append(errs, fmt.Errorf("survivors disagree on the new leader: pid %d and %d", k.newPID, p.PID))
		}
		k.newPID, last = p.PID, max(last, p.At)
		if p.LostAt == 0 || p.ReadyAt == 0 {
			phased = false // a Node member, or events not seen for this kill
		}
		lost, ready = max(lost, p.LostAt), max(ready, p.ReadyAt)
	}
	if mode == "forced" {
		s := <-nextCh
		switch {
		case s.err != nil:
			errs = append(errs, fmt.Errorf("new forced leader: %w", s.err))
		case !s.info.Leader || s.p.Pid() != k.newPID:
			errs = append(errs, fmt.Errorf("new forced leader pid %d (leads: %v), but survivors were answered by pid %d", s.p.Pid(), s.info.Leader, k.newPID))
		}
		next = s.p
	}
	k.took = last - t0
	if phased {
		k.lost, k.ready = lost-t0, ready-t0
	}
	return k, next, errors.Join(errs...)
}

// kill is one failover: the time until every survivor had an answer from
// the new leader (took), and when available the times until every
// survivor's event handler had seen the leader lost and a new term ready.
type kill struct {
	took, lost, ready int64
	newPID            int
}

// memory reads the leader's memory (after a forced GC) with 0 and then
// each of the configured numbers of idle followers, which run in "crowd"
// processes.
func (r *runner) memory(ctx context.Context, ci clusterImpl) error {
	addr, leader, err := r.autoLeader(ctx, ci)
	if err != nil {
		return err
	}
	crowds := []*proc{leader}
	defer func() { r.procs.stopAll(crowds...) }()
	m := Measurement{Impl: ci.impl, Transport: ci.transport, Name: memoryName}
	have := 0
	for _, n := range append([]int{0}, r.cfg.MemFollowers...) {
		if n > have {
			a := crowdArgs{memberArgs: memberArgs{Transport: ci.transport, Addr: addr, Channel: channel, Codec: ci.codec}, N: n - have}
			crowd, err := r.procs.goChild(ctx, fmt.Sprintf("%s %s crowd of %d", ci.impl, ci.transport, a.N), "crowd", a, nil)
			if err != nil {
				return err
			}
			crowds = append(crowds, crowd)
			have = n
		}
		if err := waitFollowers(ctx, leader, n); err != nil {
			return err
		}
		var p MemPoint
		if err := leader.call(ctx, "mem", nil, &p.memReply); err != nil {
			return err
		}
		p.Followers = n
		m.Memory = append(m.Memory, p)
		r.progress("  %-6s %-5s leader with %4d idle followers: RSS %s, Go heap+stacks %s, %d goroutines",
			ci.impl, ci.transport, n, fmtBytes(float64(p.RSS)), fmtBytes(float64(p.GoInUse)), p.Goroutines)
	}
	r.res.Measurements = append(r.res.Measurements, m)
	return nil
}

// waitFollowers waits (up to a minute) until the leader counts n
// registered followers.
func waitFollowers(ctx context.Context, leader *proc, n int) error {
	deadline := time.Now().Add(time.Minute)
	for {
		var st statsReply
		if err := leader.call(ctx, "stats", nil, &st); err != nil {
			return err
		}
		if st.Followers == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the leader has %d followers, want %d", st.Followers, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
