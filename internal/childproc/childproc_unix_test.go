//go:build unix

package childproc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// gone reports whether pid no longer names a live process (a zombie
// waiting for an absent reaper counts as gone).
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return os.IsNotExist(err)
	}
	// The state follows the parenthesised command name.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] == 'Z'
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !gone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still alive", pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCleanupReapsChild(t *testing.T) {
	var pid int
	t.Run("sub", func(t *testing.T) {
		c := Start(t, "hang")
		if _, err := c.Expect(testCtx(t), "ready"); err != nil {
			t.Fatal(err)
		}
		pid = c.Pid()
	})
	// Cleanup waited for the child, so the pid is already free.
	if !gone(pid) {
		t.Fatalf("child %d survived its test", pid)
	}
}

// A grandchild that keeps the child's stdout open does not make the
// test's cleanup wait for it.
func TestCleanupDoesNotWaitForInheritedStdout(t *testing.T) {
	defer func(d time.Duration) { pipeGrace = d }(pipeGrace)
	pipeGrace = 200 * time.Millisecond
	var gpid int
	t.Cleanup(func() {
		if gpid != 0 && !gone(gpid) {
			syscall.Kill(gpid, syscall.SIGKILL)
		}
	})
	t.Run("sub", func(t *testing.T) {
		c := Start(t, "share-stdout")
		ev, err := c.Expect(testCtx(t), "grandchild")
		if err != nil {
			t.Fatal(err)
		}
		if err := ev.Decode(&gpid); err != nil {
			t.Fatal(err)
		}
	})
	// The subtest's cleanup returned although the grandchild, which holds
	// the stdout pipe, lives on (it has no parent-death signal).
	if gone(gpid) {
		t.Fatalf("grandchild %d died with its parent; the test proves nothing", gpid)
	}
}

// TestGrandchildDiesWithParent checks that a child dies when its parent
// does: here the parent is itself a child, SIGKILLed by the test.
func TestGrandchildDiesWithParent(t *testing.T) {
	ctx := testCtx(t)
	c := Start(t, "spawn")
	ev, err := c.Expect(ctx, "grandchild")
	if err != nil {
		t.Fatal(err)
	}
	var gpid int
	if err := ev.Decode(&gpid); err != nil {
		t.Fatal(err)
	}
	if gone(gpid) {
		t.Fatalf("grandchild %d not running", gpid)
	}
	t.Cleanup(func() {
		if !gone(gpid) {
			syscall.Kill(gpid, syscall.SIGKILL)
		}
	})
	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}
	waitGone(t, gpid)
}

// StartCmd runs programs other than this one: here sh speaks one event,
// then ignores its stdin's EOF, so Stop must kill it once grace is over.
func TestStartCmdOtherProgram(t *testing.T) {
	ctx := testCtx(t)
	cmd := exec.Command("sh", "-c", `echo 'not an event'; echo '{"event":"hi","data":[1,2]}'; exec sleep 60 </dev/null`)
	var logged []string
	c, err := StartCmd(cmd, Options{Logf: func(f string, a ...any) { logged = append(logged, fmt.Sprintf(f, a...)) }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop(0)
	ev, err := c.Next(ctx)
	var data []int
	if err == nil {
		err = ev.Decode(&data)
	}
	if err != nil || ev.Name != "hi" || !slices.Equal(data, []int{1, 2}) {
		t.Fatalf("Next: %+v %v, want hi [1 2]", ev, err)
	}
	if len(logged) != 1 || !strings.Contains(logged[0], "(sh) stdout: not an event") {
		t.Errorf("logged %q, want the one non-event line, naming sh", logged)
	}
	start := time.Now()
	if err := c.Stop(100 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 100*time.Millisecond {
		t.Errorf("Stop returned after %v, before its grace", waited)
	}
	var ee *exec.ExitError
	if err := c.Wait(ctx); !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("Wait after Stop: %v, want killed by SIGKILL", err)
	}
}
