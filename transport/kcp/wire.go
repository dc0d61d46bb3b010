package kcp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// This file holds everything this package puts on the wire besides KCP
// itself. The layout is described in the package documentation.

const protocolVersion = 1

// In-band handshake messages (the first KCP message in each direction).
const (
	helloLen = 16 // magic(4) version(1) reserved(3) nonce(8)
	ackLen   = 16 // magic(4) version(1) reserved(3) echoed nonce(8)
)

var (
	helloMagic = []byte("CCKH")
	ackMagic   = []byte("CCKA")
)

func appendHandshake(dst, magic []byte, nonce uint64) []byte {
	dst = append(dst, magic...)
	dst = append(dst, protocolVersion, 0, 0, 0)
	return binary.LittleEndian.AppendUint64(dst, nonce)
}

// parseHandshake checks a hello or ack (selected by magic) and returns its
// nonce.
func parseHandshake(b, magic []byte) (uint64, error) {
	if len(b) != helloLen || !bytes.Equal(b[:4], magic) {
		return 0, fmt.Errorf("%w: got %q, want a %q message", ErrHandshake, b, magic)
	}
	if b[4] != protocolVersion {
		return 0, fmt.Errorf("%w: peer speaks version %d, this side %d", ErrHandshake, b[4], protocolVersion)
	}
	return binary.LittleEndian.Uint64(b[8:]), nil
}

// Control datagrams travel beside KCP on the same socket, unreliably:
//
//	conv(4, little endian) marker(1)=0xCC kind(1) reserved(2) value(8, little endian)
//
// KCP packets carry their command (81..84) at offset 4 and FEC packets a
// type byte 0xf1..0xf3, so the marker never matches a KCP packet, and a
// 16-byte datagram is shorter than any KCP packet (24-byte header).
const (
	controlLen    = 16
	controlMarker = 0xCC
)

// Kinds of control datagram.
const (
	ctlPing   byte = 1 // heartbeat; value unused
	ctlFin    byte = 2 // the sender closed; value = bytes it wrote in total
	ctlFinAck byte = 3 // the sender read up to the peer's FIN, or closed too
	ctlReset  byte = 4 // the sender has no such conversation (any more)
)

func appendControl(dst []byte, conv uint32, kind byte, value uint64) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, conv)
	dst = append(dst, controlMarker, kind, 0, 0)
	return binary.LittleEndian.AppendUint64(dst, value)
}

// parseControl reports whether p is a control datagram and decodes it.
func parseControl(p []byte) (conv uint32, kind byte, value uint64, ok bool) {
	if len(p) != controlLen || p[4] != controlMarker {
		return 0, 0, 0, false
	}
	return binary.LittleEndian.Uint32(p), p[5], binary.LittleEndian.Uint64(p[8:]), true
}

// KCP segment header, as kcp-go encodes it (little endian):
//
//	conv(4) cmd(1) frg(1) wnd(2) ts(4) sn(4) una(4) len(4) data(len)
const (
	kcpOverhead = 24
	kcpCmdPush  = 81
)

// errShortPacket is returned for datagrams too short to carry a conv.
var errShortPacket = errors.New("kcp: datagram shorter than a KCP header")

// packetConv returns the conversation id of a KCP datagram.
func packetConv(p []byte) (uint32, error) {
	if len(p) < kcpOverhead {
		return 0, errShortPacket
	}
	return binary.LittleEndian.Uint32(p), nil
}

// carriesHello reports whether the KCP datagram p holds the first segment
// of conversation conv (push, sn 0, unfragmented) and that segment is a
// hello. A listener lets a new conversation reach KCP only through such a
// packet: stale packets of a conversation a previous listener knew (later
// sequence numbers, acks, probes) never create a session.
func carriesHello(p []byte, conv uint32) bool {
	for len(p) >= kcpOverhead {
		if binary.LittleEndian.Uint32(p) != conv {
			return false
		}
		cmd, frg := p[4], p[5]
		sn := binary.LittleEndian.Uint32(p[12:])
		n := binary.LittleEndian.Uint32(p[20:])
		body := p[kcpOverhead:]
		if uint64(n) > uint64(len(body)) {
			return false
		}
		if cmd == kcpCmdPush && sn == 0 && frg == 0 && n == helloLen && bytes.Equal(body[:4], helloMagic) {
			return true
		}
		p = body[n:]
	}
	return false
}
