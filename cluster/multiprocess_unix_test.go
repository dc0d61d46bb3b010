//go:build unix

package cluster_test

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// Hung leader, decided and documented in the package doc: a stopped leader
// (SIGSTOP) still holds the port, so nobody can take over; its followers
// detect it by heartbeat (ErrLeaderUnresponsive), report it, fail their
// calls meanwhile, and keep trying; when it resumes they register again
// (no new real client), and when it dies instead a new leader is elected.
func TestHungLeaderSIGSTOP(t *testing.T) {
	port := freePort(t)
	args := memberArgs{Name: "Stoppable", Port: port, Mode: "auto", Heartbeat: 100 * time.Millisecond, CallBudget: time.Second}
	var ms []*member
	for range 3 {
		ms = append(ms, startMember(t, args))
	}
	leader := waitOneLeader(t, ms, 20*time.Second)
	var followers []*member
	for _, m := range ms {
		if m != leader {
			followers = append(followers, m)
		}
	}
	if err := syscall.Kill(leader.ch.Pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := true
	t.Cleanup(func() {
		if stopped {
			syscall.Kill(leader.ch.Pid(), syscall.SIGCONT)
		}
	})
	eventually(t, 10*time.Second, "followers report the hung leader", func() bool {
		for _, f := range followers {
			f.mu.Lock()
			n := 0
			for _, e := range f.lost {
				if strings.Contains(e, "answers no heartbeat") {
					n++
				}
			}
			f.mu.Unlock()
			if n == 0 {
				return false
			}
		}
		return true
	})
	for _, f := range followers {
		if _, ready, _ := f.state(); ready {
			t.Fatalf("follower %d ready while its leader is stopped", f.ch.Pid())
		}
	}
	time.Sleep(300 * time.Millisecond) // a few more failed attempts
	if err := syscall.Kill(leader.ch.Pid(), syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	stopped = false
	if again := waitOneLeader(t, ms, 20*time.Second); again != leader {
		t.Fatalf("leader changed from %d to %d after SIGCONT", leader.ch.Pid(), again.ch.Pid())
	}
	if n := totalBuilds(ms); n != 1 {
		t.Fatalf("%d real clients built; resuming must not build another", n)
	}
	for _, f := range followers {
		var pid int
		if err := f.request("whoami", nil).Decode(&pid); err != nil || pid != leader.ch.Pid() {
			t.Fatalf("follower %d reaches %d (%v)", f.ch.Pid(), pid, err)
		}
	}
	// Stopped again, then killed: the followers elect a new leader.
	syscall.Kill(leader.ch.Pid(), syscall.SIGSTOP)
	time.Sleep(300 * time.Millisecond)
	if err := leader.ch.Kill(); err != nil {
		t.Fatal(err)
	}
	<-leader.ch.Exited()
	next := waitOneLeader(t, followers, 20*time.Second)
	if next == leader {
		t.Fatal("dead leader still leads")
	}
}
