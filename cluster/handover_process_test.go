package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/internal/childproc"
	"github.com/go-clusterclient/clusterclient/transport/tcp"
)

func init() { childModes["oneshot"] = oneshotMode }

// withoutHandover runs the tests below without the features they test
// (CLUSTER_TEST_WITHOUT_HANDOVER=1: no hand-over, nothing declared
// idempotent), to see them fail: their figures are a measurement that can.
var withoutHandover = os.Getenv("CLUSTER_TEST_WITHOUT_HANDOVER") == "1"

// failed is the calls of s that did not succeed.
func (s memberStats) failed() int64 { return s.Lost + s.Timeouts + s.NotReady + s.Other }

func (s memberStats) add(o memberStats) memberStats {
	s.OK += o.OK
	s.Lost += o.Lost
	s.Timeouts += o.Timeouts
	s.NotReady += o.NotReady
	s.Other += o.Other
	s.Hangs += o.Hangs
	s.MaxCallMS = max(s.MaxCallMS, o.MaxCallMS)
	if o.LastErr != "" {
		s.LastErr = o.LastErr
	}
	return s
}

// exit closes a member (Client.Close) and returns every call it made.
func (m *member) exit() memberStats {
	m.t.Helper()
	var s memberStats
	if err := m.request("exit", nil).Decode(&s); err != nil {
		m.t.Fatal(err)
	}
	return s
}

// calling waits until every live member made n more successful calls.
func calling(t *testing.T, ms []*member, n int64) {
	t.Helper()
	base := map[*member]int64{}
	for _, m := range live(ms) {
		base[m] = m.stats().OK
	}
	eventually(t, 20*time.Second, fmt.Sprintf("%d more calls from every process", n), func() bool {
		for m, b := range base {
			if m.stats().OK < b+n {
				return false
			}
		}
		return true
	})
}

// A rolling restart of four processes, one at a time, leader or not, each
// closed with Client.Close while every process calls continuously (and
// the leader's method takes a moment, so that calls are in flight when it
// leaves): with the hand-over no call fails. Followers' calls in flight on
// the leaving leader are answered there; calls made meanwhile wait for
// the next leader.
func TestHandoverRollingRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process rolling restart skipped in -short mode")
	}
	port := freePort(t)
	args := memberArgs{Name: "Rolling", Port: port, Mode: "auto", Heartbeat: time.Second,
		CallEvery: 2 * time.Millisecond, CallBudget: 10 * time.Second, CallWork: time.Millisecond, NoHandover: withoutHandover}
	var ms []*member
	for range 4 {
		ms = append(ms, startMember(t, args))
	}
	waitOneLeader(t, ms, 20*time.Second)
	var total memberStats
	leaders := 0
	restarted := map[*member]bool{}
	for range 4 {
		// Each process once; the leader first whenever it was not
		// restarted yet (the worst order: a leader change each time).
		i := -1
		for j, m := range ms {
			if restarted[m] {
				continue
			}
			if role, _, _ := m.state(); i < 0 || role == "leader" {
				i = j
			}
		}
		old := ms[i]
		if role, _, _ := old.state(); role == "leader" {
			leaders++
		}
		calling(t, ms, 200)
		total = total.add(old.exit())
		ms[i] = startMember(t, args)
		restarted[ms[i]] = true
		waitOneLeader(t, live(ms), 20*time.Second)
	}
	calling(t, ms, 200)
	for _, m := range ms {
		total = total.add(m.exit())
	}
	t.Logf("rolling restart of 4 processes (%d of them leading when closed): %d calls ok, %d failed (lost %d, timed out %d, not ready %d, other %d), slowest %d ms",
		leaders, total.OK, total.failed(), total.Lost, total.Timeouts, total.NotReady, total.Other, total.MaxCallMS)
	if leaders == 0 {
		t.Fatal("no leader was closed: the test proved nothing")
	}
	if total.failed() != 0 || total.OK == 0 {
		t.Fatalf("%d calls failed across the rolling restart (last error %q)", total.failed(), total.LastErr)
	}
}

// SIGKILL of the leader process while every process calls a method the
// Service declares idempotent: the calls in flight on the dead leader are
// sent again to the next one, and none fails.
func TestIdempotentCallsSurviveSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process SIGKILL loop skipped in -short mode")
	}
	port := freePort(t)
	args := memberArgs{Name: "KillIdem", Port: port, Mode: "auto", Heartbeat: time.Second,
		CallEvery: time.Millisecond, CallBudget: 10 * time.Second, CallWork: 2 * time.Millisecond, Idempotent: !withoutHandover}
	var ms []*member
	for range 4 {
		ms = append(ms, startMember(t, args))
	}
	var total memberStats
	for range 3 {
		leader := waitOneLeader(t, live(ms), 20*time.Second)
		calling(t, ms, 200)
		if err := leader.ch.Kill(); err != nil {
			t.Fatal(err)
		}
		ms = append(live(ms), startMember(t, args))
	}
	waitOneLeader(t, live(ms), 20*time.Second)
	calling(t, ms, 200)
	for _, m := range live(ms) {
		total = total.add(m.exit())
	}
	t.Logf("3 SIGKILLs of the leader under idempotent calls: %d calls ok, %d failed (lost %d, timed out %d, not ready %d, other %d), slowest %d ms",
		total.OK, total.failed(), total.Lost, total.Timeouts, total.NotReady, total.Other, total.MaxCallMS)
	if total.failed() != 0 {
		t.Fatalf("%d idempotent calls failed across the kills (last error %q)", total.failed(), total.LastErr)
	}
}

// oneshotMode is a short-lived CLI: it joins the cluster, makes one call,
// closes and exits, reporting the call's outcome.
func oneshotMode(args []string) int {
	port, err := strconv.Atoi(args[0])
	if err != nil {
		childproc.Fatalf("oneshot: %v", err)
	}
	noHandover := len(args) > 1 && args[1] == "nohandover"
	pid := os.Getpid()
	handover := cluster.DefaultHandoverTimeout
	if noHandover {
		handover = 0
	}
	factory := func(context.Context, cluster.Emit) (*cluster.Service, error) {
		rc := &childRegistry{latest: map[string]string{}, subs: map[string]func(any){}}
		return rc.service(pid), nil
	}
	c, err := cluster.New("OneShot", factory, cluster.WithTransport(tcp.New(tcp.Config{})), cluster.WithPort(port),
		cluster.WithSingleMode(false), cluster.WithHandoverTimeout(handover), cluster.WithLogger(testLogger()),
		cluster.WithRegisterRetry(100*time.Millisecond))
	if err != nil {
		childproc.Fatalf("oneshot: %v", err)
	}
	childproc.Receive() // "go": all start their call together
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	_, callErr := cluster.Call[int](ctx, c, "whoami")
	cancel()
	role := c.Role().String()
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		childproc.Fatalf("oneshot close: %v", err)
	}
	out := map[string]string{"role": role}
	if callErr != nil {
		out["err"] = callErr.Error()
		if errors.Is(callErr, cluster.ErrLeaderLost) {
			out["lost"] = "true"
		}
	}
	childproc.Emit("done", out)
	return 0
}

// Twenty short-lived processes started at once, one call each, no
// long-lived leader: each winner leads for a moment and leaves, handing
// its followers over; every call succeeds.
func TestHandoverShortLivedProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process burst skipped in -short mode")
	}
	const n = 20
	port := freePort(t)
	var chs []*childproc.Child
	mode := "handover"
	if withoutHandover {
		mode = "nohandover"
	}
	for range n {
		chs = append(chs, childproc.Start(t, "oneshot", strconv.Itoa(port), mode))
	}
	for _, ch := range chs {
		if err := ch.Send("go", nil); err != nil {
			t.Fatal(err)
		}
	}
	failed, leaders := 0, 0
	var errs []string
	for _, ch := range chs {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		ev, err := ch.Expect(ctx, "done")
		cancel()
		if err != nil {
			t.Fatalf("process %d: %v\n%s", ch.Pid(), err, ch.Stderr())
		}
		var out map[string]string
		if err := ev.Decode(&out); err != nil {
			t.Fatal(err)
		}
		if out["role"] == "leader" {
			leaders++
		}
		if out["err"] != "" {
			failed++
			errs = append(errs, fmt.Sprintf("pid %d (%s): %s", ch.Pid(), out["role"], out["err"]))
		}
	}
	t.Logf("%d short-lived processes, one call each: %d failed, %d led at the time of their call", n, failed, leaders)
	if failed != 0 {
		t.Fatalf("%d of %d calls failed: %v", failed, n, errs)
	}
}
