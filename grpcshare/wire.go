package grpcshare

import (
	"fmt"
	"time"

	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protowire"
)

// The envelopes that cross the hop are protobuf wire format, written and
// read by hand with protowire: no generated code, no reflection, and the
// gRPC message inside is the caller's already-marshalled bytes. Every
// envelope travels as one []byte argument or result of a cluster call
// (base64 in a JSON string with the default codec, plain bytes with
// codec/cbor).
//
// request (grpc.unary, grpc.open, grpc.recv, grpc.cancel):
//
//	1 method   string   the full gRPC method, "/pkg.Service/Method"
//	2 msg      bytes    the request message, marshalled by the caller
//	3 md       message  one per metadata value: {1 key string, 2 value bytes}
//	4 timeout  varint   open: the stream's deadline, in ns from now (0: none)
//	5 ready    varint   1: WaitForReady(true), 2: WaitForReady(false)
//	6 subtype  string   the codec's name, the content-subtype upstream
//	7 comp     string   grpc.UseCompressor's name
//	8 id       varint   recv, cancel: the stream
//	9 max      varint   recv: how many messages the caller can take now
//	10 hold    varint   recv: how long the leader may hold the poll, in ns
//	11 idle    varint   open: how long the leader keeps a stream nobody polls, in ns
//	12 client  varint   open: 1 for a client-streaming or bidi call (msg absent:
//	                    the caller sends each message with grpc.send)
//
// response:
//
//	1 msg      bytes    repeated: unary, the reply; recv, the messages in order
//	2 header   message  repeated, as md above; only with hdr set
//	3 trailer  message  repeated, as md above
//	4 status   bytes    google.rpc.Status; present once the call is over
//	5 id       varint   open: the stream's id on the leader
//	6 hdr      varint   1: the header is in this response
//	7 peer     string   the upstream's address, for grpc.Peer
//	8 network  string   its network
//	9 eof      varint   send: 1 when the stream is over (the status comes by recv)
const (
	fMethod  = 1
	fMsg     = 2
	fMD      = 3
	fTimeout = 4
	fReady   = 5
	fSubtype = 6
	fComp    = 7
	fID      = 8
	fMax     = 9
	fHold    = 10
	fIdle    = 11
	fClient  = 12

	rMsg     = 1
	rHeader  = 2
	rTrailer = 3
	rStatus  = 4
	rID      = 5
	rHdr     = 6
	rPeer    = 7
	rNetwork = 8
	rEOF     = 9

	mdKey   = 1
	mdValue = 2
)

// request is what a caller asks the leader to do.
type request struct {
	method  string
	msg     []byte
	md      metadata.MD
	timeout time.Duration
	ready   uint64
	subtype string
	comp    string
	id      uint64
	max     uint64
	hold    time.Duration
	idle    time.Duration
	client  bool
}

// response is what the leader answers.
type response struct {
	msgs      [][]byte
	header    metadata.MD
	hasHeader bool
	trailer   metadata.MD
	done      bool   // the call is over: status holds its end
	status    []byte // marshalled google.rpc.Status (empty for a bare OK)
	id        uint64
	peer      string
	network   string
	eof       bool
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func appendMD(b []byte, num protowire.Number, md metadata.MD) []byte {
	for k, vs := range md {
		for _, v := range vs {
			n := protowire.SizeTag(mdKey) + protowire.SizeBytes(len(k)) + protowire.SizeTag(mdValue) + protowire.SizeBytes(len(v))
			b = protowire.AppendTag(b, num, protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(n))
			b = protowire.AppendTag(b, mdKey, protowire.BytesType)
			b = protowire.AppendString(b, k)
			b = protowire.AppendTag(b, mdValue, protowire.BytesType)
			b = protowire.AppendString(b, v)
		}
	}
	return b
}

func (r *request) marshal() []byte {
	b := make([]byte, 0, 32+len(r.method)+len(r.msg))
	b = appendString(b, fMethod, r.method)
	if r.msg != nil {
		b = protowire.AppendTag(b, fMsg, protowire.BytesType)
		b = protowire.AppendBytes(b, r.msg)
	}
	b = appendMD(b, fMD, r.md)
	if r.timeout > 0 {
		b = appendVarint(b, fTimeout, uint64(r.timeout))
	}
	b = appendVarint(b, fReady, r.ready)
	b = appendString(b, fSubtype, r.subtype)
	b = appendString(b, fComp, r.comp)
	b = appendVarint(b, fID, r.id)
	b = appendVarint(b, fMax, r.max)
	if r.hold > 0 {
		b = appendVarint(b, fHold, uint64(r.hold))
	}
	if r.idle > 0 {
		b = appendVarint(b, fIdle, uint64(r.idle))
	}
	if r.client {
		b = appendVarint(b, fClient, 1)
	}
	return b
}

func (r *response) marshal() []byte {
	n := 16 + len(r.status)
	for _, m := range r.msgs {
		n += 8 + len(m)
	}
	b := make([]byte, 0, n)
	for _, m := range r.msgs {
		b = protowire.AppendTag(b, rMsg, protowire.BytesType)
		b = protowire.AppendBytes(b, m)
	}
	if r.hasHeader {
		b = appendVarint(b, rHdr, 1)
		b = appendMD(b, rHeader, r.header)
	}
	b = appendMD(b, rTrailer, r.trailer)
	if r.done {
		b = protowire.AppendTag(b, rStatus, protowire.BytesType)
		b = protowire.AppendBytes(b, r.status)
	}
	b = appendVarint(b, rID, r.id)
	b = appendString(b, rPeer, r.peer)
	b = appendString(b, rNetwork, r.network)
	if r.eof {
		b = appendVarint(b, rEOF, 1)
	}
	return b
}

// field walks the fields of b, calling fn with each field's number and
// its value: v for varints, p for length-delimited fields (a sub-slice of
// b, not a copy).
func fields(b []byte, fn func(num protowire.Number, v uint64, p []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		switch typ {
		case protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
			if err := fn(num, v, nil); err != nil {
				return err
			}
		case protowire.BytesType:
			p, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
			if err := fn(num, 0, p); err != nil {
				return err
			}
		default:
			// Unknown wire types come from a newer peer: skip them.
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
		}
	}
	return nil
}

// addMD decodes one {key, value} pair into md.
func addMD(md metadata.MD, p []byte) (metadata.MD, error) {
	var k, v string
	err := fields(p, func(num protowire.Number, _ uint64, p []byte) error {
		switch num {
		case mdKey:
			k = string(p)
		case mdValue:
			v = string(p)
		}
		return nil
	})
	if err != nil {
		return md, err
	}
	if md == nil {
		md = metadata.MD{}
	}
	md[k] = append(md[k], v)
	return md, nil
}

func (r *request) unmarshal(b []byte) error {
	err := fields(b, func(num protowire.Number, v uint64, p []byte) error {
		var err error
		switch num {
		case fMethod:
			r.method = string(p)
		case fMsg:
			r.msg = p
		case fMD:
			r.md, err = addMD(r.md, p)
		case fTimeout:
			r.timeout = time.Duration(v)
		case fReady:
			r.ready = v
		case fSubtype:
			r.subtype = string(p)
		case fComp:
			r.comp = string(p)
		case fID:
			r.id = v
		case fMax:
			r.max = v
		case fHold:
			r.hold = time.Duration(v)
		case fIdle:
			r.idle = time.Duration(v)
		case fClient:
			r.client = v == 1
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("%w: request envelope: %v", ErrProtocol, err)
	}
	return nil
}

func (r *response) unmarshal(b []byte) error {
	err := fields(b, func(num protowire.Number, v uint64, p []byte) error {
		var err error
		switch num {
		case rMsg:
			r.msgs = append(r.msgs, p)
		case rHeader:
			r.header, err = addMD(r.header, p)
		case rHdr:
			r.hasHeader = v == 1
		case rTrailer:
			r.trailer, err = addMD(r.trailer, p)
		case rStatus:
			r.status, r.done = p, true
		case rID:
			r.id = v
		case rPeer:
			r.peer = string(p)
		case rNetwork:
			r.network = string(p)
		case rEOF:
			r.eof = v == 1
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("%w: response envelope: %v", ErrProtocol, err)
	}
	if r.hasHeader && r.header == nil {
		r.header = metadata.MD{}
	}
	return nil
}
