package protocol

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// Dictionary sections, in wire order.
const (
	sjSecStr = iota
	sjSecInt
	sjSecFloat
	sjSecDate
	sjSections
)

// Literal tokens, by their absolute value: -1 true, -2 false, -3 null,
// -4 empty string, -5 undefined.
const (
	sjLitTrue  = 1
	sjLitFalse = 2
	sjLitNull  = 3
	sjLitEmpty = 4
	sjLitUndef = 5
)

// An encoder token is a uint32: the low 3 bits are a tag, the rest its
// argument. Tags 0..3 reference the next entry of that dictionary section
// by its index within the section; the global index is only known once
// every section is complete, so the structure is rendered at the end.
const (
	sjTagLit   = 4 // argument: literal number (1..5)
	sjTagOpen  = 5 // argument: '@', '$', '*' or '#'
	sjTagClose = 6 // no argument
	sjTagRun   = 7 // argument: first INTEGERS index; the next token is the count
	sjTagBits  = 3

	sjMaxEntries = 1<<(32-sjTagBits) - 1 // per section
)

// sjEncoder accumulates one serialize-json document. It is not safe for
// concurrent use; Append takes one from sjEncoders for each call.
type sjEncoder struct {
	sec   [sjSections][]byte // entries joined by '|'
	n     [sjSections]uint32 // number of entries per section
	toks  []uint32
	keys  []sjKey // stack of object keys being sorted (nested maps share it)
	depth int
	full  bool // a section reached sjMaxEntries
}

// sjKey is one object member waiting to be written in JavaScript's
// property order.
type sjKey struct {
	name  string
	index uint64 // the array index, when isIdx
	isIdx bool
	val   any
	rval  reflect.Value
}

var sjEncoders = sync.Pool{New: func() any { return new(sjEncoder) }}

// sjMaxPooled is the most buffer capacity an encoder may keep when it goes
// back to the pool; a rare huge value should not pin its memory.
const sjMaxPooled = 1 << 20

func sjGetEncoder() *sjEncoder { return sjEncoders.Get().(*sjEncoder) }

func sjPutEncoder(e *sjEncoder) {
	size := 4*cap(e.toks) + cap(e.keys)*int(unsafe.Sizeof(sjKey{}))
	for i := range e.sec {
		size += cap(e.sec[i])
		e.sec[i] = e.sec[i][:0]
	}
	if size > sjMaxPooled {
		return
	}
	clear(e.keys[:cap(e.keys)]) // drop references to the caller's values
	e.n = [sjSections]uint32{}
	e.toks = e.toks[:0]
	e.keys = e.keys[:0]
	e.depth = 0
	e.full = false
	sjEncoders.Put(e)
}

func (sjCodec) Append(dst []byte, v any) ([]byte, error) {
	if r, ok := v.(Raw); ok {
		return append(dst, r...), nil
	}
	e := sjGetEncoder()
	defer sjPutEncoder(e)
	if err := e.value(v); err != nil {
		return dst, err
	}
	return e.finish(dst)
}

// finish appends the document: the four dictionary sections and the
// rendered structure, separated by '^'.
func (e *sjEncoder) finish(dst []byte) ([]byte, error) {
	if e.full {
		return dst, fmt.Errorf("%w: more than %d dictionary entries of one kind", ErrSerializeJSONUnsupported, sjMaxEntries)
	}
	size := len(e.toks)*3 + sjSections
	for i := range e.sec {
		size += len(e.sec[i])
	}
	dst = slices.Grow(dst, size)
	for i := range e.sec {
		dst = append(dst, e.sec[i]...)
		dst = append(dst, '^')
	}
	return e.render(dst), nil
}

// render appends the structure: each token with its global dictionary
// index, and a '|' between the siblings of a container.
func (e *sjEncoder) render(dst []byte) []byte {
	var base [sjSections]uint32
	for i := 1; i < sjSections; i++ {
		base[i] = base[i-1] + e.n[i-1]
	}
	sep := false // the previous token ended a value
	for i := 0; i < len(e.toks); i++ {
		t := e.toks[i]
		arg := t >> sjTagBits
		switch tag := t & (1<<sjTagBits - 1); tag {
		case sjTagLit:
			if sep {
				dst = append(dst, '|')
			}
			dst = append(dst, '-', byte('0'+arg))
			sep = true
		case sjTagOpen:
			if sep {
				dst = append(dst, '|')
			}
			dst = append(dst, byte(arg))
			sep = false
		case sjTagClose:
			dst = append(dst, ']')
			sep = true
		case sjTagRun:
			i++
			dst = sjAppendRun(dst, base[sjSecInt]+arg, e.toks[i], sep)
			sep = true
		default: // a dictionary section
			if sep {
				dst = append(dst, '|')
			}
			dst = sjAppendBase36(dst, false, uint64(base[tag]+arg))
			sep = true
		}
	}
	return dst
}

// sjNextDigit maps a base-36 digit to the next one ('Z' to '0').
var sjNextDigit = func() (t [256]byte) {
	for i := 0; i < 36; i++ {
		t[sjDigits[i]] = sjDigits[(i+1)%36]
	}
	return t
}()

// sjAppendRun appends count consecutive indexes from first, joined by
// '|' (and preceded by one when sep), counting in base-36 text rather than
// converting each index.
func sjAppendRun(dst []byte, first, count uint32, sep bool) []byte {
	var buf [16]byte
	cur := sjAppendBase36(buf[:0], false, uint64(first))
	last := sjAppendBase36(buf[8:8], false, uint64(first)+uint64(count))
	n := len(dst)
	dst = slices.Grow(dst, int(count)*(len(last)+1))
	dst = dst[:cap(dst)]
	for ; count > 0; count-- {
		if sep {
			dst[n] = '|'
			n++
		}
		sep = true
		for _, c := range cur {
			dst[n] = c
			n++
		}
		i := len(cur) - 1
		for ; i >= 0; i-- {
			cur[i] = sjNextDigit[cur[i]]
			if cur[i] != '0' {
				break
			}
		}
		if i < 0 { // carried out of the top digit
			cur = append(cur[:1], cur...)
			cur[0] = '1'
		}
	}
	return dst[:n]
}

// entry starts a new entry in section sec and returns the section buffer
// to append its text to; ref must follow.
func (e *sjEncoder) entry(sec int) []byte {
	if e.n[sec] > 0 {
		return append(e.sec[sec], '|')
	}
	return e.sec[sec]
}

// ref emits a token for the entry just added to section sec.
func (e *sjEncoder) ref(sec int) {
	if e.n[sec] >= sjMaxEntries {
		e.full = true
		return
	}
	e.toks = append(e.toks, e.n[sec]<<sjTagBits|uint32(sec))
	e.n[sec]++
}

func (e *sjEncoder) lit(n uint32) { e.toks = append(e.toks, n<<sjTagBits|sjTagLit) }
func (e *sjEncoder) open(c byte)  { e.toks = append(e.toks, uint32(c)<<sjTagBits|sjTagOpen) }
func (e *sjEncoder) closeToken()  { e.toks = append(e.toks, sjTagClose) }

func (e *sjEncoder) boolean(b bool) {
	if b {
		e.lit(sjLitTrue)
	} else {
		e.lit(sjLitFalse)
	}
}

// sjEscapes marks the bytes serialize-json escapes in strings.
var sjEscapes = [256]bool{' ': true, '+': true, '|': true, '^': true, '%': true}

// sjAppendEscaped appends s escaped as Node's encoder does, in one pass:
// space → '+', '+' → %2B, '|' → %7C, '^' → %5E, '%' → %25.
func sjAppendEscaped(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !sjEscapes[c] {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case ' ':
			dst = append(dst, '+')
		case '+':
			dst = append(dst, "%2B"...)
		case '|':
			dst = append(dst, "%7C"...)
		case '^':
			dst = append(dst, "%5E"...)
		default:
			dst = append(dst, "%25"...)
		}
		start = i + 1
	}
	return append(dst, s[start:]...)
}

func (e *sjEncoder) str(s string) {
	if s == "" {
		e.lit(sjLitEmpty)
		return
	}
	e.sec[sjSecStr] = sjAppendEscaped(e.entry(sjSecStr), s)
	e.ref(sjSecStr)
}

// escapedStr adds a string whose escaped text is already known (struct
// field names). esc is never empty.
func (e *sjEncoder) escapedStr(esc []byte) {
	e.sec[sjSecStr] = append(e.entry(sjSecStr), esc...)
	e.ref(sjSecStr)
}

func (e *sjEncoder) int64(v int64) {
	e.sec[sjSecInt] = sjAppendInt(e.entry(sjSecInt), v)
	e.ref(sjSecInt)
}

func (e *sjEncoder) uint64(v uint64) {
	e.sec[sjSecInt] = sjAppendBase36(e.entry(sjSecInt), false, v)
	e.ref(sjSecInt)
}

// number adds a JavaScript number: integral values (x % 1 === 0) to
// INTEGERS, everything else, NaN and ±Infinity included, to FLOATS.
func (e *sjEncoder) number(f float64) {
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0):
		e.sec[sjSecFloat] = sjAppendNumberText(e.entry(sjSecFloat), f)
		e.ref(sjSecFloat)
	case f == math.Trunc(f):
		e.sec[sjSecInt] = sjAppendIntegralFloat(e.entry(sjSecInt), f)
		e.ref(sjSecInt)
	default:
		e.sec[sjSecFloat] = appendJSNumber(e.entry(sjSecFloat), f)
		e.ref(sjSecFloat)
	}
}

func (e *sjEncoder) date(t time.Time) {
	e.sec[sjSecDate] = sjAppendInt(e.entry(sjSecDate), t.UnixMilli())
	e.ref(sjSecDate)
}

// sjByteText is each byte value's INTEGERS entry preceded by '|'.
var sjByteText = func() (t [256][4]byte) {
	for i := range t {
		b := sjAppendBase36(append(t[i][:0], '|'), false, uint64(i))
		t[i][3] = byte(len(b))
	}
	return t
}()

// bytes adds a Buffer: '*', one INTEGERS entry per byte, ']'. The
// references are one run token rather than a token per byte.
func (e *sjEncoder) bytes(b []byte) {
	e.open('*')
	if len(b) > 0 {
		start, count := e.n[sjSecInt], len(b)
		if uint64(start)+uint64(count) > sjMaxEntries {
			e.full = true
			return
		}
		s := e.sec[sjSecInt]
		if start == 0 { // the first entry of the section has no '|'
			s = append(s, sjByteText[b[0]][1:sjByteText[b[0]][3]]...)
			b = b[1:]
		}
		// Each entry is at most 3 bytes; write 3 and advance by its length.
		s = slices.Grow(s, 3*len(b))
		n := len(s)
		s = s[:n+3*len(b)]
		for _, c := range b {
			t := &sjByteText[c]
			s[n], s[n+1], s[n+2] = t[0], t[1], t[2]
			n += int(t[3])
		}
		s = s[:n]
		e.sec[sjSecInt] = s
		e.n[sjSecInt] += uint32(count)
		e.toks = append(e.toks, start<<sjTagBits|sjTagRun, uint32(count))
	}
	e.closeToken()
}

// enter and leave bound nesting (containers and pointers), which also stops
// cyclic values.
func (e *sjEncoder) enter() error {
	if e.depth >= SerializeJSONMaxDepth {
		return fmt.Errorf("%w: nesting deeper than %d (a cyclic value?)", ErrSerializeJSONUnsupported, SerializeJSONMaxDepth)
	}
	e.depth++
	return nil
}

func (e *sjEncoder) leave() { e.depth-- }

// value encodes v. Common concrete types are handled without reflection;
// the order of the cases is the order of precedence (see SerializeJSON).
func (e *sjEncoder) value(v any) error {
	switch x := v.(type) {
	case nil:
		e.lit(sjLitNull)
	case string:
		e.str(x)
	case bool:
		e.boolean(x)
	case int:
		e.int64(int64(x))
	case int8:
		e.int64(int64(x))
	case int16:
		e.int64(int64(x))
	case int32:
		e.int64(int64(x))
	case int64:
		e.int64(x)
	case uint:
		e.uint64(uint64(x))
	case uint8:
		e.uint64(uint64(x))
	case uint16:
		e.uint64(uint64(x))
	case uint32:
		e.uint64(uint64(x))
	case uint64:
		e.uint64(x)
	case float64:
		e.number(x)
	case float32:
		e.number(float64(x))
	case []byte:
		if x == nil {
			e.lit(sjLitNull)
		} else {
			e.bytes(x)
		}
	case []any:
		if x == nil {
			e.lit(sjLitNull)
			return nil
		}
		if err := e.enter(); err != nil {
			return err
		}
		e.open('@')
		for _, el := range x {
			if err := e.value(el); err != nil {
				return err
			}
		}
		e.closeToken()
		e.leave()
	case map[string]any:
		if x == nil {
			e.lit(sjLitNull)
			return nil
		}
		return e.mapStringAny(x)
	case time.Time:
		e.date(x)
	case Raw:
		return e.raw(x)
	case UndefinedValue:
		e.lit(sjLitUndef)
	case json.Number:
		if x == "" {
			x = "0" // as encoding/json writes the zero json.Number
		}
		return e.jsonNumber(x)
	case RemoteError:
		e.remoteError(&x)
	case *RemoteError:
		if x == nil {
			e.lit(sjLitNull)
			return nil
		}
		e.remoteError(x)
	case error:
		if sjNilPointer(x) {
			e.lit(sjLitNull)
			return nil
		}
		e.remoteError(remoteErrorOf(x))
	default:
		// Marshalers too: reflectValue first sends pointers to the types
		// above (*time.Time is a json.Marshaler) to their own case.
		return e.reflectValue(reflect.ValueOf(v))
	}
	return nil
}

// sjNilPointer reports whether v holds a nil pointer, whose methods must
// not be called (encoding/json writes null for it).
func sjNilPointer(v any) bool {
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}

// remoteError adds an Error: "message", message, "stack", stack, then the
// name and code when set (Node's own enumerable properties).
func (e *sjEncoder) remoteError(re *RemoteError) {
	e.open('#')
	e.escapedStr([]byte("message"))
	e.str(re.Message)
	e.escapedStr([]byte("stack"))
	e.str(re.Stack)
	if re.Name != "" {
		e.escapedStr([]byte("name"))
		e.str(re.Name)
	}
	if re.Code != "" {
		e.escapedStr([]byte("code"))
		e.str(re.Code)
	}
	e.closeToken()
}

// sjKeyCmp orders object keys as JavaScript's for-in does: array indexes
// ascending, then the other keys, which Go maps hold in no order, sorted
// by their bytes.
func sjKeyCmp(a, b sjKey) int {
	switch {
	case a.isIdx && b.isIdx:
		return cmpUint(a.index, b.index)
	case a.isIdx:
		return -1
	case b.isIdx:
		return 1
	}
	return strings.Compare(a.name, b.name)
}

func sjNewKey(name string) sjKey {
	idx, ok := arrayIndex(name)
	return sjKey{name: name, index: idx, isIdx: ok}
}

func (e *sjEncoder) mapStringAny(m map[string]any) error {
	if err := e.enter(); err != nil {
		return err
	}
	start := len(e.keys)
	for k, v := range m {
		key := sjNewKey(k)
		key.val = v
		e.keys = append(e.keys, key)
	}
	slices.SortFunc(e.keys[start:], sjKeyCmp)
	e.open('$')
	// Members are read by index: nested maps append to e.keys, which
	// may move it.
	for i := start; i < start+len(m); i++ {
		e.str(e.keys[i].name)
		if err := e.value(e.keys[i].val); err != nil {
			return err
		}
	}
	clear(e.keys[start:])
	e.keys = e.keys[:start]
	e.closeToken()
	e.leave()
	return nil
}

// raw splices an already-encoded document into the one being built,
// entry for entry (so it keeps its exact text, undefined included).
func (e *sjEncoder) raw(b Raw) error {
	if len(b) == 0 {
		e.lit(sjLitNull)
		return nil
	}
	r, err := sjGetReader(b)
	if err != nil {
		return fmt.Errorf("embedded Raw: %w", err)
	}
	defer sjPutReader(r)
	if err := e.copyFrom(r, e.depth); err != nil {
		return fmt.Errorf("embedded Raw: %w", err)
	}
	if err := r.atEnd(); err != nil {
		return fmt.Errorf("embedded Raw: %w", err)
	}
	return nil
}

func (e *sjEncoder) marshalText(m encoding.TextMarshaler) error {
	b, err := m.MarshalText()
	if err != nil {
		return fmt.Errorf("protocol: serialize-json: %T.MarshalText: %w", m, err)
	}
	e.str(string(b))
	return nil
}

// marshalJSON encodes the JSON a json.Marshaler produces, member order
// kept: numbers as jsonNumber, objects as objects, and so on.
func (e *sjEncoder) marshalJSON(m json.Marshaler) error {
	b, err := m.MarshalJSON()
	if err != nil {
		return fmt.Errorf("protocol: serialize-json: %T.MarshalJSON: %w", m, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := e.jsonValue(dec); err != nil {
		return fmt.Errorf("%w: %T.MarshalJSON gave invalid JSON: %w", ErrSerializeJSONUnsupported, m, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: %T.MarshalJSON gave more than one JSON value", ErrSerializeJSONUnsupported, m)
	}
	return nil
}

func (e *sjEncoder) jsonValue(dec *json.Decoder) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch t := tok.(type) {
	case nil:
		e.lit(sjLitNull)
	case bool:
		e.boolean(t)
	case string:
		e.str(t)
	case json.Number:
		return e.jsonNumber(t)
	case json.Delim:
		if err := e.enter(); err != nil {
			return err
		}
		if t == '[' {
			e.open('@')
			for dec.More() {
				if err := e.jsonValue(dec); err != nil {
					return err
				}
			}
		} else {
			e.open('$')
			for dec.More() {
				key, err := dec.Token()
				if err != nil {
					return err
				}
				e.str(key.(string)) // json.Decoder only yields string keys
				if err := e.jsonValue(dec); err != nil {
					return err
				}
			}
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return err
		}
		e.closeToken()
		e.leave()
	}
	return nil
}

// jsonNumber encodes a JSON number literal: integers that fit in 64 bits
// exactly, others as the double they denote.
func (e *sjEncoder) jsonNumber(n json.Number) error {
	s := string(n)
	if !strings.ContainsAny(s, ".eE") {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			e.int64(i)
			return nil
		}
		if u, err := strconv.ParseUint(s, 10, 64); err == nil {
			e.uint64(u)
			return nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return fmt.Errorf("%w: json.Number %q is not a number", ErrSerializeJSONUnsupported, s)
	}
	e.number(f)
	return nil
}

var (
	sjRawType         = reflect.TypeFor[Raw]()
	sjUndefinedType   = reflect.TypeFor[UndefinedValue]()
	sjTimeType        = reflect.TypeFor[time.Time]()
	sjRemoteErrorType = reflect.TypeFor[RemoteError]()
	sjNumberType      = reflect.TypeFor[json.Number]()
	sjErrorType       = reflect.TypeFor[error]()
	sjMarshalerType   = reflect.TypeFor[json.Marshaler]()
	sjTextMarshaler   = reflect.TypeFor[encoding.TextMarshaler]()
	sjUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	sjTextUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// sjSpecialTypes are encoded by their own rules, also through a pointer,
// before any method is considered.
var sjSpecialTypes = map[reflect.Type]bool{
	sjRawType: true, sjUndefinedType: true, sjTimeType: true, sjNumberType: true, sjRemoteErrorType: true,
}

// methodValue returns rv, or its address, as an interface of type iface
// if either implements it (the address only when rv is addressable, as in
// encoding/json).
func sjMethodValue(rv reflect.Value, iface reflect.Type) (any, bool) {
	if rv.Type().Implements(iface) {
		return rv.Interface(), true
	}
	if rv.Kind() != reflect.Pointer && rv.CanAddr() && reflect.PointerTo(rv.Type()).Implements(iface) {
		return rv.Addr().Interface(), true
	}
	return nil, false
}

// reflectValue encodes what the type switch in value does not know.
func (e *sjEncoder) reflectValue(rv reflect.Value) error {
	if !rv.IsValid() {
		e.lit(sjLitNull)
		return nil
	}
	switch k := rv.Kind(); {
	case k == reflect.Interface:
		if rv.IsNil() {
			e.lit(sjLitNull)
			return nil
		}
		return e.value(rv.Interface()) // no copy: the interface's own value
	case (k == reflect.Pointer || k == reflect.Map || k == reflect.Slice) && rv.IsNil():
		e.lit(sjLitNull)
		return nil
	}
	if k := rv.Kind(); k == reflect.Pointer && sjSpecialTypes[rv.Type().Elem()] {
		rv = rv.Elem()
	}
	switch t := rv.Type(); t {
	case sjRawType:
		return e.raw(Raw(rv.Bytes()))
	case sjUndefinedType:
		e.lit(sjLitUndef)
		return nil
	case sjTimeType:
		e.date(rv.Interface().(time.Time))
		return nil
	case sjNumberType:
		n := json.Number(rv.String())
		if n == "" {
			n = "0" // as encoding/json writes the zero json.Number
		}
		return e.jsonNumber(n)
	case sjRemoteErrorType:
		re := rv.Interface().(RemoteError)
		e.remoteError(&re)
		return nil
	}
	if v, ok := sjMethodValue(rv, sjErrorType); ok {
		if sjNilPointer(v) {
			e.lit(sjLitNull)
			return nil
		}
		e.remoteError(remoteErrorOf(v.(error)))
		return nil
	}
	if v, ok := sjMethodValue(rv, sjMarshalerType); ok {
		return e.marshalJSON(v.(json.Marshaler))
	}
	if v, ok := sjMethodValue(rv, sjTextMarshaler); ok {
		return e.marshalText(v.(encoding.TextMarshaler))
	}
	switch rv.Kind() {
	case reflect.Bool:
		e.boolean(rv.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		e.int64(rv.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		e.uint64(rv.Uint())
	case reflect.Float32, reflect.Float64:
		e.number(rv.Float())
	case reflect.String:
		e.str(rv.String())
	case reflect.Pointer:
		if err := e.enter(); err != nil {
			return err
		}
		if err := e.reflectValue(rv.Elem()); err != nil {
			return err
		}
		e.leave()
	case reflect.Slice:
		if sjIsByteSlice(rv.Type()) {
			e.bytes(rv.Bytes())
			return nil
		}
		return e.sequence(rv)
	case reflect.Array:
		return e.sequence(rv)
	case reflect.Map:
		return e.mapValue(rv)
	case reflect.Struct:
		return e.structValue(rv)
	default:
		return fmt.Errorf("%w: cannot encode a Go %s (%s)", ErrSerializeJSONUnsupported, rv.Kind(), rv.Type())
	}
	return nil
}

// sjIsByteSlice reports whether a slice type is sent as a Buffer: its
// elements are bytes without marshaling methods of their own (the
// encoding/json rule for base64).
func sjIsByteSlice(t reflect.Type) bool {
	el := t.Elem()
	if el.Kind() != reflect.Uint8 {
		return false
	}
	p := reflect.PointerTo(el)
	return !p.Implements(sjMarshalerType) && !p.Implements(sjTextMarshaler)
}

func (e *sjEncoder) sequence(rv reflect.Value) error {
	if err := e.enter(); err != nil {
		return err
	}
	e.open('@')
	for i, n := 0, rv.Len(); i < n; i++ {
		if err := e.reflectValue(rv.Index(i)); err != nil {
			return err
		}
	}
	e.closeToken()
	e.leave()
	return nil
}

// sjMapKey gives a map key's property name, as encoding/json does: string
// kinds as they are, then encoding.TextMarshaler, then integers in decimal.
func sjMapKey(k reflect.Value) (string, error) {
	if k.Kind() == reflect.String {
		return k.String(), nil
	}
	if tm, ok := k.Interface().(encoding.TextMarshaler); ok {
		if k.Kind() == reflect.Pointer && k.IsNil() {
			return "", nil
		}
		b, err := tm.MarshalText()
		if err != nil {
			return "", fmt.Errorf("protocol: serialize-json: map key %T.MarshalText: %w", tm, err)
		}
		return string(b), nil
	}
	switch k.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(k.Int(), 10), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return strconv.FormatUint(k.Uint(), 10), nil
	}
	return "", fmt.Errorf("%w: map key type %s", ErrSerializeJSONUnsupported, k.Type())
}

func (e *sjEncoder) mapValue(rv reflect.Value) error {
	if err := e.enter(); err != nil {
		return err
	}
	start := len(e.keys)
	for it := rv.MapRange(); it.Next(); {
		name, err := sjMapKey(it.Key())
		if err != nil {
			return err
		}
		key := sjNewKey(name)
		key.rval = it.Value()
		e.keys = append(e.keys, key)
	}
	end := len(e.keys)
	slices.SortFunc(e.keys[start:], sjKeyCmp)
	e.open('$')
	for i := start; i < end; i++ {
		e.str(e.keys[i].name)
		if err := e.reflectValue(e.keys[i].rval); err != nil {
			return err
		}
	}
	clear(e.keys[start:])
	e.keys = e.keys[:start]
	e.closeToken()
	e.leave()
	return nil
}

// structValue encodes the fields encoding/json would encode, in field
// order, as an object.
func (e *sjEncoder) structValue(rv reflect.Value) error {
	if err := e.enter(); err != nil {
		return err
	}
	info := sjStructInfo(rv.Type())
	e.open('$')
	for i := range info.fields {
		f := &info.fields[i]
		fv, ok := sjFieldToRead(rv, f.index)
		if !ok {
			continue
		}
		if f.omitEmpty && sjIsEmpty(fv) || f.omitZero && f.isZero(fv) {
			continue
		}
		e.escapedStr(f.esc)
		if err := e.reflectValue(fv); err != nil {
			return err
		}
	}
	e.closeToken()
	e.leave()
	return nil
}

// sjIsEmpty is encoding/json's omitempty test.
func sjIsEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64,
		reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}
