package auth

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/go-clusterclient/clusterclient/internal/childproc"
)

func TestMain(m *testing.M) {
	childproc.Main(childModes)
	goleak.VerifyTestMain(m,
		// kcp-go's process-wide scheduler and workers, started once and
		// never stopped by design (package transport/kcp ignores them too).
		goleak.IgnoreTopFunction("github.com/xtaci/kcp-go/v5.(*TimedSched).run"),
		goleak.IgnoreAnyFunction("github.com/xtaci/kcp-go/v5.postProcessWorker"),
	)
}

// childModes are the child processes' entry points (see childproc).
// (uid_linux_test.go adds the other-user modes.)
var childModes = map[string]func(args []string) int{
	"secret": secretChild,
}
