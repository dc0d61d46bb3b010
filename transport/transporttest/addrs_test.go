package transporttest

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"golang.org/x/net/nettest"
)

func TestFreeAddrAndHold(t *testing.T) {
	for _, network := range []string{"tcp", "udp"} {
		addr := FreeAddr(t, network, "127.0.0.1")
		if held := Hold(t, network, addr); held != addr {
			t.Fatalf("%s: Hold(%s) holds %s", network, addr, held)
		}
		// Held: a second socket cannot bind it.
		var err error
		if network == "udp" {
			var pc net.PacketConn
			if pc, err = net.ListenPacket(network, addr); err == nil {
				pc.Close()
			}
		} else {
			var l net.Listener
			if l, err = net.Listen(network, addr); err == nil {
				l.Close()
			}
		}
		if err == nil {
			t.Errorf("%s: %s is not held", network, addr)
		}
	}
	// A held stream address accepts connects (the kernel completes them).
	addr := Hold(t, "tcp", "127.0.0.1:0")
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatalf("connect to the held %s: %v", addr, err)
	}
	c.Close()
	sock := filepath.Join(t.TempDir(), "h.sock")
	if runtime.GOOS != "windows" {
		if held := Hold(t, "unix", sock); held != sock {
			t.Errorf("Hold(unix %s) holds %s", sock, held)
		}
	}
}

func TestUnansweredTCPAddr(t *testing.T) {
	if UnansweredTCPAddr("127.0.0.1") == nil {
		t.Skip("no unanswered TCP address on " + runtime.GOOS)
	}
	hosts := []string{"127.0.0.1"}
	if nettest.SupportsIPv6() {
		hosts = append(hosts, "::1")
	}
	for _, host := range hosts {
		addr := UnansweredTCPAddr(host)(t, nil)
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		cancel()
		if err == nil {
			c.Close()
		}
		// The dialer's socket deadline can fire before the context's
		// timer: either way the error is a timeout.
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("Dial(%s): %v, want it to wait for its deadline", addr, err)
		}
	}
}
