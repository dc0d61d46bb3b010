//go:build !linux

package interop

import "os/exec"

// setPdeathsig: only Linux has a parent-death signal; elsewhere the
// child's stdin closing (it exits at EOF) and t.Cleanup's kill remain.
func setPdeathsig(*exec.Cmd) {}
