package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
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

// Limits bound what a decoder will accept: a header announcing a longer
// conn or app object is rejected with ErrTooLarge before any room is
// reserved for it. Zero (or negative) fields mean the defaults. Both
// Node's side and ours write conn objects far below the default; raise
// MaxAppLen for clusters that exchange larger values.
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
	// ErrConnObject: the conn object is not a JSON object, or (ParseConn)
	// has no string "type" or a known field of the wrong JSON type.
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
// (see DecodePacket and Reader.Next for how long they stay valid).
//
// To encode, set Conn to the conn object's JSON (AppendConn) and App to the
// app bytes (AppendArg for invoke arguments, a Codec otherwise).
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

// Put writes h into b[:HeaderSize] (it panics if b is shorter, as
// binary.BigEndian.PutUint32 does). With it a packet can be encoded in one
// buffer without copying: reserve HeaderSize bytes, append the conn object
// (AppendConn) and the app object (AppendArg, a Codec), then Put the header
// with the two lengths (see the example).
func (h Header) Put(b []byte) {
	_ = b[HeaderSize-1]
	b[0], b[1] = h.Version, h.Type
	binary.BigEndian.PutUint16(b[2:4], h.Reserved)
	binary.BigEndian.PutUint64(b[4:12], uint64(h.ID))
	binary.BigEndian.PutUint32(b[12:16], uint32(h.Timeout))
	binary.BigEndian.PutUint32(b[16:20], uint32(h.ConnLen))
	binary.BigEndian.PutUint32(b[20:24], uint32(h.AppLen))
}

// Len is the length of the whole packet h describes, header included.
func (h Header) Len() int { return HeaderSize + int(h.ConnLen) + int(h.AppLen) }

// ParseHeader decodes and checks the 24-byte header in b against lim
// (zero Limits mean the defaults). It allocates nothing on success.
//
// A b shorter than HeaderSize is ErrShort, unless the bytes it has already
// show a bad version or packet type (the first bytes of "GET /" are reported
// as ErrVersion at once).
func ParseHeader(b []byte, lim Limits) (Header, error) {
	if len(b) < HeaderSize {
		if err := checkPrefix(b); err != nil {
			return Header{}, err
		}
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
	if err := checkPrefix(b); err != nil {
		return h, err
	}
	return h, h.checkLengths(lim.withDefaults())
}

// DecodePacket decodes the packet at the start of b and returns it with the
// number of bytes it took. The packet's Conn and App alias b.
//
// The header is checked (version, type, lengths against lim; zero Limits
// mean the defaults) before the body is looked at, and the conn object must
// be a JSON object. When b holds only part of a packet the error is ErrShort
// and n is 0: call again with more bytes.
func DecodePacket(b []byte, lim Limits) (p Packet, n int, err error) {
	h, err := ParseHeader(b, lim)
	if err != nil {
		return Packet{}, 0, err
	}
	n = h.Len()
	if len(b) < n {
		return Packet{}, 0, fmt.Errorf("%w: packet id %d needs %d bytes, have %d", ErrShort, h.ID, n, len(b))
	}
	p, err = h.packet(b[HeaderSize:n])
	if err != nil {
		return Packet{}, 0, err
	}
	return p, n, nil
}

// packet builds the Packet of header h from its body (exactly the conn
// object then the app object), checking the conn object.
func (h Header) packet(body []byte) (Packet, error) {
	conn := body[:h.ConnLen:h.ConnLen]
	if err := checkConnObject(conn); err != nil {
		return Packet{}, fmt.Errorf("%w (packet id %d)", err, h.ID)
	}
	p := Packet{
		Response: h.Type == TypeResponse,
		ID:       h.ID,
		Timeout:  h.Timeout,
		Conn:     conn,
	}
	if h.AppLen > 0 {
		p.App = body[h.ConnLen:]
	}
	return p, nil
}

// checkPrefix checks the version and packet type bytes among the first
// bytes of a packet, as soon as they are there.
func checkPrefix(b []byte) error {
	if len(b) > 0 && b[0] != Version {
		return fmt.Errorf("%w: got 0x%02x, want 0x%02x; stream starts %s", ErrVersion, b[0], Version, snippet(b, 16))
	}
	if len(b) > 1 && b[1] != TypeRequest && b[1] != TypeResponse {
		return fmt.Errorf("%w: got %d, want 0 (request) or 1 (response)", ErrPacketType, b[1])
	}
	return nil
}

func (h Header) checkLengths(lim Limits) error {
	if h.ConnLen < 0 {
		return fmt.Errorf("%w: conn object length %d (packet id %d)", ErrNegativeLength, h.ConnLen, h.ID)
	}
	if h.AppLen < 0 {
		return fmt.Errorf("%w: app object length %d (packet id %d)", ErrNegativeLength, h.AppLen, h.ID)
	}
	if int64(h.ConnLen) > int64(lim.MaxConnLen) {
		return fmt.Errorf("%w: conn object length %d exceeds limit %d (packet id %d)", ErrTooLarge, h.ConnLen, lim.MaxConnLen, h.ID)
	}
	if int64(h.AppLen) > int64(lim.MaxAppLen) {
		return fmt.Errorf("%w: app object length %d exceeds limit %d (packet id %d)", ErrTooLarge, h.AppLen, lim.MaxAppLen, h.ID)
	}
	return nil
}

// checkConnObject is the reader's check that a conn object is a JSON
// object: its first non-space byte is '{' and the whole is one valid JSON
// value (the grammar of encoding/json.Valid, which the fuzz tests hold it
// to). ParseConn does the decoding.
func checkConnObject(conn []byte) error {
	i := skipSpace(conn, 0)
	if i == len(conn) {
		return fmt.Errorf("%w: empty, want a JSON object", ErrConnObject)
	}
	if conn[i] != '{' {
		return fmt.Errorf("%w: starts %s, want a JSON object", ErrConnObject, snippet(conn[i:], 32))
	}
	var s scanner
	end, err := s.value(conn, i, 0)
	if err == nil && skipSpace(conn, end) != len(conn) {
		err = syntaxErr(conn, skipSpace(conn, end), "end of conn object")
	}
	if err != nil {
		return fmt.Errorf("%w: invalid JSON %s: %w", ErrConnObject, snippet(conn, 64), err)
	}
	return nil
}

// snippet quotes at most max bytes of b for an error message, marking a cut.
func snippet(b []byte, max int) string {
	if len(b) <= max {
		return strconv.Quote(string(b))
	}
	return strconv.Quote(string(b[:max])) + "..."
}
