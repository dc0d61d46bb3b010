package cluster_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/protocol"
	"github.com/go-clusterclient/clusterclient/transport"
	"github.com/go-clusterclient/clusterclient/transport/tcp"
)

// gatedService has two methods that block until their gate opens
// ("slow1", "slow2"; each says on entered that it runs) and one that
// answers at once ("fast").
type gatedService struct {
	entered chan string
	gates   map[string]chan struct{}
}

func newGatedService() *gatedService {
	return &gatedService{
		entered: make(chan string, 4),
		gates:   map[string]chan struct{}{"slow1": make(chan struct{}), "slow2": make(chan struct{})},
	}
}

func (g *gatedService) factory(context.Context, cluster.Emit) (*cluster.Service, error) {
	block := func(name string) cluster.Handler {
		return func(ctx context.Context, _ cluster.Args) (any, error) {
			g.entered <- name
			select {
			case <-g.gates[name]:
				return name, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	return &cluster.Service{Methods: map[string]cluster.Handler{
		"slow1": block("slow1"),
		"slow2": block("slow2"),
		"fast":  func(context.Context, cluster.Args) (any, error) { return "fast", nil },
	}}, nil
}

func (g *gatedService) waitEntered(t *testing.T, name string) {
	t.Helper()
	select {
	case got := <-g.entered:
		if got != name {
			t.Fatalf("%s ran, want %s", got, name)
		}
	case <-time.After(wait):
		t.Fatalf("%s never ran on the leader", name)
	}
}

// handBackLeader starts a leader on its own TCP port whose watchdog never
// moves reading: the test does it with HandOverForTest, at the moment it
// chooses.
func handBackLeader(t *testing.T, g *gatedService, name string) (*cluster.Client, transport.Transport, string) {
	t.Helper()
	tr, addr := tcp.New(tcp.Config{}), "127.0.0.1:"+strconv.Itoa(freePort(t))
	opts := append(fastOpts(), cluster.WithTransport(tr), cluster.WithAddr(addr),
		cluster.WithResponseTimeout(3*time.Second), cluster.WithInlineBudgetForTest(time.Hour))
	l, err := cluster.New(name, g.factory, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, gate := range g.gates {
			select {
			case <-gate:
			default:
				close(gate)
			}
		}
		l.Close(context.Background())
	})
	ready(t, l)
	if !l.IsLeader() {
		t.Fatal("the first client does not lead")
	}
	return l, tr, addr
}

// The leader holds a follower's answers while more of its requests wait,
// already read, in its buffer, and writes them in one go. Reading moves
// between goroutines: to a new one when a call runs long on the reader,
// and back to the old one when its call returns while the new reader is
// itself running a call. Whoever reads must act on the connection's real
// state. Here the old reader took reading back while the new one, which
// had held the answers, ran a slow call: the answers due (slow1's, and a
// heartbeat's read after it) must still be written at once, not held
// until two requests happen to arrive together.
func TestAnswersNotHeldAfterReadingMovesBack(t *testing.T) {
	g := newGatedService()
	l, tr, addr := handBackLeader(t, g, "HandBackRaw")
	p := dialRaw(t, tr, addr)
	p.register("HandBackRaw")
	invoke := func(id int64, method string) []byte {
		return protocol.AppendPacket(nil, &protocol.Packet{ID: id, Timeout: 20000,
			Conn: protocol.AppendConn(nil, &protocol.ConnObject{Type: protocol.KindInvoke, Method: method})})
	}
	heartbeat := func(id int64) []byte {
		return protocol.AppendPacket(nil, &protocol.Packet{ID: id, Timeout: 20000,
			Conn: protocol.AppendConn(nil, &protocol.ConnObject{Type: protocol.KindHeartbeat})})
	}
	write := func(b []byte) {
		t.Helper()
		if _, err := p.conn.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	// answers reads frames until every id in want was answered.
	answers := func(what string, want ...int64) {
		t.Helper()
		left := map[int64]bool{}
		for _, id := range want {
			left[id] = true
		}
		p.conn.SetReadDeadline(time.Now().Add(wait))
		for len(left) > 0 {
			pk, err := p.r.Next()
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatalf("%s: no answer to requests %v within %v: held on the leader", what, keys(left), wait)
				}
				t.Fatalf("%s: %v", what, err)
			}
			if pk.Response {
				delete(left, pk.ID)
			}
		}
	}

	// 1. slow1 runs on the connection's reading goroutine (A).
	write(invoke(10, "slow1"))
	g.waitEntered(t, "slow1")
	// 2. It ran too long: a new goroutine (B) reads, as after the watchdog.
	if n := cluster.HandOverForTest(l); n != 1 {
		t.Fatalf("handed over %d connections, want 1", n)
	}
	write(heartbeat(11))
	answers("B reads", 11)
	// 3. Two requests in one write: B answers fast with slow2 already
	// buffered behind it, so it holds the answers until its buffer is
	// empty, and runs slow2 itself.
	write(append(invoke(12, "fast"), invoke(13, "slow2")...))
	g.waitEntered(t, "slow2")
	answers("fast", 12)
	// 4. slow1 returns while slow2 runs: A reads again.
	close(g.gates["slow1"])
	write(heartbeat(14))
	answers("slow1 returned while slow2 runs", 10, 14)
	// 5. slow2 returns; B leaves reading to A.
	close(g.gates["slow2"])
	answers("slow2", 13)
	write(heartbeat(15))
	answers("after both returned", 15)
}

func keys(m map[int64]bool) []int64 {
	var out []int64
	for k := range m {
		out = append(out, k)
	}
	return out
}

// The same sequence with the library's own follower: its calls must be
// answered, not time out while the leader is healthy.
func TestFollowerCallsAnsweredAfterReadingMovesBack(t *testing.T) {
	g := newGatedService()
	l, tr, addr := handBackLeader(t, g, "HandBack")
	f, err := cluster.New("HandBack", g.factory, append(fastOpts(), cluster.WithTransport(tr), cluster.WithAddr(addr),
		cluster.WithResponseTimeout(3*time.Second))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close(context.Background()) })
	ready(t, f)
	if f.IsLeader() {
		t.Fatal("the second client leads")
	}
	call := func(method string) chan error {
		done := make(chan error, 1)
		go func() {
			res, err := f.Invoke(context.Background(), method)
			if err == nil {
				var got string
				if err = res.Decode(&got); err == nil && got != method {
					err = errors.New(method + " answered " + got)
				}
			}
			done <- err
		}()
		return done
	}
	result := func(method string, done chan error) {
		t.Helper()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%s: %v", method, err)
			}
		case <-time.After(2 * wait):
			t.Fatalf("%s never returned", method)
		}
	}

	slow1 := call("slow1")
	g.waitEntered(t, "slow1")
	if n := cluster.HandOverForTest(l); n != 1 {
		t.Fatalf("handed over %d connections, want 1", n)
	}
	// fast and slow2 leave the follower in one write.
	release := cluster.HoldForTest(f)
	if release == nil {
		t.Fatal("not a follower")
	}
	fast := call("fast")
	eventually(t, wait, "fast in flight", func() bool { return f.Stats().InFlight == 2 })
	slow2 := call("slow2") // after fast: the leader reads fast first
	eventually(t, wait, "slow2 in flight", func() bool { return f.Stats().InFlight == 3 })
	release()
	g.waitEntered(t, "slow2")
	result("fast", fast)
	close(g.gates["slow1"])
	result("slow1", slow1)
	result("fast after slow1", call("fast"))
	close(g.gates["slow2"])
	result("slow2", slow2)
}
