package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/protocol"
	"github.com/go-clusterclient/clusterclient/transport"
	"github.com/go-clusterclient/clusterclient/transport/mem"
	"github.com/go-clusterclient/clusterclient/transport/unix"
	"github.com/go-clusterclient/clusterclient/transport/yamux"
)

// Choosing a transport: every process of a channel must use the same
// transport and address. The default is TCP on 127.0.0.1:7777 (the port
// from WithPort or CLUSTER_CLIENT_PORT); a unix socket keeps the cluster
// to the processes that can reach a 0700 directory and lets the kernel
// vouch for the peer's user; yamux multiplexes streams over one connection
// of another transport; kcp (transport/kcp) runs over UDP.
func ExampleWithTransport() {
	dir, err := os.MkdirTemp("", "transport-example") // a 0700 directory
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	sock, err := unix.New(unix.DefaultConfig())
	if err != nil {
		panic(err)
	}
	mux, err := yamux.New(yamux.DefaultConfig(sock))
	if err != nil {
		panic(err)
	}
	for _, tr := range []transport.Transport{sock, mux} {
		opts := []cluster.Option{cluster.WithTransport(tr), cluster.WithAddr(filepath.Join(dir, tr.Name()+".sock")), quiet}
		ctx := context.Background()
		leader, _ := cluster.New("Greeter", greeter, opts...)
		leader.Ready(ctx)
		follower, _ := cluster.New("Greeter", greeter, opts...)
		s, err := cluster.Call[string](ctx, follower, "greet", tr.Name())
		fmt.Println(s, err, follower.Role())
		follower.Close(ctx)
		leader.Close(ctx)
	}
	// Output:
	// hello, unix <nil> follower
	// hello, yamux <nil> follower
}

// The codec is per channel and every process of the channel must use the
// same one (protocol.SerializeJSON is what WithNodeCompat selects for
// clusters shared with Node). A Go leader refuses a follower that
// announces another codec, before anything else is exchanged.
func ExampleWithCodec() {
	tr, _ := mem.New(mem.Config{})
	opts := []cluster.Option{cluster.WithTransport(tr), cluster.WithAddr("example-codec"), quiet}
	ctx := context.Background()
	leader, _ := cluster.New("Greeter", greeter, append(opts, cluster.WithCodec(protocol.SerializeJSON))...)
	defer leader.Close(ctx)
	leader.Ready(ctx)

	refused := make(chan error, 1)
	mismatched, _ := cluster.New("Greeter", greeter, append(opts, cluster.WithCodec(protocol.JSON),
		cluster.WithEventHandler(func(ev cluster.Event) {
			if ev.Kind == cluster.EventError {
				select {
				case refused <- ev.Err:
				default:
				}
			}
		}))...)
	defer mismatched.Close(ctx)
	err := <-refused
	fmt.Println(errors.Is(err, cluster.ErrProtocol), strings.Contains(err.Error(), `codec mismatch: leader speaks "serialize-json"`))

	follower, _ := cluster.New("Greeter", greeter, append(opts, cluster.WithCodec(protocol.SerializeJSON))...)
	defer follower.Close(ctx)
	s, err := cluster.Call[string](ctx, follower, "greet", "serialize-json")
	fmt.Println(s, err)
	// Output:
	// true true
	// hello, serialize-json <nil>
}

// clusterctl status uses QueryStatus: it registers on the channel like a
// follower (same options, same Handshake) and asks the leader for a
// snapshot.
func ExampleQueryStatus() {
	tr, _ := mem.New(mem.Config{})
	opts := []cluster.Option{cluster.WithTransport(tr), cluster.WithAddr("example-status"), quiet}
	ctx := context.Background()
	leader, _ := cluster.New("Greeter", greeter, opts...)
	defer leader.Close(ctx)
	leader.Ready(ctx)
	follower, _ := cluster.New("Greeter", greeter, opts...)
	defer follower.Close(ctx)
	follower.Ready(ctx)

	st, err := cluster.QueryStatus(ctx, "Greeter", opts...)
	if err != nil {
		panic(err)
	}
	fmt.Println(st.Channel, "term", st.Term, "ready", st.Ready, "pid matches", st.PID == os.Getpid())
	for _, f := range st.Followers {
		fmt.Println("follower; the observer itself:", f.Observer)
	}
	// Unordered output:
	// Greeter term 1 ready true pid matches true
	// follower; the observer itself: false
	// follower; the observer itself: true
}
