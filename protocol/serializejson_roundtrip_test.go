package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"
)

// sjRand generates values for the property tests; every test uses its
// own fixed seed so failures reproduce.
type sjRand struct{ *rand.Rand }

func sjNewRand(seed uint64) sjRand { return sjRand{rand.New(rand.NewPCG(seed, 0x5eed))} }

var sjStringParts = []string{"a", "Z", "0", " ", "+", "|", "^", "%", "%2B", "%7C", "%25", "$", "@", "*", "#", "]", "-", "\n", "\"", "\\", "é", "世", "😀", "\x00"}

func (r sjRand) str() string {
	var b strings.Builder
	for n := r.IntN(6); n > 0; n-- {
		b.WriteString(sjStringParts[r.IntN(len(sjStringParts))])
	}
	return b.String()
}

func (r sjRand) key() string {
	switch r.IntN(4) {
	case 0:
		return strconv.Itoa(r.IntN(40)) // an array index
	case 1:
		return ""
	}
	return r.str()
}

// float returns a finite, non-integral double, or NaN or ±Inf.
func (r sjRand) float() float64 {
	switch r.IntN(8) {
	case 0:
		return [...]float64{math.NaN(), math.Inf(1), math.Inf(-1), 0.1, 1e-7, 1e-6, 5e-324}[r.IntN(7)]
	case 1:
		return (r.Float64() - 0.5) * 1e-9
	}
	for {
		f := math.Float64frombits(r.Uint64())
		if !math.IsNaN(f) && !math.IsInf(f, 0) && f != math.Trunc(f) {
			return f
		}
	}
}

func (r sjRand) safeInt() int64 {
	switch r.IntN(3) {
	case 0:
		return int64(r.IntN(300))
	case 1:
		return [...]int64{sjMaxSafe, -sjMaxSafe, 35, 36, -36, 1295, 1296}[r.IntN(7)]
	}
	return r.Int64N(2*sjMaxSafe+1) - sjMaxSafe
}

func (r sjRand) bytes(max int) []byte {
	b := make([]byte, r.IntN(max+1))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// time returns a UTC time with millisecond precision, within and beyond
// JavaScript's Date range.
func (r sjRand) time() time.Time {
	ms := r.Int64N(2*8.64e15) - 8.64e15
	if r.IntN(4) == 0 {
		ms = r.Int64N(4e12) - 2e12
	}
	return time.UnixMilli(ms).UTC()
}

func (r sjRand) remoteError() *RemoteError {
	re := &RemoteError{Message: r.str(), Stack: r.str()}
	if r.IntN(2) == 0 {
		re.Name = "E" + r.str()
	}
	if r.IntN(2) == 0 {
		re.Code = "C" + r.str()
	}
	return re
}

// natural returns a value as decoding into *any produces it.
func (r sjRand) natural(depth int) any {
	n := 10
	if depth >= 4 {
		n = 8
	}
	switch r.IntN(n) {
	case 0:
		return r.str()
	case 1:
		return r.safeInt()
	case 2:
		return r.float()
	case 3:
		return [...]any{true, false, nil}[r.IntN(3)]
	case 4:
		return r.bytes(8)
	case 5:
		return r.time()
	case 6:
		return r.remoteError()
	case 7:
		return r.str() + "x"
	case 8:
		a := []any{}
		for k := r.IntN(5); k > 0; k-- {
			a = append(a, r.natural(depth+1))
		}
		return a
	}
	m := map[string]any{}
	for k := r.IntN(5); k > 0; k-- {
		m[r.key()] = r.natural(depth + 1)
	}
	return m
}

func TestSerializeJSONRoundTripNatural(t *testing.T) {
	r := sjNewRand(1)
	for i := 0; i < 2000; i++ {
		v := r.natural(0)
		b, err := SerializeJSON.Append(nil, v)
		if err != nil {
			t.Fatalf("encode %#v: %v", v, err)
		}
		var got any
		if err := SerializeJSON.Decode(b, &got); err != nil {
			t.Fatalf("decode %q: %v", b, err)
		}
		if !sjEqual(got, v) {
			t.Fatalf("round trip of %#v through %q gave %#v", v, b, got)
		}
	}
}

type sjInner struct {
	N int    `json:"n"`
	S string `json:"s,omitempty"`
}

type sjEmbedded struct {
	E1 string
	E2 int `json:"e2"`
}

// sjCustom marshals itself with its members in reverse order.
type sjCustom struct{ A, B string }

func (c sjCustom) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		B string `json:"b"`
		A string `json:"a"`
	}{c.B, c.A})
}

func (c *sjCustom) UnmarshalJSON(b []byte) error {
	var x struct{ A, B string }
	if err := json.Unmarshal(b, &x); err != nil {
		return err
	}
	c.A, c.B = x.A, x.B
	return nil
}

type sjAll struct {
	sjEmbedded
	I     int
	I8    int8
	I16   int16
	I32   int32
	I64   int64
	U     uint
	U8    uint8
	U16   uint16
	U32   uint32
	U64   uint64
	UP    uintptr
	F32   float32
	F64   float64
	B     bool
	S     string `json:"str"`
	Bytes []byte
	Arr   [3]int
	Sl    []string
	T     time.Time
	PT    *time.Time
	Err   *RemoteError
	IErr  error
	M     map[string]int
	MI    map[int]string
	MU    map[uint8]bool
	In    sjInner
	PIn   *sjInner
	Ins   []sjInner
	Any   any
	Num   json.Number
	Raw   Raw
	IP    netip.Addr
	C     sjCustom
	Skip  string `json:"-"`
	Omit  string `json:",omitempty"`
	hide  int
}

func (r sjRand) all() sjAll {
	v := sjAll{
		sjEmbedded: sjEmbedded{E1: r.str(), E2: int(r.safeInt())},
		I:          int(r.Uint64()),
		I8:         int8(r.Uint32()),
		I16:        int16(r.Uint32()),
		I32:        int32(r.Uint32()),
		I64:        [...]int64{math.MinInt64, math.MaxInt64, int64(r.Uint64())}[r.IntN(3)],
		U:          uint(r.Uint64()),
		U8:         uint8(r.Uint32()),
		U16:        uint16(r.Uint32()),
		U32:        r.Uint32(),
		U64:        [...]uint64{math.MaxUint64, 0, r.Uint64()}[r.IntN(3)],
		UP:         uintptr(r.Uint32()),
		F32:        float32(r.NormFloat64() * 1e3),
		F64:        r.float(), // never integral beyond 2^53: that is lossy by design
		B:          r.IntN(2) == 0,
		S:          r.str(),
		Arr:        [3]int{r.IntN(10), -r.IntN(10), r.IntN(1000)},
		T:          r.time(),
		In:         sjInner{N: r.IntN(100), S: r.str()},
		Num:        json.Number([...]string{"0", "-12", "3.25", "1e-7", "9007199254740993"}[r.IntN(5)]),
		C:          sjCustom{A: r.str(), B: r.str()},
		Omit:       r.str(),
	}
	if r.IntN(3) > 0 {
		v.Bytes = r.bytes(40)
	}
	if r.IntN(3) > 0 {
		v.Sl = []string{}
		for k := r.IntN(4); k > 0; k-- {
			v.Sl = append(v.Sl, r.str())
		}
	}
	if r.IntN(2) == 0 {
		tm := r.time()
		v.PT = &tm
	}
	if r.IntN(2) == 0 {
		v.Err = r.remoteError()
	}
	if r.IntN(2) == 0 {
		v.IErr = r.remoteError()
	}
	if r.IntN(2) == 0 {
		v.M = map[string]int{r.key(): r.IntN(9), r.key(): -r.IntN(9)}
		v.MI = map[int]string{r.IntN(50) - 25: r.str(), r.IntN(1 << 20): r.str()}
		v.MU = map[uint8]bool{uint8(r.Uint32()): true}
	}
	if r.IntN(2) == 0 {
		v.PIn = &sjInner{N: -1}
	}
	for k := r.IntN(3); k > 0; k-- {
		v.Ins = append(v.Ins, sjInner{N: k, S: r.str()})
	}
	if math.IsNaN(v.F64) {
		v.F64 = float64(r.safeInt())
	}
	v.Any = r.natural(2)
	if r.IntN(2) == 0 {
		v.Raw, _ = SerializeJSON.Append(nil, r.natural(2))
	}
	if r.IntN(2) == 0 {
		a := [16]byte{}
		for i := range a {
			a[i] = byte(r.Uint32())
		}
		v.IP = [...]netip.Addr{netip.AddrFrom16(a), netip.AddrFrom4([4]byte(a[:4]))}[r.IntN(2)]
	}
	return v
}

func TestSerializeJSONRoundTripStruct(t *testing.T) {
	r := sjNewRand(2)
	for i := 0; i < 500; i++ {
		in := r.all()
		in.Skip, in.hide = "not sent", 7
		b, err := SerializeJSON.Append(nil, &in)
		if err != nil {
			t.Fatalf("encode %+v: %v", in, err)
		}
		var out sjAll
		if err := SerializeJSON.Decode(b, &out); err != nil {
			t.Fatalf("decode %q: %v", b, err)
		}
		want := in
		want.Skip, want.hide = "", 0
		if in.Raw == nil {
			want.Raw = Raw("^^^^-3") // like a nil json.RawMessage: null
		}
		if !sjEqual(out.Any, want.Any) { // may hold NaN
			t.Fatalf("Any through %q: got %#v want %#v", b, out.Any, want.Any)
		}
		out.Any, want.Any = nil, nil
		if !reflect.DeepEqual(out, want) {
			t.Fatalf("round trip through %q:\n got %+v\nwant %+v", b, out, want)
		}
	}
}

// Node's Buffer benchmark case and every byte value, at index offsets
// that cross base-36 digit boundaries.
func TestSerializeJSONRoundTripBytes(t *testing.T) {
	r := sjNewRand(3)
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	big := make([]byte, 4096)
	for i := range big {
		big[i] = byte(r.Uint32())
	}
	for _, lead := range []int{0, 1, 35, 1290, 46650} {
		for _, b := range [][]byte{{}, all, big} {
			prefix := make([]any, lead)
			for i := range prefix {
				prefix[i] = i
			}
			v := append(prefix, b)
			doc, err := SerializeJSON.Append(nil, v)
			if err != nil {
				t.Fatal(err)
			}
			var got any
			if err := SerializeJSON.Decode(doc, &got); err != nil {
				t.Fatal(err)
			}
			arr := got.([]any)
			if !bytes.Equal(arr[lead].([]byte), b) {
				t.Fatalf("lead %d: %d bytes came back different", lead, len(b))
			}
			var direct []byte
			one, _ := SerializeJSON.Append(nil, b)
			if err := SerializeJSON.Decode(one, &direct); err != nil || !bytes.Equal(direct, b) || direct == nil {
				t.Fatalf("%d bytes into *[]byte: %v", len(b), err)
			}
		}
	}
	// A Buffer also decodes element-wise into other integer slices and
	// arrays, and an array of small integers into []byte.
	doc, _ := SerializeJSON.Append(nil, []byte{1, 2, 255})
	var ints []int
	var arr [2]byte
	if err := SerializeJSON.Decode(doc, &ints); err != nil || !reflect.DeepEqual(ints, []int{1, 2, 255}) {
		t.Fatalf("Buffer into []int: %v %v", ints, err)
	}
	if err := SerializeJSON.Decode(doc, &arr); err != nil || arr != [2]byte{1, 2} {
		t.Fatalf("Buffer into [2]byte: %v %v", arr, err)
	}
	doc, _ = SerializeJSON.Append(nil, []int{7, 8})
	var bs []byte
	if err := SerializeJSON.Decode(doc, &bs); err != nil || !bytes.Equal(bs, []byte{7, 8}) {
		t.Fatalf("array into []byte: %v %v", bs, err)
	}
}

func TestSerializeJSONAppendRun(t *testing.T) {
	for _, first := range []uint32{0, 1, 30, 1290, 46650, 1679610, 60466170} {
		for _, sep := range []bool{false, true} {
			got := sjAppendRun([]byte("x"), first, 20, sep)
			want := []byte("x")
			for i := uint32(0); i < 20; i++ {
				if sep || i > 0 {
					want = append(want, '|')
				}
				want = sjAppendBase36(want, false, uint64(first+i))
			}
			if !bytes.Equal(got, want) {
				t.Errorf("run from %d: got %s want %s", first, got, want)
			}
		}
	}
}

func TestSerializeJSONTime(t *testing.T) {
	r := sjNewRand(4)
	for i := 0; i < 1000; i++ {
		tm := r.time()
		b, _ := SerializeJSON.Append(nil, tm)
		var got time.Time
		if err := SerializeJSON.Decode(b, &got); err != nil || !got.Equal(tm) || got.Location() != time.UTC {
			t.Fatalf("%v through %q: %v %v", tm, b, got, err)
		}
	}
	// Below a millisecond is cut, toward the earlier millisecond.
	for _, c := range []struct {
		t  time.Time
		ms int64
	}{
		{time.Unix(0, 1_999_999), 1},
		{time.Unix(-1, 999_999_999), -1},
		{time.Date(2024, 1, 2, 3, 4, 5, 678_900_000, time.FixedZone("X", 3600)), 1704161045678},
	} {
		b, _ := SerializeJSON.Append(nil, c.t)
		want := "^^^" + string(sjAppendInt(nil, c.ms)) + "^0"
		if string(b) != want {
			t.Errorf("%v: got %q want %q", c.t, b, want)
		}
	}
	// A Date also decodes from an RFC 3339 string; other values do not fit.
	var tm time.Time
	b, _ := SerializeJSON.Append(nil, "2024-01-02T03:04:05Z")
	if err := SerializeJSON.Decode(b, &tm); err != nil || tm.Unix() != 1704164645 {
		t.Fatalf("RFC 3339 string: %v %v", tm, err)
	}
	b, _ = SerializeJSON.Append(nil, 5)
	if err := SerializeJSON.Decode(b, &tm); !errors.Is(err, ErrSerializeJSONType) {
		t.Fatalf("integer into time.Time: %v", err)
	}
}

type sjPlainErr struct{ msg string }

func (e sjPlainErr) Error() string { return e.msg }

func TestSerializeJSONErrors(t *testing.T) {
	remote := &RemoteError{Name: "ConnError", Message: "refused", Code: "ECONNREFUSED", Stack: "ConnError: refused\n    at x"}
	for _, c := range []struct {
		in   any
		want *RemoteError
	}{
		{errors.New("boom"), &RemoteError{Name: "Error", Message: "boom"}},
		{sjPlainErr{"plain value"}, &RemoteError{Name: "Error", Message: "plain value"}},
		{remote, remote},
		{*remote, remote},
		{fmt.Errorf("while calling: %w", remote), remote},
		{&RemoteError{Message: "only"}, &RemoteError{Message: "only"}},
	} {
		b, err := SerializeJSON.Append(nil, c.in)
		if err != nil {
			t.Fatal(err)
		}
		var a any
		var e error
		var re RemoteError
		var pre *RemoteError
		for _, target := range []any{&a, &e, &re, &pre} {
			if err := SerializeJSON.Decode(b, target); err != nil {
				t.Fatalf("%v into %T: %v", c.in, target, err)
			}
		}
		if !reflect.DeepEqual(a, c.want) || !reflect.DeepEqual(e, c.want) || !reflect.DeepEqual(&re, c.want) || !reflect.DeepEqual(pre, c.want) {
			t.Errorf("%#v through %q: got %#v %#v %#v %#v", c.in, b, a, e, re, pre)
		}
	}

	// Errors inside values, and nil errors.
	var nilRemote *RemoteError
	var nilErr error
	b, err := SerializeJSON.Append(nil, []any{nilRemote, nilErr, map[string]any{"e": errors.New("x")}})
	if err != nil || string(b) != "e|message|x|stack|name|Error^^^^@-3|-3|$0|#1|2|3|-4|4|5]]]" {
		t.Fatalf("nested errors: %q %v", b, err)
	}

	// Node Errors can carry other properties and non-string values: the
	// four fields take strings, numbers and booleans as text.
	doc := []byte("message|x|code|stack|errno|name^194^^^#0|1|2|6|3|-1|4|-3|5|-2]")
	var got *RemoteError
	if err := SerializeJSON.Decode(doc, &got); err != nil {
		t.Fatal(err)
	}
	if want := (&RemoteError{Message: "x", Code: "1624", Stack: "true", Name: "false"}); !reflect.DeepEqual(got, want) {
		t.Errorf("Node Error with extra properties: got %#v want %#v", got, want)
	}
	// An error target also takes an object: the shape of a failed invoke.
	var fromObject error
	doc2, _ := SerializeJSON.Append(nil, map[string]any{"stack": "s", "name": "TypeError", "message": "bad", "code": "E"})
	if err := SerializeJSON.Decode(doc2, &fromObject); err != nil ||
		!reflect.DeepEqual(fromObject, &RemoteError{Name: "TypeError", Message: "bad", Code: "E", Stack: "s"}) {
		t.Errorf("object into error: %#v %v", fromObject, err)
	}
	// An Error into a struct or map target is its members.
	var asMap map[string]any
	if err := SerializeJSON.Decode(doc, &asMap); err != nil || asMap["code"] != int64(1624) || asMap["name"] != false || asMap["errno"] != nil {
		t.Errorf("Error into a map: %v %v", asMap, err)
	}
}

func TestSerializeJSONNumbers(t *testing.T) {
	enc := func(v any) string {
		b, err := SerializeJSON.Append(nil, v)
		if err != nil {
			t.Fatalf("encode %v: %v", v, err)
		}
		return string(b)
	}
	for _, c := range []struct {
		in   any
		want string
	}{
		{int64(math.MinInt64), "^-1Y2P0IJ32E8E8^^^0"},
		{int64(math.MaxInt64), "^1Y2P0IJ32E8E7^^^0"},
		{uint64(math.MaxUint64), "^3W5E11264SGSF^^^0"},
		{int8(-128), "^-3K^^^0"},
		{math.Copysign(0, -1), "^0^^^0"},
		{float32(0.1), "^^0.10000000149011612^^0"},
		{float32(16777216), "^9ZLDS^^^0"},
		{1e21, "^5V1J4F4DS7C000^^^0"},
		{-1e-7, "^^-1e-7^^0"},
		{123.456, "^^123.456^^0"},
		{json.Number("1e3"), "^RS^^^0"},
		{json.Number("-0"), "^0^^^0"},
		{json.Number("18446744073709551615"), "^3W5E11264SGSF^^^0"},
		{json.Number("1e400"), "^^Infinity^^0"},
	} {
		if got := enc(c.in); got != c.want {
			t.Errorf("%T %v: got %q want %q", c.in, c.in, got, c.want)
		}
	}

	// Integer targets read INTEGERS digit-exact and check ranges.
	var i64 int64
	var u64 uint64
	if err := SerializeJSON.Decode([]byte("^-1Y2P0IJ32E8E8^^^0"), &i64); err != nil || i64 != math.MinInt64 {
		t.Errorf("MinInt64: %v %v", i64, err)
	}
	if err := SerializeJSON.Decode([]byte("^3W5E11264SGSF^^^0"), &u64); err != nil || u64 != math.MaxUint64 {
		t.Errorf("MaxUint64: %v %v", u64, err)
	}
	// *any: int64 up to 2^53-1, float64 (as V8 reads it) beyond.
	var a any
	SerializeJSON.Decode([]byte(enc(int64(sjMaxSafe))), &a)
	if a != int64(sjMaxSafe) {
		t.Errorf("2^53-1 into any: %#v", a)
	}
	SerializeJSON.Decode([]byte(enc(int64(1<<53))), &a)
	if a != float64(1<<53) {
		t.Errorf("2^53 into any: %#v", a)
	}
	var jn json.Number
	if err := SerializeJSON.Decode([]byte("^1z^^^0"), &jn); err != nil || jn != "71" {
		t.Errorf("json.Number: %q %v", jn, err)
	}
	var f32 float32
	if err := SerializeJSON.Decode([]byte(enc(0.1)), &f32); err != nil || f32 != 0.1 {
		t.Errorf("float32: %v %v", f32, err)
	}
	var n int
	if err := SerializeJSON.Decode([]byte("^^2.0^^0"), &n); err != nil || n != 2 {
		t.Errorf("integral FLOATS entry into int: %v %v", n, err)
	}

	for _, c := range []struct {
		doc    string
		target any
	}{
		{"^74^^^0", new(uint8)},
		{"^-1^^^0", new(uint)},
		{"^3W5E11264SGSG^^^0", new(uint64)},
		{"^1Y2P0IJ32E8E8^^^0", new(int64)},
		{"^^1.5^^0", new(int)},
		{"^^NaN^^0", new(int)},
		{"^^1e39^^0", new(float32)},
		{"a^^^^0", new(int)},
		{"^1^^^0", new(string)},
		{"^1^^^0", new(bool)},
		{"^^^^-1", new(float64)},
	} {
		if err := SerializeJSON.Decode([]byte(c.doc), c.target); !errors.Is(err, ErrSerializeJSONType) {
			t.Errorf("%q into %T: %v, want ErrSerializeJSONType", c.doc, c.target, err)
		}
	}
}

func TestSerializeJSONMapOrder(t *testing.T) {
	m := map[string]any{"b": 1, "a": 2, "10": 3, "2": 4, "-1": 5, "01": 6, "4294967294": 7, "4294967295": 8, "": 9}
	b, err := SerializeJSON.Append(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	// Array indexes ascending, then the rest by bytes ("" first, as the
	// -4 literal).
	want := "2|10|4294967294|-1|01|4294967295|a|b^4|3|7|9|5|6|8|2|1^^^$0|8|1|9|2|A|-4|B|3|C|4|D|5|E|6|F|7|G]"
	if got := string(b); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	// The same through reflection: integer and TextMarshaler keys.
	b, _ = SerializeJSON.Append(nil, map[int]bool{10: true, -3: false, 2: true})
	if got := string(b); got != "2|10|-3^^^^$0|-1|1|-1|2|-2]" {
		t.Errorf("map[int]bool: %q", got)
	}
	ip := netip.MustParseAddr("10.0.0.1")
	b, _ = SerializeJSON.Append(nil, map[netip.Addr]int{ip: 1})
	var back map[netip.Addr]int
	if err := SerializeJSON.Decode(b, &back); err != nil || back[ip] != 1 {
		t.Errorf("TextMarshaler keys: %q %v %v", b, back, err)
	}
}

// sjTopKeys lists the member names of the top-level object of a document,
// in order.
func sjTopKeys(t *testing.T, doc []byte) []string {
	t.Helper()
	r, err := sjGetReader(doc)
	if err != nil {
		t.Fatal(err)
	}
	defer sjPutReader(r)
	if k, _, _ := r.next(); k != '$' {
		t.Fatalf("%q is not an object", doc)
	}
	keys := []string{}
	for {
		more, err := r.more(0)
		if err != nil {
			t.Fatal(err)
		}
		if !more {
			return keys
		}
		k, err := r.key()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, r.keyString(k))
		if err := r.skip(1); err != nil {
			t.Fatal(err)
		}
	}
}

func sjJSONKeys(t *testing.T, v any) []string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	o, err := sjParseOrdered(b)
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{}
	return append(keys, o.(*sjOrdered).keys...)
}

type (
	sjA struct {
		X int
		Y int `json:"y"`
	}
	SJB struct {
		X int
		Z int `json:"Y"`
	}
	sjC    struct{ Y int }
	sjD    struct{ sjC }
	sjz    struct{ Promoted int }
	sjZero struct{ v int }
)

func (z sjZero) IsZero() bool { return z.v == 42 }

type sjFieldsCase struct {
	sjA                    // X conflicts with SJB.X at the same depth: both dropped
	*SJB                   // its "Y" hides sjD.sjC.Y, which is deeper
	sjD                    //
	sjz                    // unexported embedded struct: its fields are promoted
	Own       string       `json:"own,omitempty"`
	Ignored   int          `json:"-"`
	Weird     int          `json:"a b!#$%&()*+-./:;<=>?@[]^_{|}~"`
	OmitZ     time.Time    `json:",omitzero"`
	OmitZM    sjZero       `json:",omitzero"`
	OmitE     []int        `json:",omitempty"`
	Ptr       *int         `json:",omitempty"`
	Interface any          `json:"iface"`
	Nested    sjA          `json:"nested"`
	Pairs     [2]sjInner   `json:"pairs"`
	Text      netip.Prefix `json:"text"`

	// Tags encoding/json reads in its own way, which the serializer must match.

	//lint:ignore SA5008 deliberate: "-," names the field "-"
	Dash int `json:"-,"`
	//lint:ignore SA5008 deliberate: a malformed option is read as encoding/json reads it
	BadTag int `json:"not,valid\""`
}

func TestSerializeJSONStructFieldsMatchEncodingJSON(t *testing.T) {
	one := 1
	cases := []any{
		sjFieldsCase{},
		sjFieldsCase{SJB: &SJB{X: 1, Z: 2}, Own: "x", OmitZ: time.Unix(1, 0), OmitZM: sjZero{42}, OmitE: []int{1}, Ptr: &one},
		&sjFieldsCase{OmitZM: sjZero{1}},
		sjAll{},
		struct {
			sjA
			X string // shallower than sjA.X: wins
		}{},
	}
	for _, v := range cases {
		b, err := SerializeJSON.Append(nil, v)
		if err != nil {
			t.Fatalf("%T: %v", v, err)
		}
		got, want := sjTopKeys(t, b), sjJSONKeys(t, v)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%T fields:\n got %q\nwant %q (encoding/json)", v, got, want)
		}
	}
	// Decoding matches names exactly, then without case, and allocates
	// embedded pointers.
	doc, _ := SerializeJSON.Append(nil, map[string]any{"Y": 5, "OWN": "o", "ignored": 3, "Promoted": 2, "unknown": []any{1}})
	var got sjFieldsCase
	if err := SerializeJSON.Decode(doc, &got); err != nil {
		t.Fatal(err)
	}
	if got.SJB == nil || got.SJB.Z != 5 || got.Own != "o" || got.Ignored != 0 || got.Promoted != 2 {
		t.Errorf("decoded %+v %+v", got, got.SJB)
	}
	var unexp struct{ *sjInner }
	if err := SerializeJSON.Decode([]byte("n^1^^^$0|1]"), &unexp); !errors.Is(err, ErrSerializeJSONType) {
		t.Errorf("embedded pointer to an unexported struct: %v", err)
	}
}

func TestSerializeJSONUndefinedAndNull(t *testing.T) {
	b, _ := SerializeJSON.Append(nil, []any{Undefined, nil, struct{ U any }{Undefined}})
	if string(b) != "U^^^^@-5|-3|$0|-5]]" {
		t.Fatalf("undefined: %q", b)
	}
	if j, _ := JSON.Append(nil, Undefined); string(j) != "null" {
		t.Errorf("JSON codec writes Undefined as %q", j)
	}
	type target struct {
		P *int
		M map[string]int
		S []int
		I any
		N int
		T time.Time
		C sjCustom
	}
	seven := 7
	full := func() target {
		return target{&seven, map[string]int{"a": 1}, []int{1}, "x", 3, time.Unix(5, 0), sjCustom{A: "a"}}
	}
	fields := []string{"P", "M", "S", "I", "N", "T"}
	for _, lit := range []string{"-3", "-5"} {
		var parts []string
		for i := range fields {
			parts = append(parts, strconv.Itoa(i), lit)
		}
		doc := strings.Join(fields, "|") + "^^^^$" + strings.Join(parts, "|") + "]"
		got := full()
		if err := SerializeJSON.Decode([]byte(doc), &got); err != nil {
			t.Fatal(err)
		}
		want := full()
		if lit == "-3" { // null: nil for pointers, maps, slices and interfaces
			want.P, want.M, want.S, want.I = nil, nil, nil, nil
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %+v want %+v", lit, got, want)
		}
	}
	// A json.Unmarshaler gets null; *any gets nil for both.
	var c sjCustom
	if err := SerializeJSON.Decode([]byte("^^^^-3"), &c); err == nil {
		// sjCustom.UnmarshalJSON accepts null as encoding/json does.
		if c != (sjCustom{}) {
			t.Errorf("null into Unmarshaler: %+v", c)
		}
	} else {
		t.Error(err)
	}
	for _, doc := range []string{"^^^^-3", "^^^^-5", ""} {
		var a any = "old"
		if err := SerializeJSON.Decode([]byte(doc), &a); err != nil || a != nil {
			t.Errorf("%q into *any: %#v %v", doc, a, err)
		}
	}
	n := 4
	if err := SerializeJSON.Decode(nil, &n); err != nil || n != 4 {
		t.Errorf("empty data: %v %v", n, err)
	}
}

func TestSerializeJSONInterfaceTargets(t *testing.T) {
	doc, _ := SerializeJSON.Append(nil, map[string]any{"n": 3})
	in := &sjInner{S: "kept"}
	var a any = in
	if err := SerializeJSON.Decode(doc, &a); err != nil || a.(*sjInner) != in || in.N != 3 {
		t.Errorf("any holding a pointer: %#v %v", a, err)
	}
	var s fmt.Stringer
	if err := SerializeJSON.Decode(doc, &s); !errors.Is(err, ErrSerializeJSONType) {
		t.Errorf("object into fmt.Stringer: %v", err)
	}
	for _, target := range []any{nil, 3, (*int)(nil)} {
		if err := SerializeJSON.Decode(doc, target); !errors.Is(err, ErrSerializeJSONType) {
			t.Errorf("target %#v: %v", target, err)
		}
	}
}

func TestSerializeJSONRaw(t *testing.T) {
	inner, _ := SerializeJSON.Append(nil, []any{"a b", Undefined, 1.5})
	if b, _ := SerializeJSON.Append([]byte("x"), Raw("anything")); string(b) != "xanything" {
		t.Errorf("top-level Raw is appended as is: %q", b)
	}
	outer, err := SerializeJSON.Append(nil, map[string]any{"k": Raw(inner), "n": Raw(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if want := "k|a+b|n^^1.5^^$0|@1|-5|3]|2|-3]"; string(outer) != want {
		t.Errorf("spliced Raw: %q want %q", outer, want)
	}
	var back struct{ K, N Raw }
	if err := SerializeJSON.Decode(outer, &back); err != nil {
		t.Fatal(err)
	}
	if string(back.K) != string(inner) || string(back.N) != "^^^^-3" {
		t.Errorf("Raw fields: %q %q", back.K, back.N)
	}
	if _, err := SerializeJSON.Append(nil, []any{Raw("^^^^@")}); !errors.Is(err, ErrSerializeJSON) {
		t.Errorf("invalid nested Raw: %v", err)
	}
	raw := Raw("keep")
	if err := SerializeJSON.Decode([]byte("^^^^@"), &raw); !errors.Is(err, ErrSerializeJSON) || string(raw) != "keep" {
		t.Errorf("invalid data into *Raw: %q %v", raw, err)
	}
	if err := SerializeJSON.Decode(inner, &raw); err != nil || string(raw) != string(inner) {
		t.Errorf("*Raw: %q %v", raw, err)
	}
}

type SJBadMarshal struct{ out string }

var errSjBad = errors.New("refused by test")

func (b SJBadMarshal) MarshalJSON() ([]byte, error) {
	if b.out == "" {
		return nil, errSjBad
	}
	return []byte(b.out), nil
}

type sjPtrMarshal struct{ V int }

func (p *sjPtrMarshal) MarshalJSON() ([]byte, error) { return []byte(`"ptr"`), nil }

func TestSerializeJSONMarshalers(t *testing.T) {
	for _, c := range []struct {
		in   any
		want string
	}{
		{sjCustom{A: "1", B: "2"}, "b|2|a|1^^^^$0|1|2|3]"},
		{SJBadMarshal{`{"z":[1,2.5,"s",true,null,{}],"a":-7}`}, "z|s|a^1|-7^2.5^^$0|@3|5|1|-1|-3|$]]|2|4]"},
		{(*sjCustom)(nil), "^^^^-3"},
		{netip.MustParseAddr("::1"), "::1^^^^0"},
		{&sjPtrMarshal{}, "ptr^^^^0"},
		{struct{ P sjPtrMarshal }{}, "P|V^0^^^$0|$1|2]]"}, // not addressable: no method
		{&struct{ P sjPtrMarshal }{}, "P|ptr^^^^$0|1]"},
	} {
		b, err := SerializeJSON.Append(nil, c.in)
		if err != nil || string(b) != c.want {
			t.Errorf("%#v: got %q %v want %q", c.in, b, err, c.want)
		}
	}
	if _, err := SerializeJSON.Append(nil, SJBadMarshal{}); !errors.Is(err, errSjBad) {
		t.Errorf("MarshalJSON error: %v", err)
	}
	for _, out := range []string{"{", "1 2", `{"a":}`} {
		if _, err := SerializeJSON.Append(nil, SJBadMarshal{out}); !errors.Is(err, ErrSerializeJSONUnsupported) {
			t.Errorf("MarshalJSON %q: %v", out, err)
		}
	}
	// A json.Unmarshaler receives JSON: Buffers as base64, Dates as RFC 3339.
	doc, _ := SerializeJSON.Append(nil, []any{[]byte("hi"), time.UnixMilli(0), &RemoteError{Message: "m"}})
	var raw json.RawMessage
	if err := SerializeJSON.Decode(doc, &raw); err != nil {
		t.Fatal(err)
	}
	if want := `["aGk=","1970-01-01T00:00:00Z",{"message":"m"}]`; string(raw) != want {
		t.Errorf("UnmarshalJSON input %s, want %s", raw, want)
	}
	doc, _ = SerializeJSON.Append(nil, math.NaN())
	if err := SerializeJSON.Decode(doc, &raw); !errors.Is(err, ErrSerializeJSONType) {
		t.Errorf("NaN into a json.Unmarshaler: %v", err)
	}
}

type sjCycle *sjCycle

func TestSerializeJSONUnsupported(t *testing.T) {
	var p sjCycle
	p = &p
	m := map[string]any{}
	m["self"] = m
	deep := func(n int) any {
		var v any = 1
		for i := 0; i < n; i++ {
			v = []any{v}
		}
		return v
	}
	for _, v := range []any{
		func() {}, make(chan int), complex(1, 2), map[[2]int]int{{1, 2}: 3},
		struct{ F func() }{func() {}}, p, m, deep(SerializeJSONMaxDepth + 1),
	} {
		if _, err := SerializeJSON.Append(nil, v); !errors.Is(err, ErrSerializeJSONUnsupported) {
			t.Errorf("%T: %v, want ErrSerializeJSONUnsupported", v, err)
		}
	}
	b, err := SerializeJSON.Append(nil, deep(SerializeJSONMaxDepth))
	if err != nil {
		t.Fatalf("nesting at the limit: %v", err)
	}
	var back any
	if err := SerializeJSON.Decode(b, &back); err != nil {
		t.Fatalf("decoding nesting at the limit: %v", err)
	}
}

func TestSerializeJSONMalformed(t *testing.T) {
	long := strings.Repeat("1", sjMaxNumberLen+1)
	for _, doc := range []string{
		"abc", "^^^", "^^^^^0", "^^^^", "^^^^|", "^^^^@", "^^^^@0]", "^^^^-6", "^^^^-", "^^^^-1-",
		"a^^^^0|0", "a^^^^0]", "^^^^]", "^^^^$]]", "a^^^^$0]", "a^^^^$0", "^1^^^$0|0]", "^^^^$-1|-1]",
		"^^^^$@]|-1]", "^1.5^^^0", "^-^^^0", "^1-1^^^0", "^|^^^0", "^" + long + "^^^0",
		"^^1.2.3^^0", "^^0x1p3^^0", "^^inf^^0", "^^1e^^0", "^^.^^0", "^^-NaN^^0",
		"^^^zzzzzzzzzzzzz^0", "^^^1.5^0", "^^^^*-1]", "^74^^^*0]", "^-1^^^*0]", "a^^^^*0]", "^^^^*$]]", "^1^^^*0",
		"^^^^@0|%]", "^^^^0a!", "^^^^ 0", "^^^^@" + strings.Repeat("1", 30) + "]",
		"a^^^^#0]", "a^^^^#-1|0|0]", strings.Repeat("@", SerializeJSONMaxDepth+1),
		"^^^^" + strings.Repeat("@", SerializeJSONMaxDepth+1) + strings.Repeat("]", SerializeJSONMaxDepth+1),
	} {
		for _, target := range []any{new(any), new(Raw), new(sjAll), new([]any)} {
			err := SerializeJSON.Decode([]byte(doc), target)
			if !errors.Is(err, ErrSerializeJSON) || errors.Is(err, ErrSerializeJSONType) {
				t.Errorf("%.40q into %T: %v, want ErrSerializeJSON", doc, target, err)
			}
		}
	}
	err := SerializeJSON.Decode([]byte("a|b^^^^$0|1|5]"), new(any))
	if err == nil || !strings.Contains(err.Error(), "structure offset 12: index 5 out of range (the dictionary has 2 entries)") {
		t.Errorf("message does not say what and where: %v", err)
	}
}

func TestSerializeJSONTypeErrorPath(t *testing.T) {
	type inner struct{ B []int }
	var v struct{ A inner }
	doc, _ := SerializeJSON.Append(nil, map[string]any{"A": map[string]any{"B": []any{1, "two"}}})
	err := SerializeJSON.Decode(doc, &v)
	if !errors.Is(err, ErrSerializeJSONType) || !strings.Contains(err.Error(), "cannot decode a string into int at .A.B[1]") {
		t.Errorf("got %v", err)
	}
	var m map[string][]bool
	doc, _ = SerializeJSON.Append(nil, map[string]any{"k": []any{true, 1}})
	err = SerializeJSON.Decode(doc, &m)
	if !errors.Is(err, ErrSerializeJSONType) || !strings.Contains(err.Error(), `into bool at ["k"][1]`) {
		t.Errorf("got %v", err)
	}
}

// A string referenced many times is unescaped once; copying it into many
// []byte values is charged to the budget and stops there.
func TestSerializeJSONSharedEntries(t *testing.T) {
	s := strings.Repeat("x y", 3000)
	var st strings.Builder
	st.WriteString(strings.ReplaceAll(s, " ", "+") + "^^^^@")
	for i := 0; i < 3000; i++ {
		if i > 0 {
			st.WriteByte('|')
		}
		st.WriteByte('0')
	}
	st.WriteByte(']')
	doc := []byte(st.String())
	var strs []string
	if err := SerializeJSON.Decode(doc, &strs); err != nil || len(strs) != 3000 || strs[2999] != s {
		t.Fatalf("shared strings: %v", err)
	}
	if unsafe.StringData(strs[0]) != unsafe.StringData(strs[1]) {
		t.Errorf("a shared entry was unescaped twice")
	}
	var bufs [][]byte
	if err := SerializeJSON.Decode(doc, &bufs); !errors.Is(err, ErrSerializeJSON) {
		t.Errorf("copies beyond the budget: %v", err)
	}
	var raws []Raw
	if err := SerializeJSON.Decode(doc, &raws); !errors.Is(err, ErrSerializeJSON) {
		t.Errorf("Raw copies beyond the budget: %v", err)
	}
}

func TestSerializeJSONUnescape(t *testing.T) {
	for in, want := range map[string]string{
		"%252B": "%2B", "%2b": "%2b", "%": "%", "%2": "%2", "+%2B+": " + ", "%25%": "%%",
		"%%7C": "%|", "%5E%5e": "^%5e", "a+b%7Cc%5Ed%25e": "a b|c^d%e",
	} {
		if got := sjUnescape([]byte(in)); got != want {
			t.Errorf("unescape %q: got %q want %q", in, got, want)
		}
	}
}

// Concurrent encoders and decoders share the pools; the race detector
// checks they do not share state.
func TestSerializeJSONConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := sjNewRand(uint64(100 + g))
			for i := 0; i < 200; i++ {
				v := r.natural(0)
				b, err := SerializeJSON.Append(nil, v)
				if err != nil {
					t.Error(err)
					return
				}
				var got any
				if err := SerializeJSON.Decode(b, &got); err != nil || !sjEqual(got, v) {
					t.Errorf("concurrent round trip of %#v: %#v %v", v, got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
