//go:build !linux

package main

import "syscall"

// sysProcAttr: without Pdeathsig, a worker notices the coordinator's end
// when its stdin reaches EOF, and exits.
func sysProcAttr() *syscall.SysProcAttr { return nil }
