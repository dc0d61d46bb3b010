package cbor_test

import (
	"bytes"
	"context"
	"encoding/gob"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/codec/cbor"
	"github.com/go-clusterclient/clusterclient/protocol"
	"github.com/go-clusterclient/clusterclient/transport/tcp"
)

type small struct {
	Service string            `json:"service"`
	Port    int               `json:"port"`
	Healthy bool              `json:"healthy"`
	Weight  float64           `json:"weight"`
	Tags    []string          `json:"tags"`
	Meta    map[string]string `json:"meta"`
}

var benchValues = []struct {
	name string
	v    any
	new  func() any
}{
	{"64B-string", strings.Repeat("x", 64), func() any { return new(string) }},
	{"4KiB-bytes", bytes.Repeat([]byte{0xa5}, 4096), func() any { return new([]byte) }},
	{"small-struct", small{Service: "billing", Port: 8443, Healthy: true, Weight: 0.75,
		Tags: []string{"blue", "eu-west"}, Meta: map[string]string{"zone": "b", "version": "1.4.2"}},
		func() any { return new(small) }},
}

// gobCodec is encoding/gob as a stateless protocol.Codec would have to use
// it: a new Encoder and Decoder per value, so every value carries its type
// description.
type gobCodec struct{}

func (gobCodec) Name() string { return "gob" }
func (gobCodec) Append(dst []byte, v any) ([]byte, error) {
	buf := bytes.NewBuffer(dst)
	err := gob.NewEncoder(buf).Encode(v)
	return buf.Bytes(), err
}
func (gobCodec) Decode(data []byte, v any) error {
	return gob.NewDecoder(bytes.NewReader(data)).Decode(v)
}

var benchCodecs = []protocol.Codec{protocol.JSON, cbor.Codec, gobCodec{}}

// BenchmarkCodec: encoding (Append into a reused buffer) and decoding into
// a typed target, per codec and value; size-B is the encoded size.
//
//	go test -run '^$' -bench Codec -benchmem .
func BenchmarkCodec(b *testing.B) {
	for _, bv := range benchValues {
		for _, c := range benchCodecs {
			enc, err := c.Append(nil, bv.v)
			if err != nil {
				b.Fatal(err)
			}
			b.Run("encode/"+bv.name+"/"+c.Name(), func(b *testing.B) {
				buf := make([]byte, 0, 8192)
				b.ReportAllocs()
				b.SetBytes(int64(len(enc)))
				for b.Loop() {
					if buf, err = c.Append(buf[:0], bv.v); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(enc)), "size-B")
			})
			b.Run("decode/"+bv.name+"/"+c.Name(), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(enc)))
				for b.Loop() {
					if err := c.Decode(enc, bv.new()); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// benchEcho answers its first argument without decoding it.
func benchEcho(context.Context, cluster.Emit) (*cluster.Service, error) {
	return &cluster.Service{Methods: map[string]cluster.Handler{
		"echo": func(_ context.Context, a cluster.Args) (any, error) { return a.Raw(0) },
	}}, nil
}

func freeAddr(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return "127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// reportCPU reports the CPU time the process (leader and follower) used
// per call since cpu: unlike ns/op, other work on the host barely moves it.
func reportCPU(b *testing.B, cpu time.Duration) {
	if used := cpuTime() - cpu; cpu > 0 && b.N > 0 {
		b.ReportMetric(float64(used.Microseconds())/float64(b.N), "cpu-µs/op")
	}
}

// followerOf starts an in-process leader and follower over loopback TCP
// with codec c, both closed when b ends, and returns the follower.
func followerOf(b *testing.B, c protocol.Codec) *cluster.Client {
	b.Helper()
	opts := []cluster.Option{cluster.WithTransport(tcp.New(tcp.Config{})), cluster.WithAddr(freeAddr(b)),
		cluster.WithCodec(c), cluster.WithSingleMode(false), cluster.WithResponseTimeout(10 * time.Second),
		cluster.WithLogger(slog.New(slog.DiscardHandler))}
	var cs []*cluster.Client
	for range 2 {
		cl, err := cluster.New("Bench", benchEcho, opts...)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { cl.Close(context.Background()) })
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = cl.Ready(ctx)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		cs = append(cs, cl)
	}
	if cs[1].IsLeader() {
		b.Fatal("the second client leads")
	}
	return cs[1]
}

// BenchmarkInvokeFollower: a follower's sequential echo calls through an
// in-process leader over loopback TCP, as cluster's benchmark of the same
// name, with each codec; the follower decodes the result into the
// argument's type.
//
//	go test -run '^$' -bench InvokeFollower -benchmem .
func BenchmarkInvokeFollower(b *testing.B) {
	for _, bv := range benchValues[:2] {
		for _, c := range []protocol.Codec{protocol.JSON, cbor.Codec} {
			b.Run("tcp/"+bv.name+"/"+c.Name(), func(b *testing.B) {
				f := followerOf(b, c)
				ctx := context.Background()
				b.ReportAllocs()
				cpu := cpuTime()
				for b.Loop() {
					res, err := f.Invoke(ctx, "echo", bv.v)
					if err != nil {
						b.Fatal(err)
					}
					if err := res.Decode(bv.new()); err != nil {
						b.Fatal(err)
					}
				}
				reportCPU(b, cpu)
			})
		}
	}
}

// BenchmarkInvokeThroughput: 64 calls in flight from one follower through
// an in-process leader over loopback TCP, per codec, calls/s reported.
// With the CPUs busy, the codec's cost shows here more than in the
// latency of one call.
//
//	go test -run '^$' -bench InvokeThroughput -benchmem .
func BenchmarkInvokeThroughput(b *testing.B) {
	for _, bv := range benchValues[:2] {
		for _, c := range []protocol.Codec{protocol.JSON, cbor.Codec} {
			b.Run("tcp/"+bv.name+"/"+c.Name(), func(b *testing.B) {
				f := followerOf(b, c)
				ctx := context.Background()
				work := make(chan struct{}, b.N)
				for range b.N {
					work <- struct{}{}
				}
				close(work)
				b.ReportAllocs()
				b.ResetTimer()
				start, cpu := time.Now(), cpuTime()
				var wg sync.WaitGroup
				for range 64 {
					wg.Go(func() {
						for range work {
							res, err := f.Invoke(ctx, "echo", bv.v)
							if err == nil {
								err = res.Decode(bv.new())
							}
							if err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				b.StopTimer()
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
				reportCPU(b, cpu)
			})
		}
	}
}
