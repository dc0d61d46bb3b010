package tlstransport_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/go-clusterclient/clusterclient/conformance"
	"github.com/go-clusterclient/clusterclient/examples/tlstransport"
	"github.com/go-clusterclient/clusterclient/transport"
	"github.com/go-clusterclient/clusterclient/transport/transporttest"
)

// secret is the cluster's shared secret: every process derives the same
// identity from it.
var secret = [32]byte{'c', 'o', 'n', 'f', 'o', 'r', 'm', 'a', 'n', 'c', 'e'}

// The README quotes from here to "README end", checked by TestREADMEQuote.

func newTransport() (transport.Transport, error) { return tlstransport.New(secret) }

func TestMain(m *testing.M) {
	conformance.Main(func(kind string) (transport.Transport, error) { return newTransport() })
	goleak.VerifyTestMain(m)
}

func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Harness{
		NewTransport: func(tb testing.TB) transport.Transport {
			tr, err := newTransport()
			if err != nil {
				tb.Fatal(err)
			}
			return tr
		},
		NewAddr: func(tb testing.TB) string { return transporttest.FreeAddr(tb, "tcp", "127.0.0.1") },
		Kit: transporttest.Harness{
			// A plain TCP socket that never answers the handshake: Listen
			// must fail with ErrAddrInUse, and Dial within its context.
			HoldAddr: func(tb testing.TB, addr string) bool {
				transporttest.Hold(tb, "tcp", addr)
				return false
			},
			// A listener whose accept queue is full: Dial must wait for
			// its context (nil outside Linux: the suite says what it skips).
			UnansweredAddr: transporttest.UnansweredTCPAddr("127.0.0.1"),
		},
	})
}

// README end
