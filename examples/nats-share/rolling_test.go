package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// -rolling with 3 workers and one kill: every worker is restarted in turn
// (SIGTERM: it closes its Client gracefully and exits 0), the leader
// first, while all call; no call fails during the planned changes, and
// the summary counts the failed calls per kind of leader change.
func TestRollingRestartFailsNoCall(t *testing.T) {
	if testing.Short() {
		t.Skip("runs worker processes for about 10 s")
	}
	cfg := Config{N: 3, Duration: 8 * time.Second, Kills: 1, Rolling: true, Rate: 100, Worker: os.Args[0]}
	d, out := runDemo(t, cfg)
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.changes) != 2 || d.changes[0].kind != kindPlanned || d.changes[1].kind != kindCrash {
		t.Fatalf("changes %+v, want the rolling restart, then the crash", d.changes)
	}
	planned, crash := d.changes[0], d.changes[1]
	if planned.restarts != 3 || planned.leaders < 1 || planned.calls.calls == 0 || planned.calls.failed() != 0 {
		t.Errorf("rolling restart %+v: want 3 restarts, a leader among them, calls and none failed", planned)
	}
	if crash.leaders != 1 || crash.calls.calls == 0 {
		t.Errorf("crash %+v", crash)
	}
	if len(d.procs) != 7 {
		t.Errorf("%d workers started, want 3, 3 in their place and a replacement of the killed leader", len(d.procs))
	}
	for _, p := range d.procs[:3] {
		if !p.stopping && !p.killed {
			t.Errorf("%s was neither restarted nor killed", p)
		}
	}
	for _, want := range []string{
		"rolling restart of 3 workers",
		", the leader, handed over, closed and exited ",
		"rolling restart done: 3 workers restarted",
		"calls per kind of leader change",
		"planned (SIGTERM, graceful Close; 3 workers restarted, ",
		"crash (SIGKILL of the leader; 1 leader change(s), ",
		"outside any leader change: 0 failed of ",
		"OK: 3 processes shared 1 NATS connection and survived 1 leader kill(s) and a rolling restart",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// SIGTERM or SIGINT to the coordinator (main's context ends) stops the
// run gracefully: the workers close their Clients, the summary is printed
// and the run does not fail for the changes it did not reach.
func TestInterruptStopsGracefully(t *testing.T) {
	if testing.Short() {
		t.Skip("runs worker processes")
	}
	cfg := Config{N: 2, Duration: time.Minute, Kills: 1, Rate: 100, Worker: os.Args[0]}
	out := &syncBuffer{}
	d, err := newDemo(cfg, out, false)
	if err != nil {
		t.Fatal(err)
	}
	defer d.shutdown()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.run(ctx) }()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(out.String(), "cluster formed") {
		if time.Now().After(deadline) {
			t.Fatalf("the cluster did not form:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel() // what main's signal.NotifyContext does on SIGTERM
	select {
	case err := <-done:
		t.Logf("output:\n%s", out.String())
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatalf("the run did not stop:\n%s", out.String())
	}
	for _, want := range []string{"interrupted: every worker closes its Client gracefully", "interrupted (SIGTERM or SIGINT) after", "(interrupted)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if n := d.ns.NumClients(); n != 0 {
		t.Errorf("%d NATS connections left", n)
	}
	for _, p := range d.procs {
		if p.err != nil {
			t.Errorf("%s exited with %v", p, p.err)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the demo's writer and the test's
// reader.
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
