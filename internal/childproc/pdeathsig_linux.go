package childproc

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal asks the kernel to SIGKILL the child when the
// parent dies. (Strictly, when the thread that forked it exits; the Go
// runtime does not end its threads unless a goroutine locked to one
// returns, which the code of this module does not do.) The setting survives an exec in
// the child, so a child that is not a Go program gets it too.
func setParentDeathSignal(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
