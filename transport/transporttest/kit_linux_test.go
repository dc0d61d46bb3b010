package transporttest

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/go-clusterclient/clusterclient/transport"
)

func setPdeathsig(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// reusePort is TCP with SO_REUSEPORT, which lets every process of the user
// listen on one port at once: exactly what a transport must never do.
type reusePort struct{}

func (reusePort) Name() string        { return "reuseport" }
func (reusePort) DefaultAddr() string { return "127.0.0.1:7777" }
func (reusePort) MultiProcess() bool  { return true }

func (reusePort) Listen(ctx context.Context, addr string) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	l, err := lc.Listen(ctx, "tcp4", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, &transport.OpError{Op: "listen", Transport: "reuseport", Addr: addr, Kind: transport.ErrAddrInUse, Err: err}
	}
	return l, err
}

func (reusePort) Dial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp4", addr)
}

var reusePortTransport = func() (transport.Transport, error) { return reusePort{}, nil }

func reusePortHarness() Harness {
	return Harness{
		Kind:         "reuseport",
		NewTransport: func(testing.TB) transport.Transport { return reusePort{} },
		NewAddr: func(tb testing.TB) string {
			l, err := net.Listen("tcp4", "127.0.0.1:0")
			if err != nil {
				tb.Fatal(err)
			}
			defer l.Close()
			return l.Addr().String()
		},
	}
}
