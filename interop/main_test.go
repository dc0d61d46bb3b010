package interop

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/go-clusterclient/clusterclient/internal/childproc"
)

// TestMain runs the Go member processes the failover tests start (see
// memberMode), and fails the package's tests if any goroutine outlives
// them.
func TestMain(m *testing.M) {
	childproc.Main(map[string]func(args []string) int{"member": memberMode})
	goleak.VerifyTestMain(m)
}
