package cluster_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/auth"
	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/internal/childproc"
)

// Issue 14: another local user creates the default directory
// clusterclient-<uid> in the shared temporary directory (a directory, or a
// symbolic link to one of theirs) before the victim's first start. The
// victim's Clients must still start, with authentication, and agree on one
// private directory (socket and secret), leaving the squatter's alone.

const (
	squatterUID = nobodyUID // 65534
	victimUID   = 65533     // any uid but root's and the squatter's
)

func init() {
	childModes["squat"] = squatMode
	childModes["squat-victim"] = squatVictimMode
}

// squatMode (as the squatter): tmp, victim uid, kind ("dir" or
// "symlink"): takes clusterclient-<uid> and clusterclient-<uid>-1 in tmp.
func squatMode(args []string) int {
	tmp, uid, kind := args[0], args[1], args[2]
	mine, err := os.MkdirTemp(tmp, "squatter-")
	if err != nil {
		childproc.Fatalf("squat: %v", err)
	}
	if err := os.Chmod(mine, 0o777); err != nil {
		childproc.Fatalf("squat: %v", err)
	}
	for _, name := range []string{"clusterclient-" + uid, "clusterclient-" + uid + "-1"} {
		p := filepath.Join(tmp, name)
		if kind == "symlink" {
			err = os.Symlink(mine, p)
		} else {
			err = os.Mkdir(p, 0o777)
			if err == nil {
				err = os.Chmod(p, 0o777) // the victim could even write here
			}
		}
		if err != nil {
			childproc.Fatalf("squat: %v", err)
		}
	}
	childproc.Emit("squatted", mine)
	childproc.Receive()
	return 0
}

type victimReport struct {
	SocketDir string `json:"socketDir"`
	Secret    string `json:"secret"`
}

// squatVictimMode (as the victim, TMPDIR set, no XDG_RUNTIME_DIR, no home):
// transport ("unix": its default address; "tcp": the address given), role.
// A leader reports "ready"; a follower reports "called" after one call.
func squatVictimMode(args []string) int {
	trName, addr, role := args[0], args[1], args[2]
	tr, err := uidTransport(trName)
	if err != nil {
		childproc.Fatalf("victim: %v", err)
	}
	if trName == "unix" {
		addr = tr.DefaultAddr()
	}
	secret, err := auth.DefaultSecretPath()
	if err != nil {
		childproc.Fatalf("victim: DefaultSecretPath: %v", err)
	}
	mode := cluster.ForceFollower
	if role == "leader" {
		mode = cluster.ForceLeader
	}
	// The default authentication: the per-user secret file, same uid only.
	c, err := cluster.New("Shared", newWorld().factory, cluster.WithTransport(tr), cluster.WithAddr(addr),
		cluster.WithMode(mode), cluster.WithRegisterRetry(50*time.Millisecond),
		cluster.WithLogger(testLogger()), cluster.WithSingleMode(false))
	if err != nil {
		childproc.Fatalf("victim: New: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Ready(ctx); err != nil {
		childproc.Fatalf("victim: %s not ready: %v", role, err)
	}
	rep := victimReport{SocketDir: filepath.Dir(addr), Secret: secret}
	if role == "leader" {
		childproc.Emit("ready", rep)
	} else {
		if c.IsLeader() {
			childproc.Fatalf("victim: the follower leads")
		}
		if _, err := c.Invoke(ctx, "echo", "hi"); err != nil {
			childproc.Fatalf("victim: call: %v", err)
		}
		childproc.Emit("called", rep)
	}
	childproc.Receive()
	c.Close(context.Background())
	return 0
}

func TestSquattedDefaultDirs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: this test runs a squatter as uid 65534 and its victim as uid 65533; that needs root (CI runs as root).")
	}
	shared, err := os.MkdirTemp("", "cluster-squat-")
	mustOK(t, err)
	t.Cleanup(func() { os.RemoveAll(shared) })
	mustOK(t, os.Chmod(shared, 0o755))
	exe, err := childproc.CopyExecutable(shared)
	mustOK(t, err)

	for _, kind := range []string{"dir", "symlink"} {
		for _, trName := range []string{"unix", "tcp"} {
			t.Run(kind+"/"+trName, func(t *testing.T) {
				// A shared temporary directory like /tmp: sticky, writable by all.
				tmp, err := os.MkdirTemp(shared, "tmp-")
				mustOK(t, err)
				mustOK(t, os.Chmod(tmp, 0o1777))
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()

				sq := childproc.StartAs(t, exe, squatterUID, nil, "squat", tmp, strconv.Itoa(victimUID), kind)
				ev, err := sq.Expect(ctx, "squatted")
				mustOK(t, err)
				var squatterDir string
				mustOK(t, ev.Decode(&squatterDir))

				env := []string{"TMPDIR=" + tmp, "HOME=/nonexistent", "XDG_RUNTIME_DIR=", "XDG_CONFIG_HOME=", auth.EnvSecretFile + "="}
				addr := "-"
				if trName == "tcp" {
					addr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
				}
				leader := childproc.StartAs(t, exe, victimUID, env, "squat-victim", trName, addr, "leader")
				ev, err = leader.Expect(ctx, "ready")
				if err != nil {
					t.Fatalf("the victim's leader did not start: %v\n%s", err, leader.Stderr())
				}
				var lrep, frep victimReport
				mustOK(t, ev.Decode(&lrep))
				follower := childproc.StartAs(t, exe, victimUID, env, "squat-victim", trName, addr, "follower")
				ev, err = follower.Expect(ctx, "called")
				if err != nil {
					t.Fatalf("the victim's follower did not call its leader: %v\n%s", err, follower.Stderr())
				}
				mustOK(t, ev.Decode(&frep))
				if lrep != frep {
					t.Fatalf("the victim's processes disagree: leader %+v, follower %+v", lrep, frep)
				}
				want := filepath.Join(tmp, fmt.Sprintf("clusterclient-%d-2", victimUID))
				if lrep.SocketDir != want && trName == "unix" || filepath.Dir(lrep.Secret) != want {
					t.Fatalf("victim uses %+v, want the first free name %s", lrep, want)
				}
				var st syscall.Stat_t
				mustOK(t, syscall.Lstat(want, &st))
				if st.Uid != victimUID || st.Mode&0o777 != 0o700 || st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
					t.Fatalf("%s: uid %d mode %o, want a 0700 directory of uid %d", want, st.Uid, st.Mode, victimUID)
				}
				squatted := []string{squatterDir}
				if kind == "dir" {
					squatted = append(squatted, filepath.Join(tmp, fmt.Sprintf("clusterclient-%d", victimUID)),
						filepath.Join(tmp, fmt.Sprintf("clusterclient-%d-1", victimUID)))
				}
				for _, d := range squatted {
					if ents, err := os.ReadDir(d); err != nil || len(ents) != 0 {
						t.Fatalf("the squatter's directory %s holds %v (%v): the victim wrote there", d, ents, err)
					}
				}
			})
		}
	}
}
