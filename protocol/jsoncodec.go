package protocol

import (
	"bytes"
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
