package unix

import (
	"fmt"
	"net"

	xunix "golang.org/x/sys/unix"

	"github.com/go-clusterclient/clusterclient/transport"
)

// abstractSockets reports whether "@name" addresses exist here.
const abstractSockets = true

func peerCred(c *net.UnixConn) (transport.Cred, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return transport.Cred{}, fmt.Errorf("unix: peer credentials: %w", err)
	}
	var (
		ucred *xunix.Ucred
		serr  error
	)
	if err := rc.Control(func(fd uintptr) {
		ucred, serr = xunix.GetsockoptUcred(int(fd), xunix.SOL_SOCKET, xunix.SO_PEERCRED)
	}); err != nil {
		return transport.Cred{}, fmt.Errorf("unix: peer credentials: %w", err)
	}
	if serr != nil {
		return transport.Cred{}, fmt.Errorf("unix: peer credentials: SO_PEERCRED: %w", serr)
	}
	return transport.Cred{PID: ucred.Pid, UID: ucred.Uid, GID: ucred.Gid}, nil
}
