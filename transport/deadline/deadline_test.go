package deadline

import (
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// within fails the test unless c is closed within a generous bound.
func within(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: not closed after 10 s", what)
	}
}

func TestZeroValueHasNoDeadline(t *testing.T) {
	var d Deadline
	if d.Passed() {
		t.Fatal("the zero Deadline has passed")
	}
	d.Set(time.Time{})
	select {
	case <-d.Done():
		t.Fatal("no deadline, yet Done is closed")
	case <-time.After(20 * time.Millisecond):
	}
}

func TestPastAndFuture(t *testing.T) {
	var d Deadline
	d.Set(time.Now().Add(-time.Second))
	if !d.Passed() {
		t.Fatal("a deadline in the past has not passed")
	}
	d.Set(time.Now().Add(-time.Second)) // again: a fresh channel, closed at once
	if !d.Passed() {
		t.Fatal("a second deadline in the past has not passed")
	}
	d.Set(time.Now().Add(time.Hour))
	if d.Passed() {
		t.Fatal("a deadline an hour away has passed")
	}
	d.Set(time.Now().Add(20 * time.Millisecond))
	within(t, d.Done(), "a deadline 20 ms away")
	d.Set(time.Time{})
	if d.Passed() {
		t.Fatal("a removed deadline still counts as passed")
	}
}

// A waiter blocked on the channel of a far deadline is woken by Set to a
// past time, as SetReadDeadline wakes a blocked Read.
func TestSetWakesWaiter(t *testing.T) {
	var d Deadline
	d.Set(time.Now().Add(time.Hour))
	woken := make(chan struct{})
	done := d.Done()
	go func() {
		<-done
		close(woken)
	}()
	d.Set(time.Now().Add(-time.Second))
	within(t, woken, "the waiter after Set to the past")
}

// Moving a deadline later does not wake a waiter of the new setting early;
// a stopped timer never closes the new channel.
func TestMoveLater(t *testing.T) {
	var d Deadline
	d.Set(time.Now().Add(10 * time.Millisecond))
	d.Set(time.Now().Add(time.Hour))
	time.Sleep(50 * time.Millisecond)
	if d.Passed() {
		t.Fatal("the deadline moved an hour away passed with the old one")
	}
}

func TestConcurrentSetAndWait(t *testing.T) {
	var d Deadline
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				case <-d.Done():
				case <-time.After(time.Millisecond):
				}
			}
		})
	}
	for i := range 2000 {
		d.Set(time.Now().Add(time.Duration(i%5-2) * time.Microsecond))
	}
	close(stop)
	wg.Wait()
	d.Set(time.Now().Add(-time.Second))
	within(t, d.Done(), "the final deadline in the past")
}
