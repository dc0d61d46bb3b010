package kcp_test

import (
	"testing"

	"golang.org/x/net/nettest"

	"github.com/go-clusterclient/clusterclient/conformance"
)

func conformanceHarness(host string) conformance.Harness {
	kit := harness(host)
	return conformance.Harness{NewTransport: kit.NewTransport, NewAddr: kit.NewAddr, Kit: kit,
		IgnoreGoroutines: kcpGoroutines}
}

func TestConformance(t *testing.T) { conformance.Run(t, conformanceHarness("127.0.0.1")) }

func TestConformanceIPv6(t *testing.T) {
	if !nettest.SupportsIPv6() {
		t.Skip("no IPv6 loopback")
	}
	conformance.Run(t, conformanceHarness("::1"))
}
