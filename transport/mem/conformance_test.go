package mem_test

import (
	"testing"

	"github.com/go-clusterclient/clusterclient/conformance"
	"github.com/go-clusterclient/clusterclient/transport"
	"github.com/go-clusterclient/clusterclient/transport/mem"
)

// The conformance suite on the in-memory transport: it is not
// multi-process, so the cases that need child processes skip by
// themselves, and simulated processes (one election registry and one
// transport each) stand in for the rest.
func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Harness{
		NewTransport: func(tb testing.TB) transport.Transport { return newTransport(tb, mem.Config{}) },
		NewAddr:      newAddr,
		Kit:          harness,
	})
}
