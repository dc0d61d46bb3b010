// Command clusterstress runs one leader and several follower processes of
// one channel on this host and has every follower call the leader, steadily,
// for a while: fast calls at a fixed rate and, every other tick, a call
// whose handler blocks for a while on the leader. It reports, per follower,
// the calls made, those that timed out or failed, and the slowest answer,
// and exits 1 if any call failed.
//
// It is the workload under which a follower's answers once stayed held on
// a healthy leader for seconds (calls ended with ErrTimeout while the
// leader answered everyone else): blocking calls make reading move between
// the leader's goroutines, fast calls make requests arrive together.
//
// Usage:
//
//	go run ./cmd/clusterstress                      # 4 followers, 20 s, tcp
//	go run ./cmd/clusterstress -runs 18 -duration 20s -block 200us-2ms
//	go run ./cmd/clusterstress -transport unix -duration 4m -block 50us-300us
//
// Every process is this program again (it starts itself in a role); all
// traffic stays on loopback or a unix socket in a private directory. Run
// CPU hogs beside it to see it under load, for example two of
// `timeout 60 sh -c 'while :; do :; done' &`.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/internal/childproc"
	"github.com/go-clusterclient/clusterclient/transport"
	"github.com/go-clusterclient/clusterclient/transport/tcp"
	"github.com/go-clusterclient/clusterclient/transport/unix"
)

func main() {
	childproc.Main(modes)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(realMain(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// modes are the roles this program runs in when it starts itself.
var modes = map[string]func([]string) int{"leader": leaderMode, "follower": followerMode}

// Config is one stress run.
type Config struct {
	Followers int           // follower processes
	Duration  time.Duration // how long the followers call
	Rate      int           // fast calls per second per follower
	BlockMin  time.Duration // a blocking call's handler blocks between BlockMin
	BlockMax  time.Duration // and BlockMax
	Timeout   time.Duration // the response timeout of every process
	Stall     time.Duration // a call answered later than this counts as stalled
	Transport string        // tcp or unix
	Addr      string        // set by run: where the channel lives
}

func parseFlags(args []string, stderr io.Writer) (cfg Config, runs int, err error) {
	fs := flag.NewFlagSet("clusterstress", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&cfg.Followers, "followers", 4, "follower processes")
	fs.DurationVar(&cfg.Duration, "duration", 20*time.Second, "how long each run's followers call")
	fs.IntVar(&cfg.Rate, "rate", 400, "fast calls per second per follower (plus a blocking call every other tick)")
	block := fs.String("block", "200us-2ms", "how long a blocking call's handler blocks: MIN-MAX")
	fs.DurationVar(&cfg.Timeout, "timeout", cluster.DefaultResponseTimeout, "response timeout")
	fs.DurationVar(&cfg.Stall, "stall", 500*time.Millisecond, "report calls answered later than this as stalled (they do not fail the run)")
	fs.StringVar(&cfg.Transport, "transport", "tcp", "tcp or unix")
	fs.IntVar(&runs, "runs", 1, "runs, one after the other")
	if err := fs.Parse(args); err != nil {
		return cfg, 0, err
	}
	lo, hi, ok := strings.Cut(*block, "-")
	if cfg.BlockMin, err = time.ParseDuration(lo); err == nil && ok {
		cfg.BlockMax, err = time.ParseDuration(hi)
	}
	switch {
	case err != nil || !ok || cfg.BlockMin < 0 || cfg.BlockMax < cfg.BlockMin:
		return cfg, 0, fmt.Errorf("-block %q: want MIN-MAX durations, MIN <= MAX", *block)
	case cfg.Followers < 1 || cfg.Rate < 1 || runs < 1 || cfg.Duration <= 0 || cfg.Timeout <= 0:
		return cfg, 0, errors.New("-followers, -rate, -runs, -duration and -timeout must be positive")
	case cfg.Transport != "tcp" && cfg.Transport != "unix":
		return cfg, 0, fmt.Errorf("-transport %q: want tcp or unix", cfg.Transport)
	}
	return cfg, runs, nil
}

func realMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, runs, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	fmt.Fprintf(stdout, "%d run(s): 1 leader + %d followers over %s, %v each, %d fast calls/s per follower + a call blocking %v-%v every other tick, response timeout %v, stalled: answered after %v\n",
		runs, cfg.Followers, cfg.Transport, cfg.Duration, cfg.Rate, cfg.BlockMin, cfg.BlockMax, cfg.Timeout, cfg.Stall)
	bad := 0
	var total Report
	for i := range runs {
		reps, err := run(ctx, cfg)
		if err != nil {
			fmt.Fprintf(stdout, "run %d: %v\n", i+1, err)
			bad++
			continue
		}
		sum := sumReports(reps)
		total = sumReports([]Report{total, sum})
		fmt.Fprintf(stdout, "run %d: %s\n", i+1, sum)
		for j, r := range reps {
			if r.failed() > 0 {
				fmt.Fprintf(stdout, "  follower %d: %s; first error: %s\n", j+1, r, r.FirstError)
			}
		}
		if sum.failed() > 0 {
			bad++
		}
	}
	fmt.Fprintf(stdout, "total: %s; runs with a failed call: %d of %d\n", total, bad, runs)
	if bad > 0 {
		return 1
	}
	return 0
}

// Report is what a follower measured.
type Report struct {
	Calls      int64         `json:"calls"`
	Timeouts   int64         `json:"timeouts"`
	Errors     int64         `json:"errors"`  // failed calls other than timeouts
	Stalled    int64         `json:"stalled"` // answered, but later than Config.Stall
	Slowest    time.Duration `json:"slowest"`
	FirstError string        `json:"firstError,omitempty"`
}

func (r Report) failed() int64 { return r.Timeouts + r.Errors }

func (r Report) String() string {
	return fmt.Sprintf("%d calls, %d timed out, %d failed otherwise, %d stalled, slowest %v", r.Calls, r.Timeouts, r.Errors, r.Stalled, r.Slowest.Round(time.Microsecond))
}

func sumReports(reps []Report) Report {
	var s Report
	for _, r := range reps {
		s.Calls += r.Calls
		s.Timeouts += r.Timeouts
		s.Errors += r.Errors
		s.Stalled += r.Stalled
		s.Slowest = max(s.Slowest, r.Slowest)
		if s.FirstError == "" {
			s.FirstError = r.FirstError
		}
	}
	return s
}

// run starts the leader, then the followers, waits for their reports
// and stops every process.
func run(ctx context.Context, cfg Config) ([]Report, error) {
	dir, err := os.MkdirTemp("", "clusterstress-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if cfg.Transport == "unix" {
		cfg.Addr = filepath.Join(dir, "s.sock")
	} else {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		cfg.Addr = ln.Addr().String()
		ln.Close()
	}
	var procs []*childproc.Child
	defer func() {
		for _, p := range procs {
			p.Stop(5 * time.Second)
		}
	}()
	start := func(mode string) (*childproc.Child, error) {
		raw, _ := json.Marshal(cfg)
		args, _ := json.Marshal([]string{string(raw)})
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(exe)
		cmd.Env = append(childproc.EnvWithout(childproc.EnvMode, childproc.EnvArgs),
			childproc.EnvMode+"="+mode, childproc.EnvArgs+"="+string(args))
		c, err := childproc.StartCmd(cmd, childproc.Options{Name: mode})
		if err != nil {
			return nil, err
		}
		procs = append(procs, c)
		if _, err := c.Expect(ctx, "ready"); err != nil {
			return nil, fmt.Errorf("%s did not become ready: %w\n%s", mode, err, c.Stderr())
		}
		return c, nil
	}
	if _, err := start("leader"); err != nil {
		return nil, err
	}
	var followers []*childproc.Child
	for range cfg.Followers {
		f, err := start("follower")
		if err != nil {
			return nil, err
		}
		followers = append(followers, f)
	}
	for _, f := range followers {
		if err := f.Send("go", nil); err != nil {
			return nil, err
		}
	}
	reps := make([]Report, len(followers))
	wctx, cancel := context.WithTimeout(ctx, cfg.Duration+2*cfg.Timeout+30*time.Second)
	defer cancel()
	for i, f := range followers {
		ev, err := f.Expect(wctx, "report")
		if err != nil {
			return nil, fmt.Errorf("follower %d: %w\n%s", i+1, err, f.Stderr())
		}
		if err := ev.Decode(&reps[i]); err != nil {
			return nil, err
		}
	}
	return reps, nil
}

// childConfig reads the run's Config from the mode's arguments.
func childConfig(args []string) Config {
	var cfg Config
	if len(args) != 1 || json.Unmarshal([]byte(args[0]), &cfg) != nil {
		childproc.Fatalf("clusterstress: bad arguments %q", args)
	}
	return cfg
}

func newClient(cfg Config) *cluster.Client {
	var tr transport.Transport = tcp.New(tcp.Config{})
	if cfg.Transport == "unix" {
		u, err := unix.New(unix.Config{})
		if err != nil {
			childproc.Fatalf("clusterstress: %v", err)
		}
		tr = u
	}
	factory := func(context.Context, cluster.Emit) (*cluster.Service, error) {
		return &cluster.Service{Methods: map[string]cluster.Handler{
			"fast": cluster.Method(func(_ context.Context, n int) (int, error) { return n, nil }),
			"block": cluster.Method(func(ctx context.Context, d time.Duration) (int, error) {
				t := time.NewTimer(d)
				defer t.Stop()
				select {
				case <-t.C:
					return 0, nil
				case <-ctx.Done():
					return 0, ctx.Err()
				}
			}),
		}}, nil
	}
	c, err := cluster.New("Stress", factory, cluster.WithTransport(tr), cluster.WithAddr(cfg.Addr),
		cluster.WithResponseTimeout(cfg.Timeout))
	if err != nil {
		childproc.Fatalf("clusterstress: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Ready(ctx); err != nil {
		childproc.Fatalf("clusterstress: %v", err)
	}
	return c
}

func leaderMode(args []string) int {
	c := newClient(childConfig(args))
	if !c.IsLeader() {
		childproc.Fatalf("clusterstress: the first process does not lead")
	}
	childproc.Emit("ready", nil)
	select {} // until the parent stops it
}

func followerMode(args []string) int {
	cfg := childConfig(args)
	c := newClient(cfg)
	if c.IsLeader() {
		childproc.Fatalf("clusterstress: a follower leads")
	}
	childproc.Emit("ready", nil)
	if ev := childproc.Receive(); ev.Name != "go" {
		childproc.Fatalf("clusterstress: unexpected event %q", ev.Name)
	}
	childproc.Emit("report", stress(c, cfg))
	c.Close(context.Background())
	return 0
}

// stress calls c for cfg.Duration: a fast call every tick, and a blocking
// call (on a goroutine of its own, so it delays no fast call) every other
// tick.
func stress(c *cluster.Client, cfg Config) Report {
	var (
		mu  sync.Mutex
		rep Report
		wg  sync.WaitGroup
		n   atomic.Int64
	)
	note := func(start time.Time, err error) {
		d := time.Since(start)
		mu.Lock()
		defer mu.Unlock()
		rep.Calls++
		rep.Slowest = max(rep.Slowest, d)
		if err == nil {
			if d > cfg.Stall {
				rep.Stalled++
			}
			return
		}
		if errors.Is(err, cluster.ErrTimeout) {
			rep.Timeouts++
		} else {
			rep.Errors++
		}
		if rep.FirstError == "" {
			rep.FirstError = err.Error()
		}
	}
	span := int64(cfg.BlockMax - cfg.BlockMin)
	tick := time.NewTicker(time.Second / time.Duration(cfg.Rate))
	defer tick.Stop()
	end := time.After(cfg.Duration)
	for odd := false; ; odd = !odd {
		select {
		case <-end:
			wg.Wait()
			return rep
		case <-tick.C:
		}
		if odd {
			d := cfg.BlockMin + time.Duration(rand.Int64N(span+1))
			wg.Go(func() {
				start := time.Now()
				_, err := cluster.Call[int](context.Background(), c, "block", d)
				note(start, err)
			})
		}
		i := int(n.Add(1))
		start := time.Now()
		got, err := cluster.Call[int](context.Background(), c, "fast", i)
		if err == nil && got != i {
			err = fmt.Errorf("fast(%d) answered %d", i, got)
		}
		note(start, err)
	}
}
