package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/internal/childproc"
	"github.com/go-clusterclient/clusterclient/protocol"
	"github.com/go-clusterclient/clusterclient/transport/tcp"
)

// The attacks of issue 14, each against a real leader process (a child of
// this test binary), with the bound asserted by what that process reports
// of itself: its goroutines, its live heap after a collection, what it
// subscribed upstream, the refusals it reported.

func init() { childModes["budget-leader"] = budgetLeaderMode }

// budgetArgs configure a budget-leader process.
type budgetArgs struct {
	Port             int
	FactoryDelay     time.Duration // how long the real client takes to start
	MaxSubs, MaxKeys int           // WithMaxSubscriptions, if set
	MaxPending       int           // WithMaxPending, if set
	RegisterDeadline time.Duration // WithRegisterDeadline, if set
	NoFile           uint64        // RLIMIT_NOFILE, if set
}

// budgetStats is what a budget-leader process reports of itself.
type budgetStats struct {
	Ready      bool
	Followers  int
	Goroutines int
	HeapLive   uint64 // bytes of live heap objects, after a collection
	RSS        uint64 // bytes resident
	Upstream   int64  // upstream subscriptions made
	Refusals   map[string]int
	WarnLines  int64 // log lines at warning level or above
}

const budgetChannel = "Budget"

func budgetLeaderMode(args []string) int {
	var a budgetArgs
	if len(args) != 1 || json.Unmarshal([]byte(args[0]), &a) != nil {
		childproc.Fatalf("budget-leader: bad arguments %q", args)
	}
	if a.NoFile > 0 {
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: a.NoFile, Max: a.NoFile}); err != nil {
			childproc.Fatalf("budget-leader: setrlimit: %v", err)
		}
	}
	var upstream, warns atomic.Int64
	var mu sync.Mutex
	refusals := map[string]int{}
	factory := func(ctx context.Context, _ cluster.Emit) (*cluster.Service, error) {
		select {
		case <-time.After(a.FactoryDelay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return &cluster.Service{
			Subscribe: func(reg cluster.Reg, push func(any)) error {
				upstream.Add(1)
				var r struct {
					DataID string `json:"dataId"`
				}
				reg.Decode(&r)
				push(r.DataID)
				return nil
			},
			Methods: map[string]cluster.Handler{
				"echo": cluster.Method(func(_ context.Context, s string) (string, error) { return s, nil }),
				"block": func(ctx context.Context, _ cluster.Args) (any, error) {
					<-ctx.Done()
					return nil, ctx.Err()
				},
				"big": cluster.Method(func(_ context.Context, n int) (string, error) { return strings.Repeat("a", n), nil }),
			},
		}, nil
	}
	opts := []cluster.Option{
		cluster.WithTransport(tcp.New(tcp.Config{})), cluster.WithPort(a.Port), cluster.WithMode(cluster.ForceLeader),
		cluster.WithSingleMode(false), cluster.WithResponseTimeout(60 * time.Second),
		cluster.WithLogger(slog.New(slog.NewTextHandler(countWriter{&warns}, &slog.HandlerOptions{Level: slog.LevelWarn}))),
		cluster.WithEventHandler(func(ev cluster.Event) {
			if ev.Kind != cluster.EventError {
				return
			}
			kind := "other"
			for _, k := range []struct {
				name string
				err  error
			}{{"overloaded", cluster.ErrOverloaded}, {"protocol", cluster.ErrProtocol}, {"handshake", cluster.ErrHandshake}} {
				if errors.Is(ev.Err, k.err) {
					kind = k.name
					break
				}
			}
			mu.Lock()
			refusals[kind]++
			mu.Unlock()
		}),
	}
	if a.MaxSubs > 0 {
		opts = append(opts, cluster.WithMaxSubscriptions(a.MaxSubs, a.MaxKeys))
	}
	if a.MaxPending > 0 {
		opts = append(opts, cluster.WithMaxPending(a.MaxPending))
	}
	if a.RegisterDeadline > 0 {
		opts = append(opts, cluster.WithRegisterDeadline(a.RegisterDeadline))
	}
	c, err := cluster.New(budgetChannel, factory, opts...)
	if err != nil {
		childproc.Fatalf("budget-leader: %v", err)
	}
	for c.Role() != cluster.RoleLeader {
		time.Sleep(time.Millisecond)
	}
	childproc.Emit("leading", nil)
	for {
		ev := childproc.Receive()
		if ev.Name != "stats" {
			childproc.Fatalf("budget-leader: unexpected event %q", ev.Name)
		}
		st := c.Stats()
		mu.Lock()
		ref := make(map[string]int, len(refusals))
		for k, v := range refusals {
			ref[k] = v
		}
		mu.Unlock()
		runtime.GC()
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		metrics.Read(sample)
		childproc.Emit("stats", budgetStats{
			Ready: st.Ready, Followers: st.Followers, Goroutines: runtime.NumGoroutine(),
			HeapLive: sample[0].Value.Uint64(), RSS: residentBytes(), Upstream: upstream.Load(),
			Refusals: ref, WarnLines: warns.Load(),
		})
	}
}

// countWriter counts the log lines written through it (slog writes a
// record in one Write).
type countWriter struct{ n *atomic.Int64 }

func (w countWriter) Write(p []byte) (int, error) { w.n.Add(1); return len(p), nil }

// residentBytes reads VmRSS from /proc/self/status.
func residentBytes() uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// budgetLeader is a budget-leader process seen from the test.
type budgetLeader struct {
	t    *testing.T
	c    *childproc.Child
	addr string
}

func startBudgetLeader(t *testing.T, a budgetArgs) *budgetLeader {
	t.Helper()
	a.Port = freePort(t)
	raw, _ := json.Marshal(a)
	c := childproc.Start(t, "budget-leader", string(raw))
	if _, err := c.Expect(tctx(t, 30*time.Second), "leading"); err != nil {
		t.Fatal(err)
	}
	return &budgetLeader{t: t, c: c, addr: "127.0.0.1:" + strconv.Itoa(a.Port)}
}

func (b *budgetLeader) stats() budgetStats {
	b.t.Helper()
	if err := b.c.Send("stats", nil); err != nil {
		b.t.Fatal(err)
	}
	ev, err := b.c.Expect(tctx(b.t, 30*time.Second), "stats")
	if err != nil {
		b.t.Fatal(err)
	}
	var st budgetStats
	if err := ev.Decode(&st); err != nil {
		b.t.Fatal(err)
	}
	return st
}

// until polls the leader's stats until ok holds, for at most d.
func (b *budgetLeader) until(d time.Duration, what string, ok func(budgetStats) bool) budgetStats {
	b.t.Helper()
	end := time.Now().Add(d)
	for {
		st := b.stats()
		if ok(st) {
			return st
		}
		if time.Now().After(end) {
			b.t.Fatalf("not within %v: %s (last stats %+v)", d, what, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// member dials the leader and registers (authenticated, as every Client).
func (b *budgetLeader) member() *rawPeer {
	b.t.Helper()
	p := dialRaw(b.t, tcp.New(tcp.Config{}), b.addr)
	p.register(budgetChannel)
	return p
}

func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// frames returns n copies of one frame, to be written in one go.
func frames(n int, pk *protocol.Packet) []byte {
	one := protocol.AppendPacket(nil, pk)
	return bytes.Repeat(one, n)
}

// A stranger floods register_channel while the real client starts: one
// register waits per connection (no goroutine per packet), and the
// register deadline, counted from accept, drops it before the start is
// over. Before: 74,681 goroutines and 520 MB in 4 s.
func TestBudgetRegisterFloodDuringStart(t *testing.T) {
	b := startBudgetLeader(t, budgetArgs{FactoryDelay: 20 * time.Second, RegisterDeadline: 2 * time.Second})
	base := b.stats()
	var peers []*rawPeer
	for range 2 {
		p := dialRaw(t, tcp.New(tcp.Config{}), b.addr)
		hello, err := rawAuth().Hello(context.Background(), p.info(budgetChannel))
		if err != nil {
			t.Fatal(err)
		}
		flood := frames(20000, &protocol.Packet{ID: 7, Timeout: 3000, Conn: protocol.AppendConn(nil,
			&protocol.ConnObject{Type: protocol.KindRegisterChannel, ChannelName: budgetChannel, Ext: hello})})
		peers = append(peers, p)
		go p.conn.Write(flood) // ends with an error once the leader drops it
	}
	peak := base
	for _, p := range peers {
		// The leader hangs up at the deadline: nothing but EOF comes.
		p.conn.SetReadDeadline(time.Now().Add(15 * time.Second))
		if _, err := p.r.Next(); err == nil {
			t.Fatal("the leader answered a register before its real client started")
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("the flooding connection was not dropped at the register deadline")
		}
		if st := b.stats(); st.Goroutines > peak.Goroutines {
			peak = st
		}
	}
	after := b.stats()
	t.Logf("goroutines %d before, %d at most while flooding, %d after; live heap %s before, %s after; RSS %s after",
		base.Goroutines, peak.Goroutines, after.Goroutines, mib(base.HeapLive), mib(after.HeapLive), mib(after.RSS))
	if after.Ready {
		t.Fatal("the real client started before the flooders were dropped: the deadline did not count from accept")
	}
	if peak.Goroutines > base.Goroutines+20 {
		t.Fatalf("%d goroutines while two connections flood registers (%d before)", peak.Goroutines, base.Goroutines)
	}
}

// A stranger sends heartbeats and never reads the replies: it is dropped
// once a few KiB wait for it, and the leader's heap does not grow. Before:
// 4 connections for 6 s took it from 9 MB to 357 MB.
func TestBudgetStrangerThatDoesNotRead(t *testing.T) {
	b := startBudgetLeader(t, budgetArgs{})
	base := b.stats()
	beats := frames(10000, &protocol.Packet{ID: 1, Timeout: 3000, Conn: protocol.AppendConn(nil, &protocol.ConnObject{Type: protocol.KindHeartbeat})})
	var wg sync.WaitGroup
	var dropped atomic.Int32
	for range 4 {
		conn, err := net.Dial("tcp", b.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		wg.Go(func() {
			conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
			for range 400 { // 400 × 10,000 heartbeats, about 200 MB of replies
				if _, err := conn.Write(beats); err != nil {
					if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
						dropped.Add(1)
					}
					return
				}
			}
		})
	}
	wg.Wait()
	after := b.stats()
	t.Logf("live heap %s before, %s after 4 connections sent heartbeats without reading (%d dropped); RSS %s",
		mib(base.HeapLive), mib(after.HeapLive), dropped.Load(), mib(after.RSS))
	if dropped.Load() != 4 {
		t.Fatalf("%d of 4 connections that never read were dropped", dropped.Load())
	}
	if after.HeapLive > base.HeapLive+8<<20 {
		t.Fatalf("live heap grew from %s to %s", mib(base.HeapLive), mib(after.HeapLive))
	}
}

// A member files its subscription under the key of another registration:
// the leader computes keys itself and refuses it, so an honest subscriber
// of that registration receives its own values. Before: the honest
// follower received the other registration's value.
func TestBudgetForgedSubscriptionKey(t *testing.T) {
	b := startBudgetLeader(t, budgetArgs{})
	victim := json.RawMessage(`{"dataId":"victim"}`)
	forger := b.member()
	forger.send(false, 10, 3000, protocol.ConnObject{Type: protocol.KindSubscribe,
		Key: protocol.SubscriptionKey(victim), Reg: json.RawMessage(`{"dataId":"other"}`)}, nil)
	forger.send(false, 11, 3000, protocol.ConnObject{Type: protocol.KindHeartbeat}, nil)
	forger.expect(protocol.KindHeartbeatRes) // the subscribe was handled
	honest := b.member()
	honest.send(false, 10, 3000, protocol.ConnObject{Type: protocol.KindSubscribe, Key: protocol.SubscriptionKey(victim), Reg: victim}, nil)
	pk, co := honest.expect(protocol.KindSubscribeResult)
	if co.Key != protocol.SubscriptionKey(victim) || string(pk.App) != `"victim"` {
		t.Fatalf("the subscriber of %s received %s under key %q", victim, pk.App, co.Key)
	}
	st := b.stats()
	t.Logf("upstream subscriptions %d, refusals %v", st.Upstream, st.Refusals)
	if st.Upstream != 1 || st.Refusals["protocol"] != 1 {
		t.Fatalf("upstream subscriptions %d, refusals %v: want 1 and one protocol refusal", st.Upstream, st.Refusals)
	}
}

// Members subscribe to more registrations than the bounds allow: the
// leader subscribes upstream up to WithMaxSubscriptions per follower and
// per leader, and says so once, not once per key. Before: 200,000
// upstream subscriptions, 449 MB, 200,000 warning lines.
func TestBudgetSubscriptionFlood(t *testing.T) {
	b := startBudgetLeader(t, budgetArgs{MaxSubs: 1000, MaxKeys: 1500})
	base := b.stats()
	subscribe := func(p *rawPeer, prefix string, n int) {
		var buf []byte
		for i := range n {
			reg := json.RawMessage(fmt.Sprintf(`{"dataId":"%s-%d"}`, prefix, i))
			buf = protocol.AppendPacket(buf, &protocol.Packet{ID: int64(100 + i), Timeout: 3000, Conn: protocol.AppendConn(nil,
				&protocol.ConnObject{Type: protocol.KindSubscribe, Key: protocol.SubscriptionKey(reg), Reg: reg})})
		}
		buf = protocol.AppendPacket(buf, &protocol.Packet{ID: 99, Timeout: 3000, Conn: protocol.AppendConn(nil, &protocol.ConnObject{Type: protocol.KindHeartbeat})})
		go p.conn.Write(buf)
		p.expect(protocol.KindHeartbeatRes) // every subscribe before it was handled
	}
	subscribe(b.member(), "a", 5000)
	subscribe(b.member(), "b", 1000)
	st := b.until(10*time.Second, "1,500 upstream subscriptions", func(st budgetStats) bool { return st.Upstream >= 1500 })
	t.Logf("upstream subscriptions %d (bounds 1,000 per follower, 1,500 keys); refusals %v; warning lines %d (%d before); live heap %s → %s",
		st.Upstream, st.Refusals, st.WarnLines, base.WarnLines, mib(base.HeapLive), mib(st.HeapLive))
	if st.Upstream != 1500 {
		t.Fatalf("%d upstream subscriptions, want 1,500", st.Upstream)
	}
	if n := st.Refusals["overloaded"]; n < 1 || n > 4 {
		t.Fatalf("%d refusal reports for 4,500 refused subscribes: want a few, each with a count", n)
	}
	if st.WarnLines-base.WarnLines > 4 {
		t.Fatalf("%d warning lines for 4,500 refused subscribes", st.WarnLines-base.WarnLines)
	}
}

// A method's result is over the frame limit: that call fails with an
// error saying so, and the follower's connection lives on. Before: the
// leader sent it, and the follower dropped its connection.
func TestBudgetResultOverFrameLimit(t *testing.T) {
	b := startBudgetLeader(t, budgetArgs{})
	p := b.member()
	arg, _ := protocol.AppendArg(nil, protocol.JSON, protocol.DefaultMaxAppLen+1<<20)
	p.send(false, 10, 30000, protocol.ConnObject{Type: protocol.KindInvoke, Method: "big", ArgLength: 1}, arg)
	pk, co := p.expect(protocol.KindInvokeResult)
	if co.Success || !strings.Contains(string(pk.App), "more than a frame may carry") {
		t.Fatalf("big result answered success=%v %.200s", co.Success, pk.App)
	}
	arg, _ = protocol.AppendArg(nil, protocol.JSON, "still here")
	p.send(false, 11, 3000, protocol.ConnObject{Type: protocol.KindInvoke, Method: "echo", ArgLength: 1}, arg)
	pk, co = p.expect(protocol.KindInvokeResult)
	if !co.Success || string(pk.App) != `"still here"` {
		t.Fatalf("echo after the big result: success=%v %s", co.Success, pk.App)
	}
}

// Out of file descriptors, with idle strangers holding every one: accept
// evicts the oldest connection that has not registered, so a member can
// still join. Before: accept failed with EMFILE until the strangers left,
// and the follower never became ready.
func TestBudgetOutOfFileDescriptors(t *testing.T) {
	b := startBudgetLeader(t, budgetArgs{NoFile: 64, RegisterDeadline: time.Minute})
	for range 100 {
		conn, err := net.Dial("tcp", b.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
	}
	p := dialRaw(t, tcp.New(tcp.Config{}), b.addr)
	p.register(budgetChannel) // fails the test if no reply comes in time
	st := b.until(10*time.Second, "one follower", func(st budgetStats) bool { return st.Followers == 1 })
	t.Logf("registered beside 100 idle strangers with 64 descriptors; warning lines %d", st.WarnLines)
}

// A member queues more blocking calls than WithMaxPending allows and
// leaves: its calls still running see their context end, and nothing it
// sent is started after it left. Before: 65k goroutines that lived on
// until the calls' own deadlines.
func TestBudgetDepartedMemberCalls(t *testing.T) {
	b := startBudgetLeader(t, budgetArgs{MaxPending: 500})
	base := b.stats()
	block := frames(1500, &protocol.Packet{ID: 5, Timeout: 60000, Conn: protocol.AppendConn(nil,
		&protocol.ConnObject{Type: protocol.KindInvoke, Method: "block"})})
	var members []*rawPeer
	for range 2 {
		p := b.member()
		members = append(members, p)
		go p.conn.Write(block)
	}
	// 500 run per member; the rest are refused with ErrOverloaded.
	busy := b.until(20*time.Second, "1,000 blocking calls running", func(st budgetStats) bool { return st.Goroutines >= base.Goroutines+1000 })
	for _, p := range members {
		p.conn.Close()
	}
	after := b.until(10*time.Second, "the departed members' calls ended", func(st budgetStats) bool {
		return st.Followers == 0 && st.Goroutines <= base.Goroutines+10
	})
	t.Logf("goroutines %d before, %d with 2 members × 1,500 blocking calls (WithMaxPending 500), %d once they left",
		base.Goroutines, busy.Goroutines, after.Goroutines)
	if busy.Goroutines > base.Goroutines+1000+50 {
		t.Fatalf("%d goroutines for 1,000 calls in flight (%d before)", busy.Goroutines, base.Goroutines)
	}
}

// A member calls a method returning 1 MiB 300 times and never reads: it is
// dropped at its write bound, and its memory is given back. Before: 8.5 MB
// → 560 MB, still 560 MB 10 s after it left.
func TestBudgetMemberThatDoesNotRead(t *testing.T) {
	b := startBudgetLeader(t, budgetArgs{})
	base := b.stats()
	p := b.member()
	arg, _ := protocol.AppendArg(nil, protocol.JSON, 1<<20)
	calls := frames(300, &protocol.Packet{ID: 5, Timeout: 60000, Conn: protocol.AppendConn(nil,
		&protocol.ConnObject{Type: protocol.KindInvoke, Method: "big", ArgLength: 1}), App: arg})
	go p.conn.Write(calls)
	dropped := b.until(20*time.Second, "the member that does not read dropped", func(st budgetStats) bool { return st.Followers == 0 })
	// What it held goes once its calls and writer noticed the drop.
	after := b.until(10*time.Second, "the memory given back", func(st budgetStats) bool { return st.HeapLive <= base.HeapLive+16<<20 })
	t.Logf("live heap %s before, %s when the member was dropped, %s after (RSS %s); refusals %v",
		mib(base.HeapLive), mib(dropped.HeapLive), mib(after.HeapLive), mib(after.RSS), after.Refusals)
}

// A member calls ever new method names: the leader remembers how fast
// each method ran (link.Paces, which decides whether its calls run on the
// reader and how finely they are watched) for at most link.MaxPaces of
// them; the others run as calls of an unknown method do, refused at once.
// Without the bound: one entry per name, 30 MiB of live heap more for
// 200,000 names.
func TestBudgetDistinctMethodNames(t *testing.T) {
	b := startBudgetLeader(t, budgetArgs{})
	base := b.stats()
	p := b.member()
	const n = 200_000
	done := make(chan error, 1)
	go func() {
		for answered := 0; ; {
			_, co, err := p.next()
			switch {
			case err != nil:
				done <- fmt.Errorf("after %d answers: %w", answered, err)
				return
			case co.Type == protocol.KindHeartbeatRes:
				done <- nil
				return
			}
			answered++
		}
	}()
	var buf []byte
	for i := range n {
		co := protocol.ConnObject{Type: protocol.KindInvoke, Method: fmt.Sprintf("method-%07d", i)}
		buf = protocol.AppendPacket(buf, &protocol.Packet{ID: int64(100 + i), Timeout: 3000, Conn: protocol.AppendConn(nil, &co)})
		if len(buf) > 1<<20 {
			if _, err := p.conn.Write(buf); err != nil {
				t.Fatal(err)
			}
			buf = buf[:0]
		}
	}
	buf = protocol.AppendPacket(buf, &protocol.Packet{ID: 99, Timeout: 3000, Conn: protocol.AppendConn(nil, &protocol.ConnObject{Type: protocol.KindHeartbeat})})
	if _, err := p.conn.Write(buf); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the calls were not all answered within 60 s")
	}
	st := b.stats()
	t.Logf("%d distinct method names: live heap %s → %s, goroutines %d → %d", n, mib(base.HeapLive), mib(st.HeapLive), base.Goroutines, st.Goroutines)
	if st.HeapLive > base.HeapLive+8<<20 {
		t.Fatalf("live heap grew by %s for %d method names", mib(st.HeapLive-base.HeapLive), n)
	}
}
