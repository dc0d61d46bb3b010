package cluster_test

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
