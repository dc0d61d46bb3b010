package main

import "syscall"

// sysProcAttr makes a worker die with the coordinator (SIGKILL from the
// kernel when the coordinator exits), so none outlives a killed run.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
