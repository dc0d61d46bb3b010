package clusterbench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Implementations measured.
const (
	implOurs   = "ours"   // clusterclient (package cluster)
	implRaw    = "raw"    // bytes over a transport conn, nothing above it
	implNode   = "node"   // npm cluster-client 3.7.0
	implDirect = "direct" // a Go function call in one process
	// implGRPC ("grpc", a gRPC unary echo) is in grpc.go.
)

// transportInProcess is the "transport" of the direct call baseline.
const transportInProcess = "in-process"

// Results is everything one run measured; it is the JSON output.
type Results struct {
	Started      time.Time     `json:"started"`
	Wall         time.Duration `json:"wall_ns"`
	Host         Host          `json:"host"`
	Config       Config        `json:"config"`
	Measurements []Measurement `json:"measurements"`
	// Skipped lists what was not measured and why (a transport whose
	// package is missing, Node not installed, ...).
	Skipped []Note `json:"skipped,omitempty"`
	// Errors lists measurements that failed; the run went on without them.
	Errors []Note `json:"errors,omitempty"`
}

// Host describes where the run happened.
type Host struct {
	OS            string `json:"os"`
	Arch          string `json:"arch"`
	CPUs          int    `json:"cpus"`
	Go            string `json:"go"`
	Node          string `json:"node,omitempty"`
	ClusterClient string `json:"cluster_client,omitempty"`
	// GRPC is the version of gRPC of the gRPC baseline.
	GRPC string `json:"grpc,omitempty"`
	// LoadStart and LoadEnd are the one-minute load averages when the run
	// started and ended (0 if unknown): other work on the host skews
	// every figure.
	LoadStart float64 `json:"load_start,omitempty"`
	LoadEnd   float64 `json:"load_end,omitempty"`
}

// Note is a skipped or failed item with the reason.
type Note struct {
	What string `json:"what"`
	Why  string `json:"why"`
}

// Measurement is one workload of one implementation on one transport.
// Exactly one of Latency, Rate, Memory and Handover is set, as the
// workload's kind says.
type Measurement struct {
	Impl      string `json:"impl"`
	Transport string `json:"transport"`
	Name      string `json:"name"`

	// Latency is the median, field by field, of the runs' summaries.
	Latency *Summary  `json:"latency,omitempty"`
	Runs    []Summary `json:"runs,omitempty"`
	// Samples are the raw samples (ns) where there are few: one per kill
	// for failover.
	Samples []int64 `json:"samples_ns,omitempty"`
	// LostSamples and ReadySamples split each failover sample: the time
	// until every survivor's event handler had seen the leader lost, and a
	// new term ready (ours only).
	LostSamples  []int64 `json:"lost_samples_ns,omitempty"`
	ReadySamples []int64 `json:"ready_samples_ns,omitempty"`
	// Rate is the median of the runs' operations per second.
	Rate     float64   `json:"ops_per_sec,omitempty"`
	RateRuns []float64 `json:"rate_runs,omitempty"`
	// AllocsPerOp: heap allocations of the calling process per operation
	// (median of runs), when measured.
	AllocsPerOp float64 `json:"allocs_per_op,omitempty"`
	// CodecAllocsPerOp: the part of AllocsPerOp that is the codec's own
	// (an estimate: encoding the argument and decoding the result alone).
	CodecAllocsPerOp float64 `json:"codec_allocs_per_op,omitempty"`
	// Failed counts calls that failed during a throughput measurement.
	Failed int64 `json:"failed,omitempty"`
	// Lost counts publications that did not reach every subscriber.
	Lost int `json:"lost,omitempty"`
	// Memory: the leader's memory with growing numbers of idle followers.
	Memory []MemPoint `json:"memory,omitempty"`
	// Handover: a leader change scenario's failed calls (handover.go).
	Handover *HandoverFigures `json:"handover,omitempty"`
}

// MemPoint is the leader's memory with Followers idle followers.
type MemPoint struct {
	Followers int `json:"followers"`
	memReply
}

// Workload names. Latency: invoke/<size>/<kind> (ours, node) against
// pingpong/<size> (raw) and call/<size> (direct). Throughput:
// tput/<size>/<kind>/n<N> (ours, node) against echo/<size>/n<N> (raw).
// Publish: publish/n<N>. Failover: failover/auto, failover/forced.
// Memory: memory. Handover: handover/<scenario>/with, .../without.
func invokeName(size int, kind string) string {
	return "invoke/" + strconv.Itoa(size) + "/" + kind
}
func pingPongName(size int) string { return "pingpong/" + strconv.Itoa(size) }
func callName(size int) string     { return "call/" + strconv.Itoa(size) }
func tputName(size int, kind string, n int) string {
	return fmt.Sprintf("tput/%d/%s/n%d", size, kind, n)
}
func echoName(size, n int) string     { return fmt.Sprintf("echo/%d/n%d", size, n) }
func publishName(n int) string        { return fmt.Sprintf("publish/n%d", n) }
func failoverName(mode string) string { return "failover/" + mode }

const memoryName = "memory"

// find returns the measurement, or nil.
func (r *Results) find(impl, transport, name string) *Measurement {
	for i := range r.Measurements {
		m := &r.Measurements[i]
		if m.Impl == impl && m.Transport == transport && m.Name == name {
			return m
		}
	}
	return nil
}

// transports returns the transports with at least one measurement of ours
// or raw, in the report order.
func (r *Results) transports() []string {
	var out []string
	for _, t := range allTransports {
		for _, m := range r.Measurements {
			if m.Transport == t && (isOurs(m.Impl) || m.Impl == implRaw) && m.Handover == nil {
				out = append(out, t)
				break
			}
		}
	}
	return out
}

// writeFile writes data to dir/name, creating dir.
func writeFile(dir, name string, data []byte) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return "", err
	}
	return path, nil
}

// marshalJSON returns the indented JSON of the results.
func (r *Results) marshalJSON() ([]byte, error) {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}
