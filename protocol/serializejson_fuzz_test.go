package protocol

import (
	"encoding/hex"
	"errors"
	"math"
	"reflect"
	"runtime"
	"testing"
	"time"
)

// Allocation allowed when decoding n bytes into *any: sjFuzzAllocPerByte*n
// plus sjFuzzAllocBase (the pooled index arrays when the pool is empty,
// and the runtime's own bookkeeping). Decoding must stay linear.
const (
	sjFuzzAllocPerByte = 128
	sjFuzzAllocBase    = 64 << 10
)

// sjFuzzMaxReencode skips the re-encoding check for values whose encoding
// would be large: a string entry referenced many times is decoded once
// but encoded once per reference.
const sjFuzzMaxReencode = 1 << 20

// FuzzSerializeJSONDecode feeds arbitrary bytes to the decoder, seeded with
// every golden example (and, in testdata/fuzz, the app objects of the
// captured Node session). Decoding must not panic, must allocate in
// proportion to the input, must fail only with the package's sentinel
// errors, must agree with the checks a *Raw target makes, and a decoded
// value must encode and decode back to itself.
func FuzzSerializeJSONDecode(f *testing.F) {
	for _, fx := range sjLoadFixtures(f) {
		data, err := hex.DecodeString(fx.Hex)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		var v any
		err := SerializeJSON.Decode(data, &v)
		runtime.ReadMemStats(&after)
		if n := after.TotalAlloc - before.TotalAlloc; n > uint64(sjFuzzAllocPerByte*len(data)+sjFuzzAllocBase) {
			t.Fatalf("decoding %d bytes allocated %d bytes", len(data), n)
		}
		if err != nil && !errors.Is(err, ErrSerializeJSON) {
			t.Fatalf("error without the sentinel: %v", err)
		}

		var raw Raw
		if rerr := SerializeJSON.Decode(data, &raw); (rerr == nil) != (err == nil) {
			t.Fatalf("*any says %v, *Raw says %v", err, rerr)
		}

		// Typed targets: no panic, only sentinel errors, and malformed
		// input is reported as such whatever the target.
		for _, target := range []any{new(sjAll), new([]any), new(map[string]int), new([]byte), new(string),
			new(float32), new(int8), new(time.Time), new(error), new([]Raw), new(struct{ A, B, C sjCustom })} {
			terr := SerializeJSON.Decode(data, target)
			switch {
			case terr != nil && !errors.Is(terr, ErrSerializeJSON) && !errors.Is(terr, ErrSerializeJSONType):
				t.Fatalf("%T: error without a sentinel: %v", target, terr)
			case err != nil && !errors.Is(terr, ErrSerializeJSON):
				t.Fatalf("%T: malformed input (%v) gave %v", target, err, terr)
			}
		}
		if err != nil {
			return
		}

		// A value copied entry for entry is the same value.
		r, cerr := sjGetReader(data)
		if cerr == nil && len(data) > 0 {
			e := sjGetEncoder()
			cerr = e.copyFrom(r, 0)
			var copied []byte
			if cerr == nil {
				copied, cerr = e.finish(nil)
			}
			sjPutEncoder(e)
			var cv any
			if cerr == nil {
				cerr = SerializeJSON.Decode(copied, &cv)
			}
			if cerr != nil || !sjEqual(cv, v) {
				t.Fatalf("copy %q of %q decodes to %#v (%v), want %#v", copied, data, cv, cerr, v)
			}
		}
		if r != nil {
			sjPutReader(r)
		}

		if sjJSONCost(v) > sjFuzzMaxReencode {
			return
		}
		again, err := SerializeJSON.Append(nil, v)
		if err != nil {
			t.Fatalf("re-encoding %#v: %v", v, err)
		}
		var v2 any
		if err := SerializeJSON.Decode(again, &v2); err != nil {
			t.Fatalf("decoding the re-encoding %q: %v", again, err)
		}
		if !sjSameNatural(v, v2) {
			t.Fatalf("%q decodes to %#v, its re-encoding %q to %#v", data, v, again, v2)
		}
	})
}

// sjSameNatural compares natural values as a JavaScript peer would see
// them: numbers by value (a FLOATS entry may come back as an INTEGERS
// one), and integral doubles beyond 2^53 within the drift of V8's
// base-36 conversions.
func sjSameNatural(a, b any) bool {
	if fa, ok := sjNumber(a); ok {
		fb, ok := sjNumber(b)
		switch {
		case !ok:
			return false
		case math.IsNaN(fa) || math.IsNaN(fb):
			return math.IsNaN(fa) && math.IsNaN(fb)
		case fa == fb:
			return true
		}
		return fa == math.Trunc(fa) && math.Abs(fa) >= 1<<53 && math.Abs(fa-fb) <= 1e-13*math.Abs(fa)
	}
	switch x := a.(type) {
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sjSameNatural(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, el := range x {
			if w, ok := y[k]; !ok || !sjSameNatural(el, w) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

func sjNumber(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// FuzzSerializeJSONRoundTrip encodes Go values built from fuzzed fields
// and checks that they decode back: exactly, except integral doubles
// beyond 2^53, which come back as V8 would read V8's digits.
func FuzzSerializeJSONRoundTrip(f *testing.F) {
	f.Add("a b", "k", int64(-1), uint64(1), 1.5, []byte{0, 255}, int64(0))
	f.Add("%2B|^", "", int64(math.MinInt64), uint64(math.MaxUint64), 1e21, []byte{}, int64(-8.64e15))
	f.Add("\xff\x00", "7", int64(1<<53), uint64(0), math.NaN(), []byte(nil), int64(1704164645678))
	f.Add("", "4294967295", int64(0), uint64(36), math.Copysign(0, -1), []byte("x"), int64(math.MaxInt64))
	type value struct {
		S  string         `json:"s"`
		I  int64          `json:"i,omitempty"`
		U  uint64         `json:"u"`
		F  float64        `json:"f"`
		B  []byte         `json:"b"`
		T  time.Time      `json:"t"`
		M  map[string]any `json:"m"`
		E  *RemoteError   `json:"e"`
		A  []any          `json:"a"`
		P  *int64         `json:"p"`
		AE error          `json:"ae"`
	}
	f.Fuzz(func(t *testing.T, s, k string, i int64, u uint64, fl float64, b []byte, ms int64) {
		in := value{
			S: s, I: i, U: u, F: fl, B: b, T: time.UnixMilli(ms).UTC(),
			M: map[string]any{k: s, s + "x": []any{i, u, b}},
			E: &RemoteError{Name: k, Message: s, Code: s + k},
			A: []any{fl, Undefined, nil, k, time.UnixMilli(ms)},
			P: &i,
		}
		if i%2 == 0 {
			in.AE = errors.New(s)
		}
		doc, err := SerializeJSON.Append(nil, in)
		if err != nil {
			t.Fatalf("encode %+v: %v", in, err)
		}
		var out value
		if err := SerializeJSON.Decode(doc, &out); err != nil {
			t.Fatalf("decode %q: %v", doc, err)
		}
		wantF := fl
		if fl == math.Trunc(fl) && math.Abs(fl) >= 1<<53 && !math.IsInf(fl, 0) {
			wantF = sjV8ParseInt(sjAppendIntegralFloat(nil, fl))
		}
		if !(out.F == wantF || math.IsNaN(out.F) && math.IsNaN(wantF)) {
			t.Fatalf("float %v came back as %v, want %v", fl, out.F, wantF)
		}
		if out.S != s || out.I != i || out.U != u || !out.T.Equal(in.T) || *out.P != i ||
			!reflect.DeepEqual(out.E, in.E) || string(out.B) != string(b) || (b == nil) != (out.B == nil) {
			t.Fatalf("through %q:\n got %+v\nwant %+v", doc, out, in)
		}
		if in.AE != nil && !reflect.DeepEqual(out.AE, &RemoteError{Name: "Error", Message: s}) {
			t.Fatalf("error %v came back as %#v", in.AE, out.AE)
		}
		if len(out.M) != len(in.M) || (k != s+"x" && out.M[k] != s) || len(out.A) != 5 || out.A[1] != nil || out.A[3] != k {
			t.Fatalf("map and array through %q: %#v %#v", doc, out.M, out.A)
		}
		var natural any
		if err := SerializeJSON.Decode(doc, &natural); err != nil {
			t.Fatal(err)
		}
	})
}
