//go:build unix

package childproc

import (
	"fmt"
	"syscall"
)

// StartAs runs exe, a copy of the current test binary (CopyExecutable),
// as user and group uid, in mode with args for the mode's function (see
// Main), and env added to (and overriding) this process's environment. It
// fails tb if the process cannot start. The child is killed and reaped by
// tb.Cleanup, and its stderr logged when tb failed. Only root may start a
// child as another user.
func StartAs(tb TB, exe string, uid uint32, env []string, mode string, args ...string) *Child {
	tb.Helper()
	cmd := Command(mode, args...)
	cmd.Path, cmd.Args[0], cmd.Dir = exe, exe, "/"
	cmd.Env = append(cmd.Env, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid, Groups: []uint32{}}}
	name := fmt.Sprintf("%s as uid %d", mode, uid)
	c, err := StartCmd(cmd, Options{Name: name, Logf: tb.Logf})
	if err != nil {
		tb.Fatalf("start %s: %v", name, err)
	}
	tb.Cleanup(func() {
		c.Kill()
		c.Stop(0)
		if tb.Failed() {
			tb.Logf("child %s stderr:\n%s", name, c.Stderr())
		}
	})
	return c
}
