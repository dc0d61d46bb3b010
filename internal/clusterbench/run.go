package clusterbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// channel is the cluster channel every member of a run joins.
const channel = "clusterbench"

// runner runs the measurements of one run and collects their results.
// It is used by one goroutine (but see progress).
type runner struct {
	cfg   Config
	procs *procSet
	res   *Results
	dir   string     // private temporary directory: socket files, node script
	logMu sync.Mutex // serializes progress
	log   io.Writer  // progress lines, written by progress
	node  *nodeEnv   // nil unless --vs-node found node and cluster-client
}

// run measures everything cfg asks for and returns the results, complete
// or, when ctx ends or the timeout passes, as far as they got (with the
// reason in Errors).
func run(ctx context.Context, cfg Config, log io.Writer) (*Results, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, cfg.Timeout, fmt.Errorf("clusterbench: the run took longer than -timeout %v", cfg.Timeout))
	defer cancel()
	dir, err := os.MkdirTemp("", "clusterbench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	r := &runner{
		cfg: cfg,
		dir: dir,
		log: log,
		res: &Results{
			Started: time.Now().UTC().Truncate(time.Second),
			Config:  cfg,
			Host: Host{OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), Go: runtime.Version(),
				LoadStart: loadAverage()},
		},
	}
	r.procs = &procSet{logf: r.progress}
	defer r.procs.close()
	begin := time.Now()

	// The gRPC program is built before anything is measured, so that the
	// compiler does not share the host with a measurement.
	grpcBin := ""
	if cfg.has("grpc") {
		if !slices.Contains(cfg.Transports, "tcp") {
			r.skip("grpc", "the gRPC baseline runs on TCP: add tcp to --transports")
		} else if bin, err := findGRPC(ctx, cfg, dir); err != nil {
			r.skip("grpc", err.Error())
		} else {
			grpcBin = bin
		}
	}
	if cfg.has("raw") {
		r.direct()
	}
	for _, t := range cfg.Transports {
		if ctx.Err() != nil {
			break
		}
		if _, err := newTransport(t); err != nil {
			r.skip(t, err.Error())
			continue
		}
		if cfg.has("raw") {
			r.section(ctx, t+" raw", func() error { return r.raw(ctx, t) })
		}
		for _, codec := range cfg.Codecs {
			r.clusterBench(ctx, r.oursImpl(t, codec))
		}
		r.handoverBench(ctx, t)
		if t == "tcp" && grpcBin != "" {
			r.section(ctx, "grpc", func() error { return r.grpc(ctx, grpcBin) })
		}
	}
	if cfg.VsNode && ctx.Err() == nil {
		env, err := findNode(cfg, dir)
		if err != nil {
			r.skip("node", err.Error())
		} else {
			r.node = env
			r.res.Host.Node, r.res.Host.ClusterClient = env.version, env.ccVersion
			r.clusterBench(ctx, r.nodeImpl())
		}
	}
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		r.fail("run", err)
	}
	r.res.Wall = time.Since(begin).Round(time.Millisecond)
	r.res.Host.LoadEnd = loadAverage()
	return r.res, context.Cause(ctx)
}

// progress prints one progress line. Unlike the rest of runner, it is
// safe for concurrent use: the goroutines reading the children's stdout
// call it for stray lines.
func (r *runner) progress(format string, args ...any) {
	r.logMu.Lock()
	defer r.logMu.Unlock()
	fmt.Fprintf(r.log, "clusterbench: "+format+"\n", args...)
}

func (r *runner) skip(what, why string) {
	r.progress("skip %s: %s", what, why)
	r.res.Skipped = append(r.res.Skipped, Note{What: what, Why: why})
}

func (r *runner) fail(what string, err error) {
	r.progress("FAILED %s: %v", what, err)
	r.res.Errors = append(r.res.Errors, Note{What: what, Why: err.Error()})
}

// section runs one group of measurements; its failure is recorded and the
// run goes on.
func (r *runner) section(ctx context.Context, what string, f func() error) {
	if ctx.Err() != nil {
		return
	}
	start := time.Now()
	if err := f(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", err, context.Cause(ctx))
		}
		r.fail(what, err)
		return
	}
	r.progress("%s done in %v", what, time.Since(start).Round(time.Millisecond))
}

// addLatency records a latency measurement from the runs' summaries and
// returns it, to be completed by the caller before the next add.
func (r *runner) addLatency(impl, transport, name string, runs []Summary) *Measurement {
	s := medianSummary(runs)
	r.res.Measurements = append(r.res.Measurements, Measurement{Impl: impl, Transport: transport, Name: name, Runs: runs, Latency: &s})
	r.progress("  %-6s %-5s %-22s p50 %s  p99 %s  p999 %s  (n=%d)", impl, transport, name,
		fmtDur(s.P50), fmtDur(s.P99), fmtDur(s.P999), s.N)
	return &r.res.Measurements[len(r.res.Measurements)-1]
}

// addRate records a throughput measurement and returns it, to be
// completed by the caller before the next add.
func (r *runner) addRate(impl, transport, name string, rates []float64) *Measurement {
	m := Measurement{Impl: impl, Transport: transport, Name: name, RateRuns: rates, Rate: median(rates)}
	r.res.Measurements = append(r.res.Measurements, m)
	r.progress("  %-6s %-5s %-22s %s", impl, transport, name, fmtRate(m.Rate))
	return &r.res.Measurements[len(r.res.Measurements)-1]
}

// warmup is how long each run warms up before sampling.
func (r *runner) warmup() time.Duration {
	return min(r.cfg.Duration/5, 200*time.Millisecond)
}

// direct measures the floor: a Go function call in this process.
func (r *runner) direct() {
	var runs []Summary
	for range r.cfg.Runs {
		runs = append(runs, summarize(directCall(r.cfg.Duration)))
	}
	r.addLatency(implDirect, transportInProcess, callName(64), runs)
}

// directEcho is the direct call baseline's callee, the same work as the
// echo method minus everything between the processes.
//
//go:noinline
func directEcho(_ context.Context, b []byte) ([]byte, error) { return b, nil }

// directFn calls directEcho through a variable: the compiler can neither
// inline nor drop a call it cannot resolve, so no result sink is needed.
var directFn = directEcho

// directCall times batches of 1000 calls of directEcho (a single call is
// shorter than the clock's resolution) and returns the mean time per call
// of each batch.
func directCall(d time.Duration) []int64 {
	const batch = 1000
	arg := []byte(strings.Repeat("x", 64))
	ctx := context.Background()
	var samples []int64
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		start := time.Now()
		for range batch {
			_, _ = directFn(ctx, arg)
		}
		samples = append(samples, time.Since(start).Nanoseconds()/batch)
	}
	return samples
}

// raw measures the raw baselines on transport t: ping-pong of 64 B and
// 4 KiB, pipelined echo (64 in flight) of 64 B with 1 and 4 clients and
// of 4 KiB with 4 clients, each client its own process, and (with the
// publish workload) a fan-out through a relay process.
func (r *runner) raw(ctx context.Context, t string) error {
	addr, err := newAddr(t, r.dir)
	if err != nil {
		return err
	}
	ep := endpointArgs{Transport: t, Addr: addr}
	server, err := r.procs.goChild(ctx, t+" echo server", "echo-server", ep, nil)
	if err != nil {
		return err
	}
	clients, err := r.spawnN(4, func(i int) (*proc, error) {
		return r.procs.goChild(ctx, fmt.Sprintf("%s raw client %d", t, i+1), "raw-client", ep, nil)
	})
	defer func() { r.procs.stopAll(append(clients, server)...) }()
	if err != nil {
		return err
	}
	for _, size := range []int{64, 4096} {
		var runs []Summary
		for range r.cfg.Runs {
			var rep samplesReply
			if err := clients[0].call(ctx, "pingpong", pingPongArgs{Size: size, Duration: int64(r.cfg.Duration), Warmup: int64(r.warmup())}, &rep); err != nil {
				return err
			}
			runs = append(runs, summarize(rep.Samples))
		}
		r.addLatency(implRaw, t, pingPongName(size), runs)
	}
	for _, w := range throughputWorkloads {
		rates, _, err := r.load(ctx, clients[:w.n], "echo", loadArgs{Size: w.size, InFlight: inFlight})
		if err != nil {
			return err
		}
		r.addRate(implRaw, t, echoName(w.size, w.n), rates)
	}
	if r.cfg.has("publish") {
		for _, n := range r.cfg.PublishN {
			if err := r.rawPublish(ctx, t, n); err != nil {
				return err
			}
		}
	}
	return nil
}

// rawPublish measures the raw baseline of publish → every one of n
// subscribers: a relay process and n+1 raw client processes (see
// relayRole).
func (r *runner) rawPublish(ctx context.Context, t string, n int) error {
	addr, err := newAddr(t, r.dir)
	if err != nil {
		return err
	}
	ep := endpointArgs{Transport: t, Addr: addr}
	relay, err := r.procs.goChild(ctx, t+" relay", "relay", ep, nil)
	if err != nil {
		return err
	}
	clients, err := r.spawnN(n+1, func(i int) (*proc, error) {
		return r.procs.goChild(ctx, fmt.Sprintf("%s relay client %d", t, i+1), "raw-client", ep, nil)
	})
	defer func() { r.procs.stopAll(append(clients, relay)...) }()
	if err != nil {
		return err
	}
	return r.publishRuns(ctx, implRaw, t, clients[0], clients[1:])
}

// inFlight is the number of calls each client keeps outstanding in the
// throughput measurements.
const inFlight = 64

// throughputWorkloads: argument size and kind, and number of followers
// (raw: client processes).
var throughputWorkloads = []struct {
	size int
	kind string
	n    int
}{
	{64, "string", 1},
	{64, "string", 4},
	{4096, "bytes", 4},
}

// latencyWorkloads: the sequential invoke arguments.
var latencyWorkloads = []struct {
	size int
	kind string
}{
	{64, "string"}, {64, "bytes"}, {4096, "string"}, {4096, "bytes"},
}

// load runs cmd ("echo" or "load") on every client at once, Runs times,
// and returns the operations per second of each run (all clients'
// operations over the time from the common start to the last completion),
// and the number of calls that failed over all runs.
func (r *runner) load(ctx context.Context, clients []*proc, cmd string, a loadArgs) (rates []float64, failed int64, err error) {
	for range r.cfg.Runs {
		a.Start = monoNow() + int64(50*time.Millisecond) // every client gets the request first
		a.Duration = int64(r.cfg.Duration)
		for _, c := range clients {
			if err := c.Send(cmd, a); err != nil {
				return nil, 0, err
			}
		}
		var total, elapsed int64
		var errs []error
		for _, c := range clients {
			var rep loadReply
			if err := c.recv(ctx, &rep); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", cmd, err))
			}
			total += rep.Ops
			elapsed = max(elapsed, rep.Elapsed)
			if rep.Failed > 0 {
				failed += rep.Failed
				r.progress("  %s: %d calls failed, the first with: %s", c.name, rep.Failed, rep.Error)
			}
		}
		if err := errors.Join(errs...); err != nil {
			return nil, 0, err
		}
		if total == 0 || elapsed <= 0 {
			return nil, 0, fmt.Errorf("%s: no call completed (%d failed)", cmd, failed)
		}
		// Every client started at a.Start; the last one to finish ends
		// the span over which all the calls completed.
		rates = append(rates, float64(total)/time.Duration(elapsed).Seconds())
	}
	return rates, failed, nil
}

// spawnN starts n children with start(i), a few at a time (process starts
// are CPU-heavy). It returns those that started, in order, and the errors
// of those that did not.
func (r *runner) spawnN(n int, start func(i int) (*proc, error)) ([]*proc, error) {
	ps := make([]*proc, n)
	errs := make([]error, n)
	sem := make(chan struct{}, max(2, runtime.NumCPU()))
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			ps[i], errs[i] = start(i)
		})
	}
	wg.Wait()
	return slices.DeleteFunc(ps, func(p *proc) bool { return p == nil }), errors.Join(errs...)
}
