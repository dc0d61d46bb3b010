package kcp

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

// Every Dial picks its own random conversation id, which the accepted
// side shares.
func TestFreshConversationPerDial(t *testing.T) {
	tr, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	l, err := tr.Listen(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	seen := map[uint32]bool{}
	for range 20 {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		c, err := tr.Dial(ctx, l.Addr().String())
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		s, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		conv := c.(*Conn).conv
		if s.(*Conn).conv != conv {
			t.Errorf("dialed conv %#x, accepted %#x", conv, s.(*Conn).conv)
		}
		if seen[conv] {
			t.Errorf("conv %#x reused", conv)
		}
		seen[conv] = true
		c.Close()
		s.Close()
	}
}

func TestHandshakeMessages(t *testing.T) {
	hello := appendHandshake(nil, helloMagic, 0x0102030405060708)
	if len(hello) != helloLen {
		t.Fatalf("hello is %d bytes, want %d", len(hello), helloLen)
	}
	if n, err := parseHandshake(hello, helloMagic); err != nil || n != 0x0102030405060708 {
		t.Errorf("parse hello = %#x, %v", n, err)
	}
	if _, err := parseHandshake(hello, ackMagic); !errors.Is(err, ErrHandshake) {
		t.Errorf("a hello parsed as an ack: %v", err)
	}
	future := append([]byte(nil), hello...)
	future[4] = protocolVersion + 1
	if _, err := parseHandshake(future, helloMagic); !errors.Is(err, ErrHandshake) {
		t.Errorf("a hello of another version: %v, want ErrHandshake", err)
	}
	if _, err := parseHandshake(hello[:helloLen-1], helloMagic); !errors.Is(err, ErrHandshake) {
		t.Errorf("a short hello: %v, want ErrHandshake", err)
	}
}

func TestControlDatagrams(t *testing.T) {
	b := appendControl(nil, 0xdeadbeef, ctlFin, 1<<40+5)
	conv, kind, value, ok := parseControl(b)
	if !ok || conv != 0xdeadbeef || kind != ctlFin || value != 1<<40+5 {
		t.Errorf("parseControl(appendControl) = %#x %d %d %v", conv, kind, value, ok)
	}
	// A KCP packet is never taken for a control datagram.
	seg := kcpSegment(7, kcpCmdPush, 0, make([]byte, 8))
	if _, _, _, ok := parseControl(seg); ok {
		t.Error("a KCP segment parsed as a control datagram")
	}
	if _, _, _, ok := parseControl(b[:controlLen-1]); ok {
		t.Error("a short datagram parsed as a control datagram")
	}
}

func kcpSegment(conv uint32, cmd byte, sn uint32, data []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, conv)
	b = append(b, cmd, 0, 128, 0)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint32(b, sn)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
	return append(b, data...)
}

func TestCarriesHello(t *testing.T) {
	hello := appendHandshake(nil, helloMagic, 1)
	ack := kcpSegment(9, 82, 4, nil)
	for _, tc := range []struct {
		name string
		p    []byte
		want bool
	}{
		{"hello alone", kcpSegment(9, kcpCmdPush, 0, hello), true},
		{"an ack, then the hello", append(ack, kcpSegment(9, kcpCmdPush, 0, hello)...), true},
		{"hello at sn 1", kcpSegment(9, kcpCmdPush, 1, hello), false},
		{"data at sn 0", kcpSegment(9, kcpCmdPush, 0, []byte("0123456789abcdef")), false},
		{"another conversation's segment first", append(kcpSegment(8, 82, 0, nil), kcpSegment(9, kcpCmdPush, 0, hello)...), false},
		{"a length beyond the packet", kcpSegment(9, kcpCmdPush, 0, hello)[:kcpOverhead+4], false},
		{"an ack only", ack, false},
	} {
		if got := carriesHello(tc.p, 9); got != tc.want {
			t.Errorf("%s: carriesHello = %v, want %v", tc.name, got, tc.want)
		}
	}
}
