package link

import (
	"testing"
	"time"
)

// A method moves off the reader only after slowStrikes slow jobs in a
// row: a single slow one may be the OS scheduler's doing.
func TestMethodPace(t *testing.T) {
	var p Paces
	budget := DefaultInlineBudget
	slow, fast := budget+time.Millisecond, budget/2
	for i := range slowStrikes - 1 {
		p.ran("m", slow, budget)
		if !p.inline("m") {
			t.Fatalf("off the reader after %d slow jobs", i+1)
		}
	}
	p.ran("m", fast, budget) // breaks the run
	for range slowStrikes - 1 {
		p.ran("m", slow, budget)
	}
	if !p.inline("m") {
		t.Fatal("a fast job did not reset the count")
	}
	p.ran("m", slow, budget)
	if p.inline("m") {
		t.Fatalf("still on the reader after %d slow jobs in a row", slowStrikes)
	}
	if !p.inline("other") {
		t.Fatal("another method moved too")
	}
}
