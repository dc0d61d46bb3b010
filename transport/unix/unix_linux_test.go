package unix_test

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"

	"github.com/go-clusterclient/clusterclient/transport"
	"github.com/go-clusterclient/clusterclient/transport/transporttest"
	"github.com/go-clusterclient/clusterclient/transport/unix"
)

const linux = true

var abstractHarness = transporttest.Harness{
	Kind:         "abstract",
	NewTransport: func(tb testing.TB) transport.Transport { return newTransport(tb) },
	NewAddr: func(testing.TB) string {
		return fmt.Sprintf("@clusterclient-test-%d-%d", os.Getpid(), seq.Add(1))
	},
	HoldAddr: holdWithPlainListener,
	Skip:     unixSkips,
}

func TestTransportAbstract(t *testing.T) { transporttest.Run(t, abstractHarness) }

func BenchmarkFailoverListenAbstract(b *testing.B) {
	transporttest.BenchmarkFailoverListen(b, abstractHarness)
}

// The default directory must be ours and closed to others.
func TestInsecureDefaultDir(t *testing.T) {
	runtimeDir := shortDir(t)
	t.Setenv("XDG_RUNTIME_DIR", runtimeDir)
	tr := newTransport(t)
	dir := runtimeDir + "/clusterclient"
	ctx := testCtx(t)

	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{"listen", "dial"} {
		var err error
		if op == "listen" {
			_, err = tr.Listen(ctx, tr.DefaultAddr())
		} else {
			_, err = tr.Dial(ctx, tr.DefaultAddr())
		}
		if !errors.Is(err, transport.ErrInvalidAddr) || !errors.Is(err, unix.ErrInsecureDir) {
			t.Errorf("%s in a world-writable default dir: %v, want ErrInsecureDir and ErrInvalidAddr", op, err)
		}
	}

	if os.Geteuid() != 0 {
		t.Skip("changing the directory's owner needs root")
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Listen(ctx, tr.DefaultAddr()); !errors.Is(err, unix.ErrInsecureDir) {
		t.Errorf("Listen in a default dir owned by uid 65534: %v, want ErrInsecureDir", err)
	}

	// A symlink is not a directory we own, whatever it points to.
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(shortDir(t), dir); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Listen(ctx, tr.DefaultAddr()); !errors.Is(err, unix.ErrInsecureDir) {
		t.Errorf("Listen in a symlinked default dir: %v, want ErrInsecureDir", err)
	}
}

// Another user who takes clusterclient-<uid> in the temporary directory
// first (a directory or a symbolic link of theirs) does not stop this
// user's leader: the default directory is the next free name, the same
// for every transport of this user, and nothing goes into the other
// user's. (Issue 14; package cluster's TestSquattedDefaultDirs runs the
// squatter and the victim as real processes of two uids.)
func TestSquattedDefaultDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("making a directory of another user needs root")
	}
	tmp := shortDir(t)
	if err := os.Chmod(tmp, 0o1777); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_RUNTIME_DIR", "")
	t.Setenv("TMPDIR", tmp)
	name := fmt.Sprintf("%s/clusterclient-%d", tmp, os.Geteuid())
	if err := os.Mkdir(name, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(shortDir(t), name+"-1"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{name, name + "-1"} {
		if err := os.Lchown(p, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	tr := newTransport(t)
	if want := name + "-2/clusterclient.sock"; tr.DefaultAddr() != want {
		t.Fatalf("DefaultAddr = %q, want %q", tr.DefaultAddr(), want)
	}
	ctx := testCtx(t)
	l, err := tr.Listen(ctx, tr.DefaultAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := newTransport(t).Dial(ctx, tr.DefaultAddr())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if ents, _ := os.ReadDir(name); len(ents) != 0 {
		t.Fatalf("files in the other user's directory: %v", ents)
	}
}

// PeerCred of a conn dialed by another process names that process (the kit
// checks the pid; this checks the kernel's uid and gid too).
func TestPeerCredUIDGID(t *testing.T) {
	ctx := testCtx(t)
	tr, path := newTransport(t), newPath(t)
	l, err := tr.Listen(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := tr.Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cred, err := c.(transport.PeerCredentials).PeerCred()
	if err != nil {
		t.Fatal(err)
	}
	if cred.UID != uint32(syscall.Geteuid()) || cred.GID != uint32(syscall.Getegid()) {
		t.Errorf("dialed conn: peer %+v, want uid %d gid %d", cred, syscall.Geteuid(), syscall.Getegid())
	}
}
