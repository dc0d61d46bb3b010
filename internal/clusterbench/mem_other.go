//go:build !linux

package clusterbench

// residentBytes returns 0: the resident set is read from /proc on Linux
// only; reports show it as unknown elsewhere.
func residentBytes() int64 { return 0 }

// loadAverage returns 0: it is read from /proc on Linux only.
func loadAverage() float64 { return 0 }
