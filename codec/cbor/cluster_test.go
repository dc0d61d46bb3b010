package cbor_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/codec/cbor"
	"github.com/go-clusterclient/clusterclient/protocol"
	"github.com/go-clusterclient/clusterclient/transport/mem"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var addrSeq atomic.Int32

// memOpts gives the options of one in-process cluster on a fresh mem
// address.
func memOpts(t testing.TB) []cluster.Option {
	t.Helper()
	tr, err := mem.New(mem.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return []cluster.Option{cluster.WithTransport(tr), cluster.WithAddr(fmt.Sprintf("cbor-test-%d", addrSeq.Add(1))),
		cluster.WithSingleMode(false), cluster.WithResponseTimeout(5 * time.Second),
		cluster.WithRegisterRetry(50 * time.Millisecond),
		cluster.WithLogger(slog.New(slog.DiscardHandler))}
}

type item struct {
	Key   string `json:"key"`
	Value []byte `json:"value,omitempty"`
}

type described struct {
	Size  int    `json:"size"`
	Head  byte   `json:"head"`
	Label string `json:"label"`
}

// service is the real client of the tests: echo, describe, fail, and a
// subscription that pushes every publication of its key.
func service(context.Context, cluster.Emit) (*cluster.Service, error) {
	var mu sync.Mutex
	pushes := map[string][]func(any){}
	return &cluster.Service{
		Subscribe: func(r cluster.Reg, push func(any)) error {
			var it item
			if err := r.Decode(&it); err != nil { // a subscription's reg is JSON
				return err
			}
			mu.Lock()
			pushes[it.Key] = append(pushes[it.Key], push)
			mu.Unlock()
			return nil
		},
		Publish: func(_ context.Context, r cluster.Reg) error {
			var it item
			if err := r.Decode(&it); err != nil { // a publication's is the channel codec's
				return err
			}
			mu.Lock()
			ps := pushes[it.Key]
			mu.Unlock()
			for _, p := range ps {
				p(it)
			}
			return nil
		},
		Methods: map[string]cluster.Handler{
			"echo": func(_ context.Context, a cluster.Args) (any, error) { return a.Raw(0) },
			"describe": func(_ context.Context, a cluster.Args) (any, error) {
				var b []byte
				var s string
				if err := a.Decode(0, &b); err != nil {
					return nil, err
				}
				if err := a.Decode(1, &s); err != nil {
					return nil, err
				}
				return described{Size: len(b), Head: b[0], Label: s}, nil
			},
			"fail": func(context.Context, cluster.Args) (any, error) {
				return nil, &protocol.RemoteError{Name: "TypeError", Message: "bad input", Code: "E_BAD"}
			},
		},
	}, nil
}

func newClient(t *testing.T, opts []cluster.Option, extra ...cluster.Option) *cluster.Client {
	t.Helper()
	c, err := cluster.New("CBOR", service, append(append([]cluster.Option(nil), opts...), extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func ready(t *testing.T, c *cluster.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Ready(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestCluster: a leader and a follower Client with the CBOR codec invoke
// with []byte and string arguments, get errors back, and subscribe and
// publish.
func TestCluster(t *testing.T) {
	opts := append(memOpts(t), cluster.WithCodec(cbor.Codec))
	l := newClient(t, opts)
	ready(t, l)
	f := newClient(t, opts)
	ready(t, f)
	if !l.IsLeader() || f.IsLeader() {
		t.Fatalf("roles: %v %v", l.Role(), f.Role())
	}
	if got := l.Stats().Followers; got != 1 {
		t.Fatalf("followers %d", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	payload := make([]byte, 4096)
	for i := range payload {
		payload[i] = byte(i)
	}
	for _, c := range []*cluster.Client{f, l} {
		got, err := cluster.Call[[]byte](ctx, c, "echo", payload)
		if err != nil || string(got) != string(payload) {
			t.Fatalf("echo []byte: %v (%d bytes)", err, len(got))
		}
		s, err := cluster.Call[string](ctx, c, "echo", "héllo \x00 wörld")
		if err != nil || s != "héllo \x00 wörld" {
			t.Fatalf("echo string: %q %v", s, err)
		}
		d, err := cluster.Call[described](ctx, c, "describe", payload[7:], "tail")
		if err != nil || d != (described{Size: 4089, Head: 7, Label: "tail"}) {
			t.Fatalf("describe: %+v %v", d, err)
		}
		// The bytes on the wire are CBOR: a 4 KiB byte string has a
		// 3-byte head, no base64.
		res, err := c.Invoke(ctx, "echo", payload)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := res.Raw()
		if err != nil || len(raw) != 3+4096 || raw[0] != 0x59 {
			t.Fatalf("raw result: %d bytes, % x, %v", len(raw), raw[:3], err)
		}
		_, err = cluster.Call[any](ctx, c, "fail")
		var re *protocol.RemoteError
		if !errors.As(err, &re) || re.Name != "TypeError" || re.Code != "E_BAD" || re.Message != "bad input" {
			t.Fatalf("fail: %#v", err)
		}
	}

	got := make(chan item, 4)
	if _, err := cluster.SubscribeTyped(f, item{Key: "k"}, func(it item) { got <- it }); err != nil {
		t.Fatal(err)
	}
	// The subscription reaches the leader's real client asynchronously:
	// publish until the follower hears of it.
	deadline := time.After(10 * time.Second)
	for i := 0; ; i++ {
		want := []byte{0xff, byte(i), 0}
		if err := l.Publish(item{Key: "k", Value: want}); err != nil {
			t.Fatal(err)
		}
		select {
		case it := <-got:
			if it.Key != "k" || len(it.Value) != 3 || it.Value[0] != 0xff {
				t.Fatalf("pushed %+v", it)
			}
			if err := f.Publish(item{Key: "k", Value: []byte("from the follower")}); err != nil {
				t.Fatal(err)
			}
			for {
				select {
				case it := <-got:
					if string(it.Value) == "from the follower" {
						return
					}
				case <-deadline:
					t.Fatal("the follower's publication never arrived")
				}
			}
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatal("no push")
		}
	}
}

// TestCodecMismatch: a CBOR follower of a JSON leader, and a JSON follower
// of a CBOR leader, are refused with an error that names both codecs.
func TestCodecMismatch(t *testing.T) {
	for _, c := range []struct{ leader, follower protocol.Codec }{
		{protocol.JSON, cbor.Codec},
		{cbor.Codec, protocol.JSON},
		{protocol.SerializeJSON, cbor.Codec},
	} {
		t.Run(c.leader.Name()+"-leader", func(t *testing.T) {
			opts := memOpts(t)
			l := newClient(t, opts, cluster.WithCodec(c.leader))
			ready(t, l)
			refused := make(chan error, 1)
			f := newClient(t, opts, cluster.WithCodec(c.follower), cluster.WithEventHandler(func(ev cluster.Event) {
				if ev.Kind == cluster.EventError {
					select {
					case refused <- ev.Err:
					default:
					}
				}
			}))
			select {
			case err := <-refused:
				want := fmt.Sprintf("codec mismatch: leader speaks %q, this follower %q", c.leader.Name(), c.follower.Name())
				if !errors.Is(err, cluster.ErrProtocol) || !strings.Contains(err.Error(), want) {
					t.Fatalf("error %v, want ErrProtocol and %q", err, want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no refusal")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			if err := f.Ready(ctx); err == nil {
				t.Fatal("ready with the wrong codec")
			}
		})
	}
}
