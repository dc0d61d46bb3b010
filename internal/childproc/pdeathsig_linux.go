package childproc

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal asks the kernel to SIGKILL the child when the
// parent dies. (Strictly, when the thread that forked it exits; the Go
// runtime does not end its threads unless a goroutine locked to one
// returns, which test code does not do.)
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
