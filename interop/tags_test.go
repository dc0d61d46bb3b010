package interop

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/protocol"
)

// A tag describes a JavaScript value in plain JSON, keeping its type:
// {"t": kind, "v": value}. Kinds: string, int (Number.isInteger), float,
// bool, null, undefined, buffer (base64), date (milliseconds), array (of
// tags), object (member name to tag), error (name, message, code). The
// Node peer (tag and untag in node/peer.js) and the Go real client
// (tagOf, untagGo) both speak it, so a test can say exactly what a value
// became on the other side without trusting either codec.
type tagged struct {
	T       string          `json:"t"`
	V       json.RawMessage `json:"v,omitempty"`
	Name    string          `json:"name,omitempty"`
	Message string          `json:"message,omitempty"`
	Code    *string         `json:"code,omitempty"`
}

func tagValue(kind string, v any) map[string]any { return map[string]any{"t": kind, "v": v} }

// tagOf describes a value decoded into *any by protocol.SerializeJSON
// (its natural Go form).
func tagOf(v any) (any, error) {
	switch x := v.(type) {
	case nil:
		return map[string]any{"t": "null"}, nil
	case protocol.UndefinedValue:
		return map[string]any{"t": "undefined"}, nil
	case string:
		return tagValue("string", x), nil
	case bool:
		return tagValue("bool", x), nil
	case int64:
		return tagValue("int", x), nil
	case float64:
		// JavaScript has one number type; a tag says what
		// Number.isInteger says.
		if x == math.Trunc(x) && !math.IsInf(x, 0) {
			return tagValue("int", x), nil
		}
		return tagValue("float", x), nil
	case []byte:
		return tagValue("buffer", base64.StdEncoding.EncodeToString(x)), nil
	case time.Time:
		return tagValue("date", x.UnixMilli()), nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			t, err := tagOf(e)
			if err != nil {
				return nil, err
			}
			out[i] = t
		}
		return tagValue("array", out), nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			t, err := tagOf(e)
			if err != nil {
				return nil, err
			}
			out[k] = t
		}
		return tagValue("object", out), nil
	case *protocol.RemoteError:
		var code any
		if x.Code != "" {
			code = x.Code
		}
		return map[string]any{"t": "error", "name": x.Name, "message": x.Message, "code": code}, nil
	}
	return nil, fmt.Errorf("tagOf: no tag for %T", v)
}

// undefinedDoc is JavaScript's undefined in serialize-json.
var undefinedDoc, _ = protocol.SerializeJSON.Append(nil, protocol.Undefined)

// naturalOf decodes a serialize-json document into its natural Go form,
// keeping undefined apart from null (decoding into *any makes both nil).
func naturalOf(doc []byte) (any, error) {
	if bytes.Equal(doc, undefinedDoc) {
		return protocol.Undefined, nil
	}
	var v any
	err := protocol.SerializeJSON.Decode(doc, &v)
	return v, err
}

// untagGo builds the natural Go value a tag describes (what a Go real
// client returns to be encoded for Node).
func untagGo(t tagged) (any, error) {
	dec := func(v any) error {
		if len(t.V) == 0 {
			return fmt.Errorf("%w: %s", errNoValue, t.T)
		}
		return json.Unmarshal(t.V, v)
	}
	switch t.T {
	case "null":
		return nil, nil
	case "undefined":
		return protocol.Undefined, nil
	case "string":
		var s string
		return s, dec(&s)
	case "bool":
		var b bool
		return b, dec(&b)
	case "int":
		var n int64
		return n, dec(&n)
	case "float":
		var f float64
		return f, dec(&f)
	case "buffer":
		var s string
		if err := dec(&s); err != nil {
			return nil, err
		}
		return base64.StdEncoding.DecodeString(s)
	case "date":
		var ms int64
		if err := dec(&ms); err != nil {
			return nil, err
		}
		return time.UnixMilli(ms).UTC(), nil
	case "array":
		var list []tagged
		if err := dec(&list); err != nil {
			return nil, err
		}
		out := make([]any, len(list))
		for i, e := range list {
			v, err := untagGo(e)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	case "object":
		var m map[string]tagged
		if err := dec(&m); err != nil {
			return nil, err
		}
		out := make(map[string]any, len(m))
		for k, e := range m {
			v, err := untagGo(e)
			if err != nil {
				return nil, err
			}
			out[k] = v
		}
		return out, nil
	}
	return nil, fmt.Errorf("untagGo: unknown tag %q", t.T)
}

// sameTag reports whether two tags (JSON texts) describe the same value;
// object members may come in any order.
func sameTag(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

type person struct {
	Name string   `json:"name"`
	Age  int      `json:"age"`
	Tags []string `json:"tags"`
}

// typeCase is one type that crosses between Go and Node as an argument
// and as a result.
type typeCase struct {
	kind string
	send any    // what Go passes as an argument
	tag  string // what it is in JavaScript
	// target returns a pointer to decode a result into (possibly holding
	// a value already, to see what null and undefined do to it); want is
	// what it must hold afterwards.
	target func() any
	want   any
}

const testString = "héllo wörld <&> | ^ % + \n\"quoted\" \u2028 😀"

var testDate = time.UnixMilli(1700000000123).UTC()

func typeCases() []typeCase {
	return []typeCase{
		{kind: "string", send: testString,
			tag:    `{"t":"string","v":"héllo wörld <&> | ^ % + \n\"quoted\" \u2028 😀"}`,
			target: func() any { return new(string) }, want: testString},
		{kind: "integer", send: int64(-1 << 40),
			tag:    `{"t":"int","v":-1099511627776}`,
			target: func() any { return new(int64) }, want: int64(-1 << 40)},
		{kind: "float", send: 1.5e-7,
			tag:    `{"t":"float","v":1.5e-7}`,
			target: func() any { return new(float64) }, want: 1.5e-7},
		{kind: "bool", send: true,
			tag:    `{"t":"bool","v":true}`,
			target: func() any { return new(bool) }, want: true},
		{kind: "object", send: person{Name: "peter", Age: 30, Tags: []string{"a", "b"}},
			tag:    `{"t":"object","v":{"name":{"t":"string","v":"peter"},"age":{"t":"int","v":30},"tags":{"t":"array","v":[{"t":"string","v":"a"},{"t":"string","v":"b"}]}}}`,
			target: func() any { return new(person) }, want: person{Name: "peter", Age: 30, Tags: []string{"a", "b"}}},
		{kind: "nested array", send: []any{[]any{int64(1), "a"}, []any{[]any{2.5, nil}}, []any{}},
			tag:    `{"t":"array","v":[{"t":"array","v":[{"t":"int","v":1},{"t":"string","v":"a"}]},{"t":"array","v":[{"t":"array","v":[{"t":"float","v":2.5},{"t":"null"}]}]},{"t":"array","v":[]}]}`,
			target: func() any { return new([]any) }, want: []any{[]any{int64(1), "a"}, []any{[]any{2.5, nil}}, []any{}}},
		{kind: "buffer", send: []byte{0, 1, 127, 128, 255},
			tag:    `{"t":"buffer","v":"AAF/gP8="}`,
			target: func() any { return new([]byte) }, want: []byte{0, 1, 127, 128, 255}},
		{kind: "null", send: nil,
			tag: `{"t":"null"}`,
			// null sets an interface to nil.
			target: func() any { v := any("before"); return &v }, want: nil},
		{kind: "date", send: testDate,
			tag:    `{"t":"date","v":1700000000123}`,
			target: func() any { return new(time.Time) }, want: testDate},
		{kind: "undefined", send: protocol.Undefined,
			tag: `{"t":"undefined"}`,
			// undefined means absent: a typed target keeps its value
			// (decoded into *any it is nil, like null).
			target: func() any { v := "before"; return &v }, want: "before"},
	}
}

// checkTarget compares what a result was decoded into with want.
func checkTarget(t *testing.T, what string, ptr, want any) {
	t.Helper()
	got := reflect.ValueOf(ptr).Elem().Interface()
	if wt, ok := want.(time.Time); ok {
		if gt, ok := got.(time.Time); !ok || !gt.Equal(wt) {
			t.Errorf("%s: got %#v, want %v", what, got, wt)
		}
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: got %#v, want %#v", what, got, want)
	}
}

// TestTags checks the Go half of the tag vocabulary against the table:
// every case's Go value is what its tag says, and the tag builds it back.
// (The Node half is checked by every interop test that compares tags.)
func TestTags(t *testing.T) {
	for _, tc := range typeCases() {
		t.Run(tc.kind, func(t *testing.T) {
			// Natural form: what SerializeJSON decodes the Go value into.
			doc, err := protocol.SerializeJSON.Append(nil, tc.send)
			if err != nil {
				t.Fatal(err)
			}
			natural, err := naturalOf(doc)
			if err != nil {
				t.Fatal(err)
			}
			tg, err := tagOf(natural)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(tg)
			if !sameTag(got, []byte(tc.tag)) {
				t.Errorf("tagOf(%#v) = %s, want %s", natural, got, tc.tag)
			}
			var tt tagged
			if err := json.Unmarshal([]byte(tc.tag), &tt); err != nil {
				t.Fatal(err)
			}
			back, err := untagGo(tt)
			if err != nil {
				t.Fatal(err)
			}
			doc2, err := protocol.SerializeJSON.Append(nil, back)
			if err != nil {
				t.Fatal(err)
			}
			natural2, err := naturalOf(doc2)
			if err != nil {
				t.Fatal(err)
			}
			// A map has no member order, so only an object's natural
			// form is compared; everything else encodes byte for byte
			// the same.
			if !reflect.DeepEqual(natural, natural2) || tc.kind != "object" && !bytes.Equal(doc, doc2) {
				t.Errorf("untagGo(%s) encodes as %q, the Go value as %q", tc.tag, doc2, doc)
			}
		})
	}
}
