package cbor

import (
	"bytes"
	"encoding/json"
	"reflect"
	"runtime/metrics"
	"testing"

	"github.com/go-clusterclient/clusterclient/protocol"
)

// heapAllocs reads the bytes allocated so far by this process.
func heapAllocs() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

type fuzzRecord struct {
	Name  string          `json:"name"`
	N     int             `json:"n,omitempty"`
	F     float64         `json:"f"`
	B     []byte          `json:"b"`
	L     []any           `json:"l"`
	M     map[string]int  `json:"m"`
	P     *fuzzRecord     `json:"p"`
	Raw   json.RawMessage `json:"raw"`
	Inner struct {
		S []string `json:"s"`
	} `json:"inner"`
}

// FuzzCBORDecode feeds arbitrary bytes to Decode with every kind of
// target. It must never panic, never allocate more than a bounded
// multiple of the input, and agree with the library where the codec takes
// a fast path; whatever decodes into *any must encode again and decode to
// the same value.
//
//	go test -run '^$' -fuzz FuzzCBORDecode -fuzztime 3m .
func FuzzCBORDecode(f *testing.F) {
	for _, v := range []any{
		nil, "", "hello", []byte{1, 2, 3}, true, 1, -1, 1.5, []any{"a", 1, nil},
		map[string]any{"a": []any{1, "b"}, "c": map[string]any{"d": nil}},
		fuzzRecord{Name: "x", B: []byte("y"), L: []any{1.0}, M: map[string]int{"k": 1}, Raw: json.RawMessage(`[1,{"a":2}]`)},
		&protocol.RemoteError{Name: "TypeError", Message: "m", Code: "C", Stack: "s"},
	} {
		b, err := Codec.Append(nil, v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x9a, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x5b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x78, 0x02, 'a'})
	f.Fuzz(func(t *testing.T, data []byte) {
		targets := []func() any{
			func() any { return new(any) },
			func() any { return new(string) },
			func() any { return new([]byte) },
			func() any { return new(int) },
			func() any { return new(float64) },
			func() any { return new(fuzzRecord) },
			func() any { return new(map[string]any) },
			func() any { return new([]any) },
			func() any { return new(error) },
			func() any { return new(protocol.RemoteError) },
			func() any { return new(protocol.Raw) },
			func() any { return new(json.RawMessage) },
		}
		for _, mk := range targets {
			v := mk()
			before := heapAllocs()
			err := Codec.Decode(data, v)
			if used, bound := heapAllocs()-before, 256*uint64(len(data))+1<<20; used > bound {
				t.Fatalf("decoding %d bytes into %T allocated %d bytes (bound %d)", len(data), v, used, bound)
			}
			// The fast paths agree with the library.
			if len(data) > 0 {
				w := mk()
				if decodeFast(data, w) {
					lib := mk()
					if err := decMode.Unmarshal(data, lib); err != nil {
						t.Fatalf("fast path decoded % x into %T, the library fails: %v", data, w, err)
					}
					if !reflect.DeepEqual(w, lib) {
						t.Fatalf("fast path % x into %T: %#v, library %#v", data, w, w, lib)
					}
				}
			}
			if err != nil {
				continue
			}
			if p, ok := v.(*any); ok {
				again, err := Codec.Append(nil, *p)
				if err != nil {
					t.Fatalf("re-encode %#v: %v", *p, err)
				}
				var back any
				if err := Codec.Decode(again, &back); err != nil {
					t.Fatalf("decode re-encoded % x: %v", again, err)
				}
				if !reflect.DeepEqual(*p, back) && !hasNaN(*p) {
					t.Fatalf("round trip changed %#v into %#v", *p, back)
				}
			}
		}
		// The string fast paths write what they read.
		var s string
		if Codec.Decode(data, &s) == nil {
			if out, _ := Codec.Append(nil, s); len(data) > 0 && data[0]&0xe0 == majorText && isShortest(data) && !bytes.Equal(out, data) {
				t.Fatalf("string % x re-encoded as % x", data, out)
			}
		}
	})
}

// isShortest reports whether a string item's head is in its shortest form.
func isShortest(data []byte) bool {
	_, s, ok := stringItem(data)
	return ok && len(appendHead(nil, 0, uint64(len(s)))) == len(data)-len(s)
}

func hasNaN(v any) bool {
	switch t := v.(type) {
	case float64:
		return t != t
	case []any:
		for _, e := range t {
			if hasNaN(e) {
				return true
			}
		}
	case map[string]any:
		for _, e := range t {
			if hasNaN(e) {
				return true
			}
		}
	}
	return false
}
