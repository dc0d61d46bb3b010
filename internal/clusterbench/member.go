package clusterbench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/election"
	"github.com/go-clusterclient/clusterclient/protocol"
)

// A member is one process of the cluster under test: a cluster.Client of
// the channel, leader or follower as the election decides (or as forced).
// Its real client is benchService. The commands below are shared with the
// Node member (node/bench.js), which answers the same requests, so the
// parent drives both with the same code.

// memberArgs are the setup arguments of a member.
type memberArgs struct {
	Transport string `json:"transport"`
	Addr      string `json:"addr"`
	Channel   string `json:"channel"`
	// Mode is "auto", "leader" (forced) or "follower" (forced).
	Mode string `json:"mode"`
	// Codec is the app-object codec's name (see RegisterCodec); empty is
	// json. Node members ignore it (they speak JSON).
	Codec string `json:"codec,omitempty"`
}

// memberReady is a member's setup reply.
type memberReady struct {
	PID    int  `json:"pid"`
	Leader bool `json:"leader"`
	// Codec is the name of the codec the member's Client uses (Go
	// members; empty from Node's).
	Codec string `json:"codec,omitempty"`
}

// benchMethods are the real client's methods, by argument kind.
var benchMethods = map[string]string{"string": "echoString", "bytes": "echoBytes"}

// newBenchService returns the real client: echo methods, ping (the leader's
// pid, to tell which leader answered) and subscriptions keyed by dataId,
// where a publication {"dataId":d,...} is pushed as is to the subscribers
// of {"dataId":d}.
func newBenchService() *cluster.Service {
	var (
		mu   sync.Mutex
		subs = map[string]func(any){}
	)
	pid := os.Getpid()
	type dataID struct {
		DataID string `json:"dataId"`
	}
	return &cluster.Service{
		Methods: map[string]cluster.Handler{
			"echoString": cluster.Method(func(_ context.Context, s string) (string, error) { return s, nil }),
			"echoBytes":  cluster.Method(func(_ context.Context, b []byte) ([]byte, error) { return b, nil }),
			"ping":       func(context.Context, cluster.Args) (any, error) { return pid, nil },
		},
		Subscribe: func(reg cluster.Reg, push func(any)) error {
			var r dataID
			if err := reg.Decode(&r); err != nil {
				return err
			}
			mu.Lock()
			subs[r.DataID] = push
			mu.Unlock()
			return nil
		},
		Unsubscribe: func(reg cluster.Reg) error {
			var r dataID
			if err := reg.Decode(&r); err != nil {
				return err
			}
			mu.Lock()
			delete(subs, r.DataID)
			mu.Unlock()
			return nil
		},
		Publish: func(_ context.Context, reg cluster.Reg) error {
			var r dataID
			if err := reg.Decode(&r); err != nil {
				return err
			}
			mu.Lock()
			push := subs[r.DataID]
			mu.Unlock()
			if push != nil {
				push(protocol.Raw(reg.Bytes()))
			}
			return nil
		},
	}
}

// parseMode maps a member mode to the election mode.
func parseMode(s string) (cluster.Mode, error) {
	switch s {
	case "", "auto":
		return cluster.Auto, nil
	case "leader":
		return cluster.ForceLeader, nil
	case "follower":
		return cluster.ForceFollower, nil
	}
	return 0, fmt.Errorf("clusterbench: unknown member mode %q", s)
}

// phases records when this member last lost its leader and last became
// ready (monoNow; 0 before the first), to split a failover into its
// phases. Events reach the handler asynchronously; the time an event
// happened is taken from Event.Time, not from the handler's call.
type phases struct {
	lost, ready atomic.Int64
}

func (ph *phases) handle(e cluster.Event) {
	at := monoNow() - time.Since(e.Time).Nanoseconds()
	switch {
	case e.Kind == cluster.EventLeaderLost:
		ph.lost.Store(at)
	case e.Kind == cluster.EventReady && e.Err == nil:
		ph.ready.Store(at)
	}
}

// await waits up to a second until both events have been seen at or after
// t, and returns their times (0 for one not seen).
func (ph *phases) await(t int64) (lost, ready int64) {
	deadline := time.Now().Add(time.Second)
	for {
		lost, ready = ph.lost.Load(), ph.ready.Load()
		if (lost >= t && ready >= t) || time.Now().After(deadline) {
			if lost < t {
				lost = 0
			}
			if ready < t {
				ready = 0
			}
			return lost, ready
		}
		time.Sleep(time.Millisecond)
	}
}

// newMember creates a Client of the bench channel and waits until it is
// ready. registry may be nil (the process-wide default); ph may be nil.
func newMember(a memberArgs, registry *election.Registry, ph *phases) (*cluster.Client, error) {
	tr, err := newTransport(a.Transport)
	if err != nil {
		return nil, err
	}
	mode, err := parseMode(a.Mode)
	if err != nil {
		return nil, err
	}
	codec, err := codecByName(a.Codec)
	if err != nil {
		return nil, err
	}
	opts := []cluster.Option{
		cluster.WithTransport(tr),
		cluster.WithCodec(codec),
		cluster.WithAddr(a.Addr),
		cluster.WithMode(mode),
		cluster.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))),
	}
	if registry != nil {
		opts = append(opts, cluster.WithRegistry(registry))
	}
	if ph != nil {
		opts = append(opts, cluster.WithEventHandler(ph.handle))
	}
	svc := newBenchService()
	c, err := cluster.New(a.Channel, func(context.Context, cluster.Emit) (*cluster.Service, error) { return svc, nil }, opts...)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Ready(ctx); err != nil {
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer ccancel()
		c.Close(cctx)
		return nil, err
	}
	return c, nil
}

// seqArgs: sequential invokes of an argument of Kind and Size for
// Duration, after Warmup (not sampled).
type seqArgs struct {
	Kind     string `json:"kind"`
	Size     int    `json:"size"`
	Duration int64  `json:"duration_ns"`
	Warmup   int64  `json:"warmup_ns"`
}

// publishArgs: publish Count values {"dataId","seq","t"} to DataID, one
// every Interval from Start, with sequence numbers from First.
type publishArgs struct {
	DataID   string `json:"data_id"`
	First    int64  `json:"first"`
	Count    int64  `json:"count"`
	Interval int64  `json:"interval_ns"`
	Start    int64  `json:"start_ns"`
}

// publication is what the publisher publishes and subscribers receive.
// T is the monoNow time of the publish, as a decimal string (Node numbers
// cannot hold every int64).
type publication struct {
	DataID string `json:"dataId"`
	Seq    int64  `json:"seq"`
	T      int64  `json:"t,string"`
}

// deliveries is what a subscriber received: sequence number → latency
// from publish to the listener, for values of sequence number ≥ From.
type deliveries struct {
	Seq []int64 `json:"seq"`
	Lat []int64 `json:"lat_ns"`
}

// probeArgs: invoke ping until a leader other than DeadPID answers.
// KilledAt (monoNow) is when the old leader was killed.
type probeArgs struct {
	DeadPID  int   `json:"dead_pid"`
	Timeout  int64 `json:"timeout_ns"`
	KilledAt int64 `json:"killed_at_ns,omitempty"`
}

type probeReply struct {
	At       int64 `json:"at_ns"` // monoNow when the answer arrived
	PID      int   `json:"pid"`   // the leader that answered
	Attempts int   `json:"attempts"`
	// LostAt and ReadyAt: when this member lost the old leader and became
	// ready again after KilledAt (monoNow; 0 if not seen; Go members
	// only).
	LostAt  int64 `json:"lost_at_ns,omitempty"`
	ReadyAt int64 `json:"ready_at_ns,omitempty"`
}

// statsReply is a member's view of its cluster.
type statsReply struct {
	PID       int  `json:"pid"`
	Leader    bool `json:"leader"`
	Followers int  `json:"followers"`
}

// memReply describes a process's memory after a forced GC.
type memReply struct {
	RSS        int64 `json:"rss_bytes"`  // resident set (VmRSS), 0 if unknown
	GoInUse    int64 `json:"go_bytes"`   // heap in use + goroutine stacks
	Goroutines int   `json:"goroutines"` // runtime.NumGoroutine
}

// memberRole runs one cluster member.
func memberRole(raw json.RawMessage) (any, map[string]command, func(), error) {
	var a memberArgs
	if err := decodeArgs(raw, &a); err != nil {
		return nil, nil, nil, err
	}
	codec, err := codecByName(a.Codec)
	if err != nil {
		return nil, nil, nil, err
	}
	ph := &phases{}
	c, err := newMember(a, nil, ph)
	if err != nil {
		return nil, nil, nil, err
	}
	sub := &subscriber{}
	prof := &profiler{}
	cmds := map[string]command{
		"seq": func(data json.RawMessage) (any, error) {
			var p seqArgs
			if err := decodeArgs(data, &p); err != nil {
				return nil, err
			}
			return sequentialInvoke(c, codec, p)
		},
		"load": func(data json.RawMessage) (any, error) {
			var p loadArgs
			if err := decodeArgs(data, &p); err != nil {
				return nil, err
			}
			return loadInvoke(c, p)
		},
		"subscribe": func(data json.RawMessage) (any, error) {
			var p struct {
				DataID string `json:"data_id"`
			}
			if err := decodeArgs(data, &p); err != nil {
				return nil, err
			}
			_, err := cluster.SubscribeTyped(c, map[string]string{"dataId": p.DataID}, sub.deliver)
			return struct{}{}, err
		},
		"probe": func(data json.RawMessage) (any, error) {
			var p probeArgs
			if err := decodeArgs(data, &p); err != nil {
				return nil, err
			}
			r, err := probeLeader(c, p)
			if err == nil && p.KilledAt > 0 {
				r.LostAt, r.ReadyAt = ph.await(p.KilledAt)
			}
			return r, err
		},
		"stats": func(json.RawMessage) (any, error) {
			st := c.Stats()
			return statsReply{PID: os.Getpid(), Leader: st.Role == cluster.RoleLeader, Followers: st.Followers}, nil
		},
		"mem": func(json.RawMessage) (any, error) { return readMem(), nil },
		"profile": func(data json.RawMessage) (any, error) {
			var p struct {
				Path string `json:"path"` // empty: stop
			}
			if err := decodeArgs(data, &p); err != nil {
				return nil, err
			}
			return struct{}{}, prof.toggle(p.Path)
		},
	}
	closeFn := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.Close(ctx)
	}
	maps.Copy(cmds, pubSubCommands(sub, func(pb publication) error { return c.Publish(pb) }))
	return memberReady{PID: os.Getpid(), Leader: c.IsLeader(), Codec: codec.Name()}, cmds, closeFn, nil
}

// benchArg returns the argument of an echo invoke: size bytes of 'x', as a
// string or a []byte.
func benchArg(kind string, size int) (method string, arg any, err error) {
	method, ok := benchMethods[kind]
	if !ok {
		return "", nil, fmt.Errorf("clusterbench: unknown argument kind %q", kind)
	}
	s := strings.Repeat("x", size)
	if kind == "bytes" {
		return method, []byte(s), nil
	}
	return method, s, nil
}

// invokeEcho makes one echo invoke and checks the answer's length.
func invokeEcho(ctx context.Context, c *cluster.Client, method string, arg any, size int) error {
	var n int
	switch a := arg.(type) {
	case string:
		s, err := cluster.Call[string](ctx, c, method, a)
		if err != nil {
			return err
		}
		n = len(s)
	case []byte:
		b, err := cluster.Call[[]byte](ctx, c, method, a)
		if err != nil {
			return err
		}
		n = len(b)
	}
	if n != size {
		return fmt.Errorf("%w: %s returned %d bytes for %d", errEchoMismatch, method, n, size)
	}
	return nil
}

// sequentialInvoke samples one echo invoke at a time. AllocsPerOp counts
// every heap allocation of the process during the sampled calls (the
// client's, the codec's and the process's background work) per call.
func sequentialInvoke(c *cluster.Client, codec protocol.Codec, p seqArgs) (samplesReply, error) {
	method, arg, err := benchArg(p.Kind, p.Size)
	if err != nil {
		return samplesReply{}, err
	}
	ctx := context.Background()
	warmEnd := time.Now().Add(time.Duration(p.Warmup))
	for time.Now().Before(warmEnd) {
		if err := invokeEcho(ctx, c, method, arg, p.Size); err != nil {
			return samplesReply{}, err
		}
	}
	samples := make([]int64, 0, 1<<16)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	mallocs := ms.Mallocs
	end := time.Now().Add(time.Duration(p.Duration))
	for {
		start := time.Now()
		if err := invokeEcho(ctx, c, method, arg, p.Size); err != nil {
			return samplesReply{}, err
		}
		done := time.Now()
		samples = append(samples, done.Sub(start).Nanoseconds())
		if done.After(end) {
			break
		}
	}
	runtime.ReadMemStats(&ms)
	codecOps, err := codecAllocs(codec, arg)
	if err != nil {
		return samplesReply{}, err
	}
	return samplesReply{
		Samples:          samples,
		AllocsPerOp:      float64(ms.Mallocs-mallocs) / float64(len(samples)),
		CodecAllocsPerOp: codecOps,
	}, nil
}

// codecAllocs estimates the codec's own allocations in one echo invoke:
// encoding the argument and decoding the result (the same bytes) with the
// member's codec, as a follower does.
func codecAllocs(codec protocol.Codec, arg any) (float64, error) {
	const n = 1000
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.Mallocs
	for range n {
		data, err := codec.Append(nil, arg)
		if err != nil {
			return 0, err
		}
		switch arg.(type) {
		case string:
			var s string
			err = codec.Decode(data, &s)
		case []byte:
			var b []byte
			err = codec.Decode(data, &b)
		}
		if err != nil {
			return 0, err
		}
	}
	runtime.ReadMemStats(&ms)
	return float64(ms.Mallocs-before) / n, nil
}

// loadInvoke runs p.InFlight goroutines, each invoking in a loop from
// p.Start until the window ends, and counts the invokes that complete
// (the last ones after the window) and those that fail (which a saturated
// leader's response timeout causes).
func loadInvoke(c *cluster.Client, p loadArgs) (loadReply, error) {
	method, arg, err := benchArg(p.Kind, p.Size)
	if err != nil {
		return loadReply{}, err
	}
	waitUntil(p.Start)
	end := p.Start + p.Duration
	var (
		ops, failed atomic.Int64
		wg          sync.WaitGroup
		errOnce     sync.Once
		first       string
	)
	ctx := context.Background()
	for range max(p.InFlight, 1) {
		wg.Go(func() {
			for monoNow() < end {
				if err := invokeEcho(ctx, c, method, arg, p.Size); err != nil {
					errOnce.Do(func() { first = err.Error() })
					failed.Add(1)
					continue
				}
				ops.Add(1)
			}
		})
	}
	wg.Wait()
	return loadReply{Ops: ops.Load(), Elapsed: monoNow() - p.Start, Failed: failed.Load(), Error: first}, nil
}

// subscriber records the latency of each publication it receives.
type subscriber struct {
	mu  sync.Mutex
	got map[int64]int64 // seq → latency
}

func (s *subscriber) deliver(p publication) {
	lat := monoNow() - p.T
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.got == nil {
		s.got = map[int64]int64{}
	}
	if _, dup := s.got[p.Seq]; !dup {
		s.got[p.Seq] = lat
	}
}

// collect returns the deliveries of sequence numbers ≥ from and forgets
// everything older.
func (s *subscriber) collect(from int64) deliveries {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := deliveries{Seq: []int64{}, Lat: []int64{}}
	for seq, lat := range s.got {
		if seq < from {
			delete(s.got, seq)
			continue
		}
		d.Seq = append(d.Seq, seq)
		d.Lat = append(d.Lat, lat)
	}
	return d
}

// pubSubCommands are the "collect" and "publish" commands of a cluster
// member and of a relay's raw client: collect answers what sub received;
// publish sends paced publications through send.
func pubSubCommands(sub *subscriber, send func(publication) error) map[string]command {
	return map[string]command{
		"collect": func(data json.RawMessage) (any, error) {
			var p struct {
				From int64 `json:"from"`
			}
			if err := decodeArgs(data, &p); err != nil {
				return nil, err
			}
			return sub.collect(p.From), nil
		},
		"publish": func(data json.RawMessage) (any, error) {
			var p publishArgs
			if err := decodeArgs(data, &p); err != nil {
				return nil, err
			}
			return struct{}{}, publishPaced(p, send)
		},
	}
}

// publishPaced publishes p.Count values, one every p.Interval from
// p.Start (open loop: a slow delivery does not delay the next publish).
func publishPaced(p publishArgs, publish func(publication) error) error {
	for i := range p.Count {
		waitUntil(p.Start + i*p.Interval)
		if err := publish(publication{DataID: p.DataID, Seq: p.First + i, T: monoNow()}); err != nil {
			return err
		}
	}
	return nil
}

// probeLeader invokes ping until a leader other than p.DeadPID answers.
// Failed calls (the leader was lost with the call in flight) are retried
// after 100 µs; calls made while there is no leader wait for one.
func probeLeader(c *cluster.Client, p probeArgs) (probeReply, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(p.Timeout))
	defer cancel()
	var r probeReply
	var last error
	for ctx.Err() == nil {
		r.Attempts++
		pid, err := cluster.Call[int](ctx, c, "ping")
		if err == nil && pid != p.DeadPID {
			r.At, r.PID = monoNow(), pid
			return r, nil
		}
		if err != nil {
			last = err
		}
		time.Sleep(100 * time.Microsecond)
	}
	return r, fmt.Errorf("no leader other than pid %d answered within %v (%d attempts): %w",
		p.DeadPID, time.Duration(p.Timeout), r.Attempts, errors.Join(ctx.Err(), last))
}

// readMem collects garbage, returns freed memory to the OS and reads the
// process's memory use.
func readMem() memReply {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memReply{
		RSS:        residentBytes(),
		GoInUse:    int64(ms.HeapInuse + ms.StackInuse),
		Goroutines: runtime.NumGoroutine(),
	}
}

// profiler writes a CPU profile between a start and a stop.
type profiler struct {
	f *os.File
}

// toggle starts a CPU profile into path, or with an empty path stops the
// one running.
func (p *profiler) toggle(path string) error {
	if path == "" {
		if p.f == nil {
			return errors.New("no CPU profile running")
		}
		pprof.StopCPUProfile()
		err := p.f.Close()
		p.f = nil
		return err
	}
	if p.f != nil {
		return errors.New("a CPU profile is already running")
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return err
	}
	p.f = f
	return nil
}
