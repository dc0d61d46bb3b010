package main

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"sync/atomic"

	"github.com/go-clusterclient/clusterclient/transport"
	"github.com/go-clusterclient/clusterclient/transport/kcp"
	"github.com/go-clusterclient/clusterclient/transport/tcp"
	"github.com/go-clusterclient/clusterclient/transport/unix"
	"github.com/go-clusterclient/clusterclient/transport/yamux"
)

// allTransports are the transports clusterbench knows, in report order.
var allTransports = []string{"tcp", "unix", "yamux", "kcp"}

// ErrTransportUnavailable: the transport is not part of this build, so its
// measurements are skipped.
var ErrTransportUnavailable = errors.New("clusterbench: transport not available in this build")

// transportSpec builds a transport and fresh addresses for it.
type transportSpec struct {
	// new returns the transport with its default configuration: the
	// benchmark measures what users get.
	new func() (transport.Transport, error)
	// addr returns an address nobody uses yet; dir is a private temporary
	// directory of the run, for socket files.
	addr func(dir string) (string, error)
}

var transportSpecs = map[string]transportSpec{
	"tcp": {
		new:  func() (transport.Transport, error) { return tcp.New(tcp.DefaultConfig()), nil },
		addr: func(string) (string, error) { return freePort("tcp") },
	},
	"unix": {
		new: func() (transport.Transport, error) { return unix.New(unix.DefaultConfig()) },
		addr: func(dir string) (string, error) {
			return filepath.Join(dir, "s"+strconv.FormatInt(sockSeq.Add(1), 10)+".sock"), nil
		},
	},
	"kcp": {
		new:  func() (transport.Transport, error) { return kcp.New(kcp.DefaultConfig()), nil },
		addr: func(string) (string, error) { return freePort("udp") },
	},
	"yamux": { // over TCP, its default underlying transport
		new: func() (transport.Transport, error) {
			return yamux.New(yamux.DefaultConfig(tcp.New(tcp.DefaultConfig()))), nil
		},
		addr: func(string) (string, error) { return freePort("tcp") },
	},
}

var sockSeq atomic.Int64

// newTransport returns the named transport, or an error matching
// ErrTransportUnavailable.
func newTransport(name string) (transport.Transport, error) {
	spec, ok := transportSpecs[name]
	if !ok {
		return nil, fmt.Errorf("%w: %s (no package transport/%s)", ErrTransportUnavailable, name, name)
	}
	t, err := spec.new()
	if err != nil {
		return nil, fmt.Errorf("clusterbench: transport %s: %w", name, err)
	}
	return t, nil
}

// newAddr returns a fresh address for the named transport.
func newAddr(name, dir string) (string, error) {
	spec, ok := transportSpecs[name]
	if !ok {
		return "", fmt.Errorf("%w: %s", ErrTransportUnavailable, name)
	}
	return spec.addr(dir)
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
