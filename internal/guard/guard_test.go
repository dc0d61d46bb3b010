package guard

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strings"
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

// The watchdog's message reaches the output of a test run without -v even
// when the body stays hung and the process panics (t.Error's output would
// be printed only when the test ends).
func TestHungMessageWithoutVerbose(t *testing.T) {
	if os.Getenv("GUARD_HANG") == "1" {
		var e Env
		Run(t, Config{Kind: "guard:", Name: "hang", Watchdog: 50 * time.Millisecond, Grace: 50 * time.Millisecond,
			Where: func() string { return " at the test's select{}" }}, &e, func() { select {} })
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-test.run=^TestHungMessageWithoutVerbose$", "-test.count=1")
	cmd.Env = append(os.Environ(), "GUARD_HANG=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the hung run passed:\n%s", out)
	}
	if want := "guard: hang hung for 50ms at the test's select{}; tearing down"; !strings.Contains(string(out), want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
}
