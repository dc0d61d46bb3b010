package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/internal/childproc"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The workers are this test binary again, in worker mode.
	childproc.Main(map[string]func([]string) int{"worker": workerMain})
	goleak.VerifyTestMain(m)
}

// The demonstration with 3 workers: one HTTP/2 connection at any time,
// the leader SIGKILLed, a survivor leads and every survivor calls and
// watches again, the server's second connection is the new leader's.
// The checks are the demo's own; this reads back its result.
func TestOneConnectionAndFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 3 worker processes")
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := run(ctx, Config{N: 3, Rate: 100}, &out)
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	if res.MaxOpen != 1 || res.Total != 2 {
		t.Errorf("server connections: at most %d open, %d in all; want 1 and 2", res.MaxOpen, res.Total)
	}
	// Every survivor had a Watch stream in flight on the dead leader: it
	// ended with Unavailable.
	if res.Unavailable < 2 {
		t.Errorf("%d calls and streams ended with Unavailable at the kill, want at least the 2 survivors' streams", res.Unavailable)
	}
}
