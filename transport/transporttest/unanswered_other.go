//go:build !linux

package transporttest

import (
	"testing"

	"github.com/go-clusterclient/clusterclient/transport"
)

// UnansweredTCPAddr returns nil outside Linux: how a full accept queue
// treats a new SYN varies (some systems reset it), so there is no portable
// address where a TCP Dial is guaranteed to wait. (A nil
// Harness.UnansweredAddr skips the subtests that need one.)
func UnansweredTCPAddr(host string) func(tb testing.TB, tr transport.Transport) string { return nil }
