//go:build !linux

package main

import "os/exec"

// setParentDeathSignal does nothing outside Linux: there a child notices
// its parent's death only by the EOF on its stdin.
func setParentDeathSignal(*exec.Cmd) {}
