package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/go-clusterclient/clusterclient/internal/leaks"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/internal/childproc"
	"github.com/go-clusterclient/clusterclient/protocol"
	"github.com/go-clusterclient/clusterclient/transport/unix"
)

const wait = 10 * time.Second

func TestMain(m *testing.M) {
	childproc.Main(map[string]func([]string) int{"leader": leaderMode})
	goleak.VerifyTestMain(m, leaks.KCP()...)
}

// ticker is the tests' real client: a topic whose value is the number of
// publishes, and an echo method.
func ticker(context.Context, cluster.Emit) (*cluster.Service, error) {
	var mu sync.Mutex
	var pushes []func(any)
	n := 0
	return &cluster.Service{
		Subscribe: func(_ cluster.Reg, push func(any)) error {
			mu.Lock()
			defer mu.Unlock()
			pushes = append(pushes, push)
			push(n)
			return nil
		},
		Publish: func(context.Context, cluster.Reg) error {
			mu.Lock()
			defer mu.Unlock()
			n++
			for _, p := range pushes {
				p(n)
			}
			return nil
		},
		Methods: map[string]cluster.Handler{
			"echo": cluster.Method(func(_ context.Context, s string) (string, error) { return s, nil }),
		},
	}, nil
}

var quiet = cluster.WithLogger(slog.New(slog.DiscardHandler))

// leaderMode (child): lead channel args[1] on TCP port args[0], subscribe
// to topic "t" itself, say "ready" with the term, and serve until the
// parent goes away.
func leaderMode(args []string) int {
	port, _ := strconv.Atoi(args[0])
	c, err := cluster.New(args[1], ticker, cluster.WithPort(port), cluster.WithMode(cluster.ForceLeader), quiet)
	if err != nil {
		childproc.Fatalf("new: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.Ready(ctx); err != nil {
		childproc.Fatalf("ready: %v", err)
	}
	if err := firstValue(c); err != nil {
		childproc.Fatalf("%v", err)
	}
	childproc.Emit("ready", nil)
	childproc.Receive() // the parent never sends: wait for its end
	return 0
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func newClient(t *testing.T, name string, opts ...cluster.Option) *cluster.Client {
	t.Helper()
	c, err := cluster.New(name, ticker, append([]cluster.Option{quiet}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		c.Close(ctx)
	})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// subscribe subscribes c to topic t and waits for its first value.
func subscribe(t *testing.T, c *cluster.Client) {
	t.Helper()
	if err := firstValue(c); err != nil {
		t.Fatal(err)
	}
}

// firstValue subscribes c to topic t and waits (up to wait) for its first
// value.
func firstValue(c *cluster.Client) error {
	got := make(chan struct{}, 1)
	if _, err := c.Subscribe(map[string]string{"topic": "t"}, func(cluster.Value) {
		select {
		case got <- struct{}{}:
		default:
		}
	}); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	select {
	case <-got:
		return nil
	case <-time.After(wait):
		return fmt.Errorf("no value for the subscription within %v", wait)
	}
}

func ctl(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*wait)
	defer cancel()
	code = run(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

// A leader in another process, with a follower here that subscribes and
// calls: the text report names the leader's pid, its term, both
// connections (the observer marked), the subscription with its two
// subscribers and cached value, and the counters.
func TestStatusOfLeaderProcess(t *testing.T) {
	port := freePort(t)
	leader := childproc.Start(t, "leader", strconv.Itoa(port), "Ticker")
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := leader.Expect(ctx, "ready"); err != nil {
		t.Fatalf("leader: %v (%s)", err, leader.Stderr())
	}
	f := newClient(t, "Ticker", cluster.WithPort(port))
	if f.IsLeader() {
		t.Fatal("the test process leads")
	}
	subscribe(t, f)
	for range 2 {
		if _, err := f.Invoke(ctx, "echo", "x"); err != nil {
			t.Fatal(err)
		}
	}

	code, out, errs := ctl(t, "status", "--port", strconv.Itoa(port), "--channel", "Ticker")
	if code != exitOK {
		t.Fatalf("exit %d: %s%s", code, out, errs)
	}
	t.Logf("clusterctl status:\n%s", out)
	for _, want := range []string{
		"address  tcp 127.0.0.1:" + strconv.Itoa(port) + "\n",
		fmt.Sprintf("leader   pid %d (", leader.Pid()),
		`channel "Ticker": term 1, ready, codec json, broadcast, 0 call(s) in flight`,
		"followers (2):",
		"(this clusterctl)",
		"subscriptions (1):",
		`$$inner$$__{"topic":"t"}  2            yes     `, // then the cached value's age
		"counters: served 2, pushes 1,",
		"methods served for followers (1):",
		`"echo"  2      0       0`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}

	code, out, errs = ctl(t, "status", "--port", strconv.Itoa(port), "--channel", "Ticker", "--json")
	if code != exitOK {
		t.Fatalf("--json exit %d: %s%s", code, out, errs)
	}
	var rep report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, out)
	}
	if rep.Leader != leaderGo || rep.Error != "" || len(rep.Channels) != 1 || rep.Channels[0].Status == nil {
		t.Fatalf("report %+v", rep)
	}
	st := rep.Channels[0].Status
	if st.PID != leader.Pid() || st.Term != 1 || len(st.Followers) != 2 || len(st.Subscriptions) != 1 ||
		st.Subscriptions[0].Subscribers != 2 || !st.Subscriptions[0].Cached || st.Counters.Served < 2 ||
		st.Counters.ServedMethods["echo"].Calls != 2 || st.Counters.ServedMethods["echo"].Max <= 0 {
		t.Fatalf("status %+v", st)
	}
}

// Without --channel, a leader that does not authenticate lists its
// channels and each is reported; over a unix socket here.
func TestStatusListsChannels(t *testing.T) {
	dir, err := os.MkdirTemp("", "clusterctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "c.sock")
	tr, err := unix.New(unix.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	// Channels are listed only where nothing authenticates (a listing
	// would bypass the handshake), so these leaders run WithInsecure.
	opts := []cluster.Option{cluster.WithTransport(tr), cluster.WithAddr(sock), cluster.WithInsecure()}
	newClient(t, "A", opts...)
	newClient(t, "B", opts...)
	subscribe(t, newClient(t, "B", opts...))

	code, out, errs := ctl(t, "status", "--transport", "unix", "--addr", sock, "--insecure", "--json")
	if code != exitOK {
		t.Fatalf("exit %d: %s%s", code, out, errs)
	}
	var rep report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Listing == nil || rep.Listing.PID != os.Getpid() || fmt.Sprint(rep.Listing.Channels) != "[A B]" ||
		rep.Addr != "unix "+sock || len(rep.Channels) != 2 {
		t.Fatalf("report %+v", rep)
	}
	a, b := rep.Channels[0].Status, rep.Channels[1].Status
	if a == nil || b == nil || a.Channel != "A" || b.Channel != "B" || len(a.Followers) != 1 || len(b.Followers) != 2 ||
		len(b.Subscriptions) != 1 || fmt.Sprint(a.OtherChannels) != "[B]" {
		t.Fatalf("channels %+v / %+v", a, b)
	}

	code, out, _ = ctl(t, "status", "--transport", "unix", "--addr", sock, "--insecure")
	if code != exitOK || !strings.Contains(out, "Go clusterclient, 2 channel(s): A, B") || !strings.Contains(out, `channel "B": term 1`) {
		t.Fatalf("text: exit %d\n%s", code, out)
	}
}

// With authentication (the default), the observer proves itself like a
// follower: a named channel is reported; a listing is refused, saying to
// name the channel; an unauthenticated observer is refused.
func TestStatusAuthenticated(t *testing.T) {
	port := strconv.Itoa(freePort(t))
	p, _ := strconv.Atoi(port)
	subscribe(t, newClient(t, "Secure", cluster.WithPort(p)))

	code, out, errs := ctl(t, "status", "--port", port, "--channel", "Secure", "--json")
	var rep report
	if code != exitOK || json.Unmarshal([]byte(out), &rep) != nil || len(rep.Channels) != 1 ||
		rep.Channels[0].Status == nil || rep.Channels[0].Status.Channel != "Secure" {
		t.Fatalf("named channel: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = ctl(t, "status", "--port", port)
	if code != exitFail || !strings.Contains(out+errs, "--channel") {
		t.Fatalf("listing an authenticated cluster: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = ctl(t, "status", "--port", port, "--channel", "Secure", "--insecure")
	if code != exitFail || !strings.Contains(out+errs, "handshake") {
		t.Fatalf("unauthenticated observer: exit %d\n%s%s", code, out, errs)
	}
}

// Failures exit 1 and say why, naming the address; bad flags exit 2.
func TestStatusFailures(t *testing.T) {
	port := freePort(t)
	code, out, errs := ctl(t, "status", "--port", strconv.Itoa(port), "--channel", "X")
	if code != exitFail || !strings.Contains(errs, "127.0.0.1:"+strconv.Itoa(port)) || !strings.Contains(errs, "no listener") {
		t.Fatalf("nothing listening: exit %d, %q %q", code, out, errs)
	}
	newClient(t, "Here", cluster.WithPort(port))
	code, _, errs = ctl(t, "status", "--port", strconv.Itoa(port), "--channel", "Elsewhere")
	if code != exitFail || !strings.Contains(errs, "no leader for this channel") {
		t.Fatalf("unknown channel: exit %d, %q", code, errs)
	}
	code, out, _ = ctl(t, "status", "--port", strconv.Itoa(port), "--channel", "Elsewhere", "--json")
	var rep report
	if code != exitFail || json.Unmarshal([]byte(out), &rep) != nil || !strings.Contains(rep.Error, "no leader for this channel") {
		t.Fatalf("unknown channel, --json: exit %d, %s", code, out)
	}
	for _, args := range [][]string{
		{},
		{"stats"},
		{"status", "--transport", "carrier-pigeon"},
		{"status", "--transport", "yamux", "--over", "kcp"},
		{"status", "--codec", "xml"},
		{"status", "--addr", "127.0.0.1:1", "--port", "2"},
		{"status", "--port", "70000"},
		{"status", "--timeout", "0s"},
		{"status", "extra"},
	} {
		if code, _, errs := ctl(t, args...); code != exitUsage || errs == "" {
			t.Errorf("%q: exit %d, stderr %q", args, code, errs)
		}
	}
	if code, out, _ := ctl(t, "help"); code != exitOK || !strings.Contains(out, "usage: clusterctl status") {
		t.Errorf("help: exit %d, %q", code, out)
	}
}

// A Node cluster-client leader (played back from the golden capture: the
// register reply a real 3.7.0 leader sent) has no status: clusterctl says
// it is a Node leader and that it accepted the channel, and exits 0.
// Without --channel the Node leader ignores the listing request.
func TestStatusOfNodeLeader(t *testing.T) {
	raw, err := os.ReadFile("testdata/node-capture.json")
	if err != nil {
		t.Fatal(err)
	}
	var cp struct {
		LeaderToFollower []struct{ Hex string } `json:"leaderToFollower"`
	}
	if err := json.Unmarshal(raw, &cp); err != nil {
		t.Fatal(err)
	}
	reply, err := hex.DecodeString(cp.LeaderToFollower[0].Hex)
	if err != nil {
		t.Fatal(err)
	}
	h, err := protocol.ParseHeader(reply, protocol.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	nodeConn := reply[protocol.HeaderSize : protocol.HeaderSize+int(h.ConnLen)]
	nodeApp := reply[protocol.HeaderSize+int(h.ConnLen):]

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	var kinds []string
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := protocol.NewReader(c, protocol.DefaultLimits)
				for {
					pk, err := r.Next()
					if err != nil {
						return
					}
					co, err := protocol.ParseConn(pk.Conn)
					if err != nil {
						return
					}
					mu.Lock()
					kinds = append(kinds, co.Type)
					mu.Unlock()
					if co.Type == protocol.KindRegisterChannel && co.ChannelName == "DataClient" {
						c.Write(protocol.AppendPacket(nil, &protocol.Packet{Response: true, ID: pk.ID, Timeout: pk.Timeout,
							Conn: nodeConn, App: nodeApp}))
					}
				}
			}()
		}
	}()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)

	code, out, errs := ctl(t, "status", "--port", port, "--channel", "DataClient", "--codec", "serialize-json", "--insecure")
	if code != exitOK || !strings.Contains(out, "leader   Node cluster-client") || !strings.Contains(out, "accepted the registration") {
		t.Fatalf("exit %d:\n%s%s", code, out, errs)
	}
	t.Logf("clusterctl status against a Node leader:\n%s", out)
	code, out, _ = ctl(t, "status", "--port", port, "--channel", "DataClient", "--insecure", "--json")
	var rep report
	if code != exitOK || json.Unmarshal([]byte(out), &rep) != nil || rep.Leader != leaderNode || len(rep.Channels) != 1 ||
		!strings.Contains(rep.Channels[0].Error, "add --codec serialize-json") {
		t.Fatalf("--json (JSON codec, cannot read Node's reply but knows it is Node): exit %d\n%s", code, out)
	}
	mu.Lock()
	got := fmt.Sprint(kinds)
	mu.Unlock()
	if got != "[register_channel register_channel]" {
		t.Fatalf("the Node leader received %s: a status request must not be sent to it", got)
	}
	if testing.Short() {
		return
	}
	// The listing waits for the response timeout (3 s) before it gives up.
	code, _, errs = ctl(t, "status", "--port", port)
	if code != exitFail || !strings.Contains(errs, "not a Go clusterclient leader") || !strings.Contains(errs, "--channel NAME") {
		t.Fatalf("listing: exit %d, %q", code, errs)
	}
}
