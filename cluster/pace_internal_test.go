package cluster

import (
	"testing"
	"time"
)

// A method moves off the reader only after slowStrikes slow calls in a
// row: a single slow call may be the OS scheduler's doing.
func TestMethodPace(t *testing.T) {
	lt := &leaderTerm{}
	slow, fast := inlineBudget+time.Millisecond, inlineBudget/2
	for i := range slowStrikes - 1 {
		lt.ran("m", slow)
		if !lt.runsInline("m") {
			t.Fatalf("off the reader after %d slow calls", i+1)
		}
	}
	lt.ran("m", fast) // breaks the run
	for range slowStrikes - 1 {
		lt.ran("m", slow)
	}
	if !lt.runsInline("m") {
		t.Fatal("a fast call did not reset the count")
	}
	lt.ran("m", slow)
	if lt.runsInline("m") {
		t.Fatalf("still on the reader after %d slow calls in a row", slowStrikes)
	}
	if !lt.runsInline("other") {
		t.Fatal("another method moved too")
	}
}
