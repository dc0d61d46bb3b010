package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The workers are this test binary again, in worker mode.
	if spec := os.Getenv(envWorker); spec != "" {
		os.Exit(workerMain(spec))
	}
	goleak.VerifyTestMain(m)
}

// The demonstration with 3 workers and one leader kill: the NATS server
// never sees more than one client connection, a survivor leads, the only
// connection is then the new leader's, and both survivors get the next
// tick. The checks are the demo's own, read back from its records as
// well as from its output.
func TestThreeWorkersOneConnectionAndFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("runs worker processes for about 10 s")
	}
	cfg := Config{N: 3, Duration: 8 * time.Second, Kills: 1, Rate: 100, Worker: os.Args[0]}
	d, out := runDemo(t, cfg)

	d.mu.Lock()
	defer d.mu.Unlock()
	if d.maxConns != 1 || d.samples < 100 {
		t.Errorf("NATS client connections: at most %d in %d samples, want 1", d.maxConns, d.samples)
	}
	if len(d.failovers) != 1 {
		t.Fatalf("%d failovers", len(d.failovers))
	}
	f := d.failovers[0]
	if f.leader == f.killed || f.survivors != 2 || f.reached != 2 || f.replacement == nil {
		t.Errorf("failover %+v", f)
	}
	if varz, err := d.ns.Varz(nil); err != nil || varz.TotalConnections != 2 {
		t.Errorf("NATS connections opened: %v (%v), want 2: one per leader", varz.TotalConnections, err)
	}
	if len(d.procs) != 4 {
		t.Errorf("%d workers started, want 3 and a replacement", len(d.procs))
	}
	for _, want := range []string{
		"cluster formed: ", "leads, 2 followers; the NATS server sees 1 client connection",
		"SIGKILL the leader w",
		"is the new leader",
		"NATS client connections back to 1",
		"reached 2/2 survivors",
		"NATS client conns 1 |",
		"NATS client connections of live processes: at most 1 at a time",
		"OK: 3 processes shared 1 NATS connection and survived 1 leader kill(s)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// A run that cannot do what it says fails and says why.
func TestFailureSaysWhy(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-worker")
	var out bytes.Buffer
	err := run(context.Background(), Config{N: 2, Duration: time.Second, Worker: missing}, &out, false)
	if err == nil || !strings.Contains(err.Error(), "start worker 1") || !strings.Contains(err.Error(), "no-such-worker") {
		t.Fatalf("got %v", err)
	}
	for _, bad := range []Config{
		{N: 1, Duration: time.Second},
		{N: 2, Duration: time.Millisecond},
		{N: 2, Duration: time.Second, Kills: -1},
		{N: 2, Duration: time.Second, Rate: -1},
		{N: 2, Duration: time.Second, Port: 70000},
	} {
		if err := run(context.Background(), bad, &out, false); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// runDemo runs the demo with cfg to its end (at most two minutes), logs
// its output and fails the test if it failed; the demo's state and its
// output are left for the test to check.
func runDemo(t *testing.T, cfg Config) (*demo, string) {
	t.Helper()
	var out bytes.Buffer
	d, err := newDemo(cfg, &out, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.shutdown)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err = d.run(ctx)
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	return d, out.String()
}
