package yamux_test

import (
	"runtime"
	"testing"

	"github.com/go-clusterclient/clusterclient/conformance"
	"github.com/go-clusterclient/clusterclient/transport/transporttest"
)

func conformanceHarness(kit transporttest.Harness) conformance.Harness {
	return conformance.Harness{NewTransport: kit.NewTransport, NewAddr: kit.NewAddr, Kind: kit.Kind, Kit: kit}
}

func TestConformanceOverTCP(t *testing.T) { conformance.Run(t, conformanceHarness(tcpHarness())) }

func TestConformanceOverUnix(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("unix path sockets cannot be listened on on Windows")
	}
	conformance.Run(t, conformanceHarness(unixHarness()))
}
