package transport_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/transport"
)

// A dial error caused by the context matches the context's error, also
// when the socket's own deadline fired first (ctx.Err() still nil), and
// keeps what it wrapped; other errors are left alone.
func TestContextError(t *testing.T) {
	timeout := fmt.Errorf("dial tcp 127.0.0.1:1: %w", os.ErrDeadlineExceeded)
	refused := errors.New("connection refused")

	withDeadline, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	if err := transport.ContextError(withDeadline, timeout); !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("socket deadline before ctx's timer: %v", err)
	}
	if err := transport.ContextError(withDeadline, refused); err != refused {
		t.Errorf("another error: %v", err)
	}
	if err := transport.ContextError(context.Background(), timeout); err != timeout {
		t.Errorf("no deadline on ctx: %v", err)
	}
	cancelled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if err := transport.ContextError(cancelled, refused); !errors.Is(err, context.Canceled) || !errors.Is(err, refused) {
		t.Errorf("ctx cancelled: %v", err)
	}
	if err := transport.ContextError(cancelled, context.Canceled); err != context.Canceled {
		t.Errorf("already ctx's error: %v", err)
	}
	if transport.ContextError(withDeadline, nil) != nil {
		t.Error("nil error")
	}
}
