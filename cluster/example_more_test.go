package cluster_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

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
	for _, tr := range []transport.Transport{sock, yamux.New(yamux.DefaultConfig(sock))} {
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

// Node-compatible mode: Go and Node processes (cluster-client 3.7.0) can
// share one channel when the Go side speaks Node's serialize-json codec on
// Node's port, without a Handshake (Node speaks none). JavaScript types keep
// their meaning: a Date is a time.Time, a Buffer a []byte.
func ExampleWithCodec() {
	type entry struct {
		At   time.Time `json:"at"`
		Data []byte    `json:"data"`
	}
	factory := func(ctx context.Context, emit cluster.Emit) (*cluster.Service, error) {
		return &cluster.Service{Methods: map[string]cluster.Handler{
			"latest": cluster.Method(func(_ context.Context, id string) (entry, error) {
				return entry{At: time.UnixMilli(1700000000000).UTC(), Data: []byte(id)}, nil
			}),
		}}, nil
	}
	tr, _ := mem.New(mem.Config{})
	opts := []cluster.Option{cluster.WithTransport(tr), cluster.WithAddr("example-node"),
		cluster.WithCodec(protocol.SerializeJSON), quiet}
	ctx := context.Background()
	leader, _ := cluster.New("DataClient", factory, opts...)
	defer leader.Close(ctx)
	leader.Ready(ctx)
	follower, _ := cluster.New("DataClient", factory, opts...)
	defer follower.Close(ctx)

	e, err := cluster.Call[entry](ctx, follower, "latest", "abc")
	fmt.Println(e.At.Format(time.RFC3339), string(e.Data), err)
	res, _ := follower.Invoke(ctx, "latest", "abc")
	raw, _ := res.Raw()
	fmt.Println(string(raw)) // the bytes a Node follower would decode
	// Output:
	// 2023-11-14T22:13:20Z abc <nil>
	// at|data^2P|2Q|2R^^LOYW3V28^$0|5|1|*2|3|4]]
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
