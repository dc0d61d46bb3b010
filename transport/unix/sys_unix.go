//go:build unix

package unix

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	xunix "golang.org/x/sys/unix"
)

// lockFile opens (creating, 0600) the lock file at path and takes an
// exclusive flock on it without waiting. Closing the result releases it.
func lockFile(path string) (io.Closer, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := xunix.Flock(int(f.Fd()), xunix.LOCK_EX|xunix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, xunix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w: %w", path, errLocked, err)
		}
		return nil, fmt.Errorf("flock %s: %w", path, err)
	}
	return f, nil
}

// checkPrivate checks that the directory dir (fi is its Lstat) is owned
// by the effective user and not writable by group or others.
func checkPrivate(dir string, fi os.FileInfo) error {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%w: %s is owned by uid %d, not %d", ErrInsecureDir, dir, st.Uid, os.Geteuid())
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("%w: %s has mode %04o, writable by group or others", ErrInsecureDir, dir, perm)
	}
	return nil
}
