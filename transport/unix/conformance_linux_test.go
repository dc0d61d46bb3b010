package unix_test

import (
	"testing"

	"github.com/go-clusterclient/clusterclient/conformance"
)

func TestConformanceAbstract(t *testing.T) { conformance.Run(t, conformanceHarness(abstractHarness)) }
