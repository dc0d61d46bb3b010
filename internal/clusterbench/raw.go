package clusterbench

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-clusterclient/clusterclient/transport"
)

// The raw baselines: two processes exchanging bytes over a conn of the same
// transport, with nothing of clusterclient above it. The echo server writes
// back whatever it reads; a raw client either ping-pongs one message at a
// time or keeps a fixed number of messages in flight (pipelined echo).

// endpointArgs are the setup arguments of the raw roles.
type endpointArgs struct {
	Transport string `json:"transport"`
	Addr      string `json:"addr"`
}

// endpoint decodes the setup arguments of a raw role and builds its
// transport.
func endpoint(raw json.RawMessage) (endpointArgs, transport.Transport, error) {
	var a endpointArgs
	if err := decodeArgs(raw, &a); err != nil {
		return a, nil, err
	}
	tr, err := newTransport(a.Transport)
	return a, tr, err
}

// echoServerRole listens on the address and echoes every conn.
func echoServerRole(raw json.RawMessage) (any, map[string]command, func(), error) {
	return serveConns(raw, func(_ *connSet, c net.Conn) { echo(c) })
}

// connSet is a raw server's conns; a conn may be marked (the relay's
// subscribers).
type connSet struct {
	mu    sync.Mutex
	conns map[net.Conn]bool // value: marked
}

func (s *connSet) mark(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns[c] = true
}

// marked appends the marked conns to dst.
func (s *connSet) marked(dst []net.Conn) []net.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c, m := range s.conns {
		if m {
			dst = append(dst, c)
		}
	}
	return dst
}

// serveConns listens on the role's address and runs handle on each conn
// in a goroutine of its own (the conn is closed when handle returns);
// closing the role closes the listener and every conn and waits for the
// handlers.
func serveConns(raw json.RawMessage, handle func(*connSet, net.Conn)) (any, map[string]command, func(), error) {
	a, tr, err := endpoint(raw)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := tr.Listen(ctx, a.Addr)
	if err != nil {
		return nil, nil, nil, err
	}
	var wg sync.WaitGroup
	set := &connSet{conns: map[net.Conn]bool{}}
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			set.mu.Lock()
			set.conns[c] = false
			set.mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				handle(set, c)
			})
		}
	})
	closeFn := func() {
		l.Close()
		set.mu.Lock()
		for c := range set.conns {
			c.Close()
		}
		set.mu.Unlock()
		wg.Wait()
	}
	return struct{}{}, nil, closeFn, nil
}

// echo writes back what it reads until the conn fails.
func echo(c net.Conn) {
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// pingPongArgs: sequential round trips of Size bytes for Duration, after
// Warmup (not sampled).
type pingPongArgs struct {
	Size     int   `json:"size"`
	Duration int64 `json:"duration_ns"`
	Warmup   int64 `json:"warmup_ns"`
}

// samplesReply carries per-operation latencies in nanoseconds, and for
// clients of the cluster the heap allocations per operation in the
// process that made them.
type samplesReply struct {
	Samples     []int64 `json:"samples"`
	AllocsPerOp float64 `json:"allocs_per_op,omitempty"`
	// CodecAllocsPerOp estimates the part of AllocsPerOp that is the
	// codec's own (encoding the argument, decoding the result).
	CodecAllocsPerOp float64 `json:"codec_allocs_per_op,omitempty"`
}

// loadArgs: keep InFlight operations of Size bytes outstanding from
// Start (monoNow clock) until Duration has passed, then let those in
// flight finish. Kind ("string" or "bytes") matters only to cluster
// members.
type loadArgs struct {
	Size     int    `json:"size"`
	Kind     string `json:"kind,omitempty"`
	InFlight int    `json:"inflight"`
	Start    int64  `json:"start_ns"`
	Duration int64  `json:"duration_ns"`
}

// loadReply: Ops operations completed between the start and Elapsed later,
// when the last one in flight completed.
type loadReply struct {
	Ops     int64 `json:"ops"`
	Elapsed int64 `json:"elapsed_ns"`
	// Failed counts calls that failed (a response timeout, say); they are
	// not in Ops. Error is the first failure's message.
	Failed int64  `json:"failed,omitempty"`
	Error  string `json:"error,omitempty"`
}

// errEchoMismatch: the echo did not return the message that was sent.
var errEchoMismatch = errors.New("clusterbench: echo returned other bytes than sent")

// rawClientRole dials the echo server and runs the raw workloads on that
// one conn.
func rawClientRole(raw json.RawMessage) (any, map[string]command, func(), error) {
	a, tr, err := endpoint(raw)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := tr.Dial(ctx, a.Addr)
	if err != nil {
		return nil, nil, nil, err
	}
	cmds := map[string]command{
		"pingpong": func(data json.RawMessage) (any, error) {
			var p pingPongArgs
			if err := decodeArgs(data, &p); err != nil {
				return nil, err
			}
			s, err := pingPong(c, p)
			return samplesReply{Samples: s}, err
		},
		"echo": func(data json.RawMessage) (any, error) {
			var p loadArgs
			if err := decodeArgs(data, &p); err != nil {
				return nil, err
			}
			return pipelinedEcho(c, p)
		},
	}
	maps.Copy(cmds, fanCommands(c))
	return struct{}{}, cmds, func() { c.Close() }, nil
}

// pingPong sends a message of p.Size bytes (at least 8: a sequence number
// leads it, checked on return), waits for its echo, and repeats.
func pingPong(c net.Conn, p pingPongArgs) ([]int64, error) {
	size := max(p.Size, 8)
	msg, back := make([]byte, size), make([]byte, size)
	for i := range msg {
		msg[i] = 'x'
	}
	samples := make([]int64, 0, 1<<16)
	now := time.Now()
	warmEnd, end := now.Add(time.Duration(p.Warmup)), now.Add(time.Duration(p.Warmup+p.Duration))
	for seq := uint64(1); ; seq++ {
		binary.LittleEndian.PutUint64(msg, seq)
		start := time.Now()
		if _, err := c.Write(msg); err != nil {
			return nil, fmt.Errorf("ping-pong write: %w", err)
		}
		if _, err := io.ReadFull(c, back); err != nil {
			return nil, fmt.Errorf("ping-pong read: %w", err)
		}
		done := time.Now()
		if binary.LittleEndian.Uint64(back) != seq {
			return nil, fmt.Errorf("%w: sequence %d came back as %d", errEchoMismatch, seq, binary.LittleEndian.Uint64(back))
		}
		if start.After(warmEnd) {
			samples = append(samples, done.Sub(start).Nanoseconds())
		}
		if done.After(end) && len(samples) > 0 {
			return samples, nil
		}
	}
}

// pipelinedEcho keeps p.InFlight messages outstanding on c: a writer
// goroutine writes one message per credit, the caller reads the echoes
// and hands a credit back for each until the window ends. Then it stops
// the writer and reads the echoes still in flight, which count too.
func pipelinedEcho(c net.Conn, p loadArgs) (loadReply, error) {
	size, inflight := max(p.Size, 1), max(p.InFlight, 1)
	msg := make([]byte, size)
	for i := range msg {
		msg[i] = 'x'
	}
	waitUntil(p.Start)
	end := p.Start + p.Duration

	// Invariant until credits closes: credits queued + messages in flight
	// = inflight, so the reader never waits for an echo nobody will write.
	credits := make(chan struct{}, inflight)
	for range inflight {
		credits <- struct{}{}
	}
	var written atomic.Int64        // counted before each write: read ≤ written
	wrote := make(chan struct{}, 1) // a token after each count
	wdone := make(chan struct{})
	var werr error
	go func() {
		defer close(wdone)
		for range credits {
			written.Add(1)
			select {
			case wrote <- struct{}{}:
			default:
			}
			if _, err := c.Write(msg); err != nil {
				werr = err
				return
			}
		}
	}()

	r := bufio.NewReaderSize(c, 64<<10)
	back := make([]byte, size)
	var read int64
	for monoNow() < end {
		if _, err := io.ReadFull(r, back); err != nil {
			close(credits)
			<-wdone
			return loadReply{}, fmt.Errorf("pipelined echo read: %w", errors.Join(err, werr))
		}
		read++
		credits <- struct{}{}
	}
	close(credits) // the writer writes the credits still queued, then ends
	for finished := false; ; {
		if read < written.Load() {
			if _, err := io.ReadFull(r, back); err != nil {
				<-wdone
				return loadReply{}, fmt.Errorf("pipelined echo drain: %w", errors.Join(err, werr))
			}
			read++
			continue
		}
		if finished {
			break
		}
		select {
		case <-wdone:
			finished = true
		case <-wrote:
		}
	}
	elapsed := monoNow() - p.Start
	if werr != nil {
		return loadReply{}, fmt.Errorf("pipelined echo write: %w", werr)
	}
	if r.Buffered() > 0 {
		return loadReply{}, fmt.Errorf("%w: %d bytes beyond the messages sent", errEchoMismatch, r.Buffered())
	}
	return loadReply{Ops: read, Elapsed: elapsed}, nil
}

// waitUntil sleeps until the monoNow clock reaches t.
func waitUntil(t int64) {
	if d := t - monoNow(); d > 0 {
		time.Sleep(time.Duration(d))
	}
}

// The raw baseline of publish: a publisher process sends each publication
// to a relay process, which writes it to the conn of every subscriber
// process: the two hops of a publish through a leader, with nothing of
// clusterclient. A conn that starts with fanSubscribe subscribes; one that
// starts with fanPublish sends fanMsgSize messages (sequence number and
// publish time), each relayed to every subscriber as it is.
const (
	fanSubscribe = 'S'
	fanPublish   = 'P'
	fanMsgSize   = 16
)

// relayRole listens on the address and relays publications.
func relayRole(raw json.RawMessage) (any, map[string]command, func(), error) {
	return serveConns(raw, func(set *connSet, c net.Conn) {
		var kind [1]byte
		if _, err := io.ReadFull(c, kind[:]); err != nil {
			return
		}
		if kind[0] == fanSubscribe {
			set.mark(c)
			io.Copy(io.Discard, c) // until it closes
			return
		}
		msg := make([]byte, fanMsgSize)
		var subs []net.Conn
		for {
			if _, err := io.ReadFull(c, msg); err != nil {
				return
			}
			subs = set.marked(subs[:0])
			for _, s := range subs {
				s.Write(msg)
			}
		}
	})
}

// fanCommands are a raw client's commands at a relay; they answer as a
// cluster member's do, so the publish measurement serves both.
func fanCommands(c net.Conn) map[string]command {
	var (
		sub      subscriber
		once     sync.Once
		helloErr error
	)
	hello := func(kind byte) error {
		once.Do(func() { _, helloErr = c.Write([]byte{kind}) })
		return helloErr
	}
	msg := make([]byte, fanMsgSize)
	cmds := pubSubCommands(&sub, func(pb publication) error {
		if err := hello(fanPublish); err != nil {
			return err
		}
		binary.LittleEndian.PutUint64(msg, uint64(pb.Seq))
		binary.LittleEndian.PutUint64(msg[8:], uint64(pb.T))
		_, err := c.Write(msg)
		return err
	})
	cmds["subscribe"] = func(json.RawMessage) (any, error) {
		if err := hello(fanSubscribe); err != nil {
			return nil, err
		}
		go func() {
			in := make([]byte, fanMsgSize)
			for {
				if _, err := io.ReadFull(c, in); err != nil {
					return
				}
				sub.deliver(publication{Seq: int64(binary.LittleEndian.Uint64(in)), T: int64(binary.LittleEndian.Uint64(in[8:]))})
			}
		}()
		return struct{}{}, nil
	}
	return cmds
}
