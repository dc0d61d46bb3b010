// Package transportflag builds a transport from the name a command line
// gives it: tcp, unix, yamux (over tcp or unix) or kcp, each with its
// package's DefaultConfig, which is what users of the library get. The
// commands clusterctl and clusterbench take their transports this way.
package transportflag

import (
	"errors"
	"fmt"
	"slices"

	"github.com/go-clusterclient/clusterclient/transport"
	"github.com/go-clusterclient/clusterclient/transport/kcp"
	"github.com/go-clusterclient/clusterclient/transport/tcp"
	"github.com/go-clusterclient/clusterclient/transport/unix"
	"github.com/go-clusterclient/clusterclient/transport/yamux"
)

// Names returns the transports New builds, in the order to list them.
func Names() []string { return []string{"tcp", "unix", "yamux", "kcp"} }

// Unders returns the transports yamux can run over; the first is the
// default.
func Unders() []string { return []string{"tcp", "unix"} }

// ErrUnknown: the name is not one of Names (or, for yamux's underlying
// transport, of Unders).
var ErrUnknown = errors.New("transportflag: unknown transport")

// New returns the transport called name, with its default configuration.
// over names yamux's underlying transport ("" means tcp); the other
// transports ignore it. An unknown name gives an error matching
// ErrUnknown that lists the known ones.
func New(name, over string) (transport.Transport, error) {
	switch name {
	case "tcp":
		return tcp.New(tcp.DefaultConfig()), nil
	case "unix":
		return orNil(unix.New(unix.DefaultConfig()))
	case "kcp":
		return orNil(kcp.New(kcp.DefaultConfig()))
	case "yamux":
		if over == "" {
			over = Unders()[0]
		}
		if !slices.Contains(Unders(), over) {
			return nil, fmt.Errorf("%w %q for yamux to run over (want tcp or unix)", ErrUnknown, over)
		}
		under, err := New(over, "")
		if err != nil {
			return nil, err
		}
		return orNil(yamux.New(yamux.DefaultConfig(under)))
	}
	return nil, fmt.Errorf("%w %q (want tcp, unix, yamux or kcp)", ErrUnknown, name)
}

// orNil returns a transport's New result as a transport.Transport that is
// nil, not a typed nil pointer, when New failed.
func orNil[T transport.Transport](t T, err error) (transport.Transport, error) {
	if err != nil {
		return nil, err
	}
	return t, nil
}
