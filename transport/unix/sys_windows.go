package unix

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/windows"
)

var errLocked = errors.New("lock held by another listener")

// lockFile fails: without flock this package cannot replace dead socket
// files safely, so it does not listen on paths here.
func lockFile(path string) (io.Closer, error) {
	return nil, fmt.Errorf("listen on a socket path needs flock: %w", errors.ErrUnsupported)
}

// privateDir checks only that dir is a directory (ownership and ACLs are
// not inspected here), creating it first if create is set.
func privateDir(dir string, create bool) error {
	if create {
		if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("create socket directory: %w", err)
		}
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: %s is not a directory", ErrInsecureDir, dir)
	}
	return nil
}

func isAddrInUse(err error) bool { return errors.Is(err, windows.WSAEADDRINUSE) }

func isRefused(err error) bool { return errors.Is(err, windows.WSAECONNREFUSED) }
