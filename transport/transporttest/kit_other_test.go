//go:build !linux

package transporttest

import (
	"os/exec"

	"github.com/go-clusterclient/clusterclient/transport"
)

func setPdeathsig(*exec.Cmd) {}

var reusePortTransport func() (transport.Transport, error)

func reusePortHarness() Harness { panic("linux only") }
