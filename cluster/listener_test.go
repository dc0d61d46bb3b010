package cluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
)

// onBothRoles runs f with the subscriber as the leader and as the
// follower of a pair; other is the other Client of the pair.
func onBothRoles(t *testing.T, f func(t *testing.T, w *world, sub, other *cluster.Client)) {
	for _, role := range []cluster.Role{cluster.RoleLeader, cluster.RoleFollower} {
		t.Run("subscriber="+role.String(), func(t *testing.T) {
			w := newWorld()
			l, fl := pair(t, "Listeners", w)
			if role == cluster.RoleLeader {
				f(t, w, l, fl)
			} else {
				f(t, w, fl, l)
			}
		})
	}
}

// published is a listener that calls f for each value with something
// published (not the initial empty list).
func published(f func()) cluster.Listener {
	return func(v cluster.Value) {
		var l []string
		if v.Decode(&l) == nil && len(l) > 0 {
			f()
		}
	}
}

// A listener may call its own Client: invoke, publish. On a follower the
// listener runs on the goroutine that read the value when nothing else
// waits to run; the call's answer is then read by another goroutine.
func TestListenerCallsItsClient(t *testing.T) {
	onBothRoles(t, func(t *testing.T, w *world, sub, other *cluster.Client) {
		got := make(chan string, 1)
		cancel, err := sub.Subscribe(reg{Key: "k"}, published(func() {
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			r, err := cluster.Call[string](ctx, sub, "echo", "from the listener")
			if err == nil {
				err = sub.Publish(reg{Key: "k2", Value: r})
			}
			select {
			case got <- fmt.Sprint(r, " ", err):
			default:
			}
		}))
		if err != nil {
			t.Fatal(err)
		}
		defer cancel()
		if err := other.Publish(reg{Key: "k", Value: "v"}); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-got:
			if r != "from the listener <nil>" {
				t.Fatalf("the listener's call: %q", r)
			}
		case <-time.After(wait):
			t.Fatal("the listener's call did not return")
		}
	})
}

// A listener may close its own Client: Close returns (the session does not
// wait for the goroutine that runs the listener, which is its reader on a
// follower).
func TestListenerClosesItsClient(t *testing.T) {
	onBothRoles(t, func(t *testing.T, w *world, sub, other *cluster.Client) {
		closed := make(chan error, 1)
		_, err := sub.Subscribe(reg{Key: "k"}, published(func() {
			select {
			case closed <- sub.Close(context.Background()):
			default:
			}
		}))
		if err != nil {
			t.Fatal(err)
		}
		if err := other.Publish(reg{Key: "k", Value: "v"}); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-closed:
			if err != nil {
				t.Fatalf("Close from the listener: %v", err)
			}
		case <-time.After(wait):
			t.Fatal("Close from the listener did not return")
		}
	})
}

// A listener that blocks holds neither the Client's calls nor the values
// after it: reading moves on, the values wait in order for the callback
// goroutine, and none is lost.
func TestBlockedListenerKeepsOrder(t *testing.T) {
	onBothRoles(t, func(t *testing.T, w *world, sub, other *cluster.Client) {
		const n = 30
		release := make(chan struct{})
		lens := make(chan int, 2*n)
		_, err := sub.Subscribe(reg{Key: "k"}, func(v cluster.Value) {
			var l []string
			if err := v.Decode(&l); err != nil {
				t.Error(err)
				return
			}
			if len(l) == 1 {
				<-release
			}
			lens <- len(l)
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := <-lens; got != 0 {
			t.Fatalf("first value has %d entries, want the initial empty list", got)
		}
		for i := range n {
			if err := other.Publish(reg{Key: "k", Value: fmt.Sprintf("v%02d", i)}); err != nil {
				t.Fatal(err)
			}
		}
		// The first value's listener blocks; the subscriber's calls are
		// still answered meanwhile.
		if got := mustInvoke[string](t, sub, "echo", "meanwhile"); got != "meanwhile" {
			t.Fatalf("echo while a listener blocks: %q", got)
		}
		close(release)
		for want := 1; want <= n; want++ {
			select {
			case got := <-lens:
				if got != want {
					t.Fatalf("value with %d entries delivered where %d was due", got, want)
				}
			case <-time.After(wait):
				t.Fatalf("value %d of %d not delivered", want, n)
			}
		}
	})
}

// A listener whose method has been fast and then blocks holds the
// follower's reader (nothing watches it, so that subscriber processes keep
// no timer): the heartbeat moves reading on, and the follower does not
// take the silence for a hung leader.
func TestBlockedListenerIsNotAHungLeader(t *testing.T) {
	rec := newRecorder()
	w := newWorld()
	const iv = 50 * time.Millisecond
	const fast = 40 // values before the one whose listener blocks
	l, f := pair(t, "Listeners", w, cluster.WithHeartbeatInterval(iv), rec.opt())
	blocked, release := make(chan struct{}), make(chan struct{})
	lens := make(chan int, 64)
	_, err := f.Subscribe(reg{Key: "k"}, func(v cluster.Value) {
		var l []string
		if err := v.Decode(&l); err != nil {
			t.Error(err)
			return
		}
		if len(l) == fast+1 {
			close(blocked)
			<-release
		}
		lens <- len(l)
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range fast + 1 {
		if err := l.Publish(reg{Key: "k", Value: fmt.Sprintf("v%02d", i)}); err != nil {
			t.Fatal(err)
		}
		if i == fast {
			break
		}
		for got := -1; got != i+1; {
			select {
			case got = <-lens:
			case <-time.After(wait):
				t.Fatalf("value %d not delivered", i+1)
			}
		}
	}
	<-blocked
	time.Sleep(8 * iv) // the reader is held for 8 heartbeat intervals
	close(release)
	if got := <-lens; got != fast+1 {
		t.Fatalf("value with %d entries, want %d", got, fast+1)
	}
	// Events wait behind the listener: they come now, if any.
	holdsFor(t, 20*iv, "no lost leader", func() bool {
		return rec.count(func(ev cluster.Event) bool { return ev.Kind == cluster.EventLeaderLost }) == 0
	})
	if got := mustInvoke[string](t, f, "echo", "after"); got != "after" {
		t.Fatalf("echo after the listener returned: %q", got)
	}
}
