//go:build !unix && !windows

package interop

// lockFile does not lock where neither flock nor LockFileEx exist: there,
// run `npm ci` in interop/ before running test processes side by side.
func lockFile(string) (unlock func(), err error) { return func() {}, nil }
