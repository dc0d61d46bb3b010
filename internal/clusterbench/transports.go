package clusterbench

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"sync/atomic"

	"github.com/go-clusterclient/clusterclient/internal/transportflag"
	"github.com/go-clusterclient/clusterclient/transport"
)

// allTransports are the transports clusterbench knows, in report order;
// yamux runs over TCP, its default underlying transport.
var allTransports = transportflag.Names()

// newTransport returns the named transport with its default
// configuration: the benchmark measures what users get.
func newTransport(name string) (transport.Transport, error) {
	return transportflag.New(name, "")
}

var sockSeq atomic.Int64

// newAddr returns an address of the named transport that nobody uses
// yet; dir is a private temporary directory of the run, for socket files.
func newAddr(name, dir string) (string, error) {
	switch name {
	case "unix":
		return filepath.Join(dir, "s"+strconv.FormatInt(sockSeq.Add(1), 10)+".sock"), nil
	case "kcp":
		return freePort("udp")
	case "tcp", "yamux":
		return freePort("tcp")
	}
	return "", fmt.Errorf("%w %q", transportflag.ErrUnknown, name)
}

// freePort returns 127.0.0.1:<port> with a port the kernel just handed
// out for network ("tcp" or "udp") and that is free again. Another program
// could take it before it is used; the kernel hands ports out in a cycle,
// which makes that unlikely.
func freePort(network string) (string, error) {
	switch network {
	case "udp":
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return "", fmt.Errorf("clusterbench: free udp port: %w", err)
		}
		defer c.Close()
		return c.LocalAddr().String(), nil
	default:
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", fmt.Errorf("clusterbench: free tcp port: %w", err)
		}
		defer l.Close()
		return l.Addr().String(), nil
	}
}
