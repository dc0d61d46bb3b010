//go:build !linux

package yamux_test

import (
	"testing"

	"github.com/go-clusterclient/clusterclient/transport"
)

// unansweredTCPAddr is nil outside Linux: how a full accept queue treats a
// new SYN varies (some systems reset it), so there is no portable address
// where the underlying Dial is guaranteed to wait.
var unansweredTCPAddr func(testing.TB, transport.Transport) string
