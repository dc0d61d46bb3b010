package unix

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// lockFile fails: without flock this package cannot replace dead socket
// files safely, so it does not listen on paths here.
func lockFile(path string) (io.Closer, error) {
	return nil, fmt.Errorf("listen on a socket path needs flock: %w", errors.ErrUnsupported)
}

// checkPrivate accepts every directory: ownership and ACLs are not
// inspected here.
func checkPrivate(string, os.FileInfo) error { return nil }
