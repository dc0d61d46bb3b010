package protocol

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The golden examples of Node's serialize-json 1.0.3, copied from the
// shared fixtures (see their README for the tagged JSON).
const sjFixtureFile = "testdata/serialize-json.json"

type sjFixture struct {
	Name           string          `json:"name"`
	Category       string          `json:"category"`
	Input          json.RawMessage `json:"input"`
	Hex            string          `json:"hex"`
	Text           string          `json:"text"`
	Decoded        json.RawMessage `json:"decoded"`
	DecodeError    any             `json:"decodeError"`
	RoundTripEqual *bool           `json:"roundTripEqual"`
	Note           string          `json:"note"`
}

func sjLoadFixtures(t testing.TB) []sjFixture {
	t.Helper()
	b, err := os.ReadFile(sjFixtureFile)
	if err != nil {
		t.Fatal(err)
	}
	var fx []sjFixture
	if err := json.Unmarshal(b, &fx); err != nil {
		t.Fatal(err)
	}
	return fx
}

// sjOrdered is a JSON object with its member order kept.
type sjOrdered struct {
	keys []string
	vals []any
}

// sjParseOrdered parses JSON keeping object member order and number text.
func sjParseOrdered(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var parse func() (any, error)
	parse = func() (any, error) {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		switch d := tok.(type) {
		case json.Delim:
			if d == '[' {
				arr := []any{}
				for dec.More() {
					v, err := parse()
					if err != nil {
						return nil, err
					}
					arr = append(arr, v)
				}
				_, err := dec.Token()
				return arr, err
			}
			obj := &sjOrdered{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v, err := parse()
				if err != nil {
					return nil, err
				}
				obj.keys = append(obj.keys, k.(string))
				obj.vals = append(obj.vals, v)
			}
			_, err := dec.Token()
			return obj, err
		}
		return tok, nil
	}
	return parse()
}

// sjNumberValue converts a JSON number as the natural decoding would
// produce it: int64 for a safe integer literal, float64 otherwise.
func sjNumberValue(n json.Number) (any, error) {
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil && i >= -sjMaxSafe && i <= sjMaxSafe {
		return i, nil
	}
	return strconv.ParseFloat(string(n), 64)
}

// sjFromTagged converts a fixture's tagged JSON to Go. For encoding
// (input) a value Go cannot express gives a reason instead, and objects
// whose member order a Go map would not reproduce become structs built
// with reflect.StructOf, whose field order is kept. For decoding
// (decoded) objects are maps and undefined is nil, as *any decodes them.
func sjFromTagged(v any, forEncode bool) (any, string) {
	switch x := v.(type) {
	case nil, string, bool:
		return x, ""
	case json.Number:
		n, err := sjNumberValue(x)
		if err != nil {
			return nil, err.Error()
		}
		return n, ""
	case []any:
		out := []any{}
		for _, el := range x {
			g, why := sjFromTagged(el, forEncode)
			if why != "" {
				return nil, why
			}
			out = append(out, g)
		}
		return out, ""
	case *sjOrdered:
		if len(x.keys) == 1 && strings.HasPrefix(x.keys[0], "$") {
			return sjFromTag(x.keys[0], x.vals[0], forEncode)
		}
		vals := make([]any, len(x.vals))
		for i, el := range x.vals {
			g, why := sjFromTagged(el, forEncode)
			if why != "" {
				return nil, why
			}
			vals[i] = g
		}
		m := map[string]any{}
		for i, k := range x.keys {
			m[k] = vals[i]
		}
		if !forEncode || slices.Equal(x.keys, sjGoMapOrder(x.keys)) {
			return m, ""
		}
		fields := make([]reflect.StructField, len(x.keys))
		for i, k := range x.keys {
			if !sjValidTag(k) {
				return nil, fmt.Sprintf("key %q cannot be a json tag", k)
			}
			fields[i] = reflect.StructField{
				Name: fmt.Sprintf("F%d", i),
				Type: reflect.TypeFor[any](),
				Tag:  reflect.StructTag(fmt.Sprintf(`json:"%s"`, k)),
			}
		}
		s := reflect.New(reflect.StructOf(fields)).Elem()
		for i, el := range vals {
			if el != nil {
				s.Field(i).Set(reflect.ValueOf(el))
			}
		}
		return s.Interface(), ""
	}
	return nil, fmt.Sprintf("unexpected JSON %T", v)
}

// sjGoMapOrder is the member order a Go map with these keys is encoded in.
func sjGoMapOrder(keys []string) []string {
	ks := make([]sjKey, len(keys))
	for i, k := range keys {
		ks[i] = sjNewKey(k)
	}
	slices.SortFunc(ks, sjKeyCmp)
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = k.name
	}
	return out
}

func sjFromTag(tag string, v any, forEncode bool) (any, string) {
	switch tag {
	case "$undefined":
		if forEncode {
			return Undefined, ""
		}
		return nil, ""
	case "$buffer":
		b, err := hex.DecodeString(v.(string))
		if err != nil {
			return nil, err.Error()
		}
		return b, ""
	case "$date":
		n, ok := v.(json.Number)
		if !ok {
			return nil, "an invalid Date has no Go time.Time"
		}
		ms, err := n.Int64()
		if err != nil {
			return nil, err.Error()
		}
		return time.UnixMilli(ms).UTC(), ""
	case "$number":
		switch v {
		case "NaN":
			return math.NaN(), ""
		case "Infinity":
			return math.Inf(1), ""
		case "-Infinity":
			return math.Inf(-1), ""
		case "-0":
			return math.Copysign(0, -1), ""
		}
	case "$error":
		o := v.(*sjOrdered)
		re := &RemoteError{}
		var order []string
		for i, k := range o.keys {
			s, _ := o.vals[i].(string)
			switch k {
			case "message":
				re.Message = s
			case "stack":
				re.Stack = s
			case "name":
				re.Name = s
			case "code":
				re.Code = s
			default:
				return nil, "Error property " + k + " has no RemoteError field"
			}
			order = append(order, k)
		}
		if forEncode {
			want := []string{"message", "stack"}
			if re.Name != "" {
				want = append(want, "name")
			}
			if re.Code != "" {
				want = append(want, "code")
			}
			if !slices.Equal(order, want) {
				return nil, fmt.Sprintf("Error properties in order %v; RemoteError writes %v", order, want)
			}
		}
		return re, ""
	case "$function", "$symbol", "$bigint":
		return nil, "JavaScript " + tag[1:] + " values have no Go counterpart (Go refuses funcs and chans)"
	case "$map":
		return nil, "a JavaScript Map has no Go counterpart (Go maps are objects)"
	case "$uint8array":
		return nil, "a non-Buffer typed array has no Go counterpart ([]byte is a Buffer)"
	}
	return nil, fmt.Sprintf("unknown tag %s %v", tag, v)
}

// sjEncodeSkips are inputs whose tagged JSON cannot tell what the
// JavaScript value was.
var sjEncodeSkips = map[string]string{
	"array_sparse_hole": "the tagged input shows the hole as null; Go slices have no holes",
}

// sjEqual is reflect.DeepEqual with NaN equal to NaN.
func sjEqual(a, b any) bool {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		return ok && (x == y && math.Signbit(x) == math.Signbit(y) || math.IsNaN(x) && math.IsNaN(y))
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) || (x == nil) != (y == nil) {
			return false
		}
		for i := range x {
			if !sjEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !sjEqual(v, w) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

// TestSerializeJSONFixtures checks Go against every golden example: the
// encoding of each input Go can express is byte for byte Node's, and the
// decoding of every recorded document is the recorded value.
func TestSerializeJSONFixtures(t *testing.T) {
	fixtures := sjLoadFixtures(t)
	var encoded, decoded, decodeErrors int
	var skipped []string
	for _, fx := range fixtures {
		t.Run(fx.Name, func(t *testing.T) {
			data, err := hex.DecodeString(fx.Hex)
			if err != nil {
				t.Fatal(err)
			}
			if string(data) != fx.Text {
				t.Fatalf("fixture hex and text disagree")
			}

			// Decoding.
			var got any
			err = SerializeJSON.Decode(data, &got)
			if fx.DecodeError != nil {
				decodeErrors++
				if !errors.Is(err, ErrSerializeJSON) {
					t.Errorf("decode: got %v, want an error matching ErrSerializeJSON (Node: %v)", err, fx.DecodeError)
				}
			} else {
				if err != nil {
					t.Fatalf("decode %q: %v", fx.Text, err)
				}
				dv, err := sjParseOrdered(fx.Decoded)
				if err != nil {
					t.Fatal(err)
				}
				want, why := sjFromTagged(dv, false)
				if why != "" {
					t.Fatalf("decoded value not convertible: %s", why)
				}
				if !sjEqual(got, want) {
					t.Errorf("decode %q:\n got %#v\nwant %#v", fx.Text, got, want)
				}
				decoded++
			}

			// Encoding.
			why := sjEncodeSkips[fx.Name]
			var in any
			switch {
			case why != "":
			case fx.Category == "decode-only":
				why = "decode-only example"
			default:
				iv, err := sjParseOrdered(fx.Input)
				if err != nil {
					t.Fatal(err)
				}
				in, why = sjFromTagged(iv, true)
			}
			if why != "" {
				skipped = append(skipped, fx.Name+": "+why)
				return
			}
			out, err := SerializeJSON.Append([]byte("prefix"), in)
			if err != nil {
				t.Fatalf("encode %#v: %v", in, err)
			}
			if !bytes.HasPrefix(out, []byte("prefix")) {
				t.Fatalf("Append lost dst")
			}
			if got := string(out[len("prefix"):]); got != fx.Text {
				t.Errorf("encode %#v:\n got %q\nwant %q", in, got, fx.Text)
			}
			encoded++
		})
	}
	for _, s := range skipped {
		t.Logf("encode skipped: %s", s)
	}
	t.Logf("%d examples: %d encoded byte-exact, %d decoded, %d decode errors checked, %d skipped for encoding",
		len(fixtures), encoded, decoded, decodeErrors, len(skipped))
	// The fixture file has 75 examples, none with a decodeError. If a
	// count drops, an example stopped being checked.
	if len(fixtures) != 75 || encoded != 65 || decoded != 75 || decodeErrors != 0 || len(skipped) != 10 {
		t.Errorf("checked counts changed: %d examples, %d encoded, %d decoded, %d decode errors, %d skipped; want 75, 65, 75, 0, 10",
			len(fixtures), encoded, decoded, decodeErrors, len(skipped))
	}
}

// TestSerializeJSONFixturesCopy re-encodes every document entry for entry
// (the path of Raw values nested in others) and gets Node's bytes back:
// Node lists entries in the order the structure uses them.
func TestSerializeJSONFixturesCopy(t *testing.T) {
	for _, fx := range sjLoadFixtures(t) {
		data, _ := hex.DecodeString(fx.Hex)
		r, err := sjGetReader(data)
		if err != nil {
			t.Fatalf("%s: %v", fx.Name, err)
		}
		e := sjGetEncoder()
		err = e.copyFrom(r, 0)
		if err == nil {
			err = r.atEnd()
		}
		sjPutReader(r)
		if err != nil {
			t.Fatalf("%s: %v", fx.Name, err)
		}
		out, err := e.finish(nil)
		sjPutEncoder(e)
		if err != nil {
			t.Fatal(err)
		}
		want := fx.Text
		if fx.Name == "decode_lowercase_base36_index" {
			want = "k^^^^@0]" // only referenced entries are copied
		}
		if string(out) != want {
			t.Errorf("%s: copy gave %q, want %q", fx.Name, out, want)
		}

		// The same through the API: a Raw nested in a value is spliced, a
		// Raw target inside a value is filled by the copy.
		wrapped, err := SerializeJSON.Append(nil, []any{Raw(data), Raw(data)})
		if err != nil {
			t.Fatalf("%s: %v", fx.Name, err)
		}
		var two []Raw
		if err := SerializeJSON.Decode(wrapped, &two); err != nil {
			t.Fatalf("%s: %v", fx.Name, err)
		}
		if len(two) != 2 || string(two[0]) != want || string(two[1]) != want {
			t.Errorf("%s: Raw round trip through an array gave %q", fx.Name, two)
		}
	}
}
