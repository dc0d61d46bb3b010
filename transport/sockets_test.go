package transport

import (
	"context"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestErrorsOfTheOS(t *testing.T) {
	lc := net.ListenConfig{Control: ExclusiveAddr}
	l, err := lc.Listen(t.Context(), "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_, err = lc.Listen(t.Context(), "tcp4", addr)
	if !IsAddrInUse(err) || IsRefused(err) {
		t.Errorf("second Listen(%s): %v: IsAddrInUse %v, IsRefused %v; want in use only", addr, err, IsAddrInUse(err), IsRefused(err))
	}
	l.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var d net.Dialer
	_, err = d.DialContext(ctx, "tcp4", addr)
	if !IsRefused(err) || IsAddrInUse(err) {
		t.Errorf("Dial(%s) after Close: %v: IsRefused %v, IsAddrInUse %v; want refused only", addr, err, IsRefused(err), IsAddrInUse(err))
	}

	// A connected UDP socket learns of an unbound peer port from the
	// ICMP port unreachable of an earlier write.
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	unbound := pc.LocalAddr().String()
	pc.Close()
	c, err := d.DialContext(ctx, "udp4", unbound)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("hello?")); err != nil && !IsPortUnreachable(err) {
		t.Fatalf("write to %s: %v", unbound, err)
	}
	_, err = c.Read(make([]byte, 16))
	if !IsPortUnreachable(err) {
		t.Errorf("read from unbound %s: %v, want port unreachable", unbound, err)
	}
}
