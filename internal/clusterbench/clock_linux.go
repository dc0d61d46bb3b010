//go:build linux

package clusterbench

import "golang.org/x/sys/unix"

// monoNow returns CLOCK_MONOTONIC in nanoseconds. On Linux that clock is
// one for the whole host, so timestamps taken in different processes (Go
// or Node, whose process.hrtime uses the same clock) can be subtracted.
func monoNow() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic("clusterbench: clock_gettime(CLOCK_MONOTONIC): " + err.Error())
	}
	return ts.Nano()
}

// monoIsHostWide reports whether monoNow values can be compared across
// processes, as cross-process latencies (publish → delivery) need.
const monoIsHostWide = true
