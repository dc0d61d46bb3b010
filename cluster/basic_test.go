package cluster_test

import (
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
)

func TestBasicLeaderFollower(t *testing.T) {
	w := newWorld()
	tr, addr := memNet(t)
	opts := []cluster.Option{cluster.WithTransport(tr), cluster.WithAddr(addr)}
	l := newClient(t, "Basic", w, opts...)
	ready(t, l)
	f := newClient(t, "Basic", w, opts...)
	ready(t, f)
	if !l.IsLeader() || f.IsLeader() {
		t.Fatalf("roles: leader %v follower %v", l.Role(), f.Role())
	}
	if got := mustInvoke[string](t, f, "echo", "hi"); got != "hi" {
		t.Fatalf("echo = %q", got)
	}
	if got := mustInvoke[int](t, l, "add", []int{1, 2}); got != 3 {
		t.Fatalf("add = %d", got)
	}
	s1, s2 := newSink(), newSink()
	if _, err := l.Subscribe(reg{Key: "foo"}, s1.listener(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Subscribe(reg{Key: "foo"}, s2.listener(t)); err != nil {
		t.Fatal(err)
	}
	if err := f.Publish(reg{Key: "foo", Value: "bar"}); err != nil {
		t.Fatal(err)
	}
	s1.waitFor(t, 5*time.Second, "bar")
	s2.waitFor(t, 5*time.Second, "bar")
	if n := w.builds.Load(); n != 1 {
		t.Fatalf("builds %d", n)
	}
}
