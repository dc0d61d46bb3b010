package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/auth"
	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/internal/childproc"
	"github.com/go-clusterclient/clusterclient/transport"
	"github.com/go-clusterclient/clusterclient/transport/tcp"
	"github.com/go-clusterclient/clusterclient/transport/unix"
)

// A second user on the host, for real: a member process running as uid
// 65534 ('nobody') with its own secret, against a cluster of this user,
// over unix sockets (the kernel's credentials) and TCP (the secret).

const nobodyUID = 65534

func init() { childModes["other-user"] = otherUserMode }

// otherUserMode runs one Client as whatever user the process is:
// transport, address, secret file, role ("leader" or "follower"), and
// "allow-root" to admit uid 0 on unix sockets (so that the other side is
// the one to refuse). It reports "ready" (a leader) and the first
// "refused" (ErrHandshake), then waits for the parent.
func otherUserMode(args []string) int {
	if len(args) != 5 {
		childproc.Fatalf("other-user: want 5 args, got %q", args)
	}
	cfg := auth.Config{SecretFile: args[2]}
	if args[4] == "allow-root" {
		cfg.AllowUIDs = []uint32{0}
	}
	tr, err := uidTransport(args[0])
	if err != nil {
		childproc.Fatalf("other-user: %v", err)
	}
	mode := cluster.ForceFollower
	if args[3] == "leader" {
		mode = cluster.ForceLeader
	}
	var once atomic.Bool
	w := newWorld()
	c, err := cluster.New("Shared", w.factory, cluster.WithTransport(tr), cluster.WithAddr(args[1]), cluster.WithMode(mode),
		cluster.WithAuth(cfg), cluster.WithRegisterRetry(50*time.Millisecond),
		cluster.WithLogger(testLogger()), cluster.WithSingleMode(false),
		cluster.WithEventHandler(func(ev cluster.Event) {
			if ev.Kind == cluster.EventError && errors.Is(ev.Err, cluster.ErrHandshake) && once.CompareAndSwap(false, true) {
				childproc.Emit("refused", ev.Err.Error())
			}
		}))
	if err != nil {
		childproc.Fatalf("other-user: New: %v", err)
	}
	if mode == cluster.ForceLeader {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := c.Ready(ctx)
		cancel()
		if err != nil {
			childproc.Fatalf("other-user: leader not ready: %v", err)
		}
		childproc.Emit("ready", nil)
	}
	childproc.Receive()
	c.Close(context.Background())
	childproc.Emit("served", w.builds.Load())
	return 0
}

func uidTransport(name string) (transport.Transport, error) {
	if name == "unix" {
		return unix.New(unix.DefaultConfig())
	}
	return tcp.New(tcp.Config{}), nil
}

func TestOtherUserRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: this test runs a member process as uid 65534 (nobody) to show that another user is refused " +
			"on unix sockets and on TCP; that needs root (CI runs as root).")
	}
	shared, err := os.MkdirTemp("", "cluster-uid-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(shared) })
	mustOK(t, os.Chmod(shared, 0o755))
	exe, err := childproc.CopyExecutable(shared)
	mustOK(t, err)
	nobodyDir := filepath.Join(shared, "nobody")
	mustOK(t, os.Mkdir(nobodyDir, 0o700))
	mustOK(t, os.Chown(nobodyDir, nobodyUID, nobodyUID))
	nobodySecret := filepath.Join(nobodyDir, "secret")
	rootAuth := cluster.WithAuth(auth.Config{SecretFile: filepath.Join(t.TempDir(), "cc", "secret")})

	var seq atomic.Int32
	addrOf := map[string]func() string{
		"unix": func() string { return fmt.Sprintf("@clusterclient-uid-%d-%d", os.Getpid(), seq.Add(1)) },
		"tcp":  func() string { return fmt.Sprintf("127.0.0.1:%d", freePort(t)) },
	}
	for _, trName := range []string{"unix", "tcp"} {
		tr, err := uidTransport(trName)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(trName+"/another user as follower", func(t *testing.T) {
			addr := addrOf[trName]()
			w := newWorld()
			l := newClient(t, "Shared", w, cluster.WithTransport(tr), cluster.WithAddr(addr), rootAuth)
			ready(t, l)
			child := childproc.StartAs(t, exe, nobodyUID, nil, "other-user", trName, addr, nobodySecret, "follower", "")
			ev, err := child.Expect(tctx(t, wait), "refused")
			if err != nil {
				t.Fatal(err)
			}
			var msg string
			mustOK(t, ev.Decode(&msg))
			// On unix sockets the leader refuses the uid; on TCP the
			// follower, whose secret differs, refuses the leader first.
			want := map[string]string{"unix": "runs as uid 65534", "tcp": "leader's proof does not match"}[trName]
			if !strings.Contains(msg, want) {
				t.Fatalf("the other user's refusal %q lacks %q", msg, want)
			}
			if st := l.Stats(); st.Followers != 0 || st.Served != 0 {
				t.Fatalf("the leader served the other user: %+v", st)
			}
		})
		t.Run(trName+"/another user as leader", func(t *testing.T) {
			addr := addrOf[trName]()
			child := childproc.StartAs(t, exe, nobodyUID, nil, "other-user", trName, addr, nobodySecret, "leader", "allow-root")
			if _, err := child.Expect(tctx(t, wait), "ready"); err != nil {
				t.Fatal(err)
			}
			rec := newRecorder()
			f := newClient(t, "Shared", newWorld(), cluster.WithTransport(tr), cluster.WithAddr(addr), rootAuth,
				cluster.WithMode(cluster.ForceFollower), rec.opt())
			ev := rec.wait(t, wait, "refused", isErr(cluster.ErrHandshake))
			// The kernel reports the leader's uid on unix sockets; on TCP
			// its proof, made with another user's secret, fails.
			want := map[string]string{"unix": "the leader (pid", "tcp": "leader's proof does not match"}[trName]
			if trName == "unix" && !strings.Contains(ev.Err.Error(), "runs as uid 65534") {
				t.Fatalf("refusal %q does not name the leader's uid", ev.Err)
			}
			if !strings.Contains(ev.Err.Error(), want) {
				t.Fatalf("refusal %q lacks %q", ev.Err, want)
			}
			if _, err := f.Invoke(tctx(t, 100*time.Millisecond), "echo", "secret"); err == nil {
				t.Fatal("a call reached another user's leader")
			}
			child.Send("close", nil)
			ev2, err := child.Expect(tctx(t, wait), "served")
			if err != nil {
				t.Fatal(err)
			}
			var builds int
			mustOK(t, ev2.Decode(&builds))
			if builds != 1 {
				t.Fatalf("the other user's leader built %d real clients", builds)
			}
		})
	}
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
