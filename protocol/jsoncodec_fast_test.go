package protocol

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// stdAppend is what encoding/json writes for v (without HTML escaping).
func stdAppend(t *testing.T, v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// checkFast checks the JSON codec's fast paths against encoding/json on
// data: as a string and a []byte to encode, and as JSON text to decode
// into a *string, *any and *[]byte. Whatever a fast path takes must come
// out exactly as encoding/json's.
func checkFast(t *testing.T, data []byte) {
	for _, v := range []any{string(data), data} {
		if out, ok := appendFast([]byte("~"), v); ok {
			if want := "~" + string(stdAppend(t, v)); string(out) != want {
				t.Fatalf("append %#v: fast %q, encoding/json %q", v, out, want)
			}
		}
	}
	for _, target := range []func() any{
		func() any { return new(string) },
		func() any { return new(any) },
		func() any { return new([]byte) },
	} {
		fast, std := target(), target()
		if !decodeFast(data, fast) {
			continue
		}
		if err := json.Unmarshal(data, std); err != nil {
			t.Fatalf("decode %q into %T: fast path took what encoding/json refuses: %v", data, fast, err)
		}
		if !reflect.DeepEqual(fast, std) {
			t.Fatalf("decode %q into %T: fast %#v, encoding/json %#v", data, fast, reflect.ValueOf(fast).Elem(), reflect.ValueOf(std).Elem())
		}
	}
}

var fastSeeds = []string{
	`"abc"`, `""`, `"QUJD"`, `"AQI="`, `"QQ"`, `"===="`, `"!!"`, `null`, `"a\"b"`, `"a\\b"`, `"é"`, "\"\x7f\"",
	`"<a&b>"`, ` "abc"`, `"abc" `, `"a b"`, "\"a\nb\"", `123`, `"abc`, `abc"`, `"`, `"\u0041"`, `"QUJD\r\n"`,
}

func TestJSONCodecFastPaths(t *testing.T) {
	for _, s := range fastSeeds {
		checkFast(t, []byte(s))
	}
	// Which cases take the fast path at all (the others are encoding/json's).
	for _, c := range []struct {
		data string
		into any
		ok   bool
	}{
		{`"abc"`, new(string), true},
		{`"a\"b"`, new(string), false},
		{`"é"`, new(string), false},
		{`"QUJD"`, new([]byte), true},
		{`null`, new([]byte), true},
		{`"QQ"`, new([]byte), false}, // not valid padded base64: encoding/json's error
		{`"abc"`, new(int), false},
	} {
		if got := decodeFast([]byte(c.data), c.into); got != c.ok {
			t.Errorf("decodeFast(%s, %T) = %v, want %v", c.data, c.into, got, c.ok)
		}
	}
	var b []byte
	if out, ok := appendFast(nil, b); !ok || string(out) != "null" {
		t.Errorf("nil []byte: %q %v", out, ok)
	}
	if _, ok := appendFast(nil, "tab\there"); ok {
		t.Error("a string with a control character took the fast path")
	}
}

func FuzzJSONCodecFastPaths(f *testing.F) {
	for _, s := range fastSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkFast(t, data) })
}
