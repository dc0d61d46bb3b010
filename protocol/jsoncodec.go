package protocol

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
)

// JSON is the app-object codec for clusters of Go processes only: the
// bytes are encoding/json's.
//
// Encoding: a value is marshaled as json.Marshal would (json.Marshaler and
// struct tags respected), except that '<', '>' and '&' are not escaped, as
// in JavaScript. nil is null. A Raw is appended unchanged. An error value
// that is not a json.Marshaler is sent in Node's error shape,
// {"name","message","code","stack"} with the empty code and stack left out:
// the *RemoteError that errors.As finds in it, or else name "Error" and
// message err.Error(). Errors nested inside other values get no such
// treatment; put a *RemoteError there.
//
// Decoding is json.Unmarshal (into *any: float64, string, bool, nil,
// []any, map[string]any). Empty data (an absent app object) decodes as
// null. A *Raw target gets a copy of the bytes. A *error target gets a
// *RemoteError built from the error shape (nil for null), as does a
// *RemoteError target.
//
// JSON has no undefined: Undefined (SerializeJSON's value for it) and nil
// both encode as null, and null comes back as the Go zero value for pointers, slices,
// maps and interfaces (other targets are left unchanged, as with
// json.Unmarshal).
var JSON Codec = jsonCodec{}

type jsonCodec struct{}

func (jsonCodec) Name() string { return "json" }

func (jsonCodec) Append(dst []byte, v any) ([]byte, error) {
	if out, ok := appendFast(dst, v); ok {
		return out, nil
	}
	switch t := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case Raw:
		return append(dst, t...), nil
	case json.Marshaler:
	case error:
		if !isNilPointer(t) { // a nil *T error marshals as null, as encoding/json would
			v = remoteErrorOf(t)
		}
	}
	buf := bytes.NewBuffer(dst)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return dst, fmt.Errorf("protocol: json codec: %w", err)
	}
	out := buf.Bytes()
	return out[:len(out)-1], nil // Encode ends with a newline
}

func (jsonCodec) Decode(data []byte, v any) error {
	if len(data) == 0 {
		data = []byte("null")
	}
	if decodeFast(data, v) {
		return nil
	}
	var err error
	switch t := v.(type) {
	case *Raw:
		*t = append(Raw(nil), data...)
		return nil
	case *error:
		var re *RemoteError
		if err = json.Unmarshal(data, &re); err == nil {
			*t = nil
			if re != nil {
				*t = re
			}
		}
	default:
		err = json.Unmarshal(data, v)
	}
	if err != nil {
		return fmt.Errorf("protocol: json codec: decode into %T: %w", v, err)
	}
	return nil
}

func isNilPointer(v any) bool {
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}

// remoteErrorOf gives err's wire shape: the RemoteError in its chain, or
// one named "Error" with its message.
func remoteErrorOf(err error) *RemoteError {
	if re, ok := errors.AsType[*RemoteError](err); ok && re != nil {
		return re
	}
	return &RemoteError{Name: "Error", Message: err.Error()}
}

// The fast paths below serve the commonest arguments and results, strings
// and byte slices, with the very bytes and values encoding/json would
// give, without reflection or its validating scan (which cost more than
// the loopback round trip for a 4 KiB string). Whatever they are not
// sure of goes to encoding/json.

// appendFast appends a string of plain characters or a []byte (base64, as
// encoding/json writes it) and reports whether it did.
func appendFast(dst []byte, v any) ([]byte, bool) {
	switch t := v.(type) {
	case string:
		if !plain(t) {
			return dst, false
		}
		dst = append(dst, '"')
		dst = append(dst, t...)
		return append(dst, '"'), true
	case []byte:
		if t == nil {
			return append(dst, "null"...), true
		}
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, t)
		return append(dst, '"'), true
	}
	return dst, false
}

// decodeFast decodes a quoted string of plain characters into a *string
// or *any, and a quoted base64 string (or null) into a *[]byte, and
// reports whether it did.
func decodeFast(data []byte, v any) bool {
	switch p := v.(type) {
	case *string:
		if s, ok := plainQuoted(data); ok {
			*p = string(s)
			return true
		}
	case *any:
		if s, ok := plainQuoted(data); ok {
			*p = string(s)
			return true
		}
	case *[]byte:
		if string(data) == "null" {
			*p = nil
			return true
		}
		// Decode itself accepts only the base64 alphabet, which has no
		// character a JSON string would escape, except that it skips
		// '\r' and '\n' (which a JSON string may not hold raw).
		if len(data) < 2 || data[0] != '"' || data[len(data)-1] != '"' || bytes.IndexByte(data, '\r') >= 0 || bytes.IndexByte(data, '\n') >= 0 {
			return false
		}
		s := data[1 : len(data)-1]
		b := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
		n, err := base64.StdEncoding.Decode(b, s)
		if err != nil {
			return false // encoding/json reports it
		}
		*p = b[:n]
		return true
	}
	return false
}

// plain reports whether s has only printable ASCII other than '"' and
// '\\': characters encoding/json writes as they are.
func plain[T string | []byte](s T) bool {
	for i := 0; i < len(s); i++ {
		if !plainByte[s[i]] {
			return false
		}
	}
	return true
}

var plainByte = func() (t [256]bool) {
	for c := 0x20; c <= 0x7e; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// plainQuoted returns the inside of a JSON string of plain characters
// (nothing around the quotes).
func plainQuoted(data []byte) ([]byte, bool) {
	if len(data) < 2 || data[0] != '"' || data[len(data)-1] != '"' {
		return nil, false
	}
	s := data[1 : len(data)-1]
	return s, plain(s)
}
