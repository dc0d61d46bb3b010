//go:build !linux

package main

import "time"

// monoNow is clusterbench's clock outside Linux: the wall clock.
func monoNow() int64 { return time.Now().UnixNano() }
