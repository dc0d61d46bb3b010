package transporttest

import (
	"context"
	"errors"
	"net"
	"sync"

	"github.com/go-clusterclient/clusterclient/transport"
)

// Refusals wraps a Transport so that its first refused Dial (nobody
// listening: transport.ErrNoListener) is observable: a test that needs
// "this process has already looked for a leader and found none" waits on
// Refused instead of sleeping.
type Refusals struct {
	transport.Transport
	once    sync.Once
	refused chan struct{}
}

// WatchRefusals returns tr wrapped.
func WatchRefusals(tr transport.Transport) *Refusals {
	return &Refusals{Transport: tr, refused: make(chan struct{})}
}

// Dial dials through the wrapped transport and notes a refusal.
func (r *Refusals) Dial(ctx context.Context, addr string) (net.Conn, error) {
	c, err := r.Transport.Dial(ctx, addr)
	if errors.Is(err, transport.ErrNoListener) {
		r.once.Do(func() { close(r.refused) })
	}
	return c, err
}

// Refused is closed at the first refused Dial.
func (r *Refusals) Refused() <-chan struct{} { return r.refused }
