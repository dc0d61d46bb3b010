package transporttest

import (
	"context"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/transport"
)

// reportPercentiles adds p50 and p99 of samples to b's results.
func reportPercentiles(b *testing.B, samples []time.Duration) {
	if len(samples) == 0 {
		return
	}
	slices.Sort(samples)
	b.ReportMetric(float64(percentile(samples, 0.50).Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(percentile(samples, 0.99).Nanoseconds()), "p99-ns")
}

// BenchmarkPingPong measures round trips of size bytes over one conn of h's
// transport: the dialer writes size bytes, the acceptor echoes them, the
// dialer reads them back. One op is one round trip.
func BenchmarkPingPong(b *testing.B, h Harness, size int) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tr, addr := h.NewTransport(b), h.NewAddr(b)
	l, err := tr.Listen(ctx, addr)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	echoed := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			echoed <- err
			return
		}
		defer c.Close()
		buf := make([]byte, size)
		for {
			if _, err := io.ReadFull(c, buf); err != nil {
				echoed <- nil // the dialer closed
				return
			}
			if _, err := c.Write(buf); err != nil {
				echoed <- err
				return
			}
		}
	}()
	c, err := tr.Dial(ctx, addr)
	if err != nil {
		b.Fatal(err)
	}
	msg, reply := make([]byte, size), make([]byte, size)
	samples := make([]time.Duration, 0, b.N)
	b.SetBytes(int64(size))
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, reply); err != nil {
			b.Fatal(err)
		}
		samples = append(samples, time.Since(start))
	}
	b.StopTimer()
	c.Close()
	if err := <-echoed; err != nil {
		b.Fatal(err)
	}
	reportPercentiles(b, samples)
}

// BenchmarkFailoverListen measures, for a multi-process transport, the time
// from SIGKILL of a child process that listens on an address to a
// successful Listen on it in the benchmark process (retrying while the
// address is still in use). One op is one failover; starting each child is
// not timed. It needs the kit's child side (MaybeRunChild) in TestMain.
func BenchmarkFailoverListen(b *testing.B, h Harness) {
	tr, addr := h.NewTransport(b), h.NewAddr(b)
	if !transport.IsMultiProcess(tr) {
		b.Skipf("%s is not multi-process", tr.Name())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	samples := make([]time.Duration, 0, b.N)
	attempts := 0
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		child := StartContender(b, h)
		if res, err := child.Listen(ctx, addr); err != nil || !res.OK {
			b.Fatalf("child Listen(%q): %v %s", addr, err, res.Err)
		}
		b.StartTimer()
		start := time.Now()
		if err := child.Kill(); err != nil {
			b.Fatal(err)
		}
		l, n, err := listenWithin(ctx, tr, addr, 10*time.Second)
		took := time.Since(start)
		b.StopTimer()
		if err != nil {
			b.Fatalf("Listen(%q) after SIGKILL: %v", addr, err)
		}
		samples = append(samples, took)
		attempts += n
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
		if err := child.Wait(ctx); err != nil {
			b.Fatal(err)
		}
	}
	reportPercentiles(b, samples)
	b.ReportMetric(float64(attempts)/float64(b.N), "attempts/op")
}

func listenWithin(ctx context.Context, tr transport.Transport, addr string, d time.Duration) (net.Listener, int, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return ListenWhenFree(ctx, tr, addr)
}
