package election_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/election"
	"github.com/go-clusterclient/clusterclient/transport"
	"github.com/go-clusterclient/clusterclient/transport/transporttest"
)

// medium is a transport under test with a way to get fresh addresses.
type medium struct {
	name    string
	tr      transport.Transport
	newAddr func(t testing.TB) string
}

// media returns the transports the in-process tests run on: mem, the
// reference, and tcp, the default.
func media(t testing.TB) []medium {
	return []medium{
		{"mem", newMem(t), memAddr},
		{"tcp", newTCP(t), freeTCPAddr},
	}
}

// CC-025: in auto mode the first instance leads and the second follows;
// after the leader releases, Reelect makes the follower the leader.
func TestAutoFirstLeadsSecondFollowsThenReelect(t *testing.T) {
	for _, m := range media(t) {
		t.Run(m.name, func(t *testing.T) {
			addr := m.newAddr(t)
			first, second := election.NewRegistry(), election.NewRegistry() // two "processes"
			cfg := election.Config{Transport: m.tr, Addr: addr, Channel: "DataClient"}

			lease := lead(t, first, cfg)
			acc := attach(lease)
			conn := follow(t, second, cfg)

			if err := lease.Release(); err != nil {
				t.Fatal(err)
			}
			<-acc.done
			// The follower sees the leader go, as after a crash.
			conn.SetReadDeadline(time.Now().Add(testTimeout))
			if _, err := conn.Read(make([]byte, 1)); err == nil {
				t.Fatal("follower read data from a released leader")
			}
			conn.Close()

			out, err := second.Reelect(testContext(t), cfg)
			if err != nil || out.Role != election.Leader {
				t.Fatalf("Reelect = %+v, %v; want leader", out, err)
			}
			out.Lease.Release()
		})
	}
}

// UI-05, UI-14: a forced leader on a held address fails at once, with the
// real error and the address in the message.
func TestForceLeaderOnHeldAddressFailsAtOnce(t *testing.T) {
	for _, m := range media(t) {
		t.Run(m.name, func(t *testing.T) {
			addr := m.newAddr(t)
			holder := election.NewRegistry()
			lead(t, holder, election.Config{Transport: m.tr, Addr: addr, Channel: "X"})

			cfg := election.Config{Transport: m.tr, Addr: addr, Channel: "DataClient", Mode: election.ForceLeader}
			out, err := election.NewRegistry().Elect(testContext(t), cfg)
			if !errors.Is(err, transport.ErrAddrInUse) || !errors.Is(err, election.ErrLeaderBind) {
				t.Fatalf("err = %v, want ErrLeaderBind and transport.ErrAddrInUse", err)
			}
			// Windows reports WSAEADDRINUSE, which is not syscall.EADDRINUSE.
			if m.name == "tcp" && runtime.GOOS != "windows" && !errors.Is(err, syscall.EADDRINUSE) {
				t.Errorf("err = %v, want the OS error EADDRINUSE wrapped", err)
			}
			var ee *election.Error
			if !errors.As(err, &ee) || ee.Attempts != 1 || out.Attempts != 1 {
				t.Errorf("attempts: error %+v, outcome %d; want exactly one bind", ee, out.Attempts)
			}
			t.Logf("message: %v", err)
			for _, want := range []string{addr, `"DataClient"`, "(forced leader)", m.tr.Name()} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("message %q does not contain %q", err, want)
				}
			}
		})
	}
}

// CC-052 with isLeader: a forced leader of a channel that already leads on
// the address in this process fails instead of becoming a follower.
func TestForceLeaderSameChannelInProcess(t *testing.T) {
	tr := newMem(t)
	reg := election.NewRegistry()
	cfg := election.Config{Transport: tr, Addr: memAddr(t), Channel: "DataClient", Mode: election.ForceLeader}
	lead(t, reg, cfg)
	_, err := reg.Elect(testContext(t), cfg)
	if !errors.Is(err, election.ErrChannelLeading) {
		t.Fatalf("err = %v, want ErrChannelLeading", err)
	}
	if !strings.Contains(err.Error(), cfg.Addr) {
		t.Errorf("message %q does not name the address", err)
	}
}

// CC-031, UI-13: a forced follower created before its leader finds it
// once it starts, within one short probe interval rather than Node's 3 s.
func TestForceFollowerWaitsForLateLeader(t *testing.T) {
	for _, m := range media(t) {
		t.Run(m.name, func(t *testing.T) {
			addr := m.newAddr(t)
			const maxBackoff = 10 * time.Millisecond
			tr := transporttest.WatchRefusals(m.tr)
			follower := election.Config{Transport: tr, Addr: addr, Channel: "api_client_test",
				Mode: election.ForceFollower, MaxBackoff: maxBackoff}

			var leaderUp time.Time
			var wg sync.WaitGroup
			defer wg.Wait()
			wg.Go(func() {
				// The leader starts once the follower has probed and
				// found nobody.
				select {
				case <-tr.Refused():
				case <-time.After(testTimeout):
					t.Error("the forced follower never probed")
					return
				}
				cfg := follower
				cfg.Mode = election.ForceLeader
				leaderUp = time.Now()
				out, err := election.NewRegistry().Elect(testContext(t), cfg)
				if err != nil {
					t.Errorf("forced leader: %v", err)
					return
				}
				t.Cleanup(func() { out.Lease.Release() })
			})

			out, err := election.NewRegistry().Elect(testContext(t), follower)
			found := time.Now()
			if err != nil || out.Role != election.Follower {
				t.Fatalf("forced follower: %+v, %v", out, err)
			}
			out.Conn.Close()
			wg.Wait()
			lag := found.Sub(leaderUp)
			t.Logf("follower found the leader %v after it bound, after %d probes", lag, out.Attempts)
			if out.Attempts < 2 {
				t.Errorf("%d probes: the follower should have probed before the leader existed", out.Attempts)
			}
			// Not a speed assertion: the probe interval is capped at 10 ms,
			// so a second-scale lag would mean a fixed Node-style interval.
			if lag > 2*time.Second {
				t.Errorf("follower found the leader %v after it bound; probes should be ms apart", lag)
			}
		})
	}
}

// CC-018, UI-03: a forced follower with no leader gives up after MaxWait,
// naming the address and the time waited.
func TestForceFollowerGivesUpAfterMaxWait(t *testing.T) {
	for _, m := range media(t) {
		t.Run(m.name, func(t *testing.T) {
			addr := m.newAddr(t)
			const maxWait = 60 * time.Millisecond
			cfg := election.Config{Transport: m.tr, Addr: addr, Channel: "DataClient",
				Mode: election.ForceFollower, MaxWait: maxWait}
			start := time.Now()
			_, err := election.NewRegistry().Elect(testContext(t), cfg)
			waited := time.Since(start)
			if !errors.Is(err, election.ErrNoLeader) || !errors.Is(err, transport.ErrNoListener) {
				t.Fatalf("err = %v, want ErrNoLeader wrapping the last ErrNoListener", err)
			}
			want := fmt.Sprintf("election: channel %q on %s %s: no leader after 60ms (forced follower)",
				"DataClient", m.tr.Name(), addr)
			if !strings.HasPrefix(err.Error(), want) {
				t.Errorf("message\n %q\ndoes not start with\n %q", err, want)
			}
			var ee *election.Error
			if !errors.As(err, &ee) || ee.Waited < maxWait || ee.Attempts < 3 {
				t.Errorf("error %+v: want Waited >= %v and several probes", ee, maxWait)
			}
			if waited < maxWait {
				t.Errorf("gave up after %v, before MaxWait %v", waited, maxWait)
			}
		})
	}
}

// N survivors re-electing at the same moment end with exactly one leader
// and every other one following it.
func TestReelectStampede(t *testing.T) {
	for _, m := range media(t) {
		t.Run(m.name, func(t *testing.T) {
			for round := range 10 {
				addr := m.newAddr(t)
				const n = 8
				outs := make([]election.Outcome, n)
				errs := make([]error, n)
				start := make(chan struct{})
				var wg sync.WaitGroup
				for i := range n {
					wg.Go(func() {
						<-start
						cfg := election.Config{Transport: m.tr, Addr: addr, Channel: "DataClient"}
						outs[i], errs[i] = election.NewRegistry().Reelect(testContext(t), cfg)
						if l := outs[i].Lease; l != nil {
							election.Attach(l, startAcceptor)
						}
					})
				}
				close(start)
				wg.Wait()
				leaders := 0
				for i := range n {
					if errs[i] != nil {
						t.Fatalf("round %d survivor %d: %v", round, i, errs[i])
					}
					switch outs[i].Role {
					case election.Leader:
						leaders++
					case election.Follower:
						if outs[i].Conn == nil {
							t.Fatalf("round %d survivor %d: follower without a conn", round, i)
						}
					}
				}
				for i := range n {
					if outs[i].Lease != nil {
						outs[i].Lease.Release()
					} else {
						outs[i].Conn.Close()
					}
				}
				if leaders != 1 {
					t.Fatalf("round %d: %d leaders among %d survivors, want exactly 1", round, leaders, n)
				}
			}
		})
	}
}

// SRC-12: a stranger that accepts and never speaks. Auto election cannot
// tell it from a leader and returns a follower at once (the cluster
// layer's hello detects it); a forced leader fails naming the address.
func TestStrangerHoldingTheAddress(t *testing.T) {
	for _, m := range media(t) {
		t.Run(m.name, func(t *testing.T) {
			addr := m.newAddr(t)
			ln, err := m.tr.Listen(testContext(t), addr) // raw, outside any registry
			if err != nil {
				t.Fatal(err)
			}
			acc := startAcceptor(ln)
			defer acc.Close()

			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			out, err := election.NewRegistry().Elect(ctx,
				election.Config{Transport: m.tr, Addr: addr, Channel: "DataClient"})
			if err != nil || out.Role != election.Follower {
				t.Fatalf("auto vs stranger: %+v, %v; want follower", out, err)
			}
			out.Conn.Close()
			if out.Attempts != 2 {
				t.Errorf("auto vs stranger took %d attempts, want 2 (one bind, one dial)", out.Attempts)
			}

			_, err = election.NewRegistry().Elect(ctx,
				election.Config{Transport: m.tr, Addr: addr, Channel: "DataClient", Mode: election.ForceLeader})
			if !errors.Is(err, election.ErrLeaderBind) || !errors.Is(err, transport.ErrAddrInUse) ||
				!strings.Contains(err.Error(), addr) {
				t.Fatalf("forced leader vs stranger: %v", err)
			}
		})
	}
}

// SRC-11, UI-05: a bind refused for a reason other than "in use" while
// nobody answers is reported at once with the OS error, not retried.
func TestAutoBindRefusedNobodyListening(t *testing.T) {
	f := &fakeTransport{
		listenErr: &transport.OpError{Op: "listen", Transport: "fake", Addr: "fake-addr", Err: syscall.EACCES},
		dialErr:   &transport.OpError{Op: "dial", Transport: "fake", Addr: "fake-addr", Kind: transport.ErrNoListener, Err: syscall.ECONNREFUSED},
	}
	_, err := election.NewRegistry().Elect(testContext(t), election.Config{Transport: f, Channel: "DataClient"})
	if !errors.Is(err, election.ErrCannotElect) || !errors.Is(err, syscall.EACCES) {
		t.Fatalf("err = %v, want ErrCannotElect wrapping EACCES", err)
	}
	if l, d := f.listens.Load(), f.dials.Load(); l != 1 || d != 1 {
		t.Errorf("%d listens, %d dials; want one of each", l, d)
	}
	if !strings.Contains(err.Error(), "fake-addr") {
		t.Errorf("message %q does not name the default address", err)
	}
}

// An invalid address is not retried in any mode.
func TestInvalidAddressFailsAtOnce(t *testing.T) {
	f := &fakeTransport{
		listenErr: &transport.OpError{Op: "listen", Transport: "fake", Addr: "bad", Kind: transport.ErrInvalidAddr},
		dialErr:   &transport.OpError{Op: "dial", Transport: "fake", Addr: "bad", Kind: transport.ErrInvalidAddr},
	}
	for _, mode := range []election.Mode{election.Auto, election.ForceLeader, election.ForceFollower} {
		_, err := election.NewRegistry().Elect(testContext(t),
			election.Config{Transport: f, Addr: "bad", Channel: "DataClient", Mode: mode})
		if !errors.Is(err, transport.ErrInvalidAddr) {
			t.Errorf("%v: err = %v, want ErrInvalidAddr", mode, err)
		}
	}
	if l, d := f.listens.Load(), f.dials.Load(); l != 2 || d != 1 {
		t.Errorf("%d listens, %d dials; want 2 and 1 (no retries)", l, d)
	}
}

// While the address is held but the holder never answers (it is dying),
// auto election keeps competing with backoff until its context ends.
func TestAutoAbandonedWhenContextEnds(t *testing.T) {
	f := &fakeTransport{
		listenErr: &transport.OpError{Op: "listen", Transport: "fake", Addr: "a", Kind: transport.ErrAddrInUse},
		dialErr:   &transport.OpError{Op: "dial", Transport: "fake", Addr: "a", Kind: transport.ErrNoListener},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := election.NewRegistry().Elect(ctx, election.Config{Transport: f, Addr: "a", Channel: "DataClient"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	var ee *election.Error
	if !errors.As(err, &ee) || ee.Kind != nil || !strings.Contains(err.Error(), "election abandoned") {
		t.Errorf("err = %v (%+v), want an abandoned election", err, ee)
	}
	if l := f.listens.Load(); l < 3 {
		t.Errorf("%d bind attempts, want the election to have retried", l)
	}
}

// Reelect honours its context during the jitter delay.
func TestReelectCanceled(t *testing.T) {
	f := &fakeTransport{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := election.NewRegistry().Reelect(ctx,
		election.Config{Transport: f, Channel: "DataClient", Jitter: time.Hour})
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "fake-addr") {
		t.Fatalf("err = %v, want Canceled naming the address", err)
	}
	if f.listens.Load()+f.dials.Load() != 0 {
		t.Error("a canceled Reelect still competed")
	}
}

func TestConfigValidation(t *testing.T) {
	tr := newMem(t)
	for _, c := range []struct {
		name string
		cfg  election.Config
		want string
	}{
		{"no transport", election.Config{Channel: "c"}, "Transport is required"},
		{"no channel", election.Config{Transport: tr}, "Channel is required"},
		{"bad mode", election.Config{Transport: tr, Channel: "c", Mode: 7}, "unknown Mode 7"},
		{"negative dial timeout", election.Config{Transport: tr, Channel: "c", DialTimeout: -1}, "DialTimeout"},
		{"negative max wait", election.Config{Transport: tr, Channel: "c", MaxWait: -1}, "MaxWait"},
		{"negative jitter", election.Config{Transport: tr, Channel: "c", Jitter: -1}, "Jitter"},
		{"negative backoff", election.Config{Transport: tr, Channel: "c", MinBackoff: -1}, "MinBackoff"},
		{"min over default max", election.Config{Transport: tr, Channel: "c", MinBackoff: time.Second},
			"MinBackoff 1s exceeds MaxBackoff 100ms"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Validate()
			if !errors.Is(err, election.ErrInvalidConfig) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Validate() = %v, want ErrInvalidConfig mentioning %q", err, c.want)
			}
			if _, err := election.NewRegistry().Elect(testContext(t), c.cfg); !errors.Is(err, election.ErrInvalidConfig) {
				t.Fatalf("Elect: %v, want ErrInvalidConfig", err)
			}
		})
	}
	def := election.DefaultConfig(tr, "c")
	if err := def.Validate(); err != nil {
		t.Fatal(err)
	}
	if def.Addr != tr.DefaultAddr() || def.MaxWait != election.DefaultMaxWait || def.Jitter != election.DefaultJitter ||
		def.MinBackoff != election.DefaultMinBackoff || def.MaxBackoff != election.DefaultMaxBackoff ||
		def.DialTimeout != election.DefaultDialTimeout || def.Logger == nil {
		t.Errorf("DefaultConfig = %+v", def)
	}
}

func TestStrings(t *testing.T) {
	for v, want := range map[fmt.Stringer]string{
		election.Auto: "auto", election.ForceLeader: "leader", election.ForceFollower: "follower",
		election.Mode(9): "Mode(9)", election.Leader: "leader", election.Follower: "follower",
		election.Role(0): "Role(0)",
	} {
		if got := v.String(); got != want {
			t.Errorf("%#v.String() = %q, want %q", v, got, want)
		}
	}
}

// UI-18, UI-22: the outcome is logged with the role, channel and address.
func TestOutcomeLogged(t *testing.T) {
	var buf strings.Builder
	var mu sync.Mutex
	// At debug level: a Client logs its outcome once, when ready (package cluster).
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	addr := memAddr(t)
	lead(t, election.NewRegistry(), election.Config{Transport: newMem(t), Addr: addr, Channel: "DataClient", Logger: logger})
	mu.Lock()
	got := buf.String()
	mu.Unlock()
	for _, want := range []string{"msg=elected", "role=leader", "channel=DataClient", `addr="mem ` + addr + `"`, "mode=auto"} {
		if !strings.Contains(got, want) {
			t.Errorf("log %q lacks %q", got, want)
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
