package cbor_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	fx "github.com/fxamacker/cbor/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-clusterclient/clusterclient/codec/cbor"
	"github.com/go-clusterclient/clusterclient/protocol"
)

type inner struct {
	N []int          `json:"n"`
	M map[string]any `json:"m,omitempty"`
}

type record struct {
	Name    string            `json:"name"`
	Age     int               `json:"age,omitempty"`
	Score   float64           `json:"score"`
	Tags    []string          `json:"tags"`
	Blob    []byte            `json:"blob"`
	When    time.Time         `json:"when"`
	Addr    netip.Addr        `json:"addr"`
	Inner   *inner            `json:"inner"`
	Labels  map[string]string `json:"labels"`
	Skipped string            `json:"-"`
	Raw     json.RawMessage   `json:"raw,omitempty"`
	Level   level             `json:"level"`
	private int
}

// level has its own JSON form, as many Go types do.
type level int

func (l level) MarshalJSON() ([]byte, error) { return json.Marshal(fmt.Sprintf("L%d", int(l))) }
func (l *level) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	_, err := fmt.Sscanf(s, "L%d", (*int)(l))
	return err
}

func sampleRecord() record {
	return record{
		Name: "svc", Age: 3, Score: 0.25, Tags: []string{"a", "b"}, Blob: []byte{0, 1, 2, 255},
		When: time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.UTC), Addr: netip.MustParseAddr("10.0.0.1"),
		Inner:  &inner{N: []int{1, -2, 3}, M: map[string]any{"k": "v"}},
		Labels: map[string]string{"z": "1", "a": "2"}, Raw: json.RawMessage(`{"x":[1,2]}`), Level: 7,
	}
}

// roundTrip encodes v with c and decodes it into a new value of the type
// of target (a pointer), returning what target points to.
func roundTrip(t *testing.T, c protocol.Codec, v any, target any) any {
	t.Helper()
	b, err := c.Append(nil, v)
	require.NoError(t, err, "%s: append %#v", c.Name(), v)
	p := reflect.New(reflect.TypeOf(target).Elem())
	require.NoError(t, c.Decode(b, p.Interface()), "%s: decode %#v (% x)", c.Name(), v, b)
	return p.Elem().Interface()
}

// TestSameAsJSON decodes what each codec encoded into the same typed
// target and requires the same Go value: the differential test against
// protocol.JSON's meaning.
func TestSameAsJSON(t *testing.T) {
	cases := []struct {
		v      any
		target any
	}{
		{"", new(string)},
		{"hello", new(string)},
		{"<a&b> \u2028 ü \x00 \"quoted\" \\", new(string)},
		{strings.Repeat("x", 4096), new(string)},
		{[]byte{}, new([]byte)},
		{[]byte(nil), new([]byte)},
		{make([]byte, 4096), new([]byte)},
		{[]byte("\x00\xff"), new([]byte)},
		{true, new(bool)},
		{false, new(any)},
		{0, new(int)},
		{-1, new(int64)},
		{math.MaxInt64, new(int64)},
		{uint64(math.MaxUint64), new(uint64)},
		{1.5, new(float64)},
		{float32(0.1), new(float32)},
		{1e300, new(float64)},
		{-0.0, new(float64)},
		{nil, new(any)},
		{nil, new(*record)},
		{nil, new([]int)},
		{nil, new(map[string]int)},
		{protocol.Undefined, new(any)},
		{"text", new(any)},
		{[]any{"a", true, nil}, new(any)},
		{map[string]any{"s": "x", "l": []any{"y", false}, "m": map[string]any{}}, new(any)},
		{[]int{1, 2, 3}, new([]int)},
		{[3]int{1, 2, 3}, new([3]int)},
		{map[string]int{"b": 2, "a": 1}, new(map[string]int)},
		{map[int]string{1: "a"}, new(map[int]string)},
		{sampleRecord(), new(record)},
		{&inner{N: []int{}}, new(inner)},
		{record{Raw: json.RawMessage(`1`)}, new(record)},
		{time.Date(2000, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600)), new(time.Time)},
		{netip.MustParseAddrPort("[::1]:80"), new(netip.AddrPort)},
		{json.RawMessage(`{"a":[1,2,{"b":null}]}`), new(json.RawMessage)},
		{json.RawMessage(`[1.5,"s",{"t":true}]`), new(any)},
		{level(3), new(level)},
		{&protocol.RemoteError{Name: "TypeError", Message: "bad", Code: "E_BAD", Stack: "at x"}, new(protocol.RemoteError)},
		{&protocol.RemoteError{Message: "m"}, new(*protocol.RemoteError)},
		{struct {
			A int `json:"a,omitempty"`
			B string
		}{B: "x"}, new(map[string]any)},
	}
	for i, c := range cases {
		want := roundTrip(t, protocol.JSON, c.v, c.target)
		got := roundTrip(t, cbor.Codec, c.v, c.target)
		if tm, ok := want.(time.Time); ok {
			assert.True(t, tm.Equal(got.(time.Time)), "case %d: %v vs %v", i, tm, got)
			continue
		}
		if r, ok := want.(json.RawMessage); ok {
			assert.JSONEq(t, string(r), string(got.(json.RawMessage)), "case %d", i)
			continue
		}
		assert.Equal(t, want, got, "case %d: %#v into %T", i, c.v, c.target)
	}
}

// TestErrors: an error value travels as a RemoteError, as with
// protocol.JSON, and *error and *RemoteError targets get it back.
func TestErrors(t *testing.T) {
	for _, c := range []struct {
		err  error
		want *protocol.RemoteError
	}{
		{errors.New("boom"), &protocol.RemoteError{Name: "Error", Message: "boom"}},
		{fmt.Errorf("wrapped: %w", &protocol.RemoteError{Name: "TypeError", Message: "bad", Code: "E_BAD", Stack: "at x"}),
			&protocol.RemoteError{Name: "TypeError", Message: "bad", Code: "E_BAD", Stack: "at x"}},
	} {
		for _, codec := range []protocol.Codec{protocol.JSON, cbor.Codec} {
			b, err := codec.Append(nil, c.err)
			require.NoError(t, err)
			var got error
			require.NoError(t, codec.Decode(b, &got))
			assert.Equal(t, c.want, got, codec.Name())
			var re protocol.RemoteError
			require.NoError(t, codec.Decode(b, &re))
			assert.Equal(t, *c.want, re, codec.Name())
			var m map[string]any
			require.NoError(t, codec.Decode(b, &m))
			assert.Equal(t, c.want.Message, m["message"], codec.Name())
		}
	}
	// A nil *RemoteError is null; null into *error is nil.
	for _, codec := range []protocol.Codec{protocol.JSON, cbor.Codec} {
		b, err := codec.Append(nil, (*protocol.RemoteError)(nil))
		require.NoError(t, err)
		got := error(errors.New("not reset"))
		require.NoError(t, codec.Decode(b, &got))
		assert.Nil(t, got, codec.Name())
	}
}

// TestRaw: a Raw is appended unchanged and decodes into a copy.
func TestRaw(t *testing.T) {
	inner, err := cbor.Codec.Append(nil, map[string]any{"pre": "encoded"})
	require.NoError(t, err)
	out, err := cbor.Codec.Append([]byte{0xaa}, protocol.Raw(inner))
	require.NoError(t, err)
	assert.Equal(t, append([]byte{0xaa}, inner...), out)
	var raw protocol.Raw
	require.NoError(t, cbor.Codec.Decode(inner, &raw))
	assert.Equal(t, protocol.Raw(inner), raw)
	inner[0] = 0
	assert.NotEqual(t, inner[0], raw[0], "Decode copies")
	var v any
	require.NoError(t, cbor.Codec.Decode(raw, &v))
	assert.Equal(t, map[string]any{"pre": "encoded"}, v)
}

// TestDifferences pins where CBOR's meaning differs from protocol.JSON's,
// as the package doc says.
func TestDifferences(t *testing.T) {
	dec := func(v any, target any) any { return roundTrip(t, cbor.Codec, v, target) }
	// Integers into *any are int64 (JSON: float64); beyond int64, *big.Int.
	assert.Equal(t, int64(7), dec(7, new(any)))
	assert.Equal(t, int64(-7), dec(int8(-7), new(any)))
	assert.Equal(t, *new(big.Int).SetUint64(math.MaxUint64), dec(uint64(math.MaxUint64), new(any)))
	assert.Equal(t, []any{1.5, int64(-3)}, dec(json.RawMessage(`[1.5,-3]`), new(any)))
	assert.Equal(t, 1.5, dec(1.5, new(any)))
	assert.Equal(t, []any{int64(1), "x"}, dec([]any{1, "x"}, new(any)))
	// A []byte into *any is a []byte (JSON: its base64 string), and into
	// a *string its bytes (JSON: base64).
	assert.Equal(t, []byte{1, 2}, dec([]byte{1, 2}, new(any)))
	assert.Equal(t, "ab", dec([]byte("ab"), new(string)))
	// Strings keep invalid UTF-8 (JSON writes U+FFFD).
	assert.Equal(t, "\xff\xfe", dec("\xff\xfe", new(string)))
	// NaN and infinities encode (JSON fails).
	assert.True(t, math.IsInf(dec(math.Inf(-1), new(float64)).(float64), -1))
	assert.True(t, math.IsNaN(dec(math.NaN(), new(float64)).(float64)))
	// omitempty does not leave out a field whose type has MarshalJSON or
	// MarshalText: the library always writes them (JSON: it does when the
	// value is empty). A nil json.RawMessage comes back as null.
	assert.Equal(t, json.RawMessage("null"), dec(record{}, new(record)).(record).Raw)
	// A map with integer keys into *any fails (JSON: string keys).
	b, err := cbor.Codec.Append(nil, map[int]string{1: "a"})
	require.NoError(t, err)
	var v any
	assert.Error(t, cbor.Codec.Decode(b, &v))
	// A string does not decode into a []byte (JSON: base64-decodes it).
	b, err = cbor.Codec.Append(nil, "AQI=")
	require.NoError(t, err)
	var bs []byte
	assert.ErrorContains(t, cbor.Codec.Decode(b, &bs), "protocol: cbor codec: decode into *[]uint8")
}

// TestFastPathsSameBytes: the bytes the codec writes without the library
// are the library's, with the codec's options, for every length class.
func TestFastPathsSameBytes(t *testing.T) {
	em, err := fx.EncOptions{Sort: fx.SortCoreDeterministic}.EncMode()
	require.NoError(t, err)
	for _, n := range []int{0, 1, 23, 24, 255, 256, 65535, 65536, 1 << 20} {
		s := strings.Repeat("y", n)
		for _, v := range []any{s, []byte(s)} {
			got, err := cbor.Codec.Append(nil, v)
			require.NoError(t, err)
			want, err := em.Marshal(v)
			require.NoError(t, err)
			require.Equal(t, want, got, "%T of %d bytes", v, n)
		}
	}
	for _, v := range []any{nil, []byte(nil), true, false} {
		got, err := cbor.Codec.Append(nil, v)
		require.NoError(t, err)
		want, err := em.Marshal(v)
		require.NoError(t, err)
		assert.Equal(t, want, got, "%#v", v)
	}
}

// TestDecodeEmpty: an absent app object is null.
func TestDecodeEmpty(t *testing.T) {
	v := any("not reset")
	require.NoError(t, cbor.Codec.Decode(nil, &v))
	assert.Nil(t, v)
	var p *record
	require.NoError(t, cbor.Codec.Decode(nil, &p))
	assert.Nil(t, p)
}

// TestHostileInput: the limits hold and nothing is allocated for what the
// input does not contain.
func TestHostileInput(t *testing.T) {
	deep := []byte(strings.Repeat("\x81", cbor.MaxNestedLevels+1) + "\x00")
	var v any
	assert.ErrorContains(t, cbor.Codec.Decode(deep, &v), "exceeded max nested level")
	ok := []byte(strings.Repeat("\x81", cbor.MaxNestedLevels-1) + "\x00")
	assert.NoError(t, cbor.Codec.Decode(ok, &v))

	// An array that claims 2^32 elements, a byte string that claims 2^63
	// bytes, a map that claims more pairs than allowed.
	for _, in := range [][]byte{
		{0x9a, 0xff, 0xff, 0xff, 0xff, 0x00},
		{0x5b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00},
		{0x7b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		{0xba, 0x00, 0x02, 0x00, 0x01},
		{0x5f, 0x41, 0x00, 0xff},             // indefinite length
		{0xc1, 0x1a, 0x00, 0x00, 0x00, 0x01}, // a tag
		{0xf6, 0xf6},                         // two items
	} {
		for _, target := range []any{new(any), new([]byte), new(string), new(record), new(error)} {
			allocs := testing.AllocsPerRun(10, func() { _ = cbor.Codec.Decode(in, target) })
			assert.Error(t, cbor.Codec.Decode(in, target), "% x into %T", in, target)
			assert.Less(t, allocs, 50.0, "% x into %T", in, target)
		}
	}
}
