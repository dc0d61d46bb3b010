package clusterbench

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is one run's settings. DefaultConfig is the full run (about five
// minutes on an idle 2-core host), QuickConfig the --quick run (about 40
// s). Timeout is a safety net well beyond those targets (20 minutes and 2
// minutes), for a host busy with other work.
type Config struct {
	// Transports to measure, in allTransports order. Default: all.
	Transports []string `json:"transports"`
	// Workloads to measure: "raw" (baselines, including the direct call),
	// "invoke" (sequential and throughput), "publish", "failover", "memory",
	// "grpc" (the gRPC baseline, on TCP), "handover" (leader changes with
	// and without the hand-over, on tcp and unix). Default: all.
	Workloads []string `json:"workloads"`
	// Codecs: the cluster workloads (invoke, publish, failover, memory)
	// run once per codec, every member with that codec
	// (cluster.WithCodec): "json", "serialize-json", or one registered
	// with RegisterCodec. Their rows are labelled "ours" for json and
	// "ours/<codec>" for the others. The raw, gRPC and handover
	// workloads do not depend on it (handover runs with json). Default:
	// json.
	Codecs []string `json:"codecs"`
	// Quick selects QuickConfig's defaults.
	Quick bool `json:"quick"`
	// VsNode also measures npm cluster-client 3.7.0 (TCP only).
	VsNode bool `json:"vs_node"`
	// Out is the directory of results.json, results.md and bench.svg.
	// Default ./clusterbench-out.
	Out string `json:"out"`
	// Duration of one run of a latency or throughput measurement. Default
	// 1 s (quick: 250 ms).
	Duration time.Duration `json:"duration_ns"`
	// Runs of each latency and throughput measurement; results are their
	// medians. Default 3 (quick: 1).
	Runs int `json:"runs"`
	// Kills of the leader per failover mode. Default 20 (quick: 3).
	Kills int `json:"kills"`
	// HandoverKills: SIGKILLs of the leader in the handover workload's
	// sigkill scenario. Default 3.
	HandoverKills int `json:"handover_kills"`
	// HandoverRounds: rounds of 20 short-lived processes in the handover
	// workload. Default 5 (quick: 2).
	HandoverRounds int `json:"handover_rounds"`
	// NodeForcedKills: kills of Node's forced leader, each costing Node's
	// fixed 3 s probe. Default 5 (quick: 1).
	NodeForcedKills int `json:"node_forced_kills"`
	// MemFollowers are the idle follower counts at which the leader's memory
	// is read. Default 1, 100, 1000 (quick: 1, 10, 100).
	MemFollowers []int `json:"mem_followers"`
	// PublishN are the subscriber counts of the publish measurement (Node:
	// only those ≤ 4). Default 4, 32.
	PublishN []int `json:"publish_n"`
	// PublishInterval paces the publisher (open loop: a slow delivery does
	// not delay the next publish, so a rate beyond what the cluster
	// delivers shows as queueing). Default 5 ms: 200 values a second,
	// 6,400 deliveries a second with 32 subscribers.
	PublishInterval time.Duration `json:"publish_interval_ns"`
	// Node is the node executable. Default "node" (from PATH).
	Node string `json:"node"`
	// NodeModules is the node_modules directory holding cluster-client.
	// Default: interop/node_modules of the enclosing repository.
	NodeModules string `json:"node_modules"`
	// GRPCBin is a prebuilt bench/grpcecho program for the gRPC baseline.
	// Default: built from bench/grpcecho (found in the working directory or
	// above it) with the go command, at the start of the run.
	GRPCBin string `json:"grpc_bin,omitempty"`
	// Profile writes CPU profiles of the leader and of one follower during
	// ours' 64 B throughput with 4 followers, per transport, into Out.
	Profile bool `json:"profile,omitempty"`
	// Render, when set, names a results.json to render again (markdown and
	// chart) into Out instead of measuring.
	Render string `json:"-"`
	// Timeout bounds the whole run; what was measured is still written,
	// and the rest is reported as failed. Default 20 min (quick: 2 min).
	Timeout time.Duration `json:"timeout_ns"`
}

// allWorkloads are the groups of measurements, in run order.
var allWorkloads = []string{"raw", "invoke", "publish", "failover", "memory", "grpc", "handover"}

// ErrInvalidConfig: a flag or Config field is out of range.
var ErrInvalidConfig = errors.New("clusterbench: invalid config")

// DefaultConfig returns the full run's settings.
func DefaultConfig() Config {
	return Config{
		Transports:      slices.Clone(allTransports),
		Workloads:       slices.Clone(allWorkloads),
		Codecs:          []string{defaultCodec},
		Out:             "clusterbench-out",
		Duration:        time.Second,
		Runs:            3,
		Kills:           20,
		HandoverKills:   3,
		HandoverRounds:  5,
		NodeForcedKills: 5,
		MemFollowers:    []int{1, 100, 1000},
		PublishN:        []int{4, 32},
		PublishInterval: 5 * time.Millisecond,
		Node:            "node",
		Timeout:         20 * time.Minute,
	}
}

// QuickConfig returns the --quick run's settings.
func QuickConfig() Config {
	c := DefaultConfig()
	c.Quick = true
	c.Duration = 250 * time.Millisecond
	c.Runs = 1
	c.Kills = 3
	c.HandoverRounds = 2
	c.NodeForcedKills = 1
	c.MemFollowers = []int{1, 10, 100}
	c.Timeout = 2 * time.Minute
	return c
}

// Validate reports the first invalid field, as an error matching
// ErrInvalidConfig.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	if len(c.Transports) == 0 {
		return bad("no transport selected")
	}
	for _, t := range c.Transports {
		if !slices.Contains(allTransports, t) {
			return bad("unknown transport %q (known: %s)", t, strings.Join(allTransports, ","))
		}
	}
	if len(c.Workloads) == 0 {
		return bad("no workload selected")
	}
	for _, w := range c.Workloads {
		if !slices.Contains(allWorkloads, w) {
			return bad("unknown workload %q (known: %s)", w, strings.Join(allWorkloads, ","))
		}
	}
	if len(c.Codecs) == 0 {
		return bad("no codec selected")
	}
	for i, name := range c.Codecs {
		if _, err := codecByName(name); err != nil || name == "" {
			return bad("unknown codec %q (known: %s)", name, strings.Join(knownCodecs(), ","))
		}
		if slices.Contains(c.Codecs[:i], name) {
			return bad("codec %q given twice", name)
		}
	}
	switch {
	case c.Out == "":
		return bad("empty output directory")
	case c.Duration < 10*time.Millisecond || c.Duration > time.Minute:
		return bad("duration %v outside 10ms..1m", c.Duration)
	case c.Runs < 1 || c.Runs > 50:
		return bad("runs %d outside 1..50", c.Runs)
	case c.Kills < 1 || c.Kills > 1000:
		return bad("kills %d outside 1..1000", c.Kills)
	case c.HandoverKills < 1 || c.HandoverKills > 100:
		return bad("handover kills %d outside 1..100", c.HandoverKills)
	case c.HandoverRounds < 1 || c.HandoverRounds > 100:
		return bad("handover rounds %d outside 1..100", c.HandoverRounds)
	case c.NodeForcedKills < 0 || c.NodeForcedKills > 100:
		return bad("node forced kills %d outside 0..100", c.NodeForcedKills)
	case c.PublishInterval < 100*time.Microsecond || c.PublishInterval > time.Second:
		return bad("publish interval %v outside 100µs..1s", c.PublishInterval)
	case c.Timeout <= 0:
		return bad("timeout %v is not positive", c.Timeout)
	}
	for _, n := range c.MemFollowers {
		if n < 1 || n > 10000 {
			return bad("idle follower count %d outside 1..10000", n)
		}
	}
	if !slices.IsSorted(c.MemFollowers) {
		return bad("idle follower counts %v not increasing", c.MemFollowers)
	}
	for _, n := range c.PublishN {
		if n < 1 || n > 256 {
			return bad("subscriber count %d outside 1..256", n)
		}
	}
	return nil
}

// parseFlags parses the command line. Flags not given take their value
// from DefaultConfig, or from QuickConfig with --quick.
func parseFlags(args []string, stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet("clusterbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	d := DefaultConfig()
	var (
		transports = fs.String("transports", strings.Join(d.Transports, ","), "comma-separated transports to measure")
		workloads  = fs.String("workloads", strings.Join(d.Workloads, ","), "comma-separated workloads: "+strings.Join(allWorkloads, ","))
		codecList  = fs.String("codecs", strings.Join(d.Codecs, ","), "comma-separated codecs of the cluster workloads, each measured in turn: "+strings.Join(knownCodecs(), ","))
		quick      = fs.Bool("quick", false, "a short run (under a minute): shorter measurements, one run each, fewer kills and followers")
		vsNode     = fs.Bool("vs-node", false, "also measure npm cluster-client 3.7.0 (needs node and `cd interop && npm ci`)")
		out        = fs.String("out", d.Out, "output directory for results.json, results.md and bench.svg")
		duration   = fs.Duration("duration", d.Duration, "duration of one run of each latency or throughput measurement (quick: 250ms)")
		runs       = fs.Int("runs", d.Runs, "runs of each latency and throughput measurement; the report shows their medians (quick: 1)")
		kills      = fs.Int("kills", d.Kills, "leader kills per failover mode (quick: 3)")
		nodeKills  = fs.Int("node-forced-kills", d.NodeForcedKills, "kills of Node's forced leader, 3 s each (quick: 1)")
		hoKills    = fs.Int("handover-kills", d.HandoverKills, "leader SIGKILLs in the handover workload's sigkill scenario")
		hoRounds   = fs.Int("handover-rounds", d.HandoverRounds, "rounds of 20 short-lived processes in the handover workload (quick: 2)")
		memF       = fs.String("mem-followers", joinInts(d.MemFollowers), "idle follower counts for the leader memory measurement (quick: 1,10,100)")
		pubN       = fs.String("publish-n", joinInts(d.PublishN), "subscriber counts for publish → every subscriber")
		pubEvery   = fs.Duration("publish-interval", d.PublishInterval, "interval between publishes")
		node       = fs.String("node", d.Node, "node executable")
		nodeMods   = fs.String("node-modules", "", "node_modules directory with cluster-client 3.7.0 (default: interop/node_modules of the repository)")
		grpcBin    = fs.String("grpc-bin", "", "prebuilt bench/grpcecho program for the gRPC baseline (default: built from bench/grpcecho with the go command)")
		profile    = fs.Bool("profile", false, "write CPU profiles of the leader and a follower during the 64 B, 4-follower throughput into -out")
		render     = fs.String("render", "", "render `results.json` of an earlier run into -out again instead of measuring")
		timeout    = fs.Duration("timeout", d.Timeout, "bound on the whole run; results so far are written when it expires (quick: 2m)")
	)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: clusterbench [flags]\n\n"+
			"Measures clusterclient against raw sockets (and with --vs-node against\n"+
			"npm cluster-client 3.7.0) and writes a markdown table, JSON and an SVG chart.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("%w: unexpected arguments %q", ErrInvalidConfig, fs.Args())
	}
	c := DefaultConfig()
	if *quick {
		c = QuickConfig()
	}
	var err error
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "transports":
			c.Transports = splitList(*transports)
		case "workloads":
			c.Workloads = splitList(*workloads)
		case "codecs":
			c.Codecs = splitList(*codecList)
		case "vs-node":
			c.VsNode = *vsNode
		case "out":
			c.Out = *out
		case "duration":
			c.Duration = *duration
		case "runs":
			c.Runs = *runs
		case "kills":
			c.Kills = *kills
		case "node-forced-kills":
			c.NodeForcedKills = *nodeKills
		case "handover-kills":
			c.HandoverKills = *hoKills
		case "handover-rounds":
			c.HandoverRounds = *hoRounds
		case "mem-followers":
			var e error
			c.MemFollowers, e = parseInts(f.Name, *memF)
			err = errors.Join(err, e)
		case "publish-n":
			var e error
			c.PublishN, e = parseInts(f.Name, *pubN)
			err = errors.Join(err, e)
		case "publish-interval":
			c.PublishInterval = *pubEvery
		case "node":
			c.Node = *node
		case "node-modules":
			c.NodeModules = *nodeMods
		case "grpc-bin":
			c.GRPCBin = *grpcBin
		case "timeout":
			c.Timeout = *timeout
		case "profile":
			c.Profile = *profile
		case "render":
			c.Render = *render
		}
	})
	if err != nil {
		return Config{}, err
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	// Measure in report order, whatever order the flag gave.
	c.Transports = slices.DeleteFunc(slices.Clone(allTransports), func(t string) bool {
		return !slices.Contains(c.Transports, t)
	})
	return c, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func parseInts(name, s string) ([]int, error) {
	var out []int
	for _, f := range splitList(s) {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%w: -%s: %q is not a number", ErrInvalidConfig, name, f)
		}
		out = append(out, n)
	}
	return out, nil
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

// has reports whether workload w is selected.
func (c Config) has(w string) bool { return slices.Contains(c.Workloads, w) }
