package protocol

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"testing"
)

// Small limits so that the fuzzers reach the limit checks and so that
// "allocates beyond the limits" is cheap to detect.
var fuzzLimits = Limits{MaxConnLen: 512, MaxAppLen: 2048}

// fuzzSeeds returns every fixture packet, both capture streams and a few
// hostile inputs.
func fuzzSeeds(f *testing.F) (packets, streams [][]byte) {
	for _, fp := range loadPackets(f) {
		b, _ := hex.DecodeString(fp.Hex)
		packets = append(packets, b)
	}
	c := loadCapture(f)
	for _, dir := range [][]fixturePacket{c.FollowerToLeader, c.LeaderToFollower} {
		var s []byte
		for _, fp := range dir {
			b, _ := hex.DecodeString(fp.Hex)
			s = append(s, b...)
		}
		streams = append(streams, s)
	}
	hostile := [][]byte{
		[]byte("GET / HTTP/1.1\r\nHost: 127.0.0.1:7777\r\n\r\n"),
		header(1, 0, 1, 3000, 20, 0x7fffffff),
		header(1, 0, 1, 3000, -1, 0),
		header(1, 7, 1, 3000, 0, 0),
		append(header(1, 0, 1, 1000, 13, 0), `{"foo":"bar"|`...),
	}
	streams = append(streams, hostile...)
	return packets, streams
}

// isProtocolError reports whether err is one of the decoding sentinels.
func isProtocolError(err error) bool { return sentinelOf(err) != nil }

// chunkReader returns at most n bytes per Read.
type chunkReader struct {
	r io.Reader
	n int
}

func (c chunkReader) Read(p []byte) (int, error) {
	if len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}

func FuzzReader(f *testing.F) {
	packets, streams := fuzzSeeds(f)
	for i, s := range append(packets, streams...) {
		f.Add(s, uint8(i))
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		r := NewReader(chunkReader{bytes.NewReader(data), int(chunk) + 1}, fuzzLimits)
		rest := data // the same stream through DecodePacket, packet by packet
		for {
			p, err := r.Next()
			// The reader never holds more than the limits allow.
			if cap(r.buf) > min(readerBufSize, HeaderSize+fuzzLimits.MaxConnLen+fuzzLimits.MaxAppLen) ||
				cap(r.big) > fuzzLimits.MaxConnLen+fuzzLimits.MaxAppLen || cap(r.big) > r.bigNeed {
				t.Fatalf("buffers beyond the limits: buf %d, big %d for a body of %d", cap(r.buf), cap(r.big), r.bigNeed)
			}
			dp, n, derr := DecodePacket(rest, fuzzLimits)
			if err != nil {
				switch {
				case err == io.EOF:
					if len(rest) != 0 {
						t.Fatalf("io.EOF with %d bytes left", len(rest))
					}
				case errors.Is(err, ErrShort):
					if !errors.Is(err, io.ErrUnexpectedEOF) || !errors.Is(derr, ErrShort) {
						t.Fatalf("truncation: reader %v, DecodePacket %v", err, derr)
					}
				case !isProtocolError(err):
					t.Fatalf("unexpected error %v", err)
				case sentinelOf(err) != sentinelOf(derr):
					t.Fatalf("reader says %v, DecodePacket says %v", err, derr)
				}
				if _, again := r.Next(); err != io.EOF && again != err {
					t.Fatalf("error not sticky: %v then %v", err, again)
				}
				return
			}
			if derr != nil {
				t.Fatalf("reader returned a packet, DecodePacket failed: %v", derr)
			}
			if !packetsEqual(p, dp) {
				t.Fatalf("reader %+v, DecodePacket %+v", p, dp)
			}
			checkDecoded(t, p, rest[:n])
			rest = rest[n:]
		}
	})
}

func FuzzDecodePacket(f *testing.F) {
	packets, streams := fuzzSeeds(f)
	for _, s := range append(packets, streams...) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, n, err := DecodePacket(data, fuzzLimits)
		if err != nil {
			if !isProtocolError(err) || n != 0 {
				t.Fatalf("error %v (n=%d) is not a protocol sentinel", err, n)
			}
			return
		}
		if n > len(data) {
			t.Fatalf("consumed %d of %d bytes", n, len(data))
		}
		checkDecoded(t, p, data[:n])
	})
}

// checkDecoded checks a packet decoded from raw: within the limits, a JSON
// object conn, and encoding it back gives raw (reserved bytes aside).
func checkDecoded(t *testing.T, p Packet, raw []byte) {
	t.Helper()
	if len(p.Conn) > fuzzLimits.MaxConnLen || len(p.App) > fuzzLimits.MaxAppLen {
		t.Fatalf("lengths %d/%d beyond the limits", len(p.Conn), len(p.App))
	}
	if !json.Valid(p.Conn) {
		t.Fatalf("conn object %q is not JSON", p.Conn)
	}
	if p.App != nil && len(p.App) == 0 {
		t.Fatal("empty App must be nil")
	}
	want := bytes.Clone(raw)
	want[2], want[3] = 0, 0
	if enc := AppendPacket(nil, &p); !bytes.Equal(enc, want) {
		t.Fatalf("re-encoded %x, want %x", enc, want)
	}
	// Whatever ParseConn accepts round-trips.
	if c, err := ParseConn(p.Conn); err == nil {
		checkConnRoundTrip(t, c)
	} else if !errors.Is(err, ErrConnObject) {
		t.Fatalf("ParseConn: %v", err)
	}
}

// sentinelOf returns the decoding sentinel err wraps, or nil.
func sentinelOf(err error) error {
	for _, s := range []error{ErrShort, ErrVersion, ErrPacketType, ErrNegativeLength, ErrTooLarge, ErrConnObject} {
		if errors.Is(err, s) {
			return s
		}
	}
	return nil
}

func packetsEqual(a, b Packet) bool {
	return a.Response == b.Response && a.ID == b.ID && a.Timeout == b.Timeout &&
		bytes.Equal(a.Conn, b.Conn) && bytes.Equal(a.App, b.App) && (a.App == nil) == (b.App == nil)
}

// checkConnRoundTrip: AppendConn of a parsed conn object is valid JSON that
// parses back to the same object and re-encodes to the same bytes.
func checkConnRoundTrip(t *testing.T, c ConnObject) {
	t.Helper()
	out := AppendConn(nil, &c)
	if !json.Valid(out) {
		t.Fatalf("AppendConn wrote invalid JSON %q", out)
	}
	c2, err := ParseConn(out)
	if err != nil {
		t.Fatalf("ParseConn(AppendConn(c)) = %v for %q", err, out)
	}
	if out2 := AppendConn(nil, &c2); !bytes.Equal(out, out2) {
		t.Fatalf("not a fixed point:\n%q\n%q", out, out2)
	}
	if c.Type != c2.Type || c.ChannelName != c2.ChannelName || c.Key != c2.Key || !bytes.Equal(c.Reg, c2.Reg) ||
		c.Method != c2.Method || c.ArgLength != c2.ArgLength || c.Oneway != c2.Oneway || c.Success != c2.Success ||
		len(c.Ext) != len(c2.Ext) {
		t.Fatalf("round trip changed %+v into %+v", c, c2)
	}
	for k, v := range c.Ext {
		if !bytes.Equal(v, c2.Ext[k]) {
			t.Fatalf("Ext[%q]: %q then %q", k, v, c2.Ext[k])
		}
	}
}

func FuzzParseConn(f *testing.F) {
	for _, fp := range loadPackets(f) {
		f.Add([]byte(*fp.Decoded.ConnJSON))
	}
	for _, s := range []string{
		`{"type":"register_channel","channelName":"C","auth":{"mac":"00"}}`,
		`{"typ\u0065":"x","a":1,"a":[1 , 2],"1":{"b":null}}`,
		`{"type":"subscribe","key":"k\ud800","reg":{"z":1,"0":-0.0,"x":1e400}}`,
		`{"type":"invoke","argLength":3.0,"oneway":true,"method":"\u00e9"}`,
		"{\"type\":\"\xff\xed\xa0\x80\"}", `{"type":1}`, `[]`, ``, `{"foo":"bar"|`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConn(data)
		valid := json.Valid(data)
		if err == nil {
			if !valid {
				t.Fatalf("ParseConn accepted invalid JSON %q", data)
			}
			checkConnRoundTrip(t, c)
		} else if !errors.Is(err, ErrConnObject) {
			t.Fatalf("error %v does not wrap ErrConnObject", err)
		}
		if checkConnObject(data) == nil && !valid {
			t.Fatalf("checkConnObject accepted invalid JSON %q", data)
		}

		// NormalizeJSON accepts exactly what encoding/json accepts, and its
		// output is valid JSON in normal form.
		norm, nerr := NormalizeJSON(nil, data)
		if (nerr == nil) != valid {
			t.Fatalf("NormalizeJSON error %v, json.Valid %v, for %q", nerr, valid, data)
		}
		if nerr == nil {
			if !json.Valid(norm) {
				t.Fatalf("NormalizeJSON wrote invalid JSON %q", norm)
			}
			again, err := NormalizeJSON(nil, norm)
			if err != nil || !bytes.Equal(again, norm) {
				t.Fatalf("normal form not a fixed point: %q then %q (%v)", norm, again, err)
			}
		}
	})
}
