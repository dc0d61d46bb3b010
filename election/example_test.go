package election_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/go-clusterclient/clusterclient/election"
	"github.com/go-clusterclient/clusterclient/transport/mem"
)

// Channels of one process share the address's listener; the same channel
// claimed twice follows over a real connection.
func Example() {
	tr, err := mem.New(mem.Config{})
	if err != nil {
		panic(err)
	}
	reg := election.NewRegistry() // a program uses election.Default
	ctx := context.Background()
	cfg := election.Config{Transport: tr, Addr: "example", Channel: "DataClient"}

	first, err := reg.Elect(ctx, cfg) // binds the address
	if err != nil {
		panic(err)
	}
	other, err := reg.Elect(ctx, election.Config{Transport: tr, Addr: "example", Channel: "ConfigClient"})
	if err != nil {
		panic(err)
	}
	second, err := reg.Elect(ctx, cfg) // DataClient already leads here
	if err != nil {
		panic(err)
	}
	fmt.Println("first:", first.Role)
	fmt.Println("other:", other.Role, "sharing the listener:", first.Lease.Listener() == other.Lease.Listener())
	fmt.Println("second:", second.Role, "with a conn:", second.Conn != nil)
	fmt.Println("leading here:", first.Lease.Channels())

	second.Conn.Close()
	other.Lease.Release()
	first.Lease.Release() // the last one: the address is free again
	// Output:
	// first: leader
	// other: leader sharing the listener: true
	// second: follower with a conn: true
	// leading here: [ConfigClient DataClient]
}

// A follower notices a lost leader by its conn's EOF and re-elects.
func ExampleRegistry_Reelect() {
	tr, err := mem.New(mem.Config{})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	cfg := election.Config{Transport: tr, Addr: "example-reelect", Channel: "DataClient"}
	// Two registries behave like two processes.
	procA, procB := election.NewRegistry(), election.NewRegistry()

	a, err := procA.Elect(ctx, cfg)
	if err != nil {
		panic(err)
	}
	b, err := procB.Elect(ctx, cfg)
	if err != nil {
		panic(err)
	}
	fmt.Println("A:", a.Role, "B:", b.Role)

	srv, err := a.Lease.Listener().Accept() // A's end of B's conn
	if err != nil {
		panic(err)
	}
	srv.Close()
	a.Lease.Release() // A goes away
	_, err = b.Conn.Read(make([]byte, 1))
	fmt.Println("B reads:", err)
	b.Conn.Close()

	b, err = procB.Reelect(ctx, cfg)
	if err != nil {
		panic(err)
	}
	fmt.Println("B:", b.Role)
	b.Lease.Release()
	// Output:
	// A: leader B: follower
	// B reads: EOF
	// B: leader
}

// server is a minimal attachment: an accept loop that closes what it
// accepts. The cluster package's demultiplexer takes its place.
type server struct {
	ln   net.Listener
	done chan struct{}
}

func serve(ln net.Listener) *server {
	s := &server{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return s
}

// Close unblocks Accept by closing the listener (allowed: the registry
// closes it right after), then waits for the loop.
func (s *server) Close() error {
	err := s.ln.Close()
	<-s.done
	fmt.Println("server stopped")
	return err
}

// Every channel on an address attaches to the same server, created once;
// it stops when the last channel releases.
func ExampleAttach() {
	tr, err := mem.New(mem.Config{})
	if err != nil {
		panic(err)
	}
	reg := election.NewRegistry()
	var leases []*election.Lease
	for _, ch := range []string{"DataClient", "ConfigClient"} {
		out, err := reg.Elect(context.Background(), election.Config{Transport: tr, Addr: "example-attach", Channel: ch})
		if err != nil {
			panic(err)
		}
		leases = append(leases, out.Lease)
	}
	s1, _ := election.Attach(leases[0], serve) // s1 is a *server: no type assertion
	s2, _ := election.Attach(leases[1], serve)
	fmt.Println("one server:", s1 == s2)
	for _, l := range leases {
		fmt.Println("releasing", l.Channel())
		l.Release()
	}
	// Output:
	// one server: true
	// releasing DataClient
	// releasing ConfigClient
	// server stopped
}

// A forced follower with no leader gives up after MaxWait with an error
// that names the channel, the address and the wait.
func ExampleRegistry_Elect_forcedFollower() {
	tr, err := mem.New(mem.Config{})
	if err != nil {
		panic(err)
	}
	_, err = election.NewRegistry().Elect(context.Background(), election.Config{
		Transport: tr,
		Addr:      "nobody-here",
		Channel:   "DataClient",
		Mode:      election.ForceFollower,
		MaxWait:   20 * time.Millisecond,
	})
	fmt.Println(errors.Is(err, election.ErrNoLeader))
	fmt.Println(err)
	// Output:
	// true
	// election: channel "DataClient" on mem nobody-here: no leader after 20ms (forced follower): mem dial nobody-here: transport: no listener at address
}
