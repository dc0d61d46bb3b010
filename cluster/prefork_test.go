package cluster_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/internal/childproc"
	"github.com/go-clusterclient/clusterclient/transport/tcp"
)

// preforkMode is one worker of a pre-fork service: a Client whose real
// client is a TCP connection to an upstream line-echo server (args: the
// cluster port and the upstream address). It reports its readiness
// ("ready" {role, err}) and answers "echo" with the upstream's reply.
func preforkMode(args []string) int {
	if len(args) != 2 {
		childproc.Fatalf("prefork: want 2 args, got %q", args)
	}
	port, err := strconv.Atoi(args[0])
	if err != nil {
		childproc.Fatalf("prefork: %v", err)
	}
	upstream := args[1]
	factory := func(ctx context.Context, _ cluster.Emit) (*cluster.Service, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", upstream)
		if err != nil {
			return nil, err // the upstream is down: the leader tries again
		}
		var mu sync.Mutex
		r := bufio.NewReader(conn)
		return &cluster.Service{
			Methods: map[string]cluster.Handler{
				"echo": cluster.Method(func(ctx context.Context, line string) (string, error) {
					mu.Lock()
					defer mu.Unlock()
					if _, err := fmt.Fprintln(conn, line); err != nil {
						return "", err
					}
					got, err := r.ReadString('\n')
					return got[:max(0, len(got)-1)], err
				}),
			},
			Close: func(context.Context) error { return conn.Close() },
		}, nil
	}
	c, err := cluster.New("Prefork", factory,
		cluster.WithTransport(tcp.New(tcp.Config{})), cluster.WithPort(port), cluster.WithSingleMode(false),
		cluster.WithResponseTimeout(time.Second), cluster.WithRegisterRetry(100*time.Millisecond),
		cluster.WithStartRetry(50*time.Millisecond, 200*time.Millisecond),
		cluster.WithLogger(testLogger()),
		cluster.WithEventHandler(func(ev cluster.Event) {
			if ev.Kind != cluster.EventReady {
				return
			}
			data := map[string]any{"role": ev.Role.String()}
			if ev.Err != nil {
				data["err"] = ev.Err.Error()
			}
			childproc.Emit("ready", data)
		}))
	if err != nil {
		childproc.Fatalf("prefork: %v", err)
	}
	for {
		ev := childproc.Receive()
		if ev.Name != "echo" {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got, err := cluster.Call[string](ctx, c, "echo", fmt.Sprintf("hello from %d", os.Getpid()))
		cancel()
		if err != nil {
			got = "error: " + err.Error()
		}
		childproc.Emit("echoed", got)
	}
}

// echoServer is the upstream: it answers each line with the same line
// and counts its connections.
type echoServer struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func startEchoServer(t *testing.T, addr string) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("upstream: %v", err)
	}
	s := &echoServer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, conn)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				r := bufio.NewReader(conn)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := conn.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *echoServer) connCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// The pre-fork scenario of issue 16 (point 5): 4 worker processes share
// one upstream client; the upstream is down when they start and comes up
// 2 s later. Every worker first reports the failure, then becomes ready by
// itself (no restart), and every worker's call reaches the upstream over
// the one connection the leader made.
func TestPreforkUpstreamDownAtStart(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process scenario skipped in -short mode")
	}
	port, upstream := freePort(t), fmt.Sprintf("127.0.0.1:%d", freePort(t))
	begin := time.Now()
	type event struct {
		i   int
		ev  childproc.Event
		err error
	}
	evs := make(chan event, 64)
	var children []*childproc.Child
	for i := range 4 {
		ch := childproc.Start(t, "prefork", strconv.Itoa(port), upstream)
		children = append(children, ch)
		go func() {
			for {
				ev, err := ch.Next(context.Background())
				evs <- event{i, ev, err}
				if err != nil {
					return
				}
			}
		}()
	}
	// waitAll waits until every worker has sent an event that ok accepts.
	waitAll := func(what string, ok func(childproc.Event) bool) []childproc.Event {
		t.Helper()
		got := make([]childproc.Event, 4)
		seen := 0
		timeout := time.After(30 * time.Second)
		for seen < 4 {
			select {
			case e := <-evs:
				if e.err != nil {
					t.Fatalf("worker %d: %v\n%s", e.i, e.err, children[e.i].Stderr())
				}
				if got[e.i].Name == "" && ok(e.ev) {
					got[e.i] = e.ev
					seen++
				}
			case <-timeout:
				t.Fatalf("not every worker %s within 30 s", what)
			}
		}
		return got
	}
	readyEv := func(failed bool) func(childproc.Event) bool {
		return func(ev childproc.Event) bool {
			var d struct{ Role, Err string }
			if ev.Name != "ready" || ev.Decode(&d) != nil {
				return false
			}
			return (d.Err != "") == failed
		}
	}
	waitAll("reported the upstream down", readyEv(true))
	// The upstream comes up 2 s after the workers started.
	<-time.After(time.Until(begin.Add(2 * time.Second)))
	echo := startEchoServer(t, upstream)
	up := time.Now()
	waitAll("became ready", readyEv(false))
	t.Logf("every worker ready %v after the upstream came up", time.Since(up).Round(time.Millisecond))
	for i, ch := range children {
		if err := ch.Send("echo", nil); err != nil {
			t.Fatal(err)
		}
		var e event
		for e = <-evs; e.err == nil && e.ev.Name != "echoed"; e = <-evs {
		}
		var got string
		if e.err != nil || e.i != i || e.ev.Decode(&got) != nil || got != fmt.Sprintf("hello from %d", ch.Pid()) {
			t.Fatalf("worker %d echo: %q (%v)", i, got, e.err)
		}
	}
	if n := echo.connCount(); n != 1 {
		t.Fatalf("the upstream saw %d connections, want 1", n)
	}
}
