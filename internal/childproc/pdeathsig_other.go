//go:build !linux

package childproc

import "os/exec"

// setParentDeathSignal does nothing where the kernel has no parent-death
// signal; the child still exits when its stdin reaches EOF.
func setParentDeathSignal(*exec.Cmd) {}
