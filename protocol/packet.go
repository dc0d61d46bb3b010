package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Header layout constants.
const (
	HeaderSize = 24 // bytes before the conn object
	Version    = 1  // the only version byte Node writes and accepts

	TypeRequest  = 0 // header byte 1 of a request
	TypeResponse = 1 // header byte 1 of a response
)

// Default limits on a frame's two variable parts. A conn object is a small
// JSON object (Node's are under 200 bytes; ours add an auth extension), an
// app object carries user data.
const (
	DefaultMaxConnLen = 64 << 10 // 64 KiB
	DefaultMaxAppLen  = 16 << 20 // 16 MiB
)

// Limits bound what a decoder will accept. Zero fields mean the defaults.
type Limits struct {
	MaxConnLen int // conn object bytes; default DefaultMaxConnLen
	MaxAppLen  int // app object bytes; default DefaultMaxAppLen
}

// DefaultLimits are the limits used when none are given.
var DefaultLimits = Limits{MaxConnLen: DefaultMaxConnLen, MaxAppLen: DefaultMaxAppLen}

func (l Limits) withDefaults() Limits {
	if l.MaxConnLen <= 0 {
		l.MaxConnLen = DefaultMaxConnLen
	}
	if l.MaxAppLen <= 0 {
		l.MaxAppLen = DefaultMaxAppLen
	}
	return l
}

// Errors reported by decoding. They are wrapped with what was seen; match
// them with errors.Is.
var (
	// ErrVersion: the first byte is not Version (e.g. "G" of "GET /").
	ErrVersion = errors.New("protocol: bad version byte")
	// ErrPacketType: byte 1 is neither request (0) nor response (1).
	ErrPacketType = errors.New("protocol: bad packet type")
	// ErrNegativeLength: a length field is negative.
	ErrNegativeLength = errors.New("protocol: negative length")
	// ErrTooLarge: a length field exceeds the configured limit.
	ErrTooLarge = errors.New("protocol: length exceeds limit")
	// ErrShort: the buffer ends before the packet does.
	ErrShort = errors.New("protocol: short packet")
	// ErrConnObject: the conn object is not a JSON object with a string "type".
	ErrConnObject = errors.New("protocol: malformed conn object")
	// ErrArgs: invoke argument framing is inconsistent with argLength.
	ErrArgs = errors.New("protocol: malformed invoke arguments")
)

// Header is the fixed 24-byte part of a packet.
type Header struct {
	Version  byte
	Type     byte   // TypeRequest or TypeResponse
	Reserved uint16 // always 0 on write; ignored on read
	ID       int64
	Timeout  int32 // milliseconds
	ConnLen  int32
	AppLen   int32
}

// Packet is one decoded frame. Conn and App alias the decoder's buffer
// unless documented otherwise.
type Packet struct {
	Response bool
	ID       int64
	Timeout  int32 // milliseconds
	Conn     []byte
	App      []byte // nil when the app length is 0
}

// AppendPacket encodes p and appends it to dst. With a dst of sufficient
// capacity it does not allocate.
func AppendPacket(dst []byte, p *Packet) []byte {
	var typ byte = TypeRequest
	if p.Response {
		typ = TypeResponse
	}
	dst = append(dst, Version, typ, 0, 0)
	dst = binary.BigEndian.AppendUint64(dst, uint64(p.ID))
	dst = binary.BigEndian.AppendUint32(dst, uint32(p.Timeout))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(p.Conn)))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(p.App)))
	dst = append(dst, p.Conn...)
	return append(dst, p.App...)
}

// ParseHeader decodes and checks the 24-byte header in b against lim
// (zero Limits mean the defaults). It allocates nothing.
func ParseHeader(b []byte, lim Limits) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("%w: header needs %d bytes, have %d", ErrShort, HeaderSize, len(b))
	}
	h := Header{
		Version:  b[0],
		Type:     b[1],
		Reserved: binary.BigEndian.Uint16(b[2:4]),
		ID:       int64(binary.BigEndian.Uint64(b[4:12])),
		Timeout:  int32(binary.BigEndian.Uint32(b[12:16])),
		ConnLen:  int32(binary.BigEndian.Uint32(b[16:20])),
		AppLen:   int32(binary.BigEndian.Uint32(b[20:24])),
	}
	return h, h.check(lim.withDefaults())
}

func (h Header) check(lim Limits) error {
	if h.Version != Version {
		return fmt.Errorf("%w: got 0x%02x (%q), want 0x%02x", ErrVersion, h.Version, rune(h.Version), Version)
	}
	if h.Type != TypeRequest && h.Type != TypeResponse {
		return fmt.Errorf("%w: got %d, want 0 (request) or 1 (response)", ErrPacketType, h.Type)
	}
	if h.ConnLen < 0 {
		return fmt.Errorf("%w: conn object length %d", ErrNegativeLength, h.ConnLen)
	}
	if h.AppLen < 0 {
		return fmt.Errorf("%w: app object length %d", ErrNegativeLength, h.AppLen)
	}
	if int64(h.ConnLen) > int64(lim.MaxConnLen) {
		return fmt.Errorf("%w: conn object length %d exceeds limit %d", ErrTooLarge, h.ConnLen, lim.MaxConnLen)
	}
	if int64(h.AppLen) > int64(lim.MaxAppLen) {
		return fmt.Errorf("%w: app object length %d exceeds limit %d", ErrTooLarge, h.AppLen, lim.MaxAppLen)
	}
	return nil
}
