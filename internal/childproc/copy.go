package childproc

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// CopyExecutable copies the running executable (a test binary, say) into
// dir, mode 0755, and returns the copy's path. A child that runs as another
// user (SysProcAttr.Credential) cannot always exec the original, which lives
// in the go tool's private build directory; it can exec this copy when dir
// is world-traversable.
func CopyExecutable(dir string) (string, error) {
	src, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("childproc: copy executable: %w", err)
	}
	in, err := os.Open(src)
	if err != nil {
		return "", fmt.Errorf("childproc: copy executable: %w", err)
	}
	defer in.Close()
	dst := filepath.Join(dir, filepath.Base(src))
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if err != nil {
		return "", fmt.Errorf("childproc: copy executable: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return "", fmt.Errorf("childproc: copy executable to %s: %w", dst, err)
	}
	if err := out.Close(); err != nil {
		return "", fmt.Errorf("childproc: copy executable to %s: %w", dst, err)
	}
	return dst, nil
}
