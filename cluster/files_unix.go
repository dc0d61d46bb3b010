//go:build unix

package cluster

import (
	"errors"
	"syscall"
)

// outOfFiles reports whether an accept failed for want of file
// descriptors (the process's or the system's).
func outOfFiles(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}
