package auth

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/internal/childproc"
	"github.com/go-clusterclient/clusterclient/transport"
	"github.com/go-clusterclient/clusterclient/transport/tcp"
	"github.com/go-clusterclient/clusterclient/transport/unix"
)

// Another user on the same host, for real: a child process running as
// uid 65534 ('nobody'), with the kernel's credentials and its own secret.

const nobody = 65534

func init() {
	childModes["uid-leader"] = uidLeaderChild
	childModes["uid-follower"] = uidFollowerChild
	childModes["read-secret"] = readSecretChild
}

// outcome is what one side of an exchange saw, as a child reports it.
type outcome struct {
	Mode     string `json:"mode,omitempty"`
	Err      string `json:"err,omitempty"`
	Unauth   bool   `json:"unauth,omitempty"`
	Mismatch bool   `json:"mismatch,omitempty"`
	Remote   bool   `json:"remote,omitempty"`
	Silent   bool   `json:"silent,omitempty"`
	Secret   bool   `json:"secret,omitempty"`
}

func outcomeOf(mode string, err error) outcome {
	o := outcome{Mode: mode}
	if err != nil {
		o.Err = err.Error()
		o.Unauth = errors.Is(err, ErrUnauthenticated)
		o.Mismatch = errors.Is(err, ErrIdentityMismatch)
		o.Remote = errors.Is(err, errRemote)
		o.Silent = errors.Is(err, errSilent)
		o.Secret = errors.Is(err, ErrSecretFile)
	}
	return o
}

func TestOtherUserRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: this test runs a child process as uid 65534 (nobody) to show that another user is refused " +
			"on unix sockets and on TCP; that needs root (CI runs as root). Run `go test -run TestOtherUserRefused` as root.")
	}
	// The child must be able to exec the test binary and to reach its own
	// secret: both live in a world-traversable directory.
	shared, err := os.MkdirTemp("", "auth-uid-")
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(shared) })
	must(t, os.Chmod(shared, 0o755))
	exe, err := childproc.CopyExecutable(shared)
	must(t, err)
	nobodyDir := filepath.Join(shared, "nobody")
	must(t, os.Mkdir(nobodyDir, 0o700))
	must(t, os.Chown(nobodyDir, nobody, nobody))
	nobodySecret := "file:" + filepath.Join(nobodyDir, "secret")

	rootSecret := filepath.Join(t.TempDir(), "cc", "secret")
	root, err := New(Config{SecretFile: rootSecret})
	must(t, err)
	rootKey := "key:" + hex.EncodeToString(root.key)
	rootAllowing, err := New(Config{SecretFile: rootSecret, AllowUIDs: []uint32{nobody}})
	must(t, err)

	unixT, err := unix.New(unix.DefaultConfig())
	must(t, err)
	tcpT := tcp.New(tcp.Config{})
	var seq atomic.Int32
	abstract := func() string { return fmt.Sprintf("@clusterclient-auth-uid-%d-%d", os.Getpid(), seq.Add(1)) }

	// Root leads; nobody follows.
	leaderCase := func(t *testing.T, tr transport.Transport, addr string, leader *Handshake, childArgs ...string) (leaderResult, outcome) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		ln, err := tr.Listen(ctx, addr)
		must(t, err)
		defer ln.Close()
		child := startAs(t, exe, nobody, "uid-follower", append([]string{tr.Name(), ln.Addr().String()}, childArgs...)...)
		c, err := ln.Accept()
		must(t, err)
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		lr := runLeader(ctx, leader, PeerInfo{Channel: "DataClient", Transport: tr.Name(), Addr: ln.Addr().String(), Conn: c})
		return lr, child.result(ctx, t)
	}
	// Nobody leads; root follows.
	followerCase := func(t *testing.T, tr transport.Transport, addr string, follower *Handshake, childArgs ...string) (outcome, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		child := startAs(t, exe, nobody, "uid-leader", append([]string{tr.Name(), addr}, childArgs...)...)
		ev, err := child.expect(ctx, "listening")
		must(t, err)
		var at string
		must(t, ev.Decode(&at))
		c, err := tr.Dial(ctx, at)
		must(t, err)
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		ferr := runFollower(ctx, follower, PeerInfo{Channel: "DataClient", Transport: tr.Name(), Addr: at, Conn: c})
		return child.result(ctx, t), ferr
	}

	t.Run("unix/leader refuses another user", func(t *testing.T) {
		lr, fo := leaderCase(t, unixT, abstract(), root, nobodySecret, "honest")
		if !errors.Is(lr.err, ErrUnauthenticated) || !strings.Contains(lr.err.Error(), "runs as uid 65534") {
			t.Fatalf("root leader: %v, want ErrUnauthenticated naming uid 65534", lr.err)
		}
		if !fo.Remote || !strings.Contains(fo.Err, "runs as uid 65534") {
			t.Fatalf("nobody follower: %+v, want the leader's refusal", fo)
		}
	})
	t.Run("unix/follower refuses another user's leader", func(t *testing.T) {
		// This leader admits root, so the follower is the one to refuse.
		lo, ferr := followerCase(t, unixT, abstract(), root, nobodySecret, "allow-root")
		if !errors.Is(ferr, ErrUnauthenticated) || !strings.Contains(ferr.Error(), "the leader (pid") || !strings.Contains(ferr.Error(), "runs as uid 65534") {
			t.Fatalf("root follower: %v, want ErrUnauthenticated naming the leader's uid 65534", ferr)
		}
		if !lo.Silent {
			t.Fatalf("nobody leader: %+v, want the follower to leave without a word", lo)
		}
	})
	t.Run("unix/another user on the allow-list", func(t *testing.T) {
		lr, fo := leaderCase(t, unixT, abstract(), rootAllowing, nobodySecret, "honest", "allow-root")
		if lr.err != nil || fo.Err != "" || lr.mode != modeCred {
			t.Fatalf("root leader: %v (mode %q); nobody follower: %+v", lr.err, lr.mode, fo)
		}
	})
	t.Run("unix/another user with the key says it has no kernel credentials", func(t *testing.T) {
		// Issue 14: the hello's "cred" is the follower's word. A follower
		// that leaves it out must not turn the kernel's check off: the
		// leader reads the credentials of its own unix socket, so holding
		// the key is not enough for another uid.
		lr, fo := leaderCase(t, unixT, abstract(), root, rootKey, "nocred")
		if !errors.Is(lr.err, ErrUnauthenticated) || !strings.Contains(lr.err.Error(), "runs as uid 65534") {
			t.Fatalf("root leader: %v (mode %q), want ErrUnauthenticated naming uid 65534", lr.err, lr.mode)
		}
		if !fo.Remote || !strings.Contains(fo.Err, "runs as uid 65534") {
			t.Fatalf("nobody follower: %+v, want the leader's refusal", fo)
		}
	})
	t.Run("tcp/leader refuses another user", func(t *testing.T) {
		// An honest follower with another secret refuses the leader
		// first; this one forges its proof to get further.
		lr, fo := leaderCase(t, tcpT, "127.0.0.1:0", root, nobodySecret, "forge")
		if !errors.Is(lr.err, ErrUnauthenticated) || !strings.Contains(lr.err.Error(), "follower's proof does not match") {
			t.Fatalf("root leader: %v, want ErrUnauthenticated", lr.err)
		}
		if !fo.Remote {
			t.Fatalf("nobody follower: %+v, want the leader's refusal", fo)
		}
	})
	t.Run("tcp/follower refuses another user's leader", func(t *testing.T) {
		lo, ferr := followerCase(t, tcpT, "127.0.0.1:0", root, nobodySecret)
		if !errors.Is(ferr, ErrUnauthenticated) || !strings.Contains(ferr.Error(), "leader's proof does not match") {
			t.Fatalf("root follower: %v, want ErrUnauthenticated", ferr)
		}
		if !lo.Silent {
			t.Fatalf("nobody leader: %+v, want the follower to leave without a word", lo)
		}
	})
	t.Run("tcp/another user given the key", func(t *testing.T) {
		lr, fo := leaderCase(t, tcpT, "127.0.0.1:0", root, rootKey, "honest")
		if lr.err != nil || fo.Err != "" || lr.mode != modeHMAC {
			t.Fatalf("root leader: %v (mode %q); nobody follower: %+v", lr.err, lr.mode, fo)
		}
	})
	t.Run("another user cannot read the secret", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		o := startAs(t, exe, nobody, "read-secret", rootSecret).result(ctx, t)
		if !o.Secret || !strings.Contains(o.Err, "permission denied") {
			t.Fatalf("nobody reading root's secret: %+v", o)
		}
	})
}

// handshakeFromSpec builds a child's Handshake: "file:<path>" or
// "key:<hex>", and "allow-root" among the flags to admit uid 0.
func handshakeFromSpec(spec string, flags []string) (*Handshake, error) {
	var cfg Config
	switch kind, v, _ := strings.Cut(spec, ":"); kind {
	case "file":
		cfg.SecretFile = v
	case "key":
		k, err := hex.DecodeString(v)
		if err != nil {
			return nil, err
		}
		cfg.Key = k
	default:
		return nil, fmt.Errorf("bad key spec %q", spec)
	}
	for _, f := range flags {
		if f == "allow-root" {
			cfg.AllowUIDs = []uint32{0}
		}
	}
	return New(cfg)
}

func childTransport(name string) (transport.Transport, error) {
	if name == "unix" {
		return unix.New(unix.DefaultConfig())
	}
	return tcp.New(tcp.Config{}), nil
}

// uidFollowerChild: transport, address, key spec, then "honest" (a real
// follower), "forge" (an attacker that sends a proof with its own key
// without checking the leader's) or "nocred" (a follower that hides its
// conn's kernel credentials, so its hello says it has none), and flags.
func uidFollowerChild(args []string) int {
	h, err := handshakeFromSpec(args[2], args[3:])
	if err != nil {
		childproc.Fatalf("%v", err)
	}
	tr, err := childTransport(args[0])
	if err != nil {
		childproc.Fatalf("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := tr.Dial(ctx, args[1])
	if err != nil {
		childproc.Fatalf("dial: %v", err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	info := PeerInfo{Channel: "DataClient", Transport: tr.Name(), Addr: args[1], Conn: c}
	if args[3] == "nocred" {
		info.Conn = struct{ net.Conn }{c} // no PeerCred: the hello claims no credentials
	}
	if args[3] == "forge" {
		err = forgingFollower(h, info)
	} else {
		err = runFollower(ctx, h, info)
	}
	childproc.Emit("result", outcomeOf("", err))
	childproc.Receive()
	return 0
}

func forgingFollower(h *Handshake, info PeerInfo) error {
	hello, err := h.Hello(context.Background(), info)
	if err != nil {
		return err
	}
	if err := writeFrame(info.Conn, frame{Ext: hello}); err != nil {
		return err
	}
	reply, err := recv(info.Conn)
	if err != nil {
		return err
	}
	p, err := h.forgeProof(hello, reply, info)
	if err != nil {
		return err
	}
	if err := writeFrame(info.Conn, frame{Ext: p}); err != nil {
		return err
	}
	_, err = recv(info.Conn)
	return err
}

// uidLeaderChild: transport, address, key spec, flags. It reports the
// address it listens on, then leads one exchange.
func uidLeaderChild(args []string) int {
	h, err := handshakeFromSpec(args[2], args[3:])
	if err != nil {
		childproc.Fatalf("%v", err)
	}
	tr, err := childTransport(args[0])
	if err != nil {
		childproc.Fatalf("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ln, err := tr.Listen(ctx, args[1])
	if err != nil {
		childproc.Fatalf("listen: %v", err)
	}
	childproc.Emit("listening", ln.Addr().String())
	c, err := ln.Accept()
	if err != nil {
		childproc.Fatalf("accept: %v", err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	lr := runLeader(ctx, h, PeerInfo{Channel: "DataClient", Transport: tr.Name(), Addr: ln.Addr().String(), Conn: c})
	childproc.Emit("result", outcomeOf(lr.mode, lr.err))
	childproc.Receive()
	return 0
}

func readSecretChild(args []string) int {
	_, err := LoadOrCreateSecret(args[0])
	childproc.Emit("result", outcomeOf("", err))
	childproc.Receive()
	return 0
}

type uidChild struct{ *childproc.Child }

// startAs runs the copied test binary as uid in mode.
func startAs(t *testing.T, exe string, uid uint32, mode string, args ...string) *uidChild {
	t.Helper()
	return &uidChild{childproc.StartAs(t, exe, uid, nil, mode, args...)}
}

func (c *uidChild) expect(ctx context.Context, name string) (childproc.Event, error) {
	return c.Expect(ctx, name)
}

func (c *uidChild) result(ctx context.Context, t *testing.T) outcome {
	t.Helper()
	ev, err := c.Expect(ctx, "result")
	if err != nil {
		t.Fatal(err)
	}
	var o outcome
	must(t, ev.Decode(&o))
	return o
}
