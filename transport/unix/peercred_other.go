//go:build !linux

package unix

import (
	"errors"
	"fmt"
	"net"

	"github.com/go-clusterclient/clusterclient/transport"
)

// abstractSockets reports whether "@name" addresses exist here.
const abstractSockets = false

func peerCred(*net.UnixConn) (transport.Cred, error) {
	return transport.Cred{}, fmt.Errorf("unix: peer credentials: %w", errors.ErrUnsupported)
}
