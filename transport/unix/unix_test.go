package unix_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/go-clusterclient/clusterclient/conformance"
	"github.com/go-clusterclient/clusterclient/transport"
	"github.com/go-clusterclient/clusterclient/transport/transporttest"
	"github.com/go-clusterclient/clusterclient/transport/unix"
)

func TestMain(m *testing.M) {
	conformance.Main(func(string) (transport.Transport, error) {
		return unix.New(unix.DefaultConfig())
	})
	goleak.VerifyTestMain(m)
}

func newTransport(tb testing.TB) *unix.Transport {
	tb.Helper()
	tr, err := unix.New(unix.DefaultConfig())
	if err != nil {
		tb.Fatal(err)
	}
	return tr
}

// shortDir returns a fresh directory with a short path (t.TempDir's paths,
// which contain the test name, can overflow sun_path).
func shortDir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.MkdirTemp("", "ccu")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

var seq atomic.Uint64

func newPath(tb testing.TB) string {
	return filepath.Join(shortDir(tb), fmt.Sprintf("s%d.sock", seq.Add(1)))
}

// holdWithPlainListener makes a net.Listen socket, which speaks no
// protocol and takes no lock, hold addr.
func holdWithPlainListener(tb testing.TB, addr string) bool {
	l, err := net.Listen("unix", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close() })
	return true
}

// unixSkips are the kit subtests a unix socket cannot pass.
var unixSkips = map[string]string{
	"dial-honours-deadline": "a unix-socket connect never waits: with the accept queue full it fails at once with EAGAIN, so no address makes Dial wait for its context",
	"dial-honours-cancel":   "a unix-socket connect never waits (see dial-honours-deadline)",
}

var pathHarness = transporttest.Harness{
	Kind:         "path",
	NewTransport: func(tb testing.TB) transport.Transport { return newTransport(tb) },
	NewAddr:      newPath,
	HoldAddr:     holdWithPlainListener,
	Skip:         unixSkips,
}

func TestTransport(t *testing.T) { transporttest.Run(t, pathHarness) }

func BenchmarkPingPong(b *testing.B) {
	for _, size := range []int{64, 4096} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) { transporttest.BenchmarkPingPong(b, pathHarness, size) })
	}
}

func BenchmarkFailoverListen(b *testing.B) { transporttest.BenchmarkFailoverListen(b, pathHarness) }

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func isSocketFile(path string) bool {
	fi, err := os.Lstat(path)
	return err == nil && fi.Mode().Type() == os.ModeSocket
}

// A listener killed with SIGKILL leaves its socket file; the next Listen
// replaces it at the first attempt once the process is gone.
func TestStaleSocketFileAfterSIGKILL(t *testing.T) {
	ctx := testCtx(t)
	tr, path := newTransport(t), newPath(t)
	child := transporttest.StartContender(t, pathHarness)
	if res, err := child.Listen(ctx, path); err != nil || !res.OK {
		t.Fatalf("child Listen: %v %s", err, res.Err)
	}
	if err := child.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := child.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if !isSocketFile(path) {
		t.Fatal("no socket file left by the killed listener")
	}
	if _, err := os.Stat(path + unix.LockSuffix); err != nil {
		t.Fatalf("lock file: %v", err)
	}
	if _, err := tr.Dial(ctx, path); !errors.Is(err, transport.ErrNoListener) {
		t.Fatalf("Dial to a dead socket file: %v, want ErrNoListener", err)
	}
	l, err := tr.Listen(ctx, path)
	if err != nil {
		t.Fatalf("Listen over the dead socket file: %v", err)
	}
	defer l.Close()
	// The dead file refused connections; a Dial that succeeds proves it
	// was replaced. (Comparing inodes would not: the freed inode number
	// is often reused at once.)
	c, err := tr.Dial(ctx, path)
	if err != nil {
		t.Fatalf("Dial the new listener: %v", err)
	}
	c.Close()
}

// 8 processes start at once while a dead socket file is in the way:
// exactly one leads, 20 times over.
func TestConcurrentStartOverStaleFile(t *testing.T) {
	const processes, rounds = 8, 20
	ctx := testCtx(t)
	path := newPath(t)
	cs := transporttest.StartContenders(t, pathHarness, processes)
	for round := 1; round <= rounds; round++ {
		makeStaleSocket(t, path)
		res, err := transporttest.Compete(ctx, cs, path)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		winner := -1
		for i, r := range res {
			switch {
			case r.OK && winner >= 0:
				t.Fatalf("round %d: pids %d and %d both lead on %s", round, cs[winner].Pid(), cs[i].Pid(), path)
			case r.OK:
				winner = i
			case !r.AddrInUse:
				t.Fatalf("round %d: pid %d: %s; want ErrAddrInUse", round, cs[i].Pid(), r.Err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: nobody could replace the dead socket file: %+v", round, res)
		}
		if err := cs[winner].Close(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("round %d: Close left the socket file: %v", round, err)
		}
	}
}

// makeStaleSocket leaves a socket file at path that nobody listens on, as
// a killed process does.
func makeStaleSocket(t *testing.T, path string) {
	t.Helper()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	if !isSocketFile(path) {
		t.Fatal("no stale socket file")
	}
}

// Close removes the socket file only if it is still the one it bound.
func TestCloseUnlinksOnlyItsOwnFile(t *testing.T) {
	ctx := testCtx(t)
	tr, path := newTransport(t), newPath(t)
	l, err := tr.Listen(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("someone else's"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(path); err != nil || string(got) != "someone else's" {
		t.Fatalf("Close touched a file it did not bind: %q, %v", got, err)
	}

	// The ordinary case: the file is ours and goes; the lock file stays.
	path = newPath(t)
	if l, err = tr.Listen(ctx, path); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket file after Close: %v", err)
	}
	if _, err := os.Stat(path + unix.LockSuffix); err != nil {
		t.Fatalf("lock file after Close: %v", err)
	}
	if err := l.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close: %v, want net.ErrClosed", err)
	}
}

// While a listener lives, its lock keeps others out even if its socket
// file is deleted behind its back.
func TestLockOutlivesDeletedFile(t *testing.T) {
	ctx := testCtx(t)
	tr, path := newTransport(t), newPath(t)
	l, err := tr.Listen(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if l2, err := newTransport(t).Listen(ctx, path); err == nil {
		l2.Close()
		t.Fatal("a second listener started while the first lives")
	} else if !errors.Is(err, transport.ErrAddrInUse) {
		t.Fatalf("Listen: %v, want ErrAddrInUse", err)
	}
}

func TestNotASocketIsLeftAlone(t *testing.T) {
	tr, path := newTransport(t), newPath(t)
	if err := os.WriteFile(path, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := tr.Listen(testCtx(t), path)
	if !errors.Is(err, transport.ErrInvalidAddr) || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Listen over a regular file: %v, want ErrInvalidAddr saying it is not a socket", err)
	}
	if got, err := os.ReadFile(path); err != nil || string(got) != "data" {
		t.Fatalf("the regular file changed: %q, %v", got, err)
	}
}

func TestPathLength(t *testing.T) {
	ctx := testCtx(t)
	tr := newTransport(t)
	limit := 107 // sun_path is 108 bytes on Linux, 104 on the BSDs and macOS
	if _, err := tr.Listen(ctx, "/tmp/"+strings.Repeat("x", 200)); !errors.Is(err, transport.ErrInvalidAddr) {
		t.Errorf("Listen on a 205-byte path: %v, want ErrInvalidAddr", err)
	}
	if _, err := tr.Dial(ctx, "/tmp/"+strings.Repeat("x", 200)); !errors.Is(err, transport.ErrInvalidAddr) {
		t.Errorf("Dial to a 205-byte path: %v, want ErrInvalidAddr", err)
	}
	if !linux {
		return
	}
	dir := shortDir(t) + "/"
	fits := dir + strings.Repeat("f", limit-len(dir))
	l, err := tr.Listen(ctx, fits)
	if err != nil {
		t.Fatalf("Listen on a %d-byte path: %v", len(fits), err)
	}
	l.Close()
	tooLong := fits + "g"
	if _, err := tr.Listen(ctx, tooLong); !errors.Is(err, transport.ErrInvalidAddr) || !strings.Contains(err.Error(), "sun_path") {
		t.Fatalf("Listen on a %d-byte path: %v, want ErrInvalidAddr naming sun_path", len(tooLong), err)
	}
}

func TestRelativePath(t *testing.T) {
	dir := shortDir(t)
	t.Chdir(dir)
	tr := newTransport(t)
	l, err := tr.Listen(testCtx(t), "rel.sock")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got, want := l.Addr().String(), filepath.Join(dir, "rel.sock"); got != want {
		t.Fatalf("listener address %q, want %q", got, want)
	}
}

func TestConfig(t *testing.T) {
	if tr, err := unix.New(unix.Config{ProbeTimeout: -time.Second}); tr != nil || !errors.Is(err, unix.ErrInvalidConfig) || !strings.Contains(err.Error(), "ProbeTimeout") {
		t.Errorf("New with a negative ProbeTimeout = %v, %v; want nil and ErrInvalidConfig naming ProbeTimeout", tr, err)
	}
	if err := unix.DefaultConfig().Validate(); err != nil {
		t.Error(err)
	}
}

func TestDefaultAddr(t *testing.T) {
	runtimeDir := shortDir(t)
	t.Setenv("XDG_RUNTIME_DIR", runtimeDir)
	tr := newTransport(t)
	want := filepath.Join(runtimeDir, "clusterclient", "clusterclient.sock")
	if got := tr.DefaultAddr(); got != want {
		t.Fatalf("DefaultAddr = %q, want %q", got, want)
	}
	ctx := testCtx(t)
	l, err := tr.Listen(ctx, tr.DefaultAddr())
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	fi, err := os.Stat(filepath.Dir(want))
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("default dir: %v, %v; want mode 0700", fi.Mode(), err)
	}

	t.Setenv("XDG_RUNTIME_DIR", "")
	tmp := shortDir(t)
	t.Setenv("TMPDIR", tmp)
	if got, want := newTransport(t).DefaultAddr(), filepath.Join(tmp, fmt.Sprintf("clusterclient-%d", os.Geteuid()), "clusterclient.sock"); got != want {
		t.Fatalf("DefaultAddr without XDG_RUNTIME_DIR = %q, want %q", got, want)
	}
}

func Example() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "leader.sock")

	tr, err := unix.New(unix.DefaultConfig())
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	l, err := tr.Listen(ctx, path)
	if err != nil {
		panic(err)
	}
	_, err = tr.Listen(ctx, path)
	fmt.Println("second listen in use:", errors.Is(err, transport.ErrAddrInUse))

	c, err := tr.Dial(ctx, path)
	if err != nil {
		panic(err)
	}
	s, err := l.Accept()
	if err != nil {
		panic(err)
	}
	// Peer credentials come from the kernel (SO_PEERCRED on Linux).
	if cred, err := s.(transport.PeerCredentials).PeerCred(); err == nil {
		fmt.Println("peer is this process:", int(cred.PID) == os.Getpid())
	} else {
		fmt.Println("peer is this process:", true) // not available on this OS
	}
	c.Close()
	s.Close()
	l.Close()
	_, err = os.Stat(path)
	fmt.Println("socket file removed:", errors.Is(err, os.ErrNotExist))
	// Output:
	// second listen in use: true
	// peer is this process: true
	// socket file removed: true
}
