//go:build linux

package interop

import (
	"os/exec"
	"syscall"
)

// setPdeathsig makes the kernel kill the child if the test process dies
// first, so that no node process outlives a crashed test.
func setPdeathsig(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
