package protocol

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

type sjBenchObject struct {
	DataID string `json:"dataId"`
	V      int    `json:"v"`
}

// sjBenchValues are the benchmarked values: a 64-byte string, a 4 KiB
// Buffer (Node's weak spot: 851 calls/s), a small object as a map and as
// a struct, and a mixed array.
func sjBenchValues() []struct {
	name   string
	v      any
	target func() any
} {
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 4096)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	return []struct {
		name   string
		v      any
		target func() any
	}{
		{"string64", strings.Repeat("abc def+", 8), func() any { return new(string) }},
		{"bytes4KiB", buf, func() any { return new([]byte) }},
		{"object", map[string]any{"dataId": "x", "v": 1}, func() any { return new(any) }},
		{"struct", sjBenchObject{DataID: "x", V: 1}, func() any { return new(sjBenchObject) }},
		{"mixed", []any{"a", 1, 1.5, true, nil, []byte{1, 2, 3}, time.UnixMilli(1704164645678), map[string]any{"k": "v"}},
			func() any { return new(any) }},
	}
}

func BenchmarkSerializeJSONEncode(b *testing.B) {
	for _, bv := range sjBenchValues() {
		b.Run(bv.name, func(b *testing.B) {
			buf, err := SerializeJSON.Append(nil, bv.v)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				buf, err = SerializeJSON.Append(buf[:0], bv.v)
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSerializeJSONDecode(b *testing.B) {
	for _, bv := range sjBenchValues() {
		b.Run(bv.name, func(b *testing.B) {
			data, err := SerializeJSON.Append(nil, bv.v)
			if err != nil {
				b.Fatal(err)
			}
			target := bv.target()
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if err := SerializeJSON.Decode(data, target); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
