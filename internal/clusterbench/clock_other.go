//go:build !linux

package clusterbench

import "time"

// monoNow returns the wall clock in nanoseconds: outside Linux there is no
// portable host-wide monotonic clock, and the wall clock is at least shared
// by every process of the host (it can step, which would show as outliers).
func monoNow() int64 { return time.Now().UnixNano() }

// monoIsHostWide is false: cross-process timings use the wall clock here
// and Node's process.hrtime is not comparable with it.
const monoIsHostWide = false
