//go:build unix

package main

import "syscall"

// terminate asks worker p to stop as a process manager would: SIGTERM.
func terminate(p *proc) error { return p.cmd.Process.Signal(syscall.SIGTERM) }
