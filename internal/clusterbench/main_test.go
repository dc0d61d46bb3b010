package clusterbench

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/go-clusterclient/clusterclient/internal/leaks"
)

// TestMain runs a child role when the test binary is started as a child
// (the harness re-executes os.Executable, which here is the test binary),
// and the tests otherwise.
func TestMain(m *testing.M) {
	roles["spawner"] = spawnerRole
	RegisterCodec(testCodec{}) // in the children too: they run TestMain
	if code, ok := childMain(); ok {
		os.Exit(code)
	}
	goleak.VerifyTestMain(m, leaks.KCP()...)
}

func TestParseFlagsDefaults(t *testing.T) {
	full, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if want := DefaultConfig(); !equalJSON(t, full, want) {
		t.Errorf("no flags: got %+v, want DefaultConfig %+v", full, want)
	}
	quick, err := parseFlags([]string{"--quick"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if want := QuickConfig(); !equalJSON(t, quick, want) {
		t.Errorf("--quick: got %+v, want QuickConfig %+v", quick, want)
	}
	if quick.Duration >= full.Duration || quick.Kills >= full.Kills || quick.Timeout >= full.Timeout {
		t.Errorf("quick run is not shorter: %+v", quick)
	}
}

func TestParseFlagsExplicitBeatsQuick(t *testing.T) {
	c, err := parseFlags([]string{
		"--quick", "--transports", "kcp, tcp", "--duration", "40ms", "--runs", "2", "--vs-node",
		"--out", "x", "--mem-followers", "2,5", "--publish-n", "3", "--workloads", "invoke,memory",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Transports, []string{"tcp", "kcp"}) {
		t.Errorf("transports %q, want report order [tcp kcp]", c.Transports)
	}
	if c.Duration != 40*time.Millisecond || c.Runs != 2 || !c.VsNode || c.Out != "x" || !c.Quick {
		t.Errorf("explicit flags lost: %+v", c)
	}
	if !slices.Equal(c.MemFollowers, []int{2, 5}) || !slices.Equal(c.PublishN, []int{3}) {
		t.Errorf("lists: mem %v publish %v", c.MemFollowers, c.PublishN)
	}
	if c.Kills != QuickConfig().Kills {
		t.Errorf("kills %d, want the quick default %d", c.Kills, QuickConfig().Kills)
	}
	if !c.has("memory") || c.has("raw") {
		t.Errorf("workloads %v", c.Workloads)
	}
}

func TestParseFlagsErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--transports", "tcp,carrier-pigeon"},
		{"--transports", ""},
		{"--workloads", "invoke,nap"},
		{"--duration", "1ms"},
		{"--runs", "0"},
		{"--kills", "0"},
		{"--mem-followers", "100,10"},
		{"--mem-followers", "ten"},
		{"--publish-n", "0"},
		{"--publish-interval", "1us"},
		{"--timeout", "-1s"},
		{"--codecs", "json,morse"},
		{"--codecs", ""},
		{"--codecs", "json,json"},
		{"stray"},
	} {
		_, err := parseFlags(args, io.Discard)
		if !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("parseFlags(%q) = %v, want ErrInvalidConfig", args, err)
		}
	}
	var usage bytes.Buffer
	if _, err := parseFlags([]string{"-h"}, &usage); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v, want flag.ErrHelp", err)
	}
	if !strings.Contains(usage.String(), "-vs-node") {
		t.Errorf("usage does not list -vs-node:\n%s", usage.String())
	}
	if code := Run([]string{"--runs", "-3"}, io.Discard, io.Discard); code != 2 {
		t.Errorf("Run with a bad flag exited %d, want 2", code)
	}
}

func TestSummarize(t *testing.T) {
	var s []int64
	for i := 1000; i >= 1; i-- { // unsorted on purpose
		s = append(s, int64(i))
	}
	got := summarize(s)
	want := Summary{N: 1000, Min: 1, P50: 500, P90: 900, P99: 990, P999: 999, Max: 1000, Mean: 500}
	if got != want {
		t.Errorf("summarize(1..1000) = %+v, want %+v", got, want)
	}
	if got := summarize(nil); got != (Summary{}) {
		t.Errorf("summarize(nil) = %+v", got)
	}
	if got := summarize([]int64{7}); got.P50 != 7 || got.P999 != 7 {
		t.Errorf("summarize([7]) = %+v", got)
	}
	m := medianSummary([]Summary{{N: 1, P50: 30, P99: 1}, {N: 2, P50: 10, P99: 3}, {N: 3, P50: 20, P99: 2}})
	if m.N != 6 || m.P50 != 20 || m.P99 != 2 {
		t.Errorf("medianSummary = %+v, want N 6, P50 20, P99 2", m)
	}
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median = %v", got)
	}
}

func TestFormat(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{fmtDur(850), "850 ns"},
		{fmtDur(12_345), "12.3 µs"},
		{fmtDur(4_560_000), "4.56 ms"},
		{fmtDur(1_234_000_000), "1.23 s"},
		{fmtRate(950), "950/s"},
		{fmtRate(67_600), "67.6k/s"},
		{fmtRate(1_230_000), "1.23M/s"},
		{fmtBytes(21.2 * 1024), "21.2 KiB"},
		{ratio(150, 100), "1.50×"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

// testContext bounds a test's waits.
func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// tinyConfig is a run short enough for a test.
func tinyConfig(workloads ...string) Config {
	cfg := DefaultConfig()
	cfg.Transports = []string{"tcp"}
	cfg.Workloads = workloads
	cfg.Duration = 30 * time.Millisecond
	cfg.Runs = 1
	cfg.Kills = 1
	cfg.PublishN = []int{2}
	cfg.MemFollowers = []int{1, 3}
	cfg.Timeout = time.Minute
	return cfg
}

// runTiny runs cfg and fails the test on any error.
func runTiny(t *testing.T, cfg Config) *Results {
	t.Helper()
	var log bytes.Buffer
	res, err := run(testContext(t, time.Minute), cfg, &log)
	if err != nil || len(res.Errors) > 0 {
		t.Fatalf("run: %v %v\n%s", err, res.Errors, log.String())
	}
	return res
}

// checkLatency checks that a latency measurement is there and sane.
func checkLatency(t *testing.T, res *Results, impl, tr, name string) *Measurement {
	t.Helper()
	m := res.find(impl, tr, name)
	if m == nil || m.Latency == nil || m.Latency.N == 0 || m.Latency.P50 <= 0 || m.Latency.P50 > m.Latency.P99 {
		t.Errorf("%s %s %s: %+v", impl, tr, name, m)
	}
	return m
}

// TestRunTiny runs the harness for real, briefly: the direct call, the raw
// baselines and ours over TCP between separate processes (children of the
// test binary), then writes and checks the three outputs.
func TestRunTiny(t *testing.T) {
	res := runTiny(t, tinyConfig("raw", "invoke"))
	checkLatency(t, res, implDirect, transportInProcess, callName(64))
	for _, size := range []int{64, 4096} {
		checkLatency(t, res, implRaw, "tcp", pingPongName(size))
	}
	for _, w := range latencyWorkloads {
		m := checkLatency(t, res, implOurs, "tcp", invokeName(w.size, w.kind))
		if m != nil && (m.AllocsPerOp <= 0 || m.CodecAllocsPerOp <= 0) {
			t.Errorf("%s: allocations per invoke not measured: %+v", m.Name, m)
		}
	}
	for _, w := range throughputWorkloads {
		if m := res.find(implRaw, "tcp", echoName(w.size, w.n)); m == nil || m.Rate <= 0 {
			t.Errorf("raw %s: %+v", echoName(w.size, w.n), m)
		}
		if m := res.find(implOurs, "tcp", tputName(w.size, w.kind, w.n)); m == nil || m.Rate <= 0 || m.Failed != 0 {
			t.Errorf("ours %s: %+v", tputName(w.size, w.kind, w.n), m)
		}
	}
	checkOutputs(t, res)
}

// TestRunClusterWorkloads runs publish (and its raw baseline), failover
// (one kill per mode) and the leader memory measurement for real over TCP.
func TestRunClusterWorkloads(t *testing.T) {
	if testing.Short() {
		t.Skip("starts about twenty processes; skipped with -short")
	}
	res := runTiny(t, tinyConfig("raw", "publish", "failover", "memory"))
	for _, impl := range []string{implOurs, implRaw} { // raw: the fan-out through a relay
		if m := checkLatency(t, res, impl, "tcp", publishName(2)); m != nil && m.Lost != 0 {
			t.Errorf("%s publish lost %d values", impl, m.Lost)
		}
	}
	for _, mode := range []string{"auto", "forced"} {
		m := checkLatency(t, res, implOurs, "tcp", failoverName(mode))
		if m == nil {
			continue
		}
		if len(m.Samples) != 1 || len(m.LostSamples) != 1 || len(m.ReadySamples) != 1 {
			t.Errorf("failover %s: samples %v, lost %v, ready %v for 1 kill", mode, m.Samples, m.LostSamples, m.ReadySamples)
			continue
		}
		if l, rd, all := m.LostSamples[0], m.ReadySamples[0], m.Samples[0]; l <= 0 || l > rd || rd > all {
			t.Errorf("failover %s: lost %v, ready %v, answered %v are not in order", mode, l, rd, all)
		}
	}
	mem := res.find(implOurs, "tcp", memoryName)
	if mem == nil || len(mem.Memory) != 3 {
		t.Fatalf("memory: %+v", mem)
	}
	for i, want := range []int{0, 1, 3} {
		p := mem.Memory[i]
		if p.Followers != want || p.GoInUse <= 0 || p.Goroutines <= 0 {
			t.Errorf("memory point %d: %+v", i, p)
		}
	}
	if mem.Memory[2].Goroutines <= mem.Memory[0].Goroutines {
		t.Errorf("the leader's goroutines did not grow with followers: %+v", mem.Memory)
	}
	checkOutputs(t, res)
}

// checkOutputs writes res with writeOutputs and checks each file: the JSON
// reads back the same, the markdown has the tables, the SVG is XML.
func checkOutputs(t *testing.T, res *Results) {
	t.Helper()
	dir := t.TempDir()
	md, err := writeOutputs(dir, res)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back Results
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatalf("results.json: %v", err)
	}
	if !equalJSON(t, &back, res) {
		t.Errorf("results.json does not read back as written")
	}
	file, err := os.ReadFile(filepath.Join(dir, "results.md"))
	if err != nil || !bytes.Equal(file, md) {
		t.Errorf("results.md differs from the markdown returned (%v)", err)
	}
	checkMarkdown(t, string(md))
	svg, err := os.ReadFile(filepath.Join(dir, "bench.svg"))
	if err != nil {
		t.Fatal(err)
	}
	checkSVG(t, svg)
}

// checkMarkdown checks that every table row has its header's column count.
func checkMarkdown(t *testing.T, md string) {
	t.Helper()
	cols := 0
	tables := 0
	for line := range strings.Lines(md) {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			cols = 0
			continue
		}
		n := strings.Count(line, "|") - 1
		if cols == 0 {
			cols = n
			tables++
			continue
		}
		if n != cols {
			t.Errorf("table row with %d columns under a %d-column header: %s", n, cols, line)
		}
	}
	if tables == 0 {
		t.Errorf("no table in the markdown:\n%s", md)
	}
	if !strings.Contains(md, "### Targets (issue 8)") || !strings.Contains(md, "bench.svg") {
		t.Errorf("markdown lacks the targets or the chart:\n%s", md)
	}
}

// checkSVG parses the chart as XML and checks that it is an svg document
// with bars.
func checkSVG(t *testing.T, svg []byte) {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(svg))
	root, rects, texts := "", 0, 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("bench.svg is not well-formed XML: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if root == "" {
				root = se.Name.Local
				if se.Name.Space != "http://www.w3.org/2000/svg" {
					t.Errorf("svg namespace %q", se.Name.Space)
				}
			}
			switch se.Name.Local {
			case "rect":
				rects++
			case "text":
				texts++
			}
		}
	}
	if root != "svg" || rects < 2 || texts < 2 {
		t.Errorf("bench.svg: root %q, %d rects, %d texts", root, rects, texts)
	}
}

func equalJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(ja, jb)
}

// TestWritersSynthetic checks the writers on made-up results that have
// everything, Node included, and on results that have nothing.
func TestWritersSynthetic(t *testing.T) {
	lat := func(impl, tr, name string, p50 int64) Measurement {
		s := Summary{N: 100, Min: p50 / 2, P50: p50, P90: p50 * 2, P99: p50 * 3, P999: p50 * 4, Max: p50 * 5, Mean: p50}
		return Measurement{Impl: impl, Transport: tr, Name: name, Latency: &s, Runs: []Summary{s}}
	}
	rate := func(impl, tr, name string, r float64) Measurement {
		return Measurement{Impl: impl, Transport: tr, Name: name, Rate: r, RateRuns: []float64{r}}
	}
	res := &Results{Started: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), Config: DefaultConfig(),
		Host: Host{OS: "linux", Arch: "amd64", CPUs: 2, Go: "go1.26", Node: "v20.0.0", ClusterClient: "3.7.0"}}
	res.Measurements = append(res.Measurements, lat(implDirect, transportInProcess, callName(64), 2))
	for _, tr := range []string{"tcp", "unix"} {
		res.Measurements = append(res.Measurements,
			lat(implRaw, tr, pingPongName(64), 10_000), lat(implRaw, tr, pingPongName(4096), 12_000),
			rate(implRaw, tr, echoName(64, 1), 100_000), rate(implRaw, tr, echoName(64, 4), 300_000), rate(implRaw, tr, echoName(4096, 4), 90_000),
			lat(implOurs, tr, publishName(4), 50_000), lat(implOurs, tr, failoverName("forced"), 30_000_000),
			Measurement{Impl: implOurs, Transport: tr, Name: memoryName, Memory: []MemPoint{
				{0, memReply{RSS: 8 << 20, GoInUse: 1 << 20, Goroutines: 8}},
				{1, memReply{RSS: 9 << 20, GoInUse: 2 << 20, Goroutines: 10}},
				{1001, memReply{RSS: 29 << 20, GoInUse: 22 << 20, Goroutines: 2010}},
			}})
		auto := lat(implOurs, tr, failoverName("auto"), 2_000_000)
		auto.Samples, auto.LostSamples, auto.ReadySamples = []int64{2e6, 3e6}, []int64{5e5, 6e5}, []int64{1e6, 2e6}
		res.Measurements = append(res.Measurements, auto)
		for _, w := range latencyWorkloads {
			m := lat(implOurs, tr, invokeName(w.size, w.kind), 14_000)
			m.AllocsPerOp, m.CodecAllocsPerOp = 9, 6
			res.Measurements = append(res.Measurements, m)
		}
		for _, w := range throughputWorkloads {
			res.Measurements = append(res.Measurements, rate(implOurs, tr, tputName(w.size, w.kind, w.n), 200_000))
		}
	}
	for _, w := range latencyWorkloads {
		res.Measurements = append(res.Measurements, lat(implNode, "tcp", invokeName(w.size, w.kind), 73_000))
	}
	for _, w := range throughputWorkloads {
		res.Measurements = append(res.Measurements, rate(implNode, "tcp", tputName(w.size, w.kind, w.n), 40_000))
	}
	res.Skipped = []Note{{"kcp", "not in this build"}}
	res.Errors = []Note{{"yamux raw", "something\nbroke | badly"}}
	checkOutputs(t, res)

	markdownHas(t, renderMarkdown(t, res),
		"| invoke 64 B string | 14.0 µs / 42.0 µs / 56.0 µs | 10.0 µs / 30.0 µs / 40.0 µs (ping-pong 64 B) | 1.40× / 1.40× | 73.0 µs / 219 µs / 292 µs | 0.192× / 0.192× |",
		"| throughput 64 B string, 4 followers × 64 in flight | 200k/s | 300k/s (pipelined echo 64 B, 4 clients) | 0.667× | 40.0k/s | 5.00× |",
		"| invoke p50 via a follower ≤ 1.5× raw ping-pong p50, tcp (64 B string / []byte) | 1.40× / 1.40× (14.0 µs, 14.0 µs vs 10.0 µs) | yes |",
		"| throughput 64 B, N = 4, tcp ≥ 50% of raw pipelined echo | 67% (200k/s vs 300k/s) | yes |",
		"| 4 KiB []byte throughput ≥ 100× Node (tcp, N = 4) | 5.00× (200k/s vs 40.0k/s) | **no** |",
		"| leader memory per idle follower ≤ 32 KiB (Go heap + stacks in use), tcp | 20.5 KiB (RSS 20.5 KiB) | yes |",
		"| ≤ 4 allocations per invoke on the follower beyond the codec's own, unix (worst workload) | 3.0 (64 B string: 9.0 − codec 6.0) | yes |",
		"- yamux raw: something broke | badly",
		"| unix | auto | 500 µs / 600 µs | 1.00 ms / 2.00 ms | 2.00 ms / 6.00 ms |",
	)

	// --render reads the JSON back and writes the same markdown.
	data, err := res.marshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(t.TempDir(), "results.json")
	if err := os.WriteFile(in, data, 0o600); err != nil {
		t.Fatal(err)
	}
	var rendered bytes.Buffer
	out := t.TempDir()
	if code := Run([]string{"--render", in, "--out", out}, &rendered, io.Discard); code != 0 {
		t.Fatalf("--render exited %d", code)
	}
	if md, _ := writeOutputs(t.TempDir(), res); !bytes.Equal(rendered.Bytes(), md) {
		t.Errorf("--render wrote other markdown than the run would")
	}
	if _, err := os.Stat(filepath.Join(out, "bench.svg")); err != nil {
		t.Errorf("--render: %v", err)
	}

	empty := &Results{Config: QuickConfig()}
	checkSVG(t, mustSVG(t, empty))
	var emd bytes.Buffer
	if err := writeMarkdown(&emd, empty, ""); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(emd.String(), "not measured") {
		t.Errorf("empty results: targets not shown as not measured:\n%s", emd.String())
	}
}

func mustSVG(t *testing.T, r *Results) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := writeSVG(&b, r); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestChildLifetime checks that a child exits by itself when its stdin
// closes, and that stopping a child that ignores it (here: busy in a long
// command) kills it.
func TestChildLifetime(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	ps := &procSet{}
	defer ps.close()
	addr, err := freePort("tcp")
	if err != nil {
		t.Fatal(err)
	}
	server, err := ps.goChild(ctx, "echo server", "echo-server", endpointArgs{Transport: "tcp", Addr: addr}, nil)
	if err != nil {
		t.Fatal(err)
	}
	client, err := ps.goChild(ctx, "raw client", "raw-client", endpointArgs{Transport: "tcp", Addr: addr}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.call(ctx, "nap", nil, nil); !errors.Is(err, ErrChildFailed) || !strings.Contains(err.Error(), `unknown command "nap"`) {
		t.Errorf("unknown command: %v", err)
	}
	// A long command: the child cannot read its stdin's EOF until it ends.
	if err := client.Send("pingpong", pingPongArgs{Size: 64, Duration: int64(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := client.Stop(100 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("stop took %v", took)
	}
	if err := client.Wait(ctx); err == nil {
		t.Errorf("busy child exited cleanly, want killed")
	}
	if err := server.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := server.Wait(ctx); err != nil {
		t.Errorf("idle child did not exit cleanly on stdin EOF: %v; stderr: %s", err, server.Stderr())
	}
	if _, err := ps.goChild(ctx, "bad", "no-such-role", nil, nil); !errors.Is(err, ErrChildFailed) {
		t.Errorf("unknown role: %v, want ErrChildFailed", err)
	}
}

// spawnerRole (tests only) starts an echo server as its own child and
// answers with its pid.
func spawnerRole(raw json.RawMessage) (any, map[string]command, func(), error) {
	var a endpointArgs
	if err := decodeArgs(raw, &a); err != nil {
		return nil, nil, nil, err
	}
	ps := &procSet{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := ps.goChild(ctx, "grandchild", "echo-server", a, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	return map[string]int{"pid": p.Pid()}, nil, ps.close, nil
}

// TestChildDiesWithParent SIGKILLs a child that has a child of its own (an
// echo server) and checks that the grandchild goes away too (Pdeathsig on
// Linux, and the EOF on its stdin everywhere).
func TestChildDiesWithParent(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	ps := &procSet{}
	defer ps.close()
	addr, err := freePort("tcp")
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		PID int `json:"pid"`
	}
	spawner, err := ps.goChild(ctx, "spawner", "spawner", endpointArgs{Transport: "tcp", Addr: addr}, &info)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("the grandchild (pid %d) does not listen on %s: %v", info.PID, addr, err)
	}
	c.Close()
	spawner.Kill()
	if err := spawner.wait(ctx); err != nil {
		t.Fatal(err)
	}
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break // refused: nobody listens any more
		}
		c.Close()
		if ctx.Err() != nil {
			t.Fatalf("the grandchild (pid %d) still listens on %s after its parent's SIGKILL", info.PID, addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNodeMember runs the Node member script against the real npm
// cluster-client when node and interop/node_modules are there.
func TestNodeMember(t *testing.T) {
	if !monoIsHostWide {
		t.Skip("Node timings need Linux's CLOCK_MONOTONIC")
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("SKIPPED: node is not installed, so the Node member script is not tested")
	}
	cfg := DefaultConfig()
	cfg.Transports = []string{"tcp"}
	dir := t.TempDir()
	env, err := findNode(cfg, dir)
	if err != nil {
		t.Skipf("SKIPPED: %v", err)
	}
	ctx := testContext(t, 30*time.Second)
	r := &runner{cfg: cfg, procs: &procSet{}, dir: dir, log: io.Discard, node: env, res: &Results{}}
	defer r.procs.close()
	ci := r.nodeImpl()
	addr, leader, err := r.autoLeader(ctx, ci)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := r.followersAt(ctx, ci, addr, "auto", "follower", 1)
	if err != nil {
		t.Fatal(err)
	}
	f := fs[0]
	for _, kind := range []string{"string", "bytes"} {
		var rep samplesReply
		if err := f.call(ctx, "seq", seqArgs{Kind: kind, Size: 64, Duration: int64(30 * time.Millisecond)}, &rep); err != nil {
			t.Fatal(err)
		}
		if len(rep.Samples) == 0 || slices.Min(rep.Samples) <= 0 {
			t.Errorf("%s: samples %v", kind, rep.Samples)
		}
	}
	var st statsReply
	if err := leader.call(ctx, "stats", nil, &st); err != nil || !st.Leader || st.PID != leader.Pid() {
		t.Errorf("leader stats %+v, %v", st, err)
	}
	var p probeReply
	if err := f.call(ctx, "probe", probeArgs{DeadPID: -1, Timeout: int64(5 * time.Second)}, &p); err != nil || p.PID != leader.Pid() {
		t.Errorf("probe: %+v, %v (leader pid %d)", p, err, leader.Pid())
	}
	r.procs.stopAll(leader, f)
}

// Example_summarize shows the percentiles of a set of samples.
func Example_summarize() {
	s := summarize([]int64{5_000, 1_000, 3_000, 2_000, 4_000})
	fmt.Println(fmtDur(s.P50), fmtDur(s.P99), s.N)
	// Output: 3.00 µs 5.00 µs 5
}

// TestGRPCReport renders the gRPC rows of a made-up run: ours against the
// gRPC echo with ratios and issue 19's targets.
func TestGRPCReport(t *testing.T) {
	lat := func(p50 int64) *Summary { return &Summary{N: 10, P50: p50, P99: 2 * p50, P999: 3 * p50, Max: 4 * p50} }
	res := &Results{Host: Host{GRPC: "1.85.0"}, Config: QuickConfig(), Measurements: []Measurement{
		{Impl: implOurs, Transport: "tcp", Name: invokeName(64, "bytes"), Latency: lat(50_000)},
		{Impl: implGRPC, Transport: "tcp", Name: invokeName(64, "bytes"), Latency: lat(100_000)},
		{Impl: implGRPC, Transport: "tcp", Name: invokeName(4096, "bytes"), Latency: lat(150_000)},
		{Impl: implOurs, Transport: "tcp", Name: tputName(64, "string", 4), Rate: 120_000},
		{Impl: implGRPC, Transport: "tcp", Name: tputName(64, "bytes", 4), Rate: 50_000},
		{Impl: implOurs, Transport: "tcp", Name: tputName(4096, "bytes", 4), Rate: 20_000},
		{Impl: implGRPC, Transport: "tcp", Name: tputName(4096, "bytes", 4), Rate: 25_000},
	}}
	markdownHas(t, renderMarkdown(t, res),
		", gRPC 1.85.0",
		"### gRPC unary echo (tcp)",
		"| gRPC unary echo 64 B, sequential (ours: invoke 64 B []byte) | 50.0 µs / 100 µs / 150 µs | 100 µs / 200 µs / 300 µs | 0.500× / 0.500× | **no** |",
		"| gRPC unary echo 4 KiB, sequential (ours: invoke 4 KiB []byte) | – | 150 µs / 300 µs / 450 µs | – | – |",
		"| gRPC unary echo 64 B, 4 clients × 64 in flight (ours: 64 B string, 4 followers) | 120k/s | 50.0k/s | 2.40× | yes |",
		"| gRPC unary echo 4 KiB, 4 clients × 64 in flight (ours: 4 KiB []byte, 4 followers) | 20.0k/s | 25.0k/s | 0.800× | **no** |",
	)
}

// TestFindGRPC: a prebuilt program is taken as given; a missing one, or
// no bench/grpcecho to build, is ErrGRPCUnavailable with what to do.
func TestFindGRPC(t *testing.T) {
	ctx := testContext(t, time.Minute)
	cfg := DefaultConfig()
	cfg.GRPCBin = os.Args[0]
	if bin, err := findGRPC(ctx, cfg, t.TempDir()); err != nil || bin != os.Args[0] {
		t.Fatalf("--grpc-bin %s: %q %v", os.Args[0], bin, err)
	}
	cfg.GRPCBin = filepath.Join(t.TempDir(), "missing")
	if _, err := findGRPC(ctx, cfg, t.TempDir()); !errors.Is(err, ErrGRPCUnavailable) {
		t.Fatalf("missing --grpc-bin: %v", err)
	}
	cfg.GRPCBin = ""
	t.Chdir(t.TempDir())
	if _, err := findGRPC(ctx, cfg, t.TempDir()); !errors.Is(err, ErrGRPCUnavailable) || !strings.Contains(err.Error(), "--grpc-bin") {
		t.Fatalf("outside the repository: %v", err)
	}
	c, err := parseFlags([]string{"--grpc-bin", "/x/grpcecho", "--workloads", "grpc"}, io.Discard)
	if err != nil || c.GRPCBin != "/x/grpcecho" || !c.has("grpc") {
		t.Fatalf("flags: %+v %v", c, err)
	}
}
