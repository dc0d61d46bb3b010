package guard

import (
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Teardown runs BeforeTeardown, then the registered functions last first;
// a registration after the teardown runs at once; Run waits for Go's
// goroutines; Timeout's and Ctx's contexts end with the body.
func TestRunTearsDown(t *testing.T) {
	var mu sync.Mutex
	var order []string
	note := func(s string) func() {
		return func() { mu.Lock(); order = append(order, s); mu.Unlock() }
	}
	var e Env
	done := make(chan struct{})
	Run(t, Config{Kind: "guard:", Name: "t", Watchdog: 10 * time.Second, Grace: time.Second, BeforeTeardown: note("before")}, &e, func() {
		e.OnTeardown(note("first"))
		e.OnTeardown(note("second"))
		ctx := e.Timeout(time.Hour)
		e.Go(func() {
			<-ctx.Done() // ends only with the teardown
			close(done)
		})
	})
	select {
	case <-done:
	default:
		t.Fatal("Run returned before the goroutine started with Go")
	}
	if e.Ctx.Err() == nil {
		t.Fatal("Ctx still live after Run")
	}
	e.OnTeardown(note("late"))
	if want := []string{"before", "second", "first", "late"}; !slices.Equal(order, want) {
		t.Fatalf("order %v, want %v", order, want)
	}
}
