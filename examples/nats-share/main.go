// Command nats-share shows N processes sharing ONE upstream connection
// through clusterclient, with a real upstream: an embedded NATS server.
//
//	cd examples && go run ./nats-share            # 4 workers, 15 s, 1 leader kill
//	go run ./nats-share -n 8 -duration 30s -kills 3
//	go run ./nats-share -metrics 127.0.0.1:9464   # worker n serves /metrics on port 9464+n-1
//	go run ./nats-share -rolling                  # and a rolling restart of every worker
//
// It starts a NATS server on a free loopback port (in this process, as a
// library) and N worker processes (this program again, in worker mode).
// Each worker creates a clusterclient Client on one channel: the first to
// bind the cluster's port leads and opens the only NATS connection; the
// others forward to it. Every worker subscribes to a subject and makes
// request/reply calls (NATS requests answered by the server) through the
// leader, and the coordinator has them publish numbered ticks.
//
// While it runs it prints a progress line: the leader, how many workers
// are ready, how many client connections the NATS server sees (1,
// whatever N is), calls per second and ticks. At the planned times it
// SIGKILLs the leader and reports what follows: a survivor leads, the NATS
// connection count is back to 1 (and the connection is the new leader's),
// every survivor receives the next tick; then a replacement worker joins.
// With -rolling it also restarts every worker in turn, the leader first:
// each gets SIGTERM, closes its Client gracefully (a leader hands its
// followers over to the next one) and exits, and a new worker takes its
// place. The summary counts the calls that failed per kind of leader
// change: planned (a graceful Close) and crash (SIGKILL). SIGTERM or
// SIGINT to the coordinator stops the run gracefully: the workers close
// their Clients and the summary is printed.
// It exits 0 with a summary, or 1 and says what went wrong.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if spec := os.Getenv(envWorker); spec != "" {
		os.Exit(workerMain(spec))
	}
	cfg := defaultConfig()
	flag.IntVar(&cfg.N, "n", cfg.N, "worker processes")
	flag.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long to run")
	flag.IntVar(&cfg.Kills, "kills", cfg.Kills, "leader SIGKILLs, spread over the run")
	flag.BoolVar(&cfg.Rolling, "rolling", cfg.Rolling, "also restart every worker in turn, the leader first (SIGTERM: a graceful Close), while they call")
	flag.IntVar(&cfg.Rate, "rate", cfg.Rate, "request calls per second per worker (0: unpaced)")
	flag.IntVar(&cfg.Port, "port", cfg.Port, "clusterclient port on 127.0.0.1 (0: a free one)")
	flag.StringVar(&cfg.Metrics, "metrics", "", "serve Prometheus /metrics of worker n on this loopback host:port+n-1 (port 0: a free one each)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "nats-share: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	if err := cfg.validate(); err != nil {
		fmt.Fprintln(os.Stderr, "nats-share:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, cfg, os.Stdout, isTerminal(os.Stdout))
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "nats-share: FAIL:", err)
		os.Exit(1)
	}
}

// Config is a run's configuration.
type Config struct {
	N        int           // worker processes (at least 2)
	Duration time.Duration // length of the run
	Kills    int           // leader kills, spread evenly over the run
	Rolling  bool          // a rolling restart of every worker (SIGTERM), before the kills
	Rate     int           // request calls per second per worker; 0 unpaced
	Port     int           // clusterclient port; 0 picks a free one
	// Metrics, when set (a loopback host:port), makes worker n serve
	// /metrics on port+n-1 (port 0: a free port each).
	Metrics string
	// Worker is the program started as a worker (default: this one,
	// os.Args[0]); it must call workerMain when envWorker is set.
	Worker string
}

func defaultConfig() Config {
	return Config{N: 4, Duration: 15 * time.Second, Kills: 1, Rate: 200}
}

func (c Config) validate() error {
	switch {
	case c.N < 2:
		return fmt.Errorf("-n %d: at least 2 workers (a leader and a follower)", c.N)
	case c.N > 64:
		return fmt.Errorf("-n %d: at most 64 workers", c.N)
	case c.Duration < time.Second:
		return fmt.Errorf("-duration %v: at least 1s", c.Duration)
	case c.Kills < 0:
		return fmt.Errorf("-kills %d: not negative", c.Kills)
	case c.Rate < 0:
		return fmt.Errorf("-rate %d: not negative", c.Rate)
	case c.Port < 0 || c.Port > 65535:
		return fmt.Errorf("-port %d: 0..65535", c.Port)
	case c.Metrics != "":
		return checkMetricsAddr(c.Metrics)
	}
	return nil
}

// isTerminal reports whether f is a terminal (the progress line is then
// rewritten in place).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// run runs the demonstration and returns nil if every check passed. It
// prints to out as it goes; tty rewrites the progress line in place.
func run(ctx context.Context, cfg Config, out io.Writer, tty bool) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	if cfg.Worker == "" {
		cfg.Worker = os.Args[0]
	}
	d, err := newDemo(cfg, out, tty)
	if err != nil {
		return err
	}
	defer d.shutdown()
	return d.run(ctx)
}
