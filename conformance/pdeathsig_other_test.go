//go:build !linux

package conformance_test

import "os/exec"

// setPdeathsig does nothing where the kernel has no parent-death signal:
// the child's -test.timeout and the parent's context bound it instead.
func setPdeathsig(*exec.Cmd) {}
