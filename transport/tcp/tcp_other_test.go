//go:build !linux

package tcp_test

import (
	"testing"

	"github.com/go-clusterclient/clusterclient/transport"
)

// unansweredAddr is nil outside Linux: how a full accept queue treats a
// new SYN varies (some systems reset it), so there is no portable address
// where Dial is guaranteed to wait.
func unansweredAddr(string) func(testing.TB, transport.Transport) string { return nil }
