//go:build unix

package yamux_test

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/transport/tcp"
	"github.com/go-clusterclient/clusterclient/transport/transporttest"
	"github.com/go-clusterclient/clusterclient/transport/yamux"
)

// A leader that hangs (SIGSTOP: its TCP socket stays open, so no EOF
// comes) is noticed by the keepalive: the session closes within
// KeepAliveInterval plus ConnectionWriteTimeout, and its streams read
// io.EOF.
func TestHungLeaderNoticedByKeepalive(t *testing.T) {
	cfg := yamux.DefaultConfig(tcp.New(tcp.DefaultConfig()))
	cfg.KeepAliveInterval = 200 * time.Millisecond
	cfg.ConnectionWriteTimeout = 500 * time.Millisecond
	tr := newYamux(t, cfg)
	addr := freeTCPAddr(t)
	leader := transporttest.StartContender(t, tcpHarness())
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if res, err := leader.Listen(ctx, addr); err != nil || !res.OK {
		t.Fatalf("leader Listen(%s): %v %s", addr, err, res.Err)
	}
	c := dial(t, tr, addr)
	echo(t, c, "before the hang")
	if err := syscall.Kill(leader.Pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err := c.Read(make([]byte, 1))
	took := time.Since(stopped)
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("Read from a hung leader's stream: %v, want io.EOF once the keepalive fails", err)
	}
	t.Logf("Read returned %v after %v", err, took.Round(time.Millisecond))
	if err != io.EOF {
		t.Errorf("Read: %v, want io.EOF", err)
	}
	// Generous slack over the bound: the machine is shared and slow.
	if bound := cfg.KeepAliveInterval + cfg.ConnectionWriteTimeout + 2*time.Second; took > bound {
		t.Errorf("noticed after %v, beyond KeepAliveInterval+ConnectionWriteTimeout (plus slack)", took)
	}
}
