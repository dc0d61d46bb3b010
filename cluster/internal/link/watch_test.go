package link

import (
	"context"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/protocol"
)

// A stream of calls of a method seen to be fast keeps no fine timer
// running in either process (here both ends are in this one): the
// watchdog's timer is armed at its coarse period, not to fire within a
// millisecond as when every job on the reader and every freed link asked
// for a look after 1 ms (a timer firing every millisecond doubles the
// median round trip on a small host).
func TestWatchdogCoarseWhileCallsFlow(t *testing.T) {
	_, cl := pair(t, time.Minute)
	ctx := context.Background()
	for range 2 * FastRuns { // the method is seen to be fast
		if _, err := callKind(cl.l, ctx, "echo", `"w"`); err != nil {
			t.Fatal(err)
		}
	}
	const span = 200 * time.Millisecond
	before := watch.fineArms.Load()
	start := time.Now()
	calls := 0
	for time.Since(start) < span {
		if _, err := callKind(cl.l, ctx, "echo", `"x"`); err != nil {
			t.Fatal(err)
		}
		calls++
	}
	elapsed := time.Since(start)
	fine := watch.fineArms.Load() - before
	t.Logf("%d calls in %v: the watchdog's timer was armed finely %d times", calls, elapsed.Round(time.Millisecond), fine)
	// Now and then a call slowed past CoarseWatch by the host counts as
	// one made alone, and is watched finely.
	if limit := int64(elapsed / (20 * time.Millisecond)); fine > limit {
		t.Fatalf("the watchdog's timer was armed finely %d times in %v of calls (more than %d)", fine, elapsed.Round(time.Millisecond), limit)
	}
}

// A method seen to be fast whose job then runs long still gives reading
// up, within about CoarseWatch: the follower's other requests are
// answered while it runs.
func TestSlowJobOfFastMethodHandsReadingOver(t *testing.T) {
	_, cl := pair(t, time.Minute)
	ctx := context.Background()
	for range 2 * FastRuns {
		if _, err := callKind(cl.l, ctx, "sleep", "0"); err != nil {
			t.Fatal(err)
		}
	}
	slow := make(chan error, 1)
	go func() {
		_, err := callKind(cl.l, ctx, "sleep", "3000")
		slow <- err
	}()
	for range 3 {
		if ans, err := callKind(cl.l, ctx, "echo", `"z"`); err != nil || string(ans.Data) != `"z"` {
			t.Fatalf("echo while a slow job of a fast method runs: %+v %v", ans, err)
		}
	}
	select {
	case err := <-slow:
		t.Fatalf("the slow job ended (%v) before the echoes were answered: they waited for it", err)
	default:
	}
	if err := <-slow; err != nil {
		t.Fatal(err)
	}
}

// pushee is a calling handler whose "block" request runs a job that
// blocks until release is closed, and whose "note" request is noted.
type pushee struct {
	release chan struct{}
	noted   chan struct{}
}

func (p *pushee) Request(_ protocol.Packet, co protocol.ConnObject) Job {
	switch co.Type {
	case "block":
		return Job{Method: "block", Run: func([]byte) { <-p.release }}
	case "note":
		p.noted <- struct{}{}
	}
	return Job{}
}
func (p *pushee) Response(protocol.Packet, protocol.ConnObject) {}
func (p *pushee) Ended(error)                                   {}

// On the calling side too, a job that runs long on the background reader
// (a follower's listener) gives reading up: what the peer sends next is
// read while it runs.
func TestCallingSideJobHandsReadingOver(t *testing.T) {
	a, b := tcpConns(t)
	p := &pushee{release: make(chan struct{}), noted: make(chan struct{}, 1)}
	cl := New(a, Config{MaxWriteBuffer: 1 << 20, Timeout: time.Minute}, p)
	srv := New(b, Config{Server: true, MaxWriteBuffer: 1 << 20, Timeout: time.Minute}, &echo{})
	cl.StartReading()
	t.Cleanup(func() {
		close(p.release)
		cl.Close(nil)
		srv.Close(nil)
		cl.Wait()
		srv.Wait()
	})
	for _, kind := range []string{"block", "note"} {
		if err := srv.Send(false, ids.Next(), 0, &protocol.ConnObject{Type: kind}, nil); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-p.noted:
	case <-time.After(10 * time.Second):
		t.Fatal("the second request was not read while the first one's job blocked the reader")
	}
}
