//go:build !linux

package unix_test

import (
	"errors"
	"testing"

	"github.com/go-clusterclient/clusterclient/transport"
)

const linux = false

func TestAbstractIsLinuxOnly(t *testing.T) {
	tr := newTransport(t)
	if _, err := tr.Listen(t.Context(), "@name"); !errors.Is(err, transport.ErrInvalidAddr) {
		t.Errorf("Listen(@name): %v, want ErrInvalidAddr", err)
	}
}
