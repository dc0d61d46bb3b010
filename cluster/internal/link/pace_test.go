package link

import (
	"fmt"
	"testing"
	"time"
)

// A method moves off the reader only after slowStrikes slow jobs in a
// row: a single slow one may be the OS scheduler's doing.
func TestMethodPace(t *testing.T) {
	var p Paces
	inline := func(m string) bool { in, _ := p.look(m); return in }
	budget := DefaultInlineBudget
	slow, fast := budget+time.Millisecond, budget/2
	for i := range slowStrikes - 1 {
		p.ran("m", slow, budget)
		if !inline("m") {
			t.Fatalf("off the reader after %d slow jobs", i+1)
		}
	}
	p.ran("m", fast, budget) // breaks the run
	for range slowStrikes - 1 {
		p.ran("m", slow, budget)
	}
	if !inline("m") {
		t.Fatal("a fast job did not reset the count")
	}
	p.ran("m", slow, budget)
	if inline("m") {
		t.Fatalf("still on the reader after %d slow jobs in a row", slowStrikes)
	}
	if !inline("other") {
		t.Fatal("another method moved too")
	}
}

// A method is watched finely on the reader until FastRuns jobs in a row
// finished within the budget; a slow one starts the count again.
func TestMethodProvenFast(t *testing.T) {
	var p Paces
	budget := DefaultInlineBudget
	look := func() bool { _, fine := p.look("m"); return fine }
	for i := range FastRuns {
		if !look() {
			t.Fatalf("watched coarsely after %d fast jobs", i)
		}
		p.ran("m", budget/2, budget)
	}
	if look() {
		t.Fatalf("still watched finely after %d fast jobs", FastRuns)
	}
	p.ran("m", 2*budget, budget)
	if !look() {
		t.Fatal("a slow job left the method watched coarsely")
	}
}

// A member naming ever new methods does not grow the record beyond
// MaxPaces; a method it does not hold is run on the reader, watched
// finely.
func TestPacesBounded(t *testing.T) {
	var p Paces
	budget := DefaultInlineBudget
	for i := range 3 * MaxPaces {
		m := fmt.Sprint("m", i)
		for range slowStrikes {
			p.ran(m, 2*budget, budget)
		}
	}
	n := 0
	p.m.Range(func(any, any) bool { n++; return true })
	if n > MaxPaces {
		t.Fatalf("%d methods remembered, bound %d", n, MaxPaces)
	}
	if in, fine := p.look(fmt.Sprint("m", 3*MaxPaces-1)); !in || !fine {
		t.Fatalf("a method beyond the bound: inline %v fine %v, want true true", in, fine)
	}
}
