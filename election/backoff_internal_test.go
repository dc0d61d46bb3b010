package election

import (
	"testing"
	"time"
)

// Probe pauses start at MinBackoff, double up to MaxBackoff, stay in the
// upper half of the current step, and never exceed the time left.
func TestBackoffSchedule(t *testing.T) {
	cfg := Config{MinBackoff: 2 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}
	for trial := range 200 {
		e := &election{cfg: cfg, backoff: cfg.MinBackoff}
		step := cfg.MinBackoff
		for i := range 12 {
			d := e.nextPause(0)
			if d < step/2 || d > step {
				t.Fatalf("trial %d pause %d = %v, want within [%v, %v]", trial, i, d, step/2, step)
			}
			step = min(2*step, cfg.MaxBackoff)
		}
		if e.backoff != cfg.MaxBackoff {
			t.Fatalf("backoff settled at %v, want MaxBackoff %v", e.backoff, cfg.MaxBackoff)
		}
		if d := e.nextPause(3 * time.Millisecond); d > 3*time.Millisecond {
			t.Fatalf("pause %v exceeds the 3ms left", d)
		}
	}
	// A 1ns step still yields a valid (possibly zero) pause.
	e := &election{cfg: Config{MaxBackoff: time.Nanosecond}, backoff: time.Nanosecond}
	if d := e.nextPause(0); d < 0 || d > time.Nanosecond {
		t.Fatalf("pause %v for a 1ns step", d)
	}
}
