package protocol

import (
	"encoding/json"
	"math"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// jsVectors is testdata/jsjson.json, made by interop/node/gen_jsjson.js
// with the real V8: how JavaScript prints numbers, what JSON.stringify
// makes of strings, and what JSON.stringify(JSON.parse(text)) gives.
type jsVectors struct {
	Node      string      `json:"node"`
	Numbers   [][2]string `json:"numbers"`   // float64 bits hex, String(x)
	Strings   [][2]string `json:"strings"`   // WTF-8 hex, JSON.stringify hex
	Normalize [][]*string `json:"normalize"` // input hex, output hex or null (JSON.parse threw)
}

func loadJSVectors(t *testing.T) jsVectors {
	var v jsVectors
	readFixture(t, "jsjson.json", &v)
	return v
}

func TestJSNumberMatchesV8(t *testing.T) {
	v := loadJSVectors(t)
	require.GreaterOrEqual(t, len(v.Numbers), 2000)
	for _, n := range v.Numbers {
		bits, err := strconv.ParseUint(n[0], 16, 64)
		require.NoError(t, err)
		f := math.Float64frombits(bits)
		if got := string(appendJSNumber(nil, f)); got != n[1] {
			t.Errorf("appendJSNumber(%v [%s]) = %q, V8 prints %q", f, n[0], got, n[1])
		}
	}
	t.Logf("%d numbers print as V8 (%s) prints them", len(v.Numbers), v.Node)
}

func TestJSStringMatchesJSONStringify(t *testing.T) {
	v := loadJSVectors(t)
	require.GreaterOrEqual(t, len(v.Strings), 600)
	for _, s := range v.Strings {
		in, want := unhexT(t, s[0]), unhexT(t, s[1])
		if got := appendJSString(nil, string(in)); string(got) != string(want) {
			t.Errorf("appendJSString(%q) = %q, JSON.stringify gives %q", in, got, want)
		}
		// What JSON.stringify writes, unquote reads back to the same string.
		_, complex, err := scanString(want, 0)
		require.NoError(t, err)
		assert.Equal(t, string(in), unquote(want, complex), "unquote(%q)", want)
	}
	t.Logf("%d strings escaped as JSON.stringify escapes them", len(v.Strings))
}

func TestNormalizeJSONMatchesNode(t *testing.T) {
	v := loadJSVectors(t)
	require.GreaterOrEqual(t, len(v.Normalize), 1500)
	valid, invalid := 0, 0
	for _, c := range v.Normalize {
		in := unhexT(t, *c[0])
		got, err := NormalizeJSON([]byte("prefix:"), in)
		if c[1] == nil {
			invalid++
			assert.ErrorIs(t, err, ErrJSON, "JSON.parse rejects %q", in)
			assert.Equal(t, json.Valid(in), false, "json.Valid and JSON.parse agree on %q", in)
			continue
		}
		valid++
		want := unhexT(t, *c[1])
		if assert.NoError(t, err, "input %q", in) {
			assert.Equal(t, "prefix:"+string(want), string(got), "input %q", in)
		}
		assert.True(t, json.Valid(in), "json.Valid and JSON.parse agree on %q", in)
		// Normal form is a fixed point.
		again, err := NormalizeJSON(nil, want)
		require.NoError(t, err)
		assert.Equal(t, string(want), string(again))
	}
	t.Logf("NormalizeJSON: %d texts as Node re-encodes them, %d rejected as JSON.parse rejects them", valid, invalid)
}

func TestJSNumberLayout(t *testing.T) {
	// The ECMAScript Number::toString cases, spelled out.
	for f, want := range map[float64]string{
		0: "0", math.Copysign(0, -1): "0", 1: "1", -1.5: "-1.5", 1e21: "1e+21", 1e20: "100000000000000000000",
		1e-6: "0.000001", 1e-7: "1e-7", 1.5e-7: "1.5e-7", 123.456: "123.456", 2e-300: "2e-300",
		math.MaxFloat64: "1.7976931348623157e+308", 5e-324: "5e-324",
	} {
		assert.Equal(t, want, string(appendJSNumber(nil, f)), "%v", f)
	}
}

func TestDecodeRuneJSMaximalSubpart(t *testing.T) {
	for _, c := range []struct {
		in   string
		size int
	}{
		{"\xe2\x82", 2}, {"\xe2\x82A", 2}, {"\xed\xa0\x80", 1}, {"\xf0\x9f\x98", 3}, {"\xf4\x90", 1},
		{"\xc0\xaf", 1}, {"\xe0\x80", 1}, {"\x80", 1}, {"\xff", 1}, {"\xf0\x9f\x98\x80", 4},
	} {
		_, size := decodeRuneJS([]byte(c.in))
		assert.Equal(t, c.size, size, "%q", c.in)
	}
}

func TestSubscriptionKey(t *testing.T) {
	for _, c := range []struct{ reg, key string }{
		{`{"dataId":"demo"}`, `$$inner$$__{"dataId":"demo"}`},
		// json.Marshal of a map sorts keys and escapes '<'; Node keeps
		// insertion order (here: the text's) and does not escape.
		{`{"b":1,"a":"\u003c"}`, `$$inner$$__{"b":1,"a":"<"}`},
		{` { "n" : 1.0 , "2":true,"1":null } `, `$$inner$$__{"1":null,"2":true,"n":1}`},
		{`"plain string reg"`, `$$inner$$__"plain string reg"`},
		{`null`, `$$inner$$__null`},
		{`{not json`, `$$inner$$__{not json`},
	} {
		assert.Equal(t, c.key, SubscriptionKey(json.RawMessage(c.reg)), c.reg)
	}
}

func TestNormalizeJSONDepthLimit(t *testing.T) {
	deep := make([]byte, 0, 2*(maxJSONDepth+1))
	for i := 0; i <= maxJSONDepth; i++ {
		deep = append(deep, '[')
	}
	for i := 0; i <= maxJSONDepth; i++ {
		deep = append(deep, ']')
	}
	_, err := NormalizeJSON(nil, deep)
	assert.ErrorIs(t, err, ErrJSON)
	assert.ErrorContains(t, err, "nesting deeper than 10000")
	ok, err := NormalizeJSON(nil, deep[1:len(deep)-1])
	require.NoError(t, err)
	assert.Equal(t, string(deep[1:len(deep)-1]), string(ok))
}
