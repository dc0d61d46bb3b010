// Package unix is the unix-domain-socket transport: path sockets, and on
// Linux abstract sockets.
//
// # Addresses
//
// An address is a socket path, or on Linux "@name" for an abstract socket
// (no file; the kernel frees the name when the socket closes). Relative
// paths are made absolute when used. A path must fit sun_path (107 bytes
// on Linux, 103 on macOS and the BSDs), else the error matches
// transport.ErrInvalidAddr; so does "@name" outside Linux.
//
// DefaultAddr is <dir>/clusterclient.sock, where dir (DefaultDir) is
// $XDG_RUNTIME_DIR/clusterclient, or without XDG_RUNTIME_DIR this user's
// directory in os.TempDir(): the first of clusterclient-<uid>,
// clusterclient-<uid>-1, clusterclient-<uid>-2, ... that is a private
// directory of the user or does not exist yet (New creates it then, mode
// 0700). In a shared /tmp another user may create clusterclient-<uid>
// first, to plant or hijack the socket or just to stop the user's
// processes from starting; such entries of another user (a directory, a
// symbolic link, a file) are skipped, never used, so every process of the
// user lands in the same directory of its own (package auth's secret
// lives there too). Listen creates the directory with mode 0700 if it is
// missing, and Listen and Dial refuse it (ErrInsecureDir, which also
// matches transport.ErrInvalidAddr) unless it is a real directory owned by
// the user and not writable by group or others.
//
// # Exclusive listen and stale socket files
//
// A socket file outlives a process killed with SIGKILL, and binding over
// it fails with EADDRINUSE though nobody listens. Listen therefore works
// under an flock(2) on a sibling lock file, <path>.lock (created 0600 and
// never removed: removing a lock file others may have open would let two
// processes hold "the" lock on different files):
//
//  1. take the lock with LOCK_EX|LOCK_NB; if another process holds it,
//     that process listens (or is about to): transport.ErrAddrInUse;
//  2. bind; on EADDRINUSE, the lock being free means no listener of this
//     package is alive, so the path holds a dead socket file or a
//     stranger's socket: probe it with a Dial (Config.ProbeTimeout). If
//     anything answers, or the probe fails in any way other than "refused"
//     or "no such file", report transport.ErrAddrInUse (wrapping the bind
//     error). If it is refused, the file is dead: unlink it and bind
//     again. A path that exists but is not a socket is never removed
//     (transport.ErrInvalidAddr);
//  3. keep the lock for the listener's lifetime. The kernel releases it
//     when the process dies, SIGKILL included.
//
// Taking the lock before the bind, rather than only before replacing a
// dead file, closes a race: between another process's bind and its
// listen(2), its socket refuses connections exactly like a dead one, and
// an unlocked bind-then-listen could be unlinked in that window, leaving
// two leaders. Holding the lock for the lifetime also keeps a second
// leader out if something deletes the live socket file.
//
// The listener does not unlink on Close via Go (SetUnlinkOnClose(false));
// Close removes the path only if it is still the file the listener bound
// (same device, inode and modification time), then closes the socket,
// then releases the lock.
//
// Abstract sockets need none of this: the name dies with the socket, and
// the kernel refuses a second bind with EADDRINUSE.
//
// # Conns
//
// Dialed and accepted conns wrap *net.UnixConn and implement
// transport.HalfCloser and transport.PeerCredentials (SO_PEERCRED on
// Linux; elsewhere PeerCred fails with errors.ErrUnsupported). A refused
// connection or a missing socket file is reported as
// transport.ErrNoListener. Conns pass golang.org/x/net/nettest.TestConn in
// full.
//
// Path sockets need flock, so Listen on a path fails with
// errors.ErrUnsupported on Windows; Dial works there.
package unix

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-clusterclient/clusterclient/internal/userdir"
	"github.com/go-clusterclient/clusterclient/transport"
)

const (
	// DefaultProbeTimeout bounds the Dial with which Listen checks whether
	// a socket file in the way is alive.
	DefaultProbeTimeout = time.Second
	// DefaultSocketName is the file name of DefaultAddr in DefaultDir.
	DefaultSocketName = "clusterclient.sock"
	// LockSuffix is appended to a socket path to name its lock file.
	LockSuffix = ".lock"
)

// Errors of this package, besides the transport sentinels.
var (
	// ErrInvalidConfig is returned (wrapped) by New for a bad Config.
	ErrInvalidConfig = errors.New("unix: invalid config")
	// ErrInsecureDir means the default socket directory is not a
	// directory owned by the user and closed to group and others.
	ErrInsecureDir = errors.New("unix: socket directory is not private")
)

// sunPathLen is the size of sun_path, including its terminating NUL.
var sunPathLen = len(syscall.RawSockaddrUnix{}.Path)

// Config tunes a unix Transport. The zero value of a field means its
// default.
type Config struct {
	// ProbeTimeout bounds the Dial with which Listen checks whether a
	// socket file in the way is alive. Default DefaultProbeTimeout; must
	// not be negative.
	ProbeTimeout time.Duration
}

// DefaultConfig returns the configuration New uses for zero fields.
func DefaultConfig() Config { return Config{ProbeTimeout: DefaultProbeTimeout} }

// Validate reports whether c can be used, naming the first bad field.
func (c Config) Validate() error {
	if c.ProbeTimeout < 0 {
		return fmt.Errorf("%w: ProbeTimeout %v is negative", ErrInvalidConfig, c.ProbeTimeout)
	}
	return nil
}

// DefaultDir returns the directory of DefaultAddr for the current
// environment: $XDG_RUNTIME_DIR/clusterclient if XDG_RUNTIME_DIR is an
// absolute path, else this user's directory in os.TempDir() (see the
// package doc), which it creates (0700) if it does not exist yet. Should
// that fail (an entry of this user in the way that is not a private
// directory, a temporary directory this user cannot write), it returns
// <os.TempDir()>/clusterclient-<uid>, and Listen and Dial there report
// why.
func DefaultDir() string {
	d, _ := defaultDir()
	return d
}

func defaultDir() (string, error) {
	if d := os.Getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(d) {
		return filepath.Join(d, "clusterclient"), nil
	}
	name := fmt.Sprintf("clusterclient-%d", os.Geteuid())
	d, err := userdir.Claim(os.TempDir(), name)
	if err != nil {
		return filepath.Join(os.TempDir(), name), fmt.Errorf("%w: no socket directory of this user (uid %d) in %s: %w",
			ErrInsecureDir, os.Geteuid(), os.TempDir(), err)
	}
	return d, nil
}

// Transport is the unix-domain-socket transport.
//
// Concurrency: all methods are safe for concurrent use, and so are the
// listeners and conns it returns.
type Transport struct {
	cfg        Config
	defaultDir string
	defaultErr error // why defaultDir could not be claimed, if it could not
}

var (
	_ transport.Transport    = (*Transport)(nil)
	_ transport.MultiProcess = (*Transport)(nil)
)

// New returns a Transport using cfg, with zero fields set to their
// defaults. The default directory is DefaultDir() at the time of the call
// (so New may create this user's directory in the temporary directory).
// It fails only if cfg.Validate does; a default directory that cannot be
// had is reported by Listen and Dial on DefaultAddr.
func New(cfg Config) (*Transport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.ProbeTimeout = cmp.Or(cfg.ProbeTimeout, DefaultProbeTimeout)
	tr := &Transport{cfg: cfg}
	tr.defaultDir, tr.defaultErr = defaultDir()
	return tr, nil
}

// Name returns "unix".
func (*Transport) Name() string { return "unix" }

// DefaultAddr returns <DefaultDir>/clusterclient.sock, DefaultDir as it was
// when New ran.
func (tr *Transport) DefaultAddr() string {
	return filepath.Join(tr.defaultDir, DefaultSocketName)
}

// MultiProcess returns true.
func (*Transport) MultiProcess() bool { return true }

func (tr *Transport) opError(op, addr string, kind, err error) error {
	return &transport.OpError{Op: op, Transport: tr.Name(), Addr: addr, Kind: kind, Err: err}
}

// resolve checks addr and returns what to bind or dial: "@name" as is, a
// path made absolute.
func (tr *Transport) resolve(addr string) (string, error) {
	switch {
	case addr == "" || addr == "@":
		return "", errors.New("empty address")
	case strings.HasPrefix(addr, "@"):
		if !abstractSockets {
			return "", errors.New("abstract socket names (@name) exist only on Linux")
		}
		// The leading NUL takes the place of '@'; no terminating NUL.
		if len(addr) > sunPathLen {
			return "", fmt.Errorf("abstract name is %d bytes; sun_path holds %d", len(addr)-1, sunPathLen-1)
		}
		return addr, nil
	}
	path, err := filepath.Abs(addr)
	if err != nil {
		return "", err
	}
	if len(path) >= sunPathLen {
		return "", fmt.Errorf("socket path %q is %d bytes; sun_path holds %d plus the terminating NUL", path, len(path), sunPathLen-1)
	}
	return path, nil
}

// errLocked wraps EWOULDBLOCK when another process holds a path's lock.
var errLocked = errors.New("lock held by another listener")

// privateDir checks that dir is a directory and, where the OS tells (see
// checkPrivate), owned by the effective user and not writable by group or
// others, creating it (0700) first if create is set. A missing dir without
// create matches os.ErrNotExist.
func privateDir(dir string, create bool) error {
	if create {
		if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("create socket directory: %w", err)
		}
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: %s is not a directory (%v)", ErrInsecureDir, dir, fi.Mode().Type())
	}
	return checkPrivate(dir, fi)
}

// checkDir applies the default directory's rules if path is in it.
func (tr *Transport) checkDir(path string, create bool) error {
	if filepath.Dir(path) != tr.defaultDir {
		return nil
	}
	if tr.defaultErr != nil {
		return tr.defaultErr
	}
	return privateDir(tr.defaultDir, create)
}

// Listen binds addr exclusively, replacing a dead socket file left by a
// killed listener (see the package doc). If a live socket holds addr, the
// error matches transport.ErrAddrInUse and wraps the OS error.
func (tr *Transport) Listen(ctx context.Context, addr string) (net.Listener, error) {
	path, err := tr.resolve(addr)
	if err != nil {
		return nil, tr.opError("listen", addr, transport.ErrInvalidAddr, err)
	}
	if strings.HasPrefix(path, "@") {
		ul, err := tr.bind(ctx, path)
		if err != nil {
			return nil, tr.opError("listen", addr, listenKind(err), err)
		}
		return &listener{UnixListener: ul}, nil
	}
	if err := tr.checkDir(path, true); err != nil {
		return nil, tr.opError("listen", addr, transport.ErrInvalidAddr, err)
	}
	lock, err := lockFile(path + LockSuffix)
	if err != nil {
		var kind error
		if errors.Is(err, errLocked) {
			kind = transport.ErrAddrInUse
		}
		return nil, tr.opError("listen", addr, kind, err)
	}
	l, err := tr.listenLocked(ctx, addr, path)
	if err != nil {
		lock.Close()
		return nil, err
	}
	l.lock = lock
	return l, nil
}

// listenLocked binds path (addr as given) while holding its lock,
// replacing a dead socket file.
func (tr *Transport) listenLocked(ctx context.Context, addr, path string) (*listener, error) {
	ul, err := tr.bind(ctx, path)
	if transport.IsAddrInUse(err) {
		fi, lerr := os.Lstat(path)
		switch {
		case lerr == nil && fi.Mode().Type() != os.ModeSocket:
			return nil, tr.opError("listen", addr, transport.ErrInvalidAddr,
				fmt.Errorf("%s exists and is not a socket (%v): %w", path, fi.Mode().Type(), err))
		case tr.alive(ctx, path):
			return nil, tr.opError("listen", addr, transport.ErrAddrInUse,
				fmt.Errorf("a socket that is not ours answers at %s: %w", path, err))
		}
		// A dead socket file: nobody holds the lock and connecting is
		// refused. Replace it.
		if rerr := os.Remove(path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			return nil, tr.opError("listen", addr, nil, fmt.Errorf("remove dead socket file: %w", rerr))
		}
		ul, err = tr.bind(ctx, path)
	}
	if err != nil {
		return nil, tr.opError("listen", addr, listenKind(err), err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		ul.Close()
		return nil, tr.opError("listen", addr, nil, fmt.Errorf("stat the socket just bound: %w", err))
	}
	return &listener{UnixListener: ul, path: path, bound: fi}, nil
}

func (tr *Transport) bind(ctx context.Context, name string) (*net.UnixListener, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "unix", name)
	if err != nil {
		return nil, err
	}
	ul := l.(*net.UnixListener)
	ul.SetUnlinkOnClose(false)
	return ul, nil
}

func listenKind(err error) error {
	if transport.IsAddrInUse(err) {
		return transport.ErrAddrInUse
	}
	return nil
}

// alive probes the socket at path. Only a refused connection or a missing
// file counts as dead; any other outcome (accepted, accept queue full,
// timeout, permission denied) counts as alive, so a file is never removed
// on a guess.
func (tr *Transport) alive(ctx context.Context, path string) bool {
	d := net.Dialer{Timeout: tr.cfg.ProbeTimeout}
	c, err := d.DialContext(ctx, "unix", path)
	if err == nil {
		c.Close()
		return true
	}
	return !transport.IsRefused(err) && !errors.Is(err, os.ErrNotExist)
}

// Dial connects to the socket at addr, honouring ctx. A missing socket
// file or a refused connection (a dead socket file) matches
// transport.ErrNoListener.
func (tr *Transport) Dial(ctx context.Context, addr string) (net.Conn, error) {
	path, err := tr.resolve(addr)
	if err != nil {
		return nil, tr.opError("dial", addr, transport.ErrInvalidAddr, err)
	}
	if !strings.HasPrefix(path, "@") {
		if err := tr.checkDir(path, false); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, tr.opError("dial", addr, transport.ErrInvalidAddr, err)
		}
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		var kind error
		if transport.IsRefused(err) || errors.Is(err, os.ErrNotExist) {
			kind = transport.ErrNoListener
		}
		return nil, tr.opError("dial", addr, kind, err)
	}
	return &conn{UnixConn: c.(*net.UnixConn)}, nil
}

// listener is a unix listener that owns its path's lock.
type listener struct {
	*net.UnixListener
	path  string      // "" for abstract sockets
	bound os.FileInfo // the socket file as bound
	lock  io.Closer   // the path's flock, held until Close

	closeOnce sync.Once
	closeErr  error
}

// Accept returns the next conn. After Close, the error matches
// net.ErrClosed.
func (l *listener) Accept() (net.Conn, error) {
	c, err := l.AcceptUnix()
	if err != nil {
		return nil, err
	}
	return &conn{UnixConn: c}, nil
}

// Close removes the socket file if it is still the one bound, closes the
// socket and releases the lock. A second Close returns an error matching
// net.ErrClosed.
func (l *listener) Close() error {
	first := false
	l.closeOnce.Do(func() {
		first = true
		if l.path != "" {
			if fi, err := os.Lstat(l.path); err == nil && sameFile(fi, l.bound) {
				os.Remove(l.path)
			}
		}
		l.closeErr = l.UnixListener.Close()
		if l.lock != nil {
			l.lock.Close()
		}
	})
	if !first {
		return l.UnixListener.Close() // reports net.ErrClosed
	}
	return l.closeErr
}

// sameFile reports whether a and b describe the same file: same device
// and inode, and, since a freed inode number is often reused at once, the
// same modification time (set when the socket was bound).
func sameFile(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.ModTime().Equal(b.ModTime())
}

// conn is a unix conn with peer credentials.
type conn struct {
	*net.UnixConn
}

var (
	_ transport.HalfCloser      = (*conn)(nil)
	_ transport.PeerCredentials = (*conn)(nil)
	_ transport.Socket          = (*conn)(nil)
)

// PeerCred returns the pid, uid and gid of the process at the other end,
// as the kernel recorded them when the connection was made (SO_PEERCRED).
// Outside Linux it fails with errors.ErrUnsupported.
func (c *conn) PeerCred() (transport.Cred, error) { return peerCred(c.UnixConn) }

// Socket returns the unix socket itself: conn adds methods, never bytes.
func (c *conn) Socket() syscall.Conn { return c.UnixConn }
