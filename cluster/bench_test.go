package cluster_test

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/protocol"
	"github.com/go-clusterclient/clusterclient/transport"
	"github.com/go-clusterclient/clusterclient/transport/tcp"
)

// benchEcho answers its first argument without decoding it (the Raw fast
// path).
func benchEcho(context.Context, cluster.Emit) (*cluster.Service, error) {
	var mu sync.Mutex
	var push func(any)
	return &cluster.Service{
		Subscribe: func(_ cluster.Reg, p func(any)) error { mu.Lock(); push = p; mu.Unlock(); return nil },
		Publish: func(_ context.Context, r cluster.Reg) error {
			mu.Lock()
			p := push
			mu.Unlock()
			if p != nil {
				p(protocol.Raw(r.Bytes()))
			}
			return nil
		},
		Methods: map[string]cluster.Handler{
			"echo": func(_ context.Context, a cluster.Args) (any, error) { return a.Raw(0) },
		},
	}, nil
}

type benchNet struct {
	name string
	make func(b *testing.B) (transport.Transport, string)
}

var benchNets = []benchNet{
	{"mem", func(b *testing.B) (transport.Transport, string) { return memNet(b) }},
	{"tcp", func(b *testing.B) (transport.Transport, string) {
		return tcp.New(tcp.Config{}), "127.0.0.1:" + strconv.Itoa(freePort(b))
	}},
}

func benchPair(b *testing.B, n benchNet, codec protocol.Codec, followers int) (*cluster.Client, []*cluster.Client) {
	b.Helper()
	tr, addr := n.make(b)
	opts := []cluster.Option{cluster.WithTransport(tr), cluster.WithAddr(addr), cluster.WithCodec(codec),
		cluster.WithLogger(testLogger()), cluster.WithSingleMode(false), cluster.WithResponseTimeout(10 * time.Second)}
	mk := func() *cluster.Client {
		c, err := cluster.New("Bench", benchEcho, opts...)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close(context.Background()) })
		ready(b, c)
		return c
	}
	l := mk()
	var fs []*cluster.Client
	for range followers {
		fs = append(fs, mk())
	}
	return l, fs
}

func percentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	at := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) / 1e3 }
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
}

// BenchmarkInvokeFollower: one follower's sequential round trips through
// the leader, with 64 B and 4 KiB strings and []byte.
func BenchmarkInvokeFollower(b *testing.B) {
	args := map[string]any{
		"64B-string":  strings.Repeat("x", 64),
		"4KiB-string": strings.Repeat("x", 4096),
		"4KiB-bytes":  make([]byte, 4096),
	}
	for _, n := range benchNets {
		for _, codec := range []protocol.Codec{protocol.JSON, protocol.SerializeJSON} {
			for _, name := range []string{"64B-string", "4KiB-string", "4KiB-bytes"} {
				b.Run(n.name+"/"+codec.Name()+"/"+name, func(b *testing.B) {
					_, fs := benchPair(b, n, codec, 1)
					f, arg := fs[0], args[name]
					ctx := context.Background()
					lat := make([]time.Duration, 0, b.N)
					b.ReportAllocs()
					b.ResetTimer()
					for range b.N {
						start := time.Now()
						res, err := f.Invoke(ctx, "echo", arg)
						if err != nil {
							b.Fatal(err)
						}
						_ = res
						lat = append(lat, time.Since(start))
					}
					b.StopTimer()
					percentiles(b, lat)
				})
			}
		}
	}
}

// BenchmarkInvokeLeaderLocal: the leader's own calls (no network).
func BenchmarkInvokeLeaderLocal(b *testing.B) {
	l, _ := benchPair(b, benchNets[0], protocol.JSON, 0)
	ctx := context.Background()
	arg := strings.Repeat("x", 64)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := l.Invoke(ctx, "echo", arg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInvokeThroughput: 64 calls in flight per follower, 1 and 4
// followers, 64 B strings; calls/s reported.
func BenchmarkInvokeThroughput(b *testing.B) {
	for _, n := range benchNets {
		for _, followers := range []int{1, 4} {
			b.Run(fmt.Sprintf("%s/followers=%d", n.name, followers), func(b *testing.B) {
				_, fs := benchPair(b, n, protocol.JSON, followers)
				arg := strings.Repeat("x", 64)
				ctx := context.Background()
				work := make(chan struct{}, b.N)
				for range b.N {
					work <- struct{}{}
				}
				close(work)
				b.ReportAllocs()
				b.ResetTimer()
				start := time.Now()
				var wg sync.WaitGroup
				for _, f := range fs {
					for range 64 {
						wg.Add(1)
						go func() {
							defer wg.Done()
							for range work {
								if _, err := f.Invoke(ctx, "echo", arg); err != nil {
									b.Error(err)
									return
								}
							}
						}()
					}
				}
				wg.Wait()
				b.StopTimer()
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
			})
		}
	}
}

// BenchmarkPublishDeliver: one publish until every subscriber (on the
// leader and on N followers) got it.
func BenchmarkPublishDeliver(b *testing.B) {
	for _, n := range benchNets {
		for _, followers := range []int{4, 32} {
			b.Run(fmt.Sprintf("%s/followers=%d", n.name, followers), func(b *testing.B) {
				l, fs := benchPair(b, n, protocol.JSON, followers)
				got := make(chan string, (followers+1)*4)
				for _, c := range append([]*cluster.Client{l}, fs...) {
					if _, err := cluster.SubscribeTyped(c, reg{Key: "bench"}, func(v reg) { got <- v.Value }); err != nil {
						b.Fatal(err)
					}
				}
				eventually(b, wait, "every subscribe reached the leader", func() bool {
					return cluster.SubscribersForTest(l, reg{Key: "bench"}) == followers+1
				})
				lat := make([]time.Duration, 0, b.N)
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					v := strconv.Itoa(i)
					start := time.Now()
					if err := l.Publish(reg{Key: "bench", Value: v}); err != nil {
						b.Fatal(err)
					}
					for seen := 0; seen < followers+1; {
						if <-got == v {
							seen++
						}
					}
					lat = append(lat, time.Since(start))
					l.Unpublish(reg{Key: "bench", Value: v})
				}
				b.StopTimer()
				percentiles(b, lat)
			})
		}
	}
}
