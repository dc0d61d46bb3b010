package unix_test

import (
	"testing"

	"github.com/go-clusterclient/clusterclient/conformance"
	"github.com/go-clusterclient/clusterclient/transport/transporttest"
)

func conformanceHarness(kit transporttest.Harness) conformance.Harness {
	return conformance.Harness{NewTransport: kit.NewTransport, NewAddr: kit.NewAddr, Kind: kit.Kind, Kit: kit}
}

func TestConformance(t *testing.T) { conformance.Run(t, conformanceHarness(pathHarness)) }
