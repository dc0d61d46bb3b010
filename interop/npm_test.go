package interop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// installTimeout bounds one `npm ci` of the pinned package (a few seconds
// with a warm npm cache; downloads on a fresh machine take longer).
const installTimeout = 5 * time.Minute

// installLock is the file the test processes lock while one of them checks
// for, or installs, node_modules: several test binaries of this package
// may run at once (two shells, a test loop), and npm ci deletes
// node_modules before it writes it again, so a process that did not wait
// could see half a package. Git ignores the file.
const installLock = ".npm-ci.lock"

var (
	installOnce sync.Once
	installErr  error
)

// ensureNodeModules installs the pinned, locked cluster-client into
// interop/node_modules with `npm ci` when it is missing, once per test
// process and under a file lock shared by every test process. It returns
// nil when the package is there (already or now), and otherwise says why
// not: npm is not on PATH, or npm ci failed (with its output).
func ensureNodeModules() error {
	installOnce.Do(func() { installErr = installNodeModules() })
	return installErr
}

func nodeModulesPresent() bool {
	_, err := os.Stat(filepath.Join("node_modules", "cluster-client", "package.json"))
	return err == nil
}

func installNodeModules() error {
	unlock, err := lockFile(installLock)
	if err != nil {
		return fmt.Errorf("lock interop/%s before installing: %w", installLock, err)
	}
	defer unlock()
	if nodeModulesPresent() { // installed before, or by another test process meanwhile
		return nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return errors.New("interop/node_modules is missing and `npm` is not on PATH; install Node.js with npm, or run `npm ci` in interop/, to install the pinned cluster-client 3.7.0")
	}
	fmt.Fprintln(os.Stderr, "interop: node_modules is missing; installing the pinned cluster-client 3.7.0 from package-lock.json (npm ci in interop/, once)")
	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("`npm ci` in interop/ failed (%v) after %v; run it by hand to see why:\n%s", err, time.Since(start).Round(time.Millisecond), out.Bytes())
	}
	if !nodeModulesPresent() {
		return fmt.Errorf("`npm ci` in interop/ succeeded but node_modules/cluster-client is still missing:\n%s", out.Bytes())
	}
	fmt.Fprintf(os.Stderr, "interop: npm ci done in %v\n", time.Since(start).Round(time.Millisecond))
	return nil
}
