// Command grpc-share shows N processes sharing ONE gRPC connection
// (HTTP/2) through grpcshare, with a real gRPC server, and a leader
// SIGKILLed.
//
//	cd examples && go run ./grpc-share          # 4 workers
//	go run ./grpc-share -n 8 -rate 200
//
// It starts a gRPC server with the standard health service on a free
// loopback port, in this process, with a stats.Handler that counts its
// HTTP/2 connections; then N worker processes (this program again). Each
// worker creates a grpcshare.Conn and uses the generated health client on
// it unchanged: Check calls at -rate per second, and a Watch server stream
// kept open. The coordinator flips the "demo" service between SERVING and
// NOT_SERVING, so every Watch stream gets updates.
//
// It prints the server's connection count (1, whatever N is, and `ss`'s
// view of the server's port when ss is installed), SIGKILLs the leader,
// and shows what follows: the calls and streams in flight on the dead
// leader end with Unavailable, a survivor leads and dials again, calls and
// streams work from every survivor, and the server again has one
// connection (2 in all). It exits 0, or 1 and says which check failed.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-clusterclient/clusterclient/internal/childproc"
)

// Config is what the flags set.
type Config struct {
	N    int // workers
	Rate int // Check calls per second per worker
	Port int // cluster port on 127.0.0.1; 0: a free one
}

func main() {
	childproc.Main(map[string]func([]string) int{"worker": workerMain})
	cfg := Config{N: 4, Rate: 100}
	flag.IntVar(&cfg.N, "n", cfg.N, "worker processes (at least 2)")
	flag.IntVar(&cfg.Rate, "rate", cfg.Rate, "health checks per second per worker")
	flag.IntVar(&cfg.Port, "port", cfg.Port, "cluster port on 127.0.0.1 (0: a free one)")
	flag.Parse()
	if flag.NArg() > 0 || cfg.N < 2 || cfg.Rate < 1 || cfg.Port < 0 || cfg.Port > 65535 {
		fmt.Fprintln(os.Stderr, "grpc-share: want -n >= 2, -rate >= 1, -port in 0..65535 and no arguments")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	res, err := run(ctx, cfg, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "grpc-share: FAIL:", err)
		os.Exit(1)
	}
	fmt.Printf("OK: %d processes, at most %d HTTP/2 connection open, %d in all, survived a leader SIGKILL\n", cfg.N, res.MaxOpen, res.Total)
}

// Result is what the tests check.
type Result struct {
	MaxOpen     int64 // the most server connections open at once (sampled every 10 ms)
	Total       int64 // connections the server accepted
	Unavailable int   // calls and streams of the survivors that ended with Unavailable at the kill
}

// worker is the coordinator's view of one worker process.
type worker struct {
	n     int
	ch    *childproc.Child
	last  workerStats
	ready bool
	dead  bool
}

func (w *worker) String() string { return fmt.Sprintf("w%d (pid %d)", w.n, w.ch.Pid()) }

type demo struct {
	cfg     Config
	out     io.Writer
	srv     *server
	start   time.Time
	mu      sync.Mutex
	workers []*worker
	maxOpen int64
	// killed is set at the SIGKILL; until the server sees the dead
	// leader's connection end, samples are counted apart in overlap (the
	// new leader may connect before the server read the EOF).
	killed  bool
	overlap int
	changed chan struct{} // a worker reported: cap 1
}

func run(ctx context.Context, cfg Config, out io.Writer) (Result, error) {
	srv, err := startServer()
	if err != nil {
		return Result{}, err
	}
	defer srv.stop()
	port := cfg.Port
	if port == 0 {
		if port, err = freePort(); err != nil {
			return Result{}, err
		}
	}
	d := &demo{cfg: cfg, out: out, srv: srv, start: time.Now(), changed: make(chan struct{}, 1)}
	d.say("gRPC server (health service) on %s; cluster address 127.0.0.1:%d", srv.addr, port)
	defer d.stopAll()
	for i := 1; i <= cfg.N; i++ {
		cmd := childproc.Command("worker", fmt.Sprintf("127.0.0.1:%d", port), srv.addr, fmt.Sprint(cfg.Rate))
		ch, err := childproc.StartCmd(cmd, childproc.Options{Name: fmt.Sprintf("w%d", i)})
		if err != nil {
			return Result{}, err
		}
		w := &worker{n: i, ch: ch}
		d.mu.Lock()
		d.workers = append(d.workers, w)
		d.mu.Unlock()
		go d.read(w)
	}
	sampleDone := make(chan struct{})
	defer close(sampleDone)
	go d.sample(sampleDone)
	go d.flip(sampleDone)

	// 1. Every worker ready and calling; one connection.
	if err := d.waitUntil(ctx, 30*time.Second, "every worker is ready, calls and receives Watch updates", func() bool {
		for _, w := range d.workers {
			if !w.ready || w.last.Calls < 20 || w.last.Updates < 2 {
				return false
			}
		}
		return true
	}); err != nil {
		return Result{}, err
	}
	leader := d.leader()
	if leader == nil {
		return Result{}, fmt.Errorf("no worker says it leads")
	}
	d.mu.Lock()
	for _, w := range d.workers {
		role := "follower"
		if w == leader {
			role = "leader: holds the only *grpc.ClientConn"
		}
		d.say("%v: %s; %d checks OK, %d Watch updates", w, role, w.last.Calls, w.last.Updates)
	}
	d.mu.Unlock()
	open, total := srv.conns.open.Load(), srv.conns.total.Load()
	d.say("server: %d HTTP/2 connection(s) open, %d accepted, for %d processes%s", open, total, cfg.N, d.ssLine())
	if open != 1 || total != 1 {
		return Result{}, fmt.Errorf("the server sees %d connections (%d accepted), want 1", open, total)
	}

	// 2. SIGKILL the leader.
	before := map[*worker]workerStats{}
	d.mu.Lock()
	for _, w := range d.workers {
		before[w] = w.last
	}
	d.mu.Unlock()
	d.say("SIGKILL %v, the leader", leader)
	killed := time.Now()
	d.mu.Lock()
	d.killed = true
	d.mu.Unlock()
	if err := leader.ch.Kill(); err != nil {
		return Result{}, err
	}
	d.mu.Lock()
	leader.dead = true
	d.mu.Unlock()
	var heir *worker
	if err := d.waitUntil(ctx, 30*time.Second, "a survivor leads and every survivor calls and watches again", func() bool {
		heir = nil
		for _, w := range d.workers {
			if w.dead {
				continue
			}
			if w.last.Leader {
				heir = w
			}
			b := before[w]
			if w.last.Calls < b.Calls+20 || w.last.Updates < b.Updates+2 {
				return false
			}
		}
		return heir != nil
	}); err != nil {
		return Result{}, err
	}
	d.say("%v leads now; every survivor made 20 more checks and got 2 more Watch updates %v after the kill", heir, time.Since(killed).Round(time.Millisecond))
	res := Result{}
	d.mu.Lock()
	for _, w := range d.workers {
		if w.dead {
			continue
		}
		b := before[w]
		failed, ended := diff(w.last.Failed, b.Failed), diff(w.last.Ends, b.Ends)
		res.Unavailable += failed["Unavailable"] + ended["Unavailable"]
		d.say("%v: checks %d -> %d, failed at the kill: %s; Watch streams ended: %s, updates %d -> %d",
			w, b.Calls, w.last.Calls, counts(failed), counts(ended), b.Updates, w.last.Updates)
		if len(failed) > 0 {
			d.say("%v: last failed check: %s", w, w.last.LastErr)
		}
	}
	d.mu.Unlock()
	if err := d.waitUntil(ctx, 10*time.Second, "the server has one connection, the new leader's", func() bool {
		return srv.conns.open.Load() == 1 && srv.conns.total.Load() == 2
	}); err != nil {
		return Result{}, err
	}
	d.mu.Lock()
	res.MaxOpen, res.Total = d.maxOpen, srv.conns.total.Load()
	overlap := d.overlap
	d.mu.Unlock()
	d.say("server: %d HTTP/2 connection(s) open, %d accepted in all (one per leader)%s", srv.conns.open.Load(), res.Total, d.ssLine())
	if overlap > 0 {
		d.say("(%d samples saw the new leader's connection before the server had seen the dead leader's end: not counted in the maximum)", overlap)
	}
	if res.MaxOpen != 1 {
		return res, fmt.Errorf("the server had up to %d connections open at once, want 1", res.MaxOpen)
	}
	return res, nil
}

func diff(now, before map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range now {
		if v > before[k] {
			out[k] = v - before[k]
		}
	}
	return out
}

// counts writes {"Unavailable": 1} as "1 Unavailable".
func counts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%d %s", v, k))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// read follows a worker's events.
func (d *demo) read(w *worker) {
	for {
		ev, err := w.ch.Next(context.Background())
		if err != nil {
			d.mu.Lock()
			if !w.dead {
				w.dead = true
				fmt.Fprintf(d.out, "%v ended: %v %s\n", w, err, strings.TrimSpace(w.ch.Stderr()))
			}
			d.mu.Unlock()
			d.poke()
			return
		}
		d.mu.Lock()
		switch ev.Name {
		case "ready":
			w.ready = true
		case "stats":
			var st workerStats // fresh maps: snapshots keep theirs
			if ev.Decode(&st) == nil {
				w.last = st
			}
		}
		d.mu.Unlock()
		d.poke()
	}
}

func (d *demo) poke() {
	select {
	case d.changed <- struct{}{}:
	default:
	}
}

// sample records the most connections the server had open at once.
func (d *demo) sample(done chan struct{}) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		n := d.srv.conns.open.Load()
		d.mu.Lock()
		if d.killed && d.srv.conns.ended.Load() == 0 {
			if n > 1 {
				d.overlap++
			}
		} else {
			d.maxOpen = max(d.maxOpen, n)
		}
		d.mu.Unlock()
	}
}

// flip changes the "demo" service's health every 100 ms, for the Watch
// streams.
func (d *demo) flip(done chan struct{}) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for serving := false; ; serving = !serving {
		select {
		case <-done:
			return
		case <-t.C:
		}
		d.srv.setDemo(serving)
	}
}

// waitUntil waits, with d.mu held while cond runs, until cond holds.
func (d *demo) waitUntil(ctx context.Context, timeout time.Duration, what string, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		d.mu.Lock()
		ok := cond()
		d.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-d.changed:
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("waiting until %s: %w", what, ctx.Err())
		}
	}
}

func (d *demo) leader() *worker {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, w := range d.workers {
		if !w.dead && w.last.Leader {
			return w
		}
	}
	return nil
}

func (d *demo) stopAll() {
	d.mu.Lock()
	ws := append([]*worker(nil), d.workers...)
	for _, w := range ws {
		w.dead = true
	}
	d.mu.Unlock()
	for _, w := range ws {
		_ = w.ch.Send("exit", nil)
	}
	for _, w := range ws {
		_ = w.ch.Stop(5 * time.Second)
	}
}

func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.out, "%6.3fs  %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, args...))
}

// ssLine is `ss`'s count of established TCP connections to the server's
// port, when ss is installed: the kernel's view of the same number.
func (d *demo) ssLine() string {
	path, err := exec.LookPath("ss")
	if err != nil {
		return ""
	}
	port := d.srv.addr[strings.LastIndexByte(d.srv.addr, ':')+1:]
	out, err := exec.Command(path, "-Htn", "state", "established", "( sport = :"+port+" )").Output()
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) == 1 && lines[0] == "" {
		lines = nil
	}
	return fmt.Sprintf(" (ss: %d established TCP connection(s) to port %s)", len(lines), port)
}
