//go:build unix

package kcp_test

import (
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/transport/kcp"
	"github.com/go-clusterclient/clusterclient/transport/transporttest"
)

// A leader that hangs (SIGSTOP: its socket stays bound, so the kernel
// reports nothing) is noticed by the heartbeat alone: Read and Write fail
// with ErrPeerTimeout within DeadPeerTimeout.
func TestHungLeaderTimesOut(t *testing.T) {
	cfg := kcp.Config{PingInterval: 200 * time.Millisecond, DeadPeerTimeout: time.Second}
	tr := newKCP(t, cfg)
	leader, c := startLeader(t, tr, transporttest.FreeAddr(t, "udp", "127.0.0.1"))
	if err := syscall.Kill(leader.Pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err := c.Read(make([]byte, 64))
	took := time.Since(stopped)
	if !errors.Is(err, kcp.ErrPeerTimeout) {
		t.Fatalf("Read from a hung leader: %v, want ErrPeerTimeout", err)
	}
	t.Logf("Read failed %v after SIGSTOP: %v", took.Round(time.Millisecond), err)
	// Generous slack over the bound: the machine is shared and slow.
	if bound := cfg.DeadPeerTimeout + cfg.PingInterval/4 + 2*time.Second; took > bound {
		t.Errorf("noticed after %v, beyond DeadPeerTimeout %v (plus slack)", took, cfg.DeadPeerTimeout)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, kcp.ErrPeerTimeout) {
		t.Errorf("Write after the timeout: %v, want ErrPeerTimeout", err)
	}
}
