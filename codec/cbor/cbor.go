package cbor

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"sync"

	fx "github.com/fxamacker/cbor/v2"

	"github.com/go-clusterclient/clusterclient/protocol"
)

// Codec is the CBOR app-object codec. Its Name is "cbor": a leader and a
// follower must both use it (the register handshake refuses a follower
// that announces another codec, with "codec mismatch" in the error).
var Codec protocol.Codec = codec{}

// Limits on what Decode accepts, whatever the peer sends. A byte or text
// string cannot be longer than the app object that holds it, which the
// cluster's frame limit bounds (cluster.WithLimits, 16 MiB by default);
// Decode checks that the input is well formed before it allocates anything
// for it.
const (
	// MaxNestedLevels is the deepest nesting of arrays and maps accepted.
	MaxNestedLevels = 64
	// MaxArrayElements is the largest array accepted.
	MaxArrayElements = 128 * 1024
	// MaxMapPairs is the largest map accepted.
	MaxMapPairs = 128 * 1024
)

var (
	encMode fx.UserBufferEncMode
	decMode fx.DecMode
)

func init() {
	var err error
	encMode, err = fx.EncOptions{
		Sort:          fx.SortCoreDeterministic, // one encoding per map, as encoding/json's sorted keys give
		ShortestFloat: fx.ShortestFloat16,       // lossless: the shortest float that keeps the value
		Time:          fx.TimeRFC3339Nano,       // a string, as encoding/json writes it
		IndefLength:   fx.IndefLengthForbidden,
		TagsMd:        fx.TagsForbidden,
		NilContainers: fx.NilContainerAsNull,
		OmitEmpty:     fx.OmitEmptyGoValue, // omitempty as encoding/json reads it
		String:        fx.StringToTextString,
		FieldName:     fx.FieldNameToTextString,
		// encoding/json's hooks: MarshalText, then MarshalJSON (transcoded).
		BinaryMarshaler:         fx.BinaryMarshalerNone,
		TextMarshaler:           fx.TextMarshalerTextString,
		JSONMarshalerTranscoder: transcoder(fromJSON),
	}.UserBufferEncMode()
	if err != nil {
		panic(err)
	}
	decMode, err = fx.DecOptions{
		MaxNestedLevels:           MaxNestedLevels,
		MaxArrayElements:          MaxArrayElements,
		MaxMapPairs:               MaxMapPairs,
		IndefLength:               fx.IndefLengthForbidden,
		TagsMd:                    fx.TagsForbidden,
		DupMapKey:                 fx.DupMapKeyQuiet, // the last value wins, as in encoding/json
		IntDec:                    fx.IntDecConvertSignedOrBigInt,
		DefaultMapType:            reflect.TypeFor[map[string]any](),
		UTF8:                      fx.UTF8DecodeInvalid, // a Go string is bytes: keep them
		FieldNameMatching:         fx.FieldNameMatchingPreferCaseSensitive,
		ByteStringToString:        fx.ByteStringToStringAllowed,
		BinaryUnmarshaler:         fx.BinaryUnmarshalerNone,
		TextUnmarshaler:           fx.TextUnmarshalerTextString,
		JSONUnmarshalerTranscoder: transcoder(toJSON),
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

type codec struct{}

func (codec) Name() string { return "cbor" }

// Append encodes v and appends it to dst. Strings, byte slices, nil,
// booleans and Raw are written without the library; the bytes are the
// ones it would write.
func (codec) Append(dst []byte, v any) ([]byte, error) {
	switch t := v.(type) {
	case nil:
		return append(dst, 0xf6), nil
	case string:
		return append(appendHead(dst, majorText, uint64(len(t))), t...), nil
	case []byte:
		if t == nil {
			return append(dst, 0xf6), nil
		}
		return append(appendHead(dst, majorBytes, uint64(len(t))), t...), nil
	case protocol.Raw:
		return append(dst, t...), nil
	case bool:
		if t {
			return append(dst, 0xf5), nil
		}
		return append(dst, 0xf4), nil
	case protocol.UndefinedValue:
		return append(dst, 0xf6), nil // null, as protocol.JSON writes it
	case json.Marshaler, fx.Marshaler:
	case error:
		if !isNilPointer(t) {
			v = remoteErrorOf(t)
		}
	}
	buf := buffers.Get().(*bytes.Buffer)
	*buf = *bytes.NewBuffer(dst)
	err := encMode.MarshalToBuffer(v, buf)
	out := buf.Bytes()
	*buf = bytes.Buffer{} // keep no reference to the caller's bytes
	buffers.Put(buf)
	if err != nil {
		return dst, fmt.Errorf("protocol: cbor codec: %w", err)
	}
	return out, nil
}

// buffers hold the bytes.Buffer that wraps Append's dst for the library
// (one would otherwise be allocated per call).
var buffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Decode decodes data into v, a non-nil pointer. Empty data is null.
func (codec) Decode(data []byte, v any) error {
	if len(data) == 0 {
		data = null
	}
	if decodeFast(data, v) {
		return nil
	}
	var err error
	switch t := v.(type) {
	case *protocol.Raw:
		*t = append(protocol.Raw(nil), data...)
		return nil
	case *error:
		var re *protocol.RemoteError
		if err = decMode.Unmarshal(data, &re); err == nil {
			*t = nil
			if re != nil {
				*t = re
			}
		}
	default:
		err = decMode.Unmarshal(data, v)
	}
	if err != nil {
		return fmt.Errorf("protocol: cbor codec: decode into %T: %w", v, err)
	}
	return nil
}

var null = []byte{0xf6}

const (
	majorBytes = 2 << 5
	majorText  = 3 << 5
)

// appendHead appends the head of a byte or text string of n bytes, in
// its shortest form (RFC 8949, section 4.2.1), as the library writes it.
func appendHead(dst []byte, major byte, n uint64) []byte {
	switch {
	case n < 24:
		return append(dst, major|byte(n))
	case n <= math.MaxUint8:
		return append(dst, major|24, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, major|25), uint16(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(dst, major|26), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(dst, major|27), n)
}

// stringItem returns the major type and the content of data when data is
// exactly one definite-length byte or text string.
func stringItem(data []byte) (major byte, s []byte, ok bool) {
	major, ai := data[0]&0xe0, data[0]&0x1f
	if major != majorBytes && major != majorText {
		return 0, nil, false
	}
	var n uint64
	rest := data[1:]
	switch {
	case ai < 24:
		n = uint64(ai)
	case ai == 24 && len(rest) >= 1:
		n, rest = uint64(rest[0]), rest[1:]
	case ai == 25 && len(rest) >= 2:
		n, rest = uint64(binary.BigEndian.Uint16(rest)), rest[2:]
	case ai == 26 && len(rest) >= 4:
		n, rest = uint64(binary.BigEndian.Uint32(rest)), rest[4:]
	case ai == 27 && len(rest) >= 8:
		n, rest = binary.BigEndian.Uint64(rest), rest[8:]
	default:
		return 0, nil, false // indefinite length, reserved, or short
	}
	if n != uint64(len(rest)) {
		return 0, nil, false
	}
	return major, rest, true
}

// decodeFast decodes a lone byte or text string into a *string, *[]byte
// or *any, and null into a *[]byte or *any, as the library would, and
// reports whether it did. The result never aliases data.
func decodeFast(data []byte, v any) bool {
	if data[0] == 0xf6 && len(data) == 1 {
		switch p := v.(type) {
		case *[]byte:
			*p = nil
			return true
		case *any:
			*p = nil
			return true
		}
		return false
	}
	major, s, ok := stringItem(data)
	if !ok {
		return false
	}
	switch p := v.(type) {
	case *string:
		*p = string(s)
		return true
	case *[]byte:
		if major != majorBytes {
			return false // the library says why not
		}
		*p = append([]byte{}, s...)
		return true
	case *any:
		if major == majorText {
			*p = string(s)
		} else {
			*p = append([]byte{}, s...)
		}
		return true
	}
	return false
}

func isNilPointer(v any) bool {
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}

// remoteErrorOf gives err's wire shape, as protocol.JSON does: the
// RemoteError in its chain, or one named "Error" with its message.
func remoteErrorOf(err error) *protocol.RemoteError {
	if re, ok := errors.AsType[*protocol.RemoteError](err); ok && re != nil {
		return re
	}
	return &protocol.RemoteError{Name: "Error", Message: err.Error()}
}

type transcoder func(dst io.Writer, src io.Reader) error

func (t transcoder) Transcode(dst io.Writer, src io.Reader) error { return t(dst, src) }

// fromJSON turns the output of a MarshalJSON into CBOR: numbers that are
// integers become CBOR integers, others floats.
func fromJSON(dst io.Writer, src io.Reader) error {
	dec := json.NewDecoder(src)
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return err
	}
	b, err := encMode.Marshal(plainNumbers(v))
	if err != nil {
		return err
	}
	_, err = dst.Write(b)
	return err
}

func plainNumbers(v any) any {
	switch t := v.(type) {
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		f, _ := t.Float64() // out of range: ±Inf, as encoding/json would fail on
		return f
	case []any:
		for i := range t {
			t[i] = plainNumbers(t[i])
		}
	case map[string]any:
		for k := range t {
			t[k] = plainNumbers(t[k])
		}
	}
	return v
}

// toJSON gives an UnmarshalJSON the JSON text of a CBOR item (byte
// strings as base64 strings, as encoding/json writes a []byte).
func toJSON(dst io.Writer, src io.Reader) error {
	b, err := io.ReadAll(src)
	if err != nil {
		return err
	}
	var v any
	if err := decMode.Unmarshal(b, &v); err != nil {
		return err
	}
	out, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = dst.Write(out)
	return err
}
