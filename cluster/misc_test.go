package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/protocol"
	"github.com/go-clusterclient/clusterclient/transport"
	"github.com/go-clusterclient/clusterclient/transport/tcp"
)

// CC-020 (adapted), CC-009: a Service that declares an impossible method
// (a reserved name, a nil handler) is the ready error, named, on the
// leader and its followers; nothing undeclared is ever reachable.
func TestCC020_InvalidServiceIsReadyError(t *testing.T) {
	nop := func(context.Context, cluster.Args) (any, error) { return nil, nil }
	cases := map[string]map[string]cluster.Handler{
		"nil handler": {"not-exist": nil},
		// Issue 16, point 8: an empty name is refused too, and the
		// error names the method on the follower as on the leader.
		"empty name": {"": nop, "ok": nop},
	}
	for _, m := range []string{"publish", "unPublish", "subscribe", "unSubscribe", "close"} {
		cases["reserved "+m] = map[string]cluster.Handler{m: nop, "ok": nop}
	}
	for name, methods := range cases {
		t.Run(name, func(t *testing.T) {
			closed := atomic.Bool{}
			factory := func(context.Context, cluster.Emit) (*cluster.Service, error) {
				return &cluster.Service{Methods: methods, Close: func(context.Context) error { closed.Store(true); return nil }}, nil
			}
			tr, addr := memNet(t)
			opts := append(fastOpts(), cluster.WithTransport(tr), cluster.WithAddr(addr))
			l, err := cluster.New("NotifyClient", factory, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close(context.Background())
			err = l.Ready(tctx(t, wait))
			if !errors.Is(err, cluster.ErrNotReady) || !errors.Is(err, cluster.ErrInvalidOption) {
				t.Fatalf("ready: %v", err)
			}
			names := func(t *testing.T, err error) {
				t.Helper()
				for m, h := range methods {
					if m == "ok" {
						continue
					}
					want := strconv.Quote(m)
					if m == "" {
						want = "empty name"
					} else if h != nil {
						want += " is reserved"
					}
					if !strings.Contains(err.Error(), want) {
						t.Fatalf("error %q does not say %s", err, want)
					}
				}
			}
			names(t, err)
			if !closed.Load() {
				t.Fatal("the rejected real client was not closed")
			}
			f, err := cluster.New("NotifyClient", factory, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close(context.Background())
			err = f.Ready(tctx(t, wait))
			if !errors.Is(err, cluster.ErrNotReady) || !strings.Contains(err.Error(), "invalid option") || f.Role() != cluster.RoleFollower {
				t.Fatalf("follower ready: %v (role %v)", err, f.Role())
			}
			names(t, err)
		})
	}
}

// hangingDial is a transport whose address is always held and whose dials
// never complete (a black-holed SYN).
type hangingDial struct{ dials atomic.Int32 }

func (*hangingDial) Name() string        { return "hanging" }
func (*hangingDial) DefaultAddr() string { return "hanging" }
func (*hangingDial) Listen(ctx context.Context, addr string) (net.Listener, error) {
	return nil, &transport.OpError{Op: "listen", Transport: "hanging", Addr: addr, Kind: transport.ErrAddrInUse}
}
func (h *hangingDial) Dial(ctx context.Context, addr string) (net.Conn, error) {
	h.dials.Add(1)
	<-ctx.Done()
	return nil, &transport.OpError{Op: "dial", Transport: "hanging", Addr: addr, Err: ctx.Err()}
}

// RG-09, RP-13: the connect timeout bounds every dial; a follower whose
// dials hang keeps trying within its maximum wait, then fails naming it.
func TestRG09_ConnectTimeout(t *testing.T) {
	tr := &hangingDial{}
	c := newClient(t, "Connect", newWorld(), cluster.WithTransport(tr), cluster.WithMode(cluster.ForceFollower),
		cluster.WithConnectTimeout(30*time.Millisecond), cluster.WithMaxWait(300*time.Millisecond))
	err := c.Ready(tctx(t, wait))
	if !errors.Is(err, cluster.ErrNoLeader) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ready: %v", err)
	}
	if n := tr.dials.Load(); n < 3 {
		t.Fatalf("%d dials in 300ms with a 30ms connect timeout: dials are not bounded", n)
	}
}

// syncBuffer is a concurrency-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// UI-18, UI-22, RP-13 (custom logger): log records say which channel, on
// which address, in which role and term.
func TestUI18_LogsNameChannelAddressRoleTerm(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	tr, addr := memNet(t)
	l := newClient(t, "Logged", newWorld(), cluster.WithTransport(tr), cluster.WithAddr(addr), cluster.WithLogger(log))
	ready(t, l)
	f := newClient(t, "Logged", newWorld(), cluster.WithTransport(tr), cluster.WithAddr(addr), cluster.WithLogger(log))
	ready(t, f)
	// The "ready" line is written just after Ready returns (the term is
	// marked ready first), so wait for it rather than racing it.
	for _, want := range []string{
		`msg=ready channel=Logged addr="mem ` + addr + `" role=leader term=1`,
		`msg=ready channel=Logged addr="mem ` + addr + `" role=follower term=1`,
	} {
		deadline := time.Now().Add(wait)
		for !strings.Contains(buf.String(), want) && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if out := buf.String(); !strings.Contains(out, want) {
			t.Errorf("log lacks %q after %v:\n%s", want, wait, out)
		}
	}
}

// RP-14: a nil listener is refused with a clear error.
func TestRP14_NilListener(t *testing.T) {
	c := newClient(t, "Nil", newWorld(), cluster.WithSingleMode(true))
	cancel, err := c.Subscribe(reg{Key: "k"}, nil)
	cancel()
	if !errors.Is(err, cluster.ErrInvalidOption) || !strings.Contains(err.Error(), "nil listener") {
		t.Fatalf("subscribe(nil): %v", err)
	}
}

// SRC-06 (improved): the subscribe timeout applies in every role, here in
// single mode, where Node has none.
func TestSRC06_SubscribeTimeoutSingleMode(t *testing.T) {
	w := newWorld()
	w.noInitialPush = true
	rec := newRecorder()
	c := newClient(t, "SingleTimeout", w, cluster.WithSingleMode(true), cluster.WithSubscribeTimeout(50*time.Millisecond), rec.opt())
	ready(t, c)
	if _, err := c.Subscribe(reg{Key: "never"}, func(cluster.Value) {}); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, wait, "subscribe timeout", isErr(cluster.ErrSubscribeTimeout))
}

// UI-18: a panicking event handler is logged as an error that says which
// channel, address, role and term, and the Client carries on.
func TestEventHandlerPanicLogged(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	tr, addr := memNet(t)
	c := newClient(t, "Panicky", newWorld(), cluster.WithTransport(tr), cluster.WithAddr(addr), cluster.WithLogger(log),
		cluster.WithEventHandler(func(cluster.Event) { panic("handler bug") }))
	ready(t, c)
	want := `level=ERROR msg="event handler panicked" channel=Panicky addr="mem ` + addr + `" role=leader term=1 panic="handler bug"`
	deadline := time.Now().Add(wait)
	for !strings.Contains(buf.String(), want) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if out := buf.String(); !strings.Contains(out, want) {
		t.Fatalf("log lacks %q:\n%s", want, out)
	}
	if got := mustInvoke[string](t, c, "echo", "still here"); got != "still here" {
		t.Fatalf("echo = %q", got)
	}
}

// UI-20: a follower that dies mid-frame (its connection reset) is not
// news on the leader: logged at debug, not as a warning.
func TestResetFollowerNotAWarning(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	l := newClient(t, "Reset", newWorld(), cluster.WithTransport(tcp.New(tcp.Config{})), cluster.WithAddr(addr),
		cluster.WithInsecure(), cluster.WithLogger(log))
	ready(t, l)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	reg := protocol.AppendPacket(nil, &protocol.Packet{ID: 1, Timeout: 1000,
		Conn: protocol.AppendConn(nil, &protocol.ConnObject{Type: protocol.KindRegisterChannel, ChannelName: "Reset"})})
	if _, err := conn.Write(reg); err != nil {
		t.Fatal(err)
	}
	r := protocol.NewReader(conn, protocol.Limits{})
	conn.SetReadDeadline(time.Now().Add(wait))
	if _, err := r.Next(); err != nil {
		t.Fatalf("register reply: %v", err)
	}
	eventually(t, wait, "the leader counts the follower", func() bool { return l.Stats().Followers == 1 })
	half := protocol.AppendPacket(nil, &protocol.Packet{ID: 2, Timeout: 1000,
		Conn: protocol.AppendConn(nil, &protocol.ConnObject{Type: protocol.KindInvoke, Method: "echo", ArgLength: 1}), App: []byte(`"x"`)})
	before := len(buf.String()) // (the warning that authentication is off came before)
	conn.Write(half[:len(half)-2])
	conn.(*net.TCPConn).SetLinger(0) // close sends a reset
	conn.Close()
	eventually(t, wait, "the leader drops the follower", func() bool { return l.Stats().Followers == 0 })
	if out := buf.String()[before:]; strings.Contains(out, "level=WARN") || strings.Contains(out, "level=ERROR") {
		t.Fatalf("a reset follower was logged as news:\n%s", out)
	}
}
