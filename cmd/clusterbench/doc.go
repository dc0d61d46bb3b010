// Command clusterbench measures clusterclient against the raw transports it
// runs on and, with --vs-node, against Node's cluster-client 3.7.0, all in
// one run on one host, and writes the results as a markdown table with
// ratios, a JSON file and an SVG chart.
//
// Usage:
//
//	go run ./cmd/clusterbench --quick              # about 40 s on an idle 2-core host
//	go run ./cmd/clusterbench --vs-node            # the full run, about 5 minutes
//	go run ./cmd/clusterbench --transports tcp,unix --workloads invoke,failover
//	go run ./cmd/clusterbench --quick --transports tcp --workloads raw,invoke,grpc
//	go run ./cmd/clusterbench --transports tcp,unix --workloads handover  # about 15 s
//
// The results go to --out (default ./clusterbench-out): results.md (also
// printed on stdout), results.json and bench.svg. Progress goes to stderr.
// The exit status is 1 if a measurement failed (the others are still
// written) and 2 for bad flags. --profile also writes CPU profiles of the
// leader and of a follower during the 64 B, 4-follower throughput
// (<transport>-leader.cpu.pprof, for go tool pprof with the binary), and
// --render results.json writes the markdown and chart of an earlier run
// again.
//
// # What is measured
//
// Every measurement runs between separate OS processes: clusterbench starts
// itself again as children in a role (echo server, raw client, cluster
// member, crowd of idle followers) and drives them over their stdin and
// stdout, one JSON request and reply per line. Node members run
// internal/clusterbench/node/bench.js, embedded in the binary, which answers the same requests,
// so both clusters are driven by the same code.
//
// For each transport (tcp, unix, yamux over tcp, kcp):
//
//   - raw baselines: a 64 B and a 4 KiB ping-pong between two processes over
//     one conn of the transport, and a pipelined echo with 64 messages in
//     flight per client, from 1 and 4 client processes;
//   - sequential invoke through a follower (leader and follower are
//     separate processes), 64 B and 4 KiB, string and []byte arguments,
//     p50/p99/p999, with the follower process's heap allocations per call;
//   - throughput with 64 calls in flight per follower, 1 and 4 followers;
//   - publish → delivered to every subscriber, 4 and 32 subscriber
//     processes: a publisher follower publishes paced values carrying their
//     publish time, each subscriber notes when it got each, and a value's
//     latency is its last delivery's;
//   - failover: SIGKILL of the leader until every one of 4 surviving
//     followers has an invoke answered by a new leader, over --kills kills,
//     in auto mode (every member competes) and with forced roles (forced
//     followers; a new forced leader process is started when the old one
//     is reaped, as a supervisor would);
//   - the leader's RSS, Go memory and goroutines with 0, 1, 100 and 1000
//     idle followers (followers run in "crowd" processes, each with its own
//     election registry, so each connects as a separate process would).
//
// Plus the floor: a direct in-process Go call of the same echo function.
//
// # Codecs
//
// --codecs (default json) runs the cluster workloads (invoke, publish,
// failover, memory) once per codec named, every member with that codec
// (cluster.WithCodec): json, serialize-json, or a codec a program
// registered with clusterbench.RegisterCodec. The raw, gRPC and handover
// workloads do not depend on the codec and run once (handover with json).
// json's rows are the "ours" of every table; another codec's are labelled
// ours/<codec> in results.json and have a "Codecs" section in results.md,
// next to json's and the raw baselines of the same run, with issue 19's
// target for a binary codec (4 KiB []byte throughput ≥ 50% of the raw
// pipelined echo).
//
// The CBOR codec lives in a module of its own (codec/cbor), which this
// command's module must not import; its module has the same command with
// CBOR registered, codec/cbor/cmd/clusterbench-cbor (the body of both is
// internal/clusterbench):
//
//	cd codec/cbor && go run ./cmd/clusterbench-cbor --codecs json,cbor --workloads raw,invoke,grpc --transports tcp,unix --runs 3
//
// # Leader changes (issue 17)
//
// The "handover" workload (part of every run, --quick too; 6 to 8 s per
// transport on a shared 2-core host) runs on tcp and unix only, and measures what a leader
// change costs the callers: failed calls, with the features that make
// them 0 and, in the same run, without them (WithHandoverTimeout(0), no
// Service.Idempotent declaration), so that the measurement can fail. Its
// members are "caller" processes: a Client whose method "work" sleeps a
// moment on the leader (so that calls are in flight when it goes), called
// from two goroutines on a ticker; each call's start, latency and error
// kind is recorded.
//
//   - rolling restart: 4 members call every 2 ms (1 ms of work); each in
//     turn, the current leader first while it was not restarted yet,
//     stops calling, closes its Client (Client.Close) and exits, and a
//     fresh member takes its place. Failed calls of every member, and the
//     p99 of the answered calls that started during the changes (from the
//     close until one leader is settled and every member had 20 more
//     calls answered) against the p99 of a steady window (--duration)
//     before them: the added p99;
//   - SIGKILL: 4 members call a method declared idempotent every 1 ms
//     (2 ms of work); the leader is SIGKILLed --handover-kills times (3),
//     a fresh member replacing it. Failed calls of the survivors (the
//     killed process's own calls die with it) and the calls retried on
//     the next leader (Stats().Retried);
//   - short-lived: --handover-rounds rounds (5; quick: 2) of 20 "oneshot"
//     processes started on a fresh address; each creates its Client, then
//     all at once make one call, close and exit, so leaders come and go
//     with calls in flight. Failed calls.
//
// The results are a section of results.md, "Leader changes", one row per
// transport, scenario and with/without, with the target (0 failed calls
// with the features) and whether it was met; the control rows say
// whether they failed calls. In results.json they are measurements named
// handover/<scenario>/with and .../without, with a "handover" object.
//
// # The gRPC baseline
//
// On TCP, the "grpc" workload (part of every run unless --workloads
// leaves it out) measures what a Go user would pick instead of
// clusterclient: a gRPC unary echo over loopback TCP, with a raw-bytes
// codec (no protobuf), a server process and 4 client processes of one
// connection each. Sequential calls of 64 B and 4 KiB give p50/p99/p999,
// and the 4 clients with 64 calls in flight each give calls per second,
// for both sizes; results.md shows them as "gRPC unary echo" rows next to
// ours with the ratios ours ÷ gRPC and issue 19's targets.
//
// gRPC is kept out of the library's module: the echo program is
// bench/grpcecho, a module of its own. At the start of the run, before
// anything is measured, clusterbench builds it with `go build` into its
// temporary directory, from bench/grpcecho found in the working directory
// or above it (run clusterbench from the repository; a cold build
// downloads and compiles gRPC, later ones come from the build cache). Or
// pass a prebuilt program with --grpc-bin:
//
//	(cd bench/grpcecho && go build -o /tmp/grpcecho .)
//	go run ./cmd/clusterbench --quick --grpc-bin /tmp/grpcecho
//
// When neither works (no go command, no bench/grpcecho, a build that
// fails) the gRPC rows are skipped, and the report's Skipped section says
// why; so are they when tcp is not among --transports.
// With --vs-node, Node cluster-client 3.7.0 runs the same cluster
// workloads on TCP (leader and followers as separate node processes; no
// memory measurement, publish with 4 subscribers, fewer forced-mode kills
// because each costs Node's fixed 3 s probe). cluster-client is resolved
// from interop/node_modules (run `cd interop && npm ci` first) or
// --node-modules.
//
// Latency percentiles are nearest-rank over every sample; with --runs > 1
// each latency or throughput figure is the median of the runs. Timestamps
// that cross processes (publish, failover) use CLOCK_MONOTONIC, which Linux
// shares between processes; elsewhere the wall clock is used and Node is
// not compared.
//
// # Process lifetime
//
// Children never outlive the run: on Linux the kernel kills them when
// clusterbench dies (Pdeathsig); everywhere they exit when their stdin
// reaches EOF; at the end (or on SIGINT, or when --timeout passes) every
// child still running is killed and reaped.
package main
