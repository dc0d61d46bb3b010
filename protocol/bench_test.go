package protocol

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"
)

// Encoding benchmarks append into a reused buffer; decoding benchmarks
// decode a packet that is already in memory. Arguments are pre-encoded
// app objects (Raw), so these measure the packet layer, not a codec.

var benchSizes = []int{64, 4 << 10}

func benchArg(size int) Raw { return Raw(bytes.Repeat([]byte{'a'}, size)) }

func sizeName(n int) string {
	if n >= 1024 {
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}

// encodeInvoke encodes an invoke packet in place: header space, conn
// object, argument, then the header with both lengths.
func encodeInvoke(buf []byte, id int64, c *ConnObject, arg any) []byte {
	buf = append(buf, make([]byte, HeaderSize)...)
	buf = AppendConn(buf, c)
	connEnd := len(buf)
	buf, err := AppendArg(buf, JSON, arg)
	if err != nil {
		panic(err)
	}
	Header{Version: Version, Type: TypeRequest, ID: id, Timeout: 3000,
		ConnLen: int32(connEnd - HeaderSize), AppLen: int32(len(buf) - connEnd)}.Put(buf)
	return buf
}

func BenchmarkEncodeInvoke(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(sizeName(size), func(b *testing.B) {
			arg := any(benchArg(size))
			c := ConnObject{Type: KindInvoke, Method: "getData", ArgLength: 1}
			buf := make([]byte, 0, 8<<10)
			var ids IDs
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				buf = encodeInvoke(buf[:0], ids.Next(), &c, arg)
			}
		})
	}
}

func BenchmarkDecodeInvoke(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(sizeName(size), func(b *testing.B) {
			c := ConnObject{Type: KindInvoke, Method: "getData", ArgLength: 1}
			pkt := encodeInvoke(nil, 1, &c, benchArg(size))
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				p, _, err := DecodePacket(pkt, Limits{})
				if err != nil {
					b.Fatal(err)
				}
				conn, err := ParseConn(p.Conn)
				if err != nil {
					b.Fatal(err)
				}
				arg, rest, err := NextArg(p.App)
				if err != nil || len(rest) != 0 || len(arg) != size || conn.ArgLength != 1 {
					b.Fatal("bad invoke", err)
				}
			}
		})
	}
}

// BenchmarkReaderInvoke reads invoke packets from a stream, as a leader's
// connection loop does (ParseConn included).
func BenchmarkReaderInvoke(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(sizeName(size), func(b *testing.B) {
			c := ConnObject{Type: KindInvoke, Method: "getData", ArgLength: 1}
			pkt := encodeInvoke(nil, 1, &c, benchArg(size))
			r := NewReader(&loopReader{data: bytes.Repeat(pkt, 8)}, Limits{})
			b.SetBytes(int64(len(pkt)))
			b.ReportAllocs()
			for b.Loop() {
				p, err := r.Next()
				if err != nil {
					b.Fatal(err)
				}
				if _, err := ParseConn(p.Conn); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// A leader pushing a subscription value to a follower, and the follower
// taking it apart.
func BenchmarkSubscribeResultPush(b *testing.B) {
	reg := json.RawMessage(`{"dataId":"com.example.DemoService:1.0"}`)
	key := SubscriptionKey(reg)
	value := any(Raw(`{"dataId":"com.example.DemoService:1.0","urls":["127.0.0.1:12200"]}`))
	c := ConnObject{Type: KindSubscribeResult, Key: key}
	encode := func(buf []byte) []byte {
		buf = append(buf, make([]byte, HeaderSize)...)
		buf = AppendConn(buf, &c)
		connEnd := len(buf)
		buf, _ = JSON.Append(buf, value)
		Header{Version: Version, Type: TypeRequest, ID: 7, Timeout: 3000,
			ConnLen: int32(connEnd - HeaderSize), AppLen: int32(len(buf) - connEnd)}.Put(buf)
		return buf
	}
	b.Run("encode", func(b *testing.B) {
		buf := make([]byte, 0, 512)
		b.ReportAllocs()
		for b.Loop() {
			buf = encode(buf[:0])
		}
	})
	b.Run("decode", func(b *testing.B) {
		pkt := encode(nil)
		b.ReportAllocs()
		for b.Loop() {
			p, _, err := DecodePacket(pkt, Limits{})
			if err != nil {
				b.Fatal(err)
			}
			c, err := ParseConn(p.Conn)
			if err != nil || c.Key != key {
				b.Fatal("bad push", err)
			}
		}
	})
}

func BenchmarkParseHeader(b *testing.B) {
	pkt := heartbeatPacket(1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseHeader(pkt, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSubscriptionKey(b *testing.B) {
	reg := json.RawMessage(`{"dataId":"com.example.DemoService:1.0","group":"HSF"}`)
	b.ReportAllocs()
	for b.Loop() {
		_ = SubscriptionKey(reg)
	}
}
