package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
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

// echoServerRole listens on the address and echoes every conn.
func echoServerRole(raw json.RawMessage) (any, map[string]command, func(), error) {
	var a endpointArgs
	if err := decodeArgs(raw, &a); err != nil {
		return nil, nil, nil, err
	}
	tr, err := newTransport(a.Transport)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := tr.Listen(ctx, a.Addr)
	if err != nil {
		return nil, nil, nil, err
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
	)
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				echo(c)
			})
		}
	})
	closeFn := func() {
		l.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
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
// Start (monoNow clock) for Duration, counting those that complete in that
// window. Kind ("string" or "bytes") matters only to cluster members.
type loadArgs struct {
	Size     int    `json:"size"`
	Kind     string `json:"kind,omitempty"`
	InFlight int    `json:"inflight"`
	Start    int64  `json:"start_ns"`
	Duration int64  `json:"duration_ns"`
}

type loadReply struct {
	Ops int64 `json:"ops"`
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
	var a endpointArgs
	if err := decodeArgs(raw, &a); err != nil {
		return nil, nil, nil, err
	}
	tr, err := newTransport(a.Transport)
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
			n, err := pipelinedEcho(c, p)
			return loadReply{Ops: n}, err
		},
	}
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
		if done.After(end) {
			return samples, nil
		}
		if start.After(warmEnd) {
			samples = append(samples, done.Sub(start).Nanoseconds())
		}
	}
}

// pipelinedEcho keeps p.InFlight messages outstanding on c: one goroutine
// writes a message whenever fewer are in flight, the caller reads the
// echoes. It counts the echoes read within the window.
func pipelinedEcho(c net.Conn, p loadArgs) (int64, error) {
	size, inflight := max(p.Size, 1), max(p.InFlight, 1)
	msg := make([]byte, size)
	for i := range msg {
		msg[i] = 'x'
	}
	waitUntil(p.Start)
	end := p.Start + p.Duration

	credits := make(chan struct{}, inflight)
	for range inflight {
		credits <- struct{}{}
	}
	var written atomic.Int64
	stop := make(chan struct{})
	werr := make(chan error, 1)
	go func() {
		for {
			select {
			case <-credits:
			case <-stop:
				werr <- nil
				return
			}
			if _, err := c.Write(msg); err != nil {
				werr <- err
				return
			}
			written.Add(1)
		}
	}()

	r := bufio.NewReaderSize(c, 64<<10)
	back := make([]byte, size)
	var read, ops int64
	var rerr error
	for {
		if _, err := io.ReadFull(r, back); err != nil {
			rerr = err
			break
		}
		read++
		if monoNow() >= end {
			break
		}
		ops++
		credits <- struct{}{}
	}
	close(stop)
	if err := <-werr; err != nil {
		return 0, fmt.Errorf("pipelined echo write: %w", err)
	}
	if rerr != nil {
		return 0, fmt.Errorf("pipelined echo read: %w", rerr)
	}
	// Drain the echoes still in flight so the conn is clean for the next
	// measurement.
	for read < written.Load() {
		if _, err := io.ReadFull(r, back); err != nil {
			return 0, fmt.Errorf("pipelined echo drain: %w", err)
		}
		read++
	}
	if r.Buffered() > 0 {
		return 0, fmt.Errorf("%w: %d bytes beyond the messages sent", errEchoMismatch, r.Buffered())
	}
	return ops, nil
}

// waitUntil sleeps until the monoNow clock reaches t.
func waitUntil(t int64) {
	if d := t - monoNow(); d > 0 {
		time.Sleep(time.Duration(d))
	}
}
