package protocol

import (
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Decoding into typed Go targets, following encoding/json's rules where
// serialize-json has the same notion.

func (sjCodec) Decode(data []byte, v any) error {
	if len(data) == 0 {
		// An absent app object is undefined: *any becomes nil, other
		// targets keep their value.
		switch p := v.(type) {
		case *any:
			*p = nil
		case *Raw:
			*p = (*p)[:0]
		}
		return sjCheckTarget(v)
	}
	r, err := sjGetReader(data)
	if err != nil {
		return err
	}
	defer sjPutReader(r)
	switch p := v.(type) {
	case *any:
		if sjHoldsPointer(*p) {
			break // decoded into what it points to, as encoding/json does
		}
		x, err := r.any(0)
		if err == nil {
			err = r.atEnd()
		}
		if err != nil {
			return err
		}
		*p = x
		return nil
	case *Raw:
		err := r.skip(0)
		if err == nil {
			err = r.atEnd()
		}
		if err != nil {
			return err
		}
		*p = append((*p)[:0], data...)
		return nil
	}
	if err := sjCheckTarget(v); err != nil {
		return err
	}
	if err := r.into(reflect.ValueOf(v).Elem(), 0); err != nil {
		if errors.Is(err, ErrSerializeJSONType) {
			// Decoding stopped at the first misfit; malformed input
			// further on takes precedence, as in encoding/json.
			r.pos = 0
			if verr := r.skip(0); verr != nil {
				return verr
			}
			if verr := r.atEnd(); verr != nil {
				return verr
			}
		}
		return err
	}
	return r.atEnd()
}

// sjHoldsPointer reports whether v is a non-nil pointer.
func sjHoldsPointer(v any) bool {
	if v == nil {
		return false
	}
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && !rv.IsNil()
}

func sjCheckTarget(v any) error {
	if rv := reflect.ValueOf(v); rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("%w: Decode needs a non-nil pointer, not %T", ErrSerializeJSONType, v)
	}
	return nil
}

// sjTypeError is a value that does not fit its Go target. It matches
// ErrSerializeJSONType.
type sjTypeError struct {
	msg  string
	off  int      // structure offset of the value
	path []string // where in the target, innermost first
}

func (e *sjTypeError) Error() string {
	var b strings.Builder
	b.WriteString(ErrSerializeJSONType.Error())
	b.WriteString(": ")
	b.WriteString(e.msg)
	if len(e.path) > 0 {
		b.WriteString(" at ")
		for i := len(e.path) - 1; i >= 0; i-- {
			b.WriteString(e.path[i])
		}
	}
	fmt.Fprintf(&b, " (structure offset %d)", e.off)
	return b.String()
}

func (e *sjTypeError) Unwrap() error { return ErrSerializeJSONType }

// mismatch reports that the value at offset at, a token of the given kind,
// cannot go into type t.
func (r *sjReader) mismatch(at int, kind byte, n int, t reflect.Type, why string) error {
	msg := "cannot decode " + r.describe(kind, n) + " into " + t.String()
	if why != "" {
		msg += ": " + why
	}
	return &sjTypeError{msg: msg, off: r.stOff + at}
}

// sjWithPath adds one step of the target path to a type error.
func sjWithPath(err error, step string) error {
	if te, ok := err.(*sjTypeError); ok {
		te.path = append(te.path, step)
	}
	return err
}

// spend takes n bytes from the copy budget (see sjBudget).
func (r *sjReader) spend(n int) error {
	r.budget -= n
	if r.budget < 0 {
		return fmt.Errorf("%w: values copied out of shared dictionary entries exceed %d times the input size", ErrSerializeJSON, sjBudget)
	}
	return nil
}

// peek returns the next token without consuming it.
func (r *sjReader) peek() (kind byte, n int, err error) {
	pos := r.pos
	kind, n, err = r.next()
	r.pos = pos
	return kind, n, err
}

// isString reports whether a token is a string value.
func (r *sjReader) isString(kind byte, n int) bool {
	return kind == sjTokRef && n < r.lim[sjSecStr] || kind == sjTokLit && n == sjLitEmpty
}

// stringOf returns the string a token (checked with isString) stands for.
func (r *sjReader) stringOf(kind byte, n int) string {
	if kind == sjTokLit {
		return ""
	}
	return r.str(n)
}

// into decodes the next value into the settable rv.
func (r *sjReader) into(rv reflect.Value, depth int) error {
	at := r.pos
	kind, n, err := r.peek()
	if err != nil {
		return err
	}
	t := rv.Type()
	if t == sjRawType {
		return r.rawInto(rv, depth) // whatever the value, undefined included
	}
	if kind == sjTokLit && n == sjLitUndef {
		r.next()
		return nil // undefined is absence: the target keeps its value
	}
	isNull := kind == sjTokLit && n == sjLitNull
	if rv.Kind() == reflect.Pointer {
		if isNull {
			r.next()
			rv.SetZero()
			return nil
		}
		if depth >= SerializeJSONMaxDepth {
			return r.errorf(at, "nesting deeper than %d", SerializeJSONMaxDepth)
		}
		if rv.IsNil() {
			rv.Set(reflect.New(t.Elem()))
		}
		return r.into(rv.Elem(), depth+1)
	}
	if t == sjTimeType {
		return r.timeInto(rv, at, kind, n)
	}
	if rv.Kind() != reflect.Interface {
		if u, ok := sjMethodValue(rv, sjUnmarshalerType); ok {
			return r.unmarshalJSON(u.(json.Unmarshaler), depth)
		}
	}
	if isNull {
		r.next()
		switch rv.Kind() {
		case reflect.Interface, reflect.Map, reflect.Slice:
			rv.SetZero()
		}
		return nil // as encoding/json: other targets ignore null
	}
	switch t {
	case sjRemoteErrorType:
		if kind != '#' && kind != '$' {
			return r.mismatch(at, kind, n, t, "")
		}
		r.next()
		if err := r.open(at, depth); err != nil {
			return err
		}
		re, err := r.remoteError(at, depth)
		if err != nil {
			return err
		}
		rv.Set(reflect.ValueOf(*re))
		return nil
	case sjNumberType:
		if kind == sjTokRef && n >= r.lim[sjSecStr] && n < r.lim[sjSecFloat] {
			r.next()
			rv.SetString(r.numberText(n))
			return nil
		}
	}
	if r.isString(kind, n) && rv.Kind() != reflect.Interface {
		if u, ok := sjMethodValue(rv, sjTextUnmarshaler); ok {
			r.next()
			s := r.stringOf(kind, n)
			if err := r.spend(len(s)); err != nil {
				return err
			}
			if err := u.(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
				return fmt.Errorf("%w: %T.UnmarshalText: %w", ErrSerializeJSONType, u, err)
			}
			return nil
		}
	}

	switch rv.Kind() {
	case reflect.Interface:
		if !rv.IsNil() {
			if el := rv.Elem(); el.Kind() == reflect.Pointer && !el.IsNil() {
				return r.into(el, depth+1) // decode into what it points to
			}
		}
		if (kind == '$' || kind == '#') && t.NumMethod() > 0 && sjRemoteErrorPtrType.Implements(t) {
			// An error target takes an object too: Node sends a failed
			// invoke's error as {stack, name, message, code}.
			r.next()
			if err := r.open(at, depth); err != nil {
				return err
			}
			re, err := r.remoteError(at, depth)
			if err != nil {
				return err
			}
			rv.Set(reflect.ValueOf(re))
			return nil
		}
		x, err := r.any(depth)
		if err != nil {
			return err
		}
		xv := reflect.ValueOf(x)
		if !xv.Type().AssignableTo(t) {
			return r.mismatch(at, kind, n, t, "")
		}
		rv.Set(xv)
		return nil
	case reflect.Bool:
		if kind != sjTokLit || (n != sjLitTrue && n != sjLitFalse) {
			return r.mismatch(at, kind, n, t, "")
		}
		r.next()
		rv.SetBool(n == sjLitTrue)
		return nil
	case reflect.String:
		if !r.isString(kind, n) {
			return r.mismatch(at, kind, n, t, "")
		}
		r.next()
		rv.SetString(r.stringOf(kind, n))
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		return r.numberInto(rv, at, kind, n)
	case reflect.Struct:
		if kind != '$' && kind != '#' {
			return r.mismatch(at, kind, n, t, "")
		}
		return r.structInto(rv, at, depth)
	case reflect.Map:
		if kind != '$' && kind != '#' {
			return r.mismatch(at, kind, n, t, "")
		}
		return r.mapInto(rv, at, depth)
	case reflect.Slice:
		if sjIsByteSlice(t) {
			switch {
			case kind == '*':
				r.next()
				b, err := r.bytesInto(rv.Bytes()[:0], at)
				if err != nil {
					return err
				}
				if b == nil {
					b = []byte{}
				}
				rv.SetBytes(b)
				return nil
			case r.isString(kind, n):
				r.next()
				s := r.stringOf(kind, n)
				if err := r.spend(len(s)); err != nil {
					return err
				}
				rv.SetBytes([]byte(s))
				return nil
			}
		}
		if kind != '@' && kind != '*' {
			return r.mismatch(at, kind, n, t, "")
		}
		return r.sliceInto(rv, at, depth)
	case reflect.Array:
		if kind != '@' && kind != '*' {
			return r.mismatch(at, kind, n, t, "")
		}
		return r.sliceInto(rv, at, depth)
	}
	return r.mismatch(at, kind, n, t, "unsupported Go type")
}

var sjRemoteErrorPtrType = reflect.TypeFor[*RemoteError]()

// numberText is the decimal text of a number entry, for json.Number:
// integers exactly, other numbers as JavaScript prints them.
func (r *sjReader) numberText(n int) string {
	sec, text := r.entry(n)
	if sec == sjSecInt {
		if neg, mag, ok := sjParseMag(text); ok {
			s := strconv.FormatUint(mag, 10)
			if neg && mag != 0 {
				s = "-" + s
			}
			return s
		}
		return string(sjAppendNumberText(nil, sjV8ParseInt(text)))
	}
	return string(sjAppendNumberText(nil, sjFloatValue(text)))
}

// numberInto decodes an INTEGERS or FLOATS entry into a Go number, exactly:
// an integer target takes any integral value in its range (INTEGERS are
// read digit-exact), a float target the value Node would read.
func (r *sjReader) numberInto(rv reflect.Value, at int, kind byte, n int) error {
	t := rv.Type()
	if kind != sjTokRef {
		return r.mismatch(at, kind, n, t, "")
	}
	sec, text := r.entry(n)
	if sec != sjSecInt && sec != sjSecFloat {
		return r.mismatch(at, kind, n, t, "")
	}
	r.next()
	// The value as sign and magnitude when it is an integer.
	var neg, integral bool
	var mag uint64
	if sec == sjSecInt {
		neg, mag, integral = sjParseMag(text)
	} else if f := sjFloatValue(text); f == math.Trunc(f) && math.Abs(f) < 1<<64 {
		neg, mag, integral = f < 0, uint64(math.Abs(f)), true
	}
	switch rv.Kind() {
	case reflect.Float32, reflect.Float64:
		var f float64
		if sec == sjSecInt {
			_, f, _ = sjIntegerValue(text)
		} else {
			f = sjFloatValue(text)
		}
		if rv.OverflowFloat(f) {
			return r.mismatch(at, kind, n, t, "out of range")
		}
		rv.SetFloat(f)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if !integral || (neg && mag != 0) || rv.OverflowUint(mag) {
			return r.mismatch(at, kind, n, t, "not an integer in range")
		}
		rv.SetUint(mag)
	default: // signed integers
		if !integral || mag > 1<<63 || (!neg && mag == 1<<63) {
			return r.mismatch(at, kind, n, t, "not an integer in range")
		}
		i := int64(mag)
		if neg {
			i = -i
		}
		if rv.OverflowInt(i) {
			return r.mismatch(at, kind, n, t, "not an integer in range")
		}
		rv.SetInt(i)
	}
	return nil
}

// timeInto takes a Date, or a string in time.Time's text form (RFC 3339).
func (r *sjReader) timeInto(rv reflect.Value, at int, kind byte, n int) error {
	switch {
	case kind == sjTokLit && n == sjLitNull:
		r.next()
		return nil
	case kind == sjTokRef && r.section(n) == sjSecDate:
		r.next()
		rv.Set(reflect.ValueOf(r.refValue(n)))
		return nil
	case r.isString(kind, n):
		r.next()
		var tm time.Time
		if err := tm.UnmarshalText([]byte(r.stringOf(kind, n))); err != nil {
			return r.mismatch(at, kind, n, rv.Type(), err.Error())
		}
		rv.Set(reflect.ValueOf(tm))
		return nil
	}
	return r.mismatch(at, kind, n, rv.Type(), "")
}

// rawInto gives a Raw target the value re-encoded as a document of its
// own, entry for entry.
func (r *sjReader) rawInto(rv reflect.Value, depth int) error {
	e := sjGetEncoder()
	defer sjPutEncoder(e)
	if err := e.copyFrom(r, depth); err != nil {
		return err
	}
	out, err := e.finish(nil)
	if err != nil {
		return err
	}
	if err := r.spend(len(out)); err != nil {
		return err
	}
	rv.SetBytes(out)
	return nil
}

// unmarshalJSON hands a json.Unmarshaler the value as JSON: its natural
// value (see SerializeJSON) marshaled by encoding/json.
func (r *sjReader) unmarshalJSON(u json.Unmarshaler, depth int) error {
	at := r.pos
	var b []byte
	if kind, n, _ := r.peek(); kind == sjTokLit && n == sjLitNull {
		r.next()
		b = []byte("null")
	} else {
		x, err := r.any(depth)
		if err != nil {
			return err
		}
		if err := r.spend(sjJSONCost(x)); err != nil {
			return err
		}
		if b, err = json.Marshal(x); err != nil {
			return &sjTypeError{msg: fmt.Sprintf("cannot hand the value to %T.UnmarshalJSON: %v", u, err), off: r.stOff + at}
		}
	}
	if err := u.UnmarshalJSON(b); err != nil {
		return fmt.Errorf("%w: %T.UnmarshalJSON: %w", ErrSerializeJSONType, u, err)
	}
	return nil
}

// sjJSONCost estimates the size of a natural value as JSON, to charge the
// copy budget before encoding/json builds it.
func sjJSONCost(x any) int {
	switch v := x.(type) {
	case string:
		return len(v) + 2
	case []byte:
		return len(v)*4/3 + 4
	case []any:
		c := 2
		for _, el := range v {
			c += sjJSONCost(el) + 1
		}
		return c
	case map[string]any:
		c := 2
		for k, el := range v {
			c += len(k) + 4 + sjJSONCost(el)
		}
		return c
	case *RemoteError:
		return len(v.Name) + len(v.Message) + len(v.Code) + len(v.Stack) + 48
	}
	return 32 // numbers, booleans, null, dates
}

// structInto fills struct fields from an object's (or Error's) members,
// matching keys as encoding/json does; unknown keys are skipped.
func (r *sjReader) structInto(rv reflect.Value, at, depth int) error {
	r.next()
	if err := r.open(at, depth); err != nil {
		return err
	}
	info := sjStructInfo(rv.Type())
	for {
		more, err := r.more(at)
		if !more {
			return err
		}
		k, err := r.key()
		if err != nil {
			return err
		}
		if err := r.member(at); err != nil {
			return err
		}
		f := info.lookup(r.keyString(k))
		if f == nil {
			if err := r.skip(depth + 1); err != nil {
				return err
			}
			continue
		}
		fv, err := sjFieldToSet(rv, f.index)
		if err != nil {
			return err
		}
		if err := r.into(fv, depth+1); err != nil {
			return sjWithPath(err, "."+f.name)
		}
	}
}

// mapInto adds an object's members to a map, creating it if nil. Keys
// convert as in encoding/json: encoding.TextUnmarshaler, string kinds,
// decimal integers.
func (r *sjReader) mapInto(rv reflect.Value, at, depth int) error {
	t := rv.Type()
	kt := t.Key()
	textKey := reflect.PointerTo(kt).Implements(sjTextUnmarshaler)
	switch kt.Kind() {
	case reflect.String,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
	default:
		if !textKey {
			return r.mismatch(at, '$', 0, t, "unsupported map key type")
		}
	}
	r.next()
	if err := r.open(at, depth); err != nil {
		return err
	}
	if rv.IsNil() {
		rv.Set(reflect.MakeMap(t))
	}
	for {
		more, err := r.more(at)
		if !more {
			return err
		}
		keyAt := r.pos
		k, err := r.key()
		if err != nil {
			return err
		}
		if err := r.member(at); err != nil {
			return err
		}
		key := r.keyString(k)
		kv := reflect.New(kt)
		switch {
		case textKey:
			if err := r.spend(len(key)); err != nil {
				return err
			}
			if err := kv.Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(key)); err != nil {
				return fmt.Errorf("%w: map key %q: %T.UnmarshalText: %w", ErrSerializeJSONType, key, kv.Interface(), err)
			}
		case kt.Kind() == reflect.String:
			kv.Elem().SetString(key)
		case kt.Kind() >= reflect.Int && kt.Kind() <= reflect.Int64:
			i, err := strconv.ParseInt(key, 10, 64)
			if err != nil || kv.Elem().OverflowInt(i) {
				return &sjTypeError{msg: fmt.Sprintf("map key %q is not a %s", key, kt), off: r.stOff + keyAt}
			}
			kv.Elem().SetInt(i)
		default:
			u, err := strconv.ParseUint(key, 10, 64)
			if err != nil || kv.Elem().OverflowUint(u) {
				return &sjTypeError{msg: fmt.Sprintf("map key %q is not a %s", key, kt), off: r.stOff + keyAt}
			}
			kv.Elem().SetUint(u)
		}
		ev := reflect.New(t.Elem()).Elem()
		if err := r.into(ev, depth+1); err != nil {
			return sjWithPath(err, "["+strconv.Quote(key)+"]")
		}
		rv.SetMapIndex(kv.Elem(), ev)
	}
}

// sliceInto decodes an array or Buffer element by element into a slice
// (reusing its backing array, as encoding/json does) or a Go array (extra
// elements are dropped, missing ones zeroed).
func (r *sjReader) sliceInto(rv reflect.Value, at, depth int) error {
	r.next()
	if err := r.open(at, depth); err != nil {
		return err
	}
	isSlice := rv.Kind() == reflect.Slice
	i := 0
	for ; ; i++ {
		more, err := r.more(at)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		if isSlice {
			if i >= rv.Cap() {
				rv.Grow(1)
			}
			if i >= rv.Len() {
				rv.SetLen(i + 1)
				rv.Index(i).SetZero()
			}
		} else if i >= rv.Len() {
			if err := r.skip(depth + 1); err != nil {
				return err
			}
			continue
		}
		if r.st[at] == '*' { // a Buffer element must be a byte, whatever the target
			mark := r.pos
			if _, _, err := r.byteElem(); err != nil {
				return err
			}
			r.pos = mark
		}
		if err := r.into(rv.Index(i), depth+1); err != nil {
			return sjWithPath(err, "["+strconv.Itoa(i)+"]")
		}
	}
	switch {
	case !isSlice:
		for ; i < rv.Len(); i++ {
			rv.Index(i).SetZero()
		}
	case i == 0 && rv.IsNil():
		rv.Set(reflect.MakeSlice(rv.Type(), 0, 0))
	default:
		rv.SetLen(i)
	}
	return nil
}
