package conformance_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/go-clusterclient/clusterclient/conformance"
	"github.com/go-clusterclient/clusterclient/transport"
	"github.com/go-clusterclient/clusterclient/transport/unix"
)

// unixHarness runs member processes over unix sockets (kind "unix").
func unixHarness() conformance.Harness {
	return conformance.Harness{
		Kind: "unix",
		NewTransport: func(tb testing.TB) transport.Transport {
			tr, err := unix.New(unix.DefaultConfig())
			if err != nil {
				tb.Fatal(err)
			}
			return tr
		},
		NewAddr: func(tb testing.TB) string {
			dir, err := os.MkdirTemp("", "soak") // short enough for sun_path
			if err != nil {
				tb.Fatal(err)
			}
			tb.Cleanup(func() { os.RemoveAll(dir) })
			return filepath.Join(dir, "s.sock")
		},
	}
}

// The chaos soak of issue 7 on TCP and on unix sockets, side by side:
// six member processes, one SIGKILLed every few hundred milliseconds and
// replaced, under continuous publishes and calls (see conformance.Soak).
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("the soak runs for about a minute")
	}
	for name, h := range map[string]conformance.Harness{"tcp": tcpHarness(), "unix": unixHarness()} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := conformance.Soak(t, h, conformance.SoakConfig{})
			if r.Kills < 10 || r.LeaderKills < 3 || r.Settled < 3 || r.Calls < 100 || r.Publishes < 50 {
				t.Errorf("the soak did too little to mean anything: %+v", r)
			}
		})
	}
}
