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

// During fastProbes after the start the pause stays at most fastProbeMax
// (or MinBackoff when larger); after it, doubling resumes from there.
func TestBackoffFastWindow(t *testing.T) {
	cfg := Config{MinBackoff: time.Millisecond, MaxBackoff: 100 * time.Millisecond}
	e := &election{cfg: cfg, backoff: cfg.MinBackoff, fastUntil: time.Now().Add(time.Hour)}
	for i := range 20 {
		if d := e.nextPause(0); d > fastProbeMax {
			t.Fatalf("pause %d = %v inside the fast window, want at most %v", i, d, fastProbeMax)
		}
	}
	e.fastUntil = time.Time{} // the window is over
	step := fastProbeMax
	for i := range 8 {
		if d := e.nextPause(0); d < step/2 || d > step {
			t.Fatalf("pause %d after the window = %v, want within [%v, %v]", i, d, step/2, step)
		}
		step = min(2*step, cfg.MaxBackoff)
	}
	// A MinBackoff above fastProbeMax is kept in the window.
	big := Config{MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}
	e = &election{cfg: big, backoff: big.MinBackoff, fastUntil: time.Now().Add(time.Hour)}
	for range 5 {
		if d := e.nextPause(0); d < 5*time.Millisecond || d > 10*time.Millisecond {
			t.Fatalf("pause %v with MinBackoff 10ms in the window, want within [5ms, 10ms]", d)
		}
	}
}
