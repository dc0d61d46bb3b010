package auth

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/go-clusterclient/clusterclient/internal/leaks"

	"github.com/go-clusterclient/clusterclient/internal/childproc"
)

func TestMain(m *testing.M) {
	childproc.Main(childModes)
	goleak.VerifyTestMain(m, leaks.KCP()...)
}

// childModes are the child processes' entry points (see childproc).
// (uid_linux_test.go adds the other-user modes.)
var childModes = map[string]func(args []string) int{
	"secret": secretChild,
}
