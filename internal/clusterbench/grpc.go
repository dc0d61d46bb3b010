package clusterbench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// The gRPC baseline (issue 19): what a Go user would pick instead of
// clusterclient to reach a client living in another process, a gRPC
// unary echo over loopback TCP (bench/grpcecho: a raw-bytes codec, no
// protobuf). gRPC stays out of this module: the program is a module of
// its own, built at run time with the go command, or given prebuilt with
// --grpc-bin.

// implGRPC is the gRPC unary echo.
const implGRPC = "grpc"

// grpcModule is the gRPC program's module directory, relative to the
// repository root.
var grpcModule = filepath.Join("bench", "grpcecho")

// ErrGRPCUnavailable: the gRPC baseline cannot run (no --grpc-bin, and no
// bench/grpcecho or go command to build it with).
var ErrGRPCUnavailable = errors.New("clusterbench: gRPC baseline unavailable")

// grpcBuildTimeout bounds the build of the gRPC program (a cold build
// compiles gRPC and may download it).
const grpcBuildTimeout = 5 * time.Minute

// findGRPC returns the gRPC echo program: cfg.GRPCBin, or one built from
// bench/grpcecho (found in the working directory or above it) into dir.
func findGRPC(ctx context.Context, cfg Config, dir string) (string, error) {
	if cfg.GRPCBin != "" {
		fi, err := os.Stat(cfg.GRPCBin)
		if err != nil {
			return "", fmt.Errorf("%w: --grpc-bin: %v", ErrGRPCUnavailable, err)
		}
		if fi.IsDir() {
			return "", fmt.Errorf("%w: --grpc-bin %s is a directory", ErrGRPCUnavailable, cfg.GRPCBin)
		}
		return cfg.GRPCBin, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrGRPCUnavailable, err)
	}
	mod := ""
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, grpcModule, "go.mod")); err == nil {
			mod = filepath.Join(d, grpcModule)
			break
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("%w: no %s/go.mod in %s or above (run from the repository, or build it with `cd %s && go build` and pass --grpc-bin)",
				ErrGRPCUnavailable, filepath.ToSlash(grpcModule), wd, filepath.ToSlash(grpcModule))
		}
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("%w: building %s needs the go command: %v (or pass --grpc-bin)", ErrGRPCUnavailable, mod, err)
	}
	bin := filepath.Join(dir, "grpcecho")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	ctx, cancel := context.WithTimeout(ctx, grpcBuildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", bin, ".")
	cmd.Dir = mod
	cmd.Env = childEnv()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%w: go build in %s: %v: %s (or pass --grpc-bin)", ErrGRPCUnavailable, mod, err, oneLine(strings.TrimSpace(out.String())))
	}
	return bin, nil
}

// grpcSizes are the message sizes of the gRPC measurements: sequential
// calls, and throughput with grpcClients processes of inFlight calls each.
var grpcSizes = []int{64, 4096}

// grpcClients is the number of gRPC client processes of the throughput
// measurement, as ours' followers.
const grpcClients = 4

// grpc measures the gRPC echo: a server process and grpcClients client
// processes, each with one connection.
func (r *runner) grpc(ctx context.Context, bin string) error {
	var ready struct {
		Addr    string `json:"addr"`
		Version string `json:"version"`
	}
	server, err := r.procs.start(ctx, "grpc server", exec.Command(bin, "server"), &ready)
	if err != nil {
		return err
	}
	r.res.Host.GRPC = ready.Version
	clients, err := r.spawnN(grpcClients, func(i int) (*proc, error) {
		return r.procs.start(ctx, fmt.Sprintf("grpc client %d", i+1), exec.Command(bin, "client", ready.Addr), nil)
	})
	defer func() { r.procs.stopAll(append(clients, server)...) }()
	if err != nil {
		return err
	}
	for _, size := range grpcSizes {
		var runs []Summary
		for range r.cfg.Runs {
			var rep samplesReply
			if err := clients[0].call(ctx, "pingpong", pingPongArgs{Size: size, Duration: int64(r.cfg.Duration), Warmup: int64(r.warmup())}, &rep); err != nil {
				return err
			}
			runs = append(runs, summarize(rep.Samples))
		}
		r.addLatency(implGRPC, "tcp", invokeName(size, "bytes"), runs)
	}
	for _, size := range grpcSizes {
		rates, failed, err := r.load(ctx, clients, "echo", loadArgs{Size: size, Kind: "bytes", InFlight: inFlight})
		if err != nil {
			return err
		}
		r.addRate(implGRPC, "tcp", tputName(size, "bytes", grpcClients), rates).Failed = failed
	}
	return nil
}

// grpcRows are the rows of the gRPC table: ours against the gRPC echo of
// the same size, with issue 19's targets (ours ÷ gRPC ≤ 0.4 for p50, ≥ 2×
// for throughput).
var grpcRows = []struct {
	title, ours, grpc string
	rate              bool
}{
	{"gRPC unary echo 64 B, sequential (ours: invoke 64 B []byte)", invokeName(64, "bytes"), invokeName(64, "bytes"), false},
	{"gRPC unary echo 4 KiB, sequential (ours: invoke 4 KiB []byte)", invokeName(4096, "bytes"), invokeName(4096, "bytes"), false},
	{"gRPC unary echo 64 B, 4 clients × 64 in flight (ours: 64 B string, 4 followers)", tputName(64, "string", 4), tputName(64, "bytes", grpcClients), true},
	{"gRPC unary echo 4 KiB, 4 clients × 64 in flight (ours: 4 KiB []byte, 4 followers)", tputName(4096, "bytes", 4), tputName(4096, "bytes", grpcClients), true},
}

// writeGRPC writes ours against the gRPC echo, on TCP.
func writeGRPC(p func(string, ...any), r *Results) {
	if !r.hasImpl(implGRPC) {
		return
	}
	p("### gRPC unary echo (tcp)\n\n")
	p("gRPC %s unary echo over loopback TCP with a raw-bytes codec (bench/grpcecho), one connection per client process, in the same run. ", r.Host.GRPC)
	p("Latencies p50 / p99 / p999 with ratios ours ÷ gRPC for p50 / p99; throughputs in calls per second with ratios ours ÷ gRPC. ")
	p("Issue 19's targets: ours ÷ gRPC ≤ 0.4 for p50, ≥ 2× for throughput.\n\n")
	p("| workload | ours | gRPC | ours ÷ gRPC | target met |\n|---|---|---|---|---|\n")
	for _, row := range grpcRows {
		ours, g := r.find(implOurs, "tcp", row.ours), r.find(implGRPC, "tcp", row.grpc)
		if g == nil {
			continue
		}
		met := "–"
		if row.rate {
			if ours != nil && g.Rate > 0 && ours.Rate > 0 {
				met = yesNo(ours.Rate >= 2*g.Rate)
			}
			p("| %s | %s | %s | %s | %s |\n", row.title, rateCell(ours), rateCell(g), rateRatio(ours, g), met)
			continue
		}
		if ours != nil && ours.Latency != nil && g.Latency != nil && g.Latency.P50 > 0 {
			met = yesNo(float64(ours.Latency.P50) <= 0.4*float64(g.Latency.P50))
		}
		p("| %s | %s | %s | %s | %s |\n", row.title, latencyCell(ours), latencyCell(g), latencyRatio(ours, g), met)
	}
	p("\n")
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}
