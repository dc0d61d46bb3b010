//go:build linux

package main

import "golang.org/x/sys/unix"

// monoNow is clusterbench's clock: CLOCK_MONOTONIC, one for the whole
// host, so the start time clusterbench sends means the same here.
func monoNow() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic("grpcecho: clock_gettime(CLOCK_MONOTONIC): " + err.Error())
	}
	return ts.Nano()
}
