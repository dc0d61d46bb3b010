package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Bounds of the steps (generous: a loaded machine is slow, never wrong).
const (
	formTimeout     = 30 * time.Second // the first cluster forms
	failoverTimeout = 20 * time.Second // each step of a failover
	deliverTimeout  = 5 * time.Second  // a tick reaches its subscribers
	stopTimeout     = 15 * time.Second // a worker exits after its stdin closed
	tickEvery       = 200 * time.Millisecond
	sampleEvery     = 20 * time.Millisecond
)

// demo is one run: the NATS server, the worker processes and what they
// reported.
type demo struct {
	cfg   Config
	out   io.Writer
	tty   bool
	start time.Time
	port  int // clusterclient port

	ns       *server.Server
	storeDir string

	outMu    sync.Mutex
	progress string // the progress line shown (tty)

	stop    chan struct{}
	bg      sync.WaitGroup // sampler, progress, worker readers
	stopped bool
	ended   atomic.Bool // the run is over: no more progress lines

	mu        sync.Mutex
	procs     []*proc // every worker started, by id-1
	seq       int
	ticks     []*tickRec
	samples   int
	maxConns  int      // most connections of live processes in a sample
	overOne   []string // samples that saw more than one of them
	stale     int      // samples that still saw a killed leader's connection
	failovers []failover
	changes   []change // leader changes and rolling restarts, with their calls (rolling.go)
	problems  []string
	lastCalls uint64
	lastAt    time.Time

	// interrupted: SIGTERM or SIGINT stopped the run early (not a failure).
	interrupted bool
}

// proc is one worker process.
type proc struct {
	id     int
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *tail
	exited chan struct{}
	err    error // the exit status (after exited)

	// under demo.mu
	alive   bool
	killed  bool           // SIGKILL sent (it may not be reaped yet)
	st      workerMsg      // the last state it reported
	got     map[int]bool   // ticks it received
	acks    map[int]string // send acknowledgements: seq → error text
	metrics string         // the URL of its /metrics, if it serves one

	stopping bool // SIGTERM sent: it closes its Client gracefully and exits
}

func (p *proc) String() string { return fmt.Sprintf("w%d (pid %d)", p.id, p.cmd.Process.Pid) }

// tickRec is one tick the coordinator had a worker send.
type tickRec struct {
	seq  int
	to   []*proc // the workers subscribed (ready) when it was sent
	sent bool    // the leader published it
}

// failover is what one leader kill showed.
type failover struct {
	killed, leader, replacement *proc
	term                        uint64
	toLeader, toOneConn         time.Duration
	marker, reached, survivors  int
}

func newDemo(cfg Config, out io.Writer, tty bool) (*demo, error) {
	d := &demo{cfg: cfg, out: out, tty: tty, stop: make(chan struct{})}
	dir, err := os.MkdirTemp("", "nats-share-")
	if err != nil {
		return nil, err
	}
	d.storeDir = dir
	ns, err := server.NewServer(&server.Options{
		ServerName: "nats-share", Host: "127.0.0.1", Port: server.RANDOM_PORT,
		NoLog: true, NoSigs: true, HTTPPort: 0,
		JetStream: true, StoreDir: dir, JetStreamMaxMemory: 64 << 20, JetStreamMaxStore: 64 << 20,
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("NATS server: %w", err)
	}
	d.ns = ns
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		d.shutdown()
		return nil, errors.New("the NATS server did not start within 10s")
	}
	d.port = cfg.Port
	if d.port == 0 {
		if d.port, err = freePort(); err != nil {
			d.shutdown()
			return nil, err
		}
	}
	return d, nil
}

// freePort returns a loopback TCP port nobody listens on right now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (d *demo) run(ctx context.Context) error {
	d.start = time.Now()
	d.lastAt = d.start
	d.say("NATS server %s on %s (embedded in this process, JetStream on)", server.VERSION, strings.TrimPrefix(d.ns.ClientURL(), "nats://"))
	d.say("starting %d workers on clusterclient channel %q at tcp 127.0.0.1:%d; %d leader kill(s) in %v",
		d.cfg.N, channel, d.port, d.cfg.Kills, d.cfg.Duration)
	d.bg.Add(2)
	go d.sampleLoop()
	go d.progressLoop()
	for range d.cfg.N {
		if _, err := d.startWorker(); err != nil {
			return err
		}
	}
	if err := d.waitFormed(ctx); err != nil {
		return d.finish(ctx, err)
	}
	end := d.start.Add(d.cfg.Duration)
	// The leader changes, spread evenly over the run: the rolling restart
	// (-rolling) first, then the kills.
	var changes []string
	if d.cfg.Rolling {
		changes = append(changes, kindPlanned)
	}
	for range d.cfg.Kills {
		changes = append(changes, kindCrash)
	}
	at := make([]time.Time, len(changes))
	for i := range at {
		at[i] = d.start.Add(d.cfg.Duration * time.Duration(i+1) / time.Duration(len(changes)+1))
	}
	next := time.Now()
	for time.Now().Before(end) {
		if len(at) > 0 && !time.Now().Before(at[0]) {
			kind := changes[0]
			changes, at = changes[1:], at[1:]
			var err error
			if kind == kindPlanned {
				err = d.measure(ctx, kindPlanned, d.rolling)
			} else {
				err = d.measure(ctx, kindCrash, func(ctx context.Context, c *change) error {
					c.leaders = 1
					return d.failover(ctx)
				})
			}
			if err != nil {
				return d.finish(ctx, err)
			}
			continue
		}
		if err := d.sendTick(ctx, nil); err != nil {
			return d.finish(ctx, err)
		}
		next = next.Add(tickEvery)
		if wait := time.Until(next); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return d.finish(ctx, ctx.Err())
			}
		} else {
			next = time.Now()
		}
	}
	return d.finish(ctx, nil)
}

// ---- workers ----

func (d *demo) startWorker() (*proc, error) {
	d.mu.Lock()
	id := len(d.procs) + 1
	d.mu.Unlock()
	spec, _ := json.Marshal(workerConfig{ID: id, NATS: d.ns.ClientURL(), Port: d.port, Rate: d.cfg.Rate,
		Metrics: metricsAddrFor(d.cfg.Metrics, id)})
	cmd := exec.Command(d.cfg.Worker)
	cmd.Env = append(os.Environ(), envWorker+"="+string(spec))
	cmd.SysProcAttr = sysProcAttr() // dies with us where the OS can do that
	p := &proc{id: id, cmd: cmd, stderr: &tail{max: 8 << 10}, exited: make(chan struct{}),
		alive: true, got: map[int]bool{}, acks: map[int]string{}}
	cmd.Stderr = p.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p.stdin = stdin
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start worker %d: %w", id, err)
	}
	d.mu.Lock()
	d.procs = append(d.procs, p)
	d.mu.Unlock()
	d.bg.Add(1)
	go func() {
		defer d.bg.Done()
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var m workerMsg
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				continue // not ours (a stray print)
			}
			if m.Kind == "metrics" {
				d.say("%s serves metrics at %s", p, m.URL)
			}
			d.handle(p, m)
		}
		p.err = cmd.Wait()
		d.mu.Lock()
		p.alive = false
		d.mu.Unlock()
		close(p.exited)
	}()
	return p, nil
}

func (d *demo) handle(p *proc, m workerMsg) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch m.Kind {
	case "state":
		for _, s := range m.Ticks {
			p.got[s] = true
		}
		m.Ticks = nil
		p.st = m
	case "sent":
		p.acks[m.Seq] = m.Err
	case "metrics":
		p.metrics = m.URL
	}
}

// live returns the workers not killed (d.mu held).
func (d *demo) live() []*proc {
	var l []*proc
	for _, p := range d.procs {
		if p.alive {
			l = append(l, p)
		}
	}
	return l
}

// leader returns the live worker that leads and is ready, if exactly one
// does (d.mu held).
func (d *demo) leader() *proc {
	var l *proc
	for _, p := range d.live() {
		if p.st.Role == "leader" && p.st.Ready {
			if l != nil {
				return nil
			}
			l = p
		}
	}
	return l
}

func (d *demo) allReady() bool {
	live := d.live()
	for _, p := range live {
		if !p.st.Ready {
			return false
		}
	}
	return len(live) > 0
}

// waitUntil polls cond (called with d.mu held) until it holds.
func (d *demo) waitUntil(ctx context.Context, timeout time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for {
		d.mu.Lock()
		ok := cond()
		d.mu.Unlock()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %v", what, timeout)
		}
		select {
		case <-time.After(5 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// ---- NATS connections ----

// natsConns returns the names of the NATS server's client connections.
func (d *demo) natsConns() []string {
	cz, err := d.ns.Connz(&server.ConnzOptions{})
	if err != nil {
		return []string{"connz: " + err.Error()}
	}
	names := make([]string, 0, len(cz.Conns))
	for _, c := range cz.Conns {
		names = append(names, c.Name)
	}
	return names
}

// connOwner returns the worker whose leader opened the NATS connection
// named name (see connName), or nil (d.mu held).
func (d *demo) connOwner(name string) *proc {
	var pid int
	if _, err := fmt.Sscanf(name, "nats-share leader pid %d", &pid); err != nil {
		return nil
	}
	for _, p := range d.procs {
		if p.cmd.Process.Pid == pid {
			return p
		}
	}
	return nil
}

// describeConns lists the NATS server's client connections for people.
func (d *demo) describeConns() string {
	names := d.natsConns()
	d.mu.Lock()
	defer d.mu.Unlock()
	parts := make([]string, 0, len(names))
	for _, n := range names {
		switch p := d.connOwner(n); {
		case p != nil && p.killed:
			parts = append(parts, fmt.Sprintf("%q (killed; the server has not noticed yet)", n))
		case p != nil && p.stopping:
			parts = append(parts, fmt.Sprintf("%q (leaving: it hands over, then closes)", n))
		case n == "":
			parts = append(parts, `"" (connecting)`)
		default:
			parts = append(parts, strconv.Quote(n))
		}
	}
	return fmt.Sprintf("%d [%s]", len(names), strings.Join(parts, ", "))
}

// sampleLoop counts the NATS server's client connections all along.
func (d *demo) sampleLoop() {
	defer d.bg.Done()
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
		}
		names := d.natsConns()
		d.mu.Lock()
		live, stale := 0, 0
		for _, n := range names {
			if p := d.connOwner(n); p != nil && (p.killed || p.stopping) {
				stale++ // the server has not noticed the death yet, or a leaving leader still hands over
			} else {
				live++
			}
		}
		d.samples++
		d.maxConns = max(d.maxConns, live)
		if live > 1 {
			d.overOne = append(d.overOne, fmt.Sprintf("%q at %s", names, d.since()))
		}
		if stale > 0 {
			d.stale++
		}
		d.mu.Unlock()
	}
}

// ---- the steps ----

func (d *demo) waitFormed(ctx context.Context) error {
	err := d.waitUntil(ctx, formTimeout, "all workers ready with one leader", func() bool {
		return d.allReady() && d.leader() != nil && len(d.live()) == d.cfg.N
	})
	if err != nil {
		return err
	}
	d.mu.Lock()
	l := d.leader()
	d.mu.Unlock()
	if err := d.waitOneConn(ctx, l); err != nil {
		return err
	}
	d.say("cluster formed: %s leads, %d followers; the NATS server sees 1 client connection, %q",
		l, d.cfg.N-1, connName(l.cmd.Process.Pid))
	return nil
}

// waitOneConn waits until the NATS server's only client connection is l's.
func (d *demo) waitOneConn(ctx context.Context, l *proc) error {
	want := connName(l.cmd.Process.Pid)
	var got []string
	err := d.waitUntil(ctx, failoverTimeout, "NATS connections = 1, the leader's", func() bool {
		got = d.natsConns()
		return len(got) == 1 && got[0] == want
	})
	if err != nil {
		return fmt.Errorf("%w (the server sees %q, want [%q])", err, got, want)
	}
	return nil
}

// sendTick has a ready worker (via, or the next one in turn) send the
// next tick, and records who should receive it.
func (d *demo) sendTick(ctx context.Context, via *proc) error {
	d.mu.Lock()
	d.seq++
	t := &tickRec{seq: d.seq}
	for _, p := range d.live() {
		if p.st.Ready {
			t.to = append(t.to, p)
		}
	}
	if via == nil && len(t.to) > 0 {
		via = t.to[t.seq%len(t.to)]
	}
	d.ticks = append(d.ticks, t)
	d.mu.Unlock()
	if via == nil {
		return errors.New("no ready worker to send a tick")
	}
	line, _ := json.Marshal(workerCmd{Cmd: "send", Seq: t.seq})
	if _, err := via.stdin.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("tell %s to send tick %d: %w", via, t.seq, err)
	}
	var ack string
	err := d.waitUntil(ctx, failoverTimeout, fmt.Sprintf("%s sends tick %d", via, t.seq), func() bool {
		var ok bool
		ack, ok = via.acks[t.seq]
		return ok
	})
	if err != nil {
		return err
	}
	if ack != "" {
		return fmt.Errorf("%s could not send tick %d: %s", via, t.seq, ack)
	}
	d.mu.Lock()
	t.sent = true
	d.mu.Unlock()
	return nil
}

// missing returns, for the ticks sent, the workers still alive that
// should have received them and did not (d.mu held).
func (d *demo) missing(ticks []*tickRec) []string {
	var m []string
	for _, t := range ticks {
		if !t.sent {
			continue
		}
		for _, p := range t.to {
			if p.alive && !p.got[t.seq] {
				m = append(m, fmt.Sprintf("tick %d at w%d", t.seq, p.id))
			}
		}
	}
	return m
}

// quiesce waits until every tick sent so far reached its subscribers.
func (d *demo) quiesce(ctx context.Context) error {
	var miss []string
	err := d.waitUntil(ctx, deliverTimeout, "every tick delivered", func() bool {
		miss = d.missing(d.ticks)
		return len(miss) == 0
	})
	if err != nil {
		return fmt.Errorf("%w: missed %s", err, strings.Join(miss, ", "))
	}
	return nil
}

// failover kills the leader and follows the recovery step by step.
func (d *demo) failover(ctx context.Context) error {
	if err := d.quiesce(ctx); err != nil {
		return err
	}
	d.mu.Lock()
	old := d.leader()
	d.mu.Unlock()
	if old == nil {
		return errors.New("no single ready leader to kill")
	}
	f := failover{killed: old}
	// Each survivor must be ready in a term that began after the kill:
	// the state it reported before is stale.
	before := map[*proc]uint64{}
	d.mu.Lock()
	for _, p := range d.live() {
		before[p] = p.st.Term
	}
	d.mu.Unlock()
	d.say("SIGKILL the leader %s", old)
	d.mu.Lock()
	old.killed = true
	d.mu.Unlock()
	killed := time.Now()
	if err := old.cmd.Process.Kill(); err != nil {
		return fmt.Errorf("kill %s: %w", old, err)
	}
	select {
	case <-old.exited:
	case <-time.After(failoverTimeout):
		return fmt.Errorf("%s did not die", old)
	}
	d.say("NATS client connections right after: %s", d.describeConns())

	err := d.waitUntil(ctx, failoverTimeout, "a survivor leads", func() bool {
		f.leader = d.leader()
		return f.leader != nil && f.leader.st.Term > before[f.leader]
	})
	if err != nil {
		return err
	}
	f.toLeader = time.Since(killed)
	d.mu.Lock()
	f.term = f.leader.st.Term
	d.mu.Unlock()
	d.say("%s is the new leader (its term %d), %v after the kill", f.leader, f.term, f.toLeader.Round(time.Millisecond))
	if err := d.waitOneConn(ctx, f.leader); err != nil {
		return err
	}
	f.toOneConn = time.Since(killed)
	d.say("NATS client connections back to 1 (%q), %v after the kill", connName(f.leader.cmd.Process.Pid), f.toOneConn.Round(time.Millisecond))

	err = d.waitUntil(ctx, failoverTimeout, "every survivor ready in a new term", func() bool {
		for _, p := range d.live() {
			if !p.st.Ready || p.st.Term <= before[p] {
				return false
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	var via *proc
	d.mu.Lock()
	for _, p := range d.live() {
		if p != f.leader {
			via = p // a follower sends it: the whole path is exercised
		}
	}
	d.mu.Unlock()
	if err := d.sendTick(ctx, via); err != nil {
		return err
	}
	d.mu.Lock()
	t := d.ticks[len(d.ticks)-1]
	d.mu.Unlock()
	f.marker, f.survivors = t.seq, len(t.to)
	err = d.waitUntil(ctx, deliverTimeout, "the next tick reaches every survivor", func() bool {
		f.reached = len(t.to) - len(d.missing([]*tickRec{t}))
		return f.reached == len(t.to)
	})
	d.say("the next tick (#%d) reached %d/%d survivors", t.seq, f.reached, f.survivors)
	if err != nil {
		return err
	}
	if f.replacement, err = d.startWorker(); err != nil {
		return err
	}
	err = d.waitUntil(ctx, failoverTimeout, "the replacement worker follows", func() bool {
		return f.replacement.st.Ready && f.replacement.st.Role == "follower"
	})
	if err != nil {
		return err
	}
	d.say("%s started in its place and follows", f.replacement)
	d.mu.Lock()
	d.failovers = append(d.failovers, f)
	d.mu.Unlock()
	return nil
}

// finish stops the workers, checks what is left to check, and prints the
// summary. cause is why the run ended early (nil: it ran its course).
func (d *demo) finish(ctx context.Context, cause error) error {
	if cause != nil && errors.Is(cause, context.Canceled) && ctx.Err() != nil {
		// SIGTERM or SIGINT (main's context): stop gracefully, with bounds
		// of our own, and judge what ran.
		d.say("interrupted: every worker closes its Client gracefully")
		d.mu.Lock()
		d.interrupted = true
		d.mu.Unlock()
		cause = nil
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
	}
	if cause != nil {
		d.problem("%v", cause)
	} else if err := d.quiesce(ctx); err != nil {
		d.problem("%v", err)
	}
	d.ended.Store(true) // no more progress lines
	// Stop the followers first and the leader last: stopping the leader
	// first would make the followers elect a new one on their way out.
	d.mu.Lock()
	live := d.live()
	leader := d.leader()
	d.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range live {
		if p != leader {
			wg.Add(1)
			go func() { defer wg.Done(); d.stopWorker(p) }()
		}
	}
	wg.Wait()
	if leader != nil {
		d.stopWorker(leader)
	}
	// The last leader closed its NATS connection on the way out.
	if err := d.waitUntil(ctx, stopTimeout, "NATS connections back to 0", func() bool { return d.ns.NumClients() == 0 }); err != nil {
		d.problem("%v: %q", err, d.natsConns())
	}
	d.halt()
	d.summary()
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.problems) > 0 {
		return errors.New(strings.Join(d.problems, "; "))
	}
	return nil
}

// stopWorker closes p's stdin (it closes its Client and exits) and waits
// for it to exit.
func (d *demo) stopWorker(p *proc) {
	p.stdin.Close()
	select {
	case <-p.exited:
		if p.err != nil {
			d.problem("%s exited with %v: %s", p, p.err, p.stderr.String())
		}
	case <-time.After(stopTimeout):
		d.problem("%s did not exit within %v of its stdin closing: %s", p, stopTimeout, p.stderr.String())
		p.cmd.Process.Kill()
		<-p.exited
	}
}

func (d *demo) problem(format string, args ...any) {
	d.mu.Lock()
	d.problems = append(d.problems, fmt.Sprintf(format, args...))
	d.mu.Unlock()
}

// summary prints what the run showed, and records the checks that failed.
func (d *demo) summary() {
	d.mu.Lock()
	var calls, lost, timeouts, errs uint64
	var lastErr string
	for _, p := range d.procs {
		calls += p.st.Calls
		lost += p.st.LeaderLost
		timeouts += p.st.Timeouts
		errs += p.st.Errors
		if p.st.LastError != "" {
			lastErr = fmt.Sprintf("w%d: %s", p.id, p.st.LastError)
		}
	}
	sent, deliveries := 0, 0
	for _, t := range d.ticks {
		if t.sent {
			sent++
			for _, p := range t.to {
				if p.got[t.seq] {
					deliveries++
				}
			}
		}
	}
	elapsed := time.Since(d.start)
	samples, maxConns, overOne, stale := d.samples, d.maxConns, d.overOne, d.stale
	failovers, changes, interrupted := d.failovers, d.changes, d.interrupted
	all := d.totals()
	d.mu.Unlock()
	varz, _ := d.ns.Varz(nil)

	var b strings.Builder
	fmt.Fprintf(&b, "\nsummary: %d workers (%d started), %v, %d leader kill(s)\n", d.cfg.N, len(d.procs), elapsed.Round(100*time.Millisecond), len(failovers))
	fmt.Fprintf(&b, "  NATS client connections of live processes: at most %d at a time (%d samples", maxConns, samples)
	if stale > 0 {
		fmt.Fprintf(&b, "; %d also saw a killed leader's connection the server had not closed yet, or a leaving leader's during its hand-over", stale)
	}
	b.WriteString(")")
	if varz != nil {
		fmt.Fprintf(&b, "; %d opened in all, one per leader", varz.TotalConnections)
	}
	b.WriteString("\n")
	if cz, err := d.ns.Connz(&server.ConnzOptions{State: server.ConnAll, Sort: server.ByCid}); err == nil {
		for _, c := range cz.Conns {
			end := "open"
			if c.Stop != nil {
				end = "closed at " + fmt.Sprintf("%.2fs", c.Stop.Sub(d.start).Seconds()) + ": " + c.Reason
			}
			fmt.Fprintf(&b, "    %q from %.2fs, %s\n", c.Name, c.Start.Sub(d.start).Seconds(), end)
		}
	}
	for i, f := range failovers {
		fmt.Fprintf(&b, "  failover %d: killed %s; %s led after %v; NATS back to 1 connection after %v; next tick reached %d/%d survivors; %s joined\n",
			i+1, f.killed, f.leader, f.toLeader.Round(time.Millisecond), f.toOneConn.Round(time.Millisecond),
			f.reached, f.survivors, f.replacement)
	}
	fmt.Fprintf(&b, "  request calls: %d answered (%.0f/s), %d lost with a killed leader (in flight, effect unknown), %d timed out, %d other errors\n",
		calls, float64(calls)/elapsed.Seconds(), lost, timeouts, errs)
	if lastErr != "" {
		fmt.Fprintf(&b, "  last error: %s\n", lastErr)
	}
	plannedFailed := changesSummary(&b, changes, all)
	fmt.Fprintf(&b, "  ticks: %d sent through the leader, %d deliveries to subscribed workers\n", sent, deliveries)
	if interrupted {
		fmt.Fprintf(&b, "  interrupted (SIGTERM or SIGINT) after %v: the planned leader changes not reached were not run\n", elapsed.Round(100*time.Millisecond))
	}
	d.write(b.String())

	if maxConns > 1 {
		d.problem("the NATS server saw more than one client connection of live processes: %s", strings.Join(overOne, ", "))
	}
	if maxConns < 1 || samples == 0 {
		d.problem("no sample saw the leader's NATS connection")
	}
	if len(failovers) != d.cfg.Kills && !interrupted {
		d.problem("%d of %d leader kills completed", len(failovers), d.cfg.Kills)
	}
	if d.cfg.Rolling && !interrupted && !slices.ContainsFunc(changes, func(c change) bool { return c.kind == kindPlanned }) {
		d.problem("the rolling restart did not complete")
	}
	if plannedFailed > 0 {
		d.problem("%d calls failed during planned leader changes (a graceful Close hands over: none should)", plannedFailed)
	}
	if errs > 0 {
		d.problem("%d request calls failed (%s)", errs, lastErr)
	}
	if calls == 0 {
		d.problem("no request call was answered")
	}
	d.mu.Lock()
	ok := len(d.problems) == 0
	d.mu.Unlock()
	if ok {
		restarted := ""
		if d.cfg.Rolling {
			restarted = " and a rolling restart"
		}
		if interrupted {
			restarted += " (interrupted)"
		}
		d.write(fmt.Sprintf("OK: %d processes shared 1 NATS connection and survived %d leader kill(s)%s\n", d.cfg.N, len(failovers), restarted))
	}
}

// halt stops the background loops.
func (d *demo) halt() {
	d.mu.Lock()
	if !d.stopped {
		d.stopped = true
		close(d.stop)
	}
	d.mu.Unlock()
	d.bg.Wait()
}

// shutdown releases everything: workers still running are killed.
func (d *demo) shutdown() {
	d.mu.Lock()
	procs := slices.Clone(d.procs)
	d.mu.Unlock()
	for _, p := range procs {
		p.cmd.Process.Kill()
		<-p.exited
	}
	d.halt()
	if d.ns != nil {
		d.ns.Shutdown()
		d.ns.WaitForShutdown()
	}
	os.RemoveAll(d.storeDir)
}

// ---- output ----

func (d *demo) since() string {
	return fmt.Sprintf("%5.2fs", time.Since(d.start).Seconds())
}

// say prints one event line.
func (d *demo) say(format string, args ...any) {
	d.write(fmt.Sprintf("[%s] %s\n", d.since(), fmt.Sprintf(format, args...)))
}

// write prints text, keeping the progress line (tty) below it.
func (d *demo) write(s string) {
	d.outMu.Lock()
	defer d.outMu.Unlock()
	if d.tty && d.progress != "" {
		fmt.Fprint(d.out, "\r\033[K")
	}
	fmt.Fprint(d.out, s)
	if d.tty && d.progress != "" {
		fmt.Fprint(d.out, d.progress)
	}
}

// progressLoop shows the progress line: rewritten in place on a terminal,
// one line a second otherwise.
func (d *demo) progressLoop() {
	defer d.bg.Done()
	every := time.Second
	if d.tty {
		every = 250 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			if d.tty {
				d.outMu.Lock()
				fmt.Fprint(d.out, "\r\033[K")
				d.progress = ""
				d.outMu.Unlock()
			}
			return
		case <-t.C:
		}
		if d.ended.Load() {
			continue
		}
		line := d.progressLine()
		d.outMu.Lock()
		if d.tty {
			d.progress = line
			fmt.Fprint(d.out, "\r\033[K"+line)
		} else {
			fmt.Fprintln(d.out, line)
		}
		d.outMu.Unlock()
	}
}

func (d *demo) progressLine() string {
	conns := d.ns.NumClients()
	d.mu.Lock()
	defer d.mu.Unlock()
	leader := "none"
	if l := d.leader(); l != nil {
		leader = fmt.Sprintf("w%d (pid %d, term %d)", l.id, l.cmd.Process.Pid, l.st.Term)
	}
	live := d.live()
	ready := 0
	var calls uint64
	for _, p := range d.procs {
		calls += p.st.Calls
	}
	for _, p := range live {
		if p.st.Ready {
			ready++
		}
	}
	now := time.Now()
	rate := float64(calls-d.lastCalls) / now.Sub(d.lastAt).Seconds()
	d.lastCalls, d.lastAt = calls, now
	return fmt.Sprintf("[%s] leader %s | ready %d/%d | NATS client conns %d | calls/s %.0f | ticks sent %d",
		d.since(), leader, ready, len(live), conns, rate, d.seq)
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}
