//go:build !unix && !windows

package cluster

// outOfFiles reports whether an accept failed for want of descriptors:
// never said here.
func outOfFiles(error) bool { return false }
