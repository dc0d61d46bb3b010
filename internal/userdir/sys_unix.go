//go:build unix

package userdir

import (
	"io/fs"
	"os"
	"strconv"
	"syscall"
)

const hasModes = true

// ownedBySelf reports whether the effective user owns fi.
func ownedBySelf(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Geteuid()
}

func ownerName(fi fs.FileInfo) string {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return "uid " + strconv.FormatUint(uint64(st.Uid), 10)
	}
	return "unknown"
}

// openNoFollow opens p for reading, failing (ELOOP) on a symbolic link
// and not blocking on a FIFO.
func openNoFollow(p string) (*os.File, error) {
	return os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
}
