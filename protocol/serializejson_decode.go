package protocol

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// sjReader reads one serialize-json document: the dictionary is indexed
// up front (entry offsets only; values are parsed when referenced) and the
// structure is read token by token from pos.
//
// It is not safe for concurrent use; each Decode takes one from sjReaders.
type sjReader struct {
	data   []byte
	st     []byte // the STRUCTURE section
	stOff  int    // offset of st in data, for error messages
	pos    int    // next byte of st
	offs   []uint32
	lim    [sjSections]int // entries [lim[k-1], lim[k]) are in section k
	end    [sjSections]int // end offset of each section in data
	strs   []string        // decoded STRINGS entries, filled on first use
	strOK  []bool
	remap  []int32 // copyFrom: entry → index in the target section, or -1
	mapped []int   // copyFrom: entries of remap to reset
	budget int     // bytes still allowed for copies that references can multiply
}

var sjReaders = sync.Pool{New: func() any { return new(sjReader) }}

// sjBudget is how many bytes, per input byte, a decode may spend on
// values a shared dictionary entry could otherwise multiply: []byte copies
// of strings, UnmarshalText and UnmarshalJSON input, nested Raw values.
const sjBudget = 8

// sjGetReader indexes data. Every INTEGERS, FLOATS and DATES entry is
// checked here, referenced or not.
func sjGetReader(data []byte) (*sjReader, error) {
	if uint64(len(data)) >= math.MaxUint32 {
		return nil, fmt.Errorf("%w: document of %d bytes is too large", ErrSerializeJSON, len(data))
	}
	r := sjReaders.Get().(*sjReader)
	r.data = data
	r.offs = r.offs[:0]
	r.budget = sjBudget*len(data) + 4096
	p := 0
	for k := 0; k < sjSections; k++ {
		j := bytes.IndexByte(data[p:], '^')
		if j < 0 {
			sjPutReader(r)
			return nil, fmt.Errorf("%w: %d sections, want 5 separated by '^'", ErrSerializeJSON, k+1)
		}
		if sec := data[p : p+j]; len(sec) > 0 {
			if k == sjSecInt || k == sjSecDate {
				if err := r.indexNumbers(p, sec, k); err != nil {
					sjPutReader(r)
					return nil, err
				}
			} else {
				r.offs = append(r.offs, uint32(p))
				for i := bytes.IndexByte(sec, '|'); i >= 0; {
					r.offs = append(r.offs, uint32(p+i+1))
					if d := bytes.IndexByte(sec[i+1:], '|'); d >= 0 {
						i += d + 1
					} else {
						i = -1
					}
				}
			}
		}
		r.lim[k] = len(r.offs)
		r.end[k] = p + j
		p += j + 1
	}
	r.st, r.stOff, r.pos = data[p:], p, 0
	if i := bytes.IndexByte(r.st, '^'); i >= 0 {
		sjPutReader(r)
		return nil, fmt.Errorf("%w: more than 5 sections (a '^' at offset %d)", ErrSerializeJSON, p+i)
	}
	if err := r.checkFloats(); err != nil {
		sjPutReader(r)
		return nil, err
	}
	n := r.lim[sjSecStr]
	r.strs = slices.Grow(r.strs[:0], n)[:n]
	r.strOK = slices.Grow(r.strOK[:0], n)[:n]
	clear(r.strOK)
	return r, nil
}

func sjPutReader(r *sjReader) {
	clear(r.strs) // the strings belong to the caller now
	r.data, r.st = nil, nil
	if cap(r.offs) > sjMaxPooled/4 || cap(r.strs) > sjMaxPooled/16 || cap(r.remap) > sjMaxPooled/4 {
		return
	}
	sjReaders.Put(r)
}

var sjSectionNames = [sjSections]string{"STRINGS", "INTEGERS", "FLOATS", "DATES"}

// indexNumbers records the entries of an INTEGERS or DATES section that
// starts at offset p, checking each is [-]base-36 digits, at most
// sjMaxNumberLen long (and, for dates, within int64).
func (r *sjReader) indexNumbers(p int, sec []byte, k int) error {
	start := 0
	r.offs = append(r.offs, uint32(p))
	for i := 0; i <= len(sec); i++ {
		if i < len(sec) && sec[i] != '|' {
			if sjDigitVal[sec[i]] == 0xFF && (sec[i] != '-' || i != start) {
				return r.badEntry(k, p+start, sec[start:])
			}
			continue
		}
		text := sec[start:i]
		if len(text) == 0 || len(text) > sjMaxNumberLen || text[len(text)-1] == '-' {
			return r.badEntry(k, p+start, text)
		}
		if k == sjSecDate {
			if _, ok := sjDateMillis(text); !ok {
				return r.badEntry(k, p+start, text)
			}
		}
		if i < len(sec) {
			r.offs = append(r.offs, uint32(p+i+1))
		}
		start = i + 1
	}
	return nil
}

func (r *sjReader) badEntry(k, at int, text []byte) error {
	if i := bytes.IndexByte(text, '|'); i >= 0 {
		text = text[:i]
	}
	return fmt.Errorf("%w: %s entry %q at offset %d is not a valid number", ErrSerializeJSON, sjSectionNames[k], sjQuote(text), at)
}

// checkFloats checks every FLOATS entry.
func (r *sjReader) checkFloats() error {
	for i := r.lim[sjSecInt]; i < r.lim[sjSecFloat]; i++ {
		if _, text := r.entry(i); !sjValidFloat(text) {
			return r.badEntry(sjSecFloat, int(r.offs[i]), text)
		}
	}
	return nil
}

// sjQuote shortens text for an error message.
func sjQuote(text []byte) string {
	if len(text) > 40 {
		return string(text[:40]) + "..."
	}
	return string(text)
}

// sjDateMillis parses a DATES entry; ok is false beyond int64.
func sjDateMillis(text []byte) (int64, bool) {
	neg, mag, ok := sjParseMag(text)
	if !ok || mag > 1<<63 || (!neg && mag == 1<<63) {
		return 0, false
	}
	ms := int64(mag)
	if neg {
		ms = -ms
	}
	return ms, true
}

// section tells which section dictionary entry i is in.
func (r *sjReader) section(i int) int {
	switch {
	case i < r.lim[sjSecStr]:
		return sjSecStr
	case i < r.lim[sjSecInt]:
		return sjSecInt
	case i < r.lim[sjSecFloat]:
		return sjSecFloat
	}
	return sjSecDate
}

// entry returns dictionary entry i (in range) and its section.
func (r *sjReader) entry(i int) (int, []byte) {
	sec := r.section(i)
	end := r.end[sec]
	if i+1 < r.lim[sec] {
		end = int(r.offs[i+1]) - 1
	}
	return sec, r.data[r.offs[i]:end]
}

// str returns STRINGS entry i un-escaped. Each entry is decoded once, so
// a string referenced many times costs its length once.
func (r *sjReader) str(i int) string {
	if r.strOK[i] {
		return r.strs[i]
	}
	_, text := r.entry(i)
	s := sjUnescape(text)
	r.strs[i], r.strOK[i] = s, true
	return s
}

// sjUnescape undoes the string escaping in one left-to-right pass, as
// Node's /\+|%2B|%7C|%5E|%25/g does; any other '%' is kept.
func sjUnescape(text []byte) string {
	if bytes.IndexByte(text, '+') < 0 && bytes.IndexByte(text, '%') < 0 {
		return string(text)
	}
	var out strings.Builder
	out.Grow(len(text))
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c == '+' {
			out.WriteByte(' ')
			continue
		}
		if c == '%' && i+2 < len(text) {
			var d byte
			switch string(text[i+1 : i+3]) {
			case "2B":
				d = '+'
			case "7C":
				d = '|'
			case "5E":
				d = '^'
			case "25":
				d = '%'
			}
			if d != 0 {
				out.WriteByte(d)
				i += 2
				continue
			}
		}
		out.WriteByte(c)
	}
	return out.String()
}

// Token kinds returned by next; containers and ']' are their own byte.
const (
	sjTokEOF = 0
	sjTokRef = 'r' // n is a dictionary index (checked to be in range)
	sjTokLit = 'l' // n is 1..5
)

// sjTokenChar marks the one-character tokens; '|' only separates.
var sjTokenChar = [256]bool{'$': true, '@': true, '*': true, '#': true, ']': true, '|': true}

// next reads the next token.
func (r *sjReader) next() (kind byte, n int, err error) {
	st := r.st
	for r.pos < len(st) && st[r.pos] == '|' {
		r.pos++
	}
	if r.pos >= len(st) {
		return sjTokEOF, 0, nil
	}
	if c := st[r.pos]; sjTokenChar[c] {
		r.pos++
		return c, 0, nil
	}
	start := r.pos
	neg := st[r.pos] == '-'
	if neg {
		r.pos++
	}
	var v uint64
	digits := 0
	for ; r.pos < len(st) && !sjTokenChar[st[r.pos]]; r.pos++ {
		d := sjDigitVal[st[r.pos]]
		if d == 0xFF {
			return 0, 0, r.errorf(r.pos, "unexpected %q in the structure", st[r.pos])
		}
		if v < 1<<40 { // beyond any dictionary; stop before overflowing
			v = v*36 + uint64(d)
		}
		digits++
	}
	switch {
	case digits == 0:
		return 0, 0, r.errorf(start, "'-' without a number")
	case neg && v == 0:
		return sjTokRef, 0, r.checkRef(start, 0) // "-0" is index 0 to parseInt too
	case neg && v <= sjLitUndef:
		return sjTokLit, int(v), nil
	case neg:
		return 0, 0, r.errorf(start, "unknown literal token %s", st[start:r.pos])
	}
	return sjTokRef, int(v), r.checkRef(start, v)
}

func (r *sjReader) checkRef(at int, v uint64) error {
	if v >= uint64(len(r.offs)) {
		return r.errorf(at, "index %s out of range (the dictionary has %d entries)", r.st[at:r.pos], len(r.offs))
	}
	return nil
}

// errorf reports malformed input at offset at of the structure.
func (r *sjReader) errorf(at int, format string, args ...any) error {
	return fmt.Errorf("%w: structure offset %d: %s", ErrSerializeJSON, r.stOff+at, fmt.Sprintf(format, args...))
}

// more reads up to the next member of a container: false after its ']'.
func (r *sjReader) more(open int) (bool, error) {
	for r.pos < len(r.st) && r.st[r.pos] == '|' {
		r.pos++
	}
	if r.pos >= len(r.st) {
		return false, r.errorf(open, "unterminated %q", r.st[open])
	}
	if r.st[r.pos] == ']' {
		r.pos++
		return false, nil
	}
	return true, nil
}

// atEnd checks that nothing follows the top-level value.
func (r *sjReader) atEnd() error {
	for r.pos < len(r.st) && r.st[r.pos] == '|' {
		r.pos++
	}
	if r.pos < len(r.st) {
		return r.errorf(r.pos, "data after the top-level value")
	}
	return nil
}

// open checks the nesting depth of a container that starts at offset at.
func (r *sjReader) open(at, depth int) error {
	if depth >= SerializeJSONMaxDepth {
		return r.errorf(at, "nesting deeper than %d", SerializeJSONMaxDepth)
	}
	return nil
}

// key reads an object or Error key, which must be a string: it returns
// the STRINGS index, or -1 for the empty string.
func (r *sjReader) key() (int, error) {
	at := r.pos
	kind, n, err := r.next()
	if err != nil {
		return 0, err
	}
	switch {
	case kind == sjTokRef && n < r.lim[sjSecStr]:
		return n, nil
	case kind == sjTokLit && n == sjLitEmpty:
		return -1, nil
	}
	return 0, r.errorf(at, "object key is %s, not a string", r.describe(kind, n))
}

func (r *sjReader) keyString(i int) string {
	if i < 0 {
		return ""
	}
	return r.str(i)
}

// value after the key of an object member: there must be one.
func (r *sjReader) member(open int) error {
	for r.pos < len(r.st) && r.st[r.pos] == '|' {
		r.pos++
	}
	if r.pos >= len(r.st) || r.st[r.pos] == ']' {
		return r.errorf(r.pos, "object key without a value (object at offset %d)", r.stOff+open)
	}
	return nil
}

// byteElem reads one Buffer element: a reference to an INTEGERS entry in
// 0..255.
// It also returns the entry's index.
func (r *sjReader) byteElem() (byte, int, error) {
	at := r.pos
	kind, n, err := r.next()
	if err != nil {
		return 0, 0, err
	}
	if kind != sjTokRef || n < r.lim[sjSecStr] || n >= r.lim[sjSecInt] {
		return 0, 0, r.errorf(at, "Buffer element is %s, not an integer", r.describe(kind, n))
	}
	_, text := r.entry(n)
	if len(text) == 1 { // the common case: one digit, 0..35
		return sjDigitVal[text[0]], n, nil
	}
	neg, mag, ok := sjParseMag(text)
	if !ok || mag > 255 || (neg && mag != 0) {
		return 0, 0, r.errorf(at, "Buffer element %s is not a byte", text)
	}
	return byte(mag), n, nil
}

// bytesInto appends the elements of a Buffer whose '*' is at offset open.
// The loop reads the usual shape (an index, then '|' or ']', referencing
// an INTEGERS entry of one or two digits) inline; anything else goes
// through byteElem, which also reports errors.
func (r *sjReader) bytesInto(dst []byte, open int) ([]byte, error) {
	st := r.st
	if i := bytes.IndexByte(st[r.pos:], ']'); i >= 0 {
		dst = slices.Grow(dst, bytes.Count(st[r.pos:r.pos+i], []byte{'|'})+1)
	}
	lo, hi := uint64(r.lim[sjSecStr]), uint64(r.lim[sjSecInt])
	intEnd := r.end[sjSecInt]
	for {
		pos := r.pos
		for pos < len(st) && st[pos] == '|' {
			pos++
		}
		if pos < len(st) && st[pos] == ']' {
			r.pos = pos + 1
			return dst, nil
		}
		start, v := pos, uint64(0)
		for pos < len(st) && pos-start < 8 {
			d := sjDigitVal[st[pos]]
			if d == 0xFF {
				break
			}
			v = v*36 + uint64(d)
			pos++
		}
		if pos > start && (pos == len(st) || st[pos] == '|' || st[pos] == ']') && v >= lo && v < hi {
			end := intEnd
			if v+1 < hi {
				end = int(r.offs[v+1]) - 1
			}
			text := r.data[r.offs[v]:end]
			switch {
			case len(text) == 1:
				r.pos = pos
				dst = append(dst, sjDigitVal[text[0]])
				continue
			case len(text) == 2 && text[0] != '-':
				if b := uint(sjDigitVal[text[0]])*36 + uint(sjDigitVal[text[1]]); b <= 255 {
					r.pos = pos
					dst = append(dst, byte(b))
					continue
				}
			}
		}
		r.pos = start
		more, err := r.more(open)
		if !more {
			return dst, err
		}
		b, _, err := r.byteElem()
		if err != nil {
			return dst, err
		}
		dst = append(dst, b)
	}
}

// describe names what a token is, for error messages.
func (r *sjReader) describe(kind byte, n int) string {
	switch kind {
	case sjTokEOF:
		return "the end of the structure"
	case sjTokLit:
		return [...]string{sjLitTrue: "true", sjLitFalse: "false", sjLitNull: "null", sjLitEmpty: "a string", sjLitUndef: "undefined"}[n]
	case '@':
		return "an array"
	case '$':
		return "an object"
	case '*':
		return "a Buffer"
	case '#':
		return "an Error"
	case ']':
		return "']'"
	}
	sec, text := r.entry(n)
	switch sec {
	case sjSecStr:
		return "a string"
	case sjSecInt:
		return "the integer " + sjQuote(text) + " (base 36)"
	case sjSecFloat:
		return "the number " + sjQuote(text)
	}
	return "a Date"
}

// refValue is the natural value of dictionary entry n.
func (r *sjReader) refValue(n int) any {
	sec, text := r.entry(n)
	switch sec {
	case sjSecStr:
		return r.str(n)
	case sjSecInt:
		i, f, isInt := sjIntegerValue(text)
		if isInt {
			return i
		}
		return f
	case sjSecFloat:
		return sjFloatValue(text)
	}
	ms, _ := sjDateMillis(text)
	return time.UnixMilli(ms).UTC()
}

// any decodes the next value into its natural Go value (see SerializeJSON).
func (r *sjReader) any(depth int) (any, error) {
	at := r.pos
	kind, n, err := r.next()
	if err != nil {
		return nil, err
	}
	switch kind {
	case sjTokRef:
		return r.refValue(n), nil
	case sjTokLit:
		switch n {
		case sjLitTrue:
			return true, nil
		case sjLitFalse:
			return false, nil
		case sjLitEmpty:
			return "", nil
		}
		return nil, nil // null, undefined
	case '@':
		if err := r.open(at, depth); err != nil {
			return nil, err
		}
		arr := []any{}
		for {
			more, err := r.more(at)
			if !more {
				return arr, err
			}
			v, err := r.any(depth + 1)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
	case '$':
		if err := r.open(at, depth); err != nil {
			return nil, err
		}
		obj := map[string]any{}
		for {
			more, err := r.more(at)
			if !more {
				return obj, err
			}
			k, err := r.key()
			if err != nil {
				return nil, err
			}
			if err := r.member(at); err != nil {
				return nil, err
			}
			v, err := r.any(depth + 1)
			if err != nil {
				return nil, err
			}
			obj[r.keyString(k)] = v
		}
	case '*':
		return r.bytesInto([]byte{}, at)
	case '#':
		if err := r.open(at, depth); err != nil {
			return nil, err
		}
		return r.remoteError(at, depth)
	case ']':
		return nil, r.errorf(at, "unexpected ']'")
	}
	return nil, r.errorf(at, "missing value")
}

// remoteError reads the members of an Error (after '#' at offset open) or
// of an object into a RemoteError. message, stack, name and code are kept,
// strings as they are and numbers and booleans as JavaScript's String()
// writes them; other members and other value kinds are read and dropped.
func (r *sjReader) remoteError(open, depth int) (*RemoteError, error) {
	re := &RemoteError{}
	for {
		more, err := r.more(open)
		if !more {
			return re, err
		}
		k, err := r.key()
		if err != nil {
			return nil, err
		}
		if err := r.member(open); err != nil {
			return nil, err
		}
		var dst *string
		switch r.keyString(k) {
		case "message":
			dst = &re.Message
		case "stack":
			dst = &re.Stack
		case "name":
			dst = &re.Name
		case "code":
			dst = &re.Code
		default:
			if err := r.skip(depth + 1); err != nil {
				return nil, err
			}
			continue
		}
		v, err := r.any(depth + 1)
		if err != nil {
			return nil, err
		}
		switch v := v.(type) {
		case string:
			*dst = v
		case int64:
			*dst = strconv.FormatInt(v, 10)
		case float64:
			*dst = string(sjAppendNumberText(nil, v))
		case bool:
			*dst = strconv.FormatBool(v)
		case nil:
			*dst = ""
		}
	}
}

// skip reads over the next value, checking it as any would, without
// building it.
func (r *sjReader) skip(depth int) error {
	at := r.pos
	kind, _, err := r.next()
	if err != nil {
		return err
	}
	switch kind {
	case sjTokRef, sjTokLit:
		return nil
	case '@', '$', '#':
		if err := r.open(at, depth); err != nil {
			return err
		}
		for {
			more, err := r.more(at)
			if !more {
				return err
			}
			if kind != '@' {
				if _, err := r.key(); err != nil {
					return err
				}
				if err := r.member(at); err != nil {
					return err
				}
			}
			if err := r.skip(depth + 1); err != nil {
				return err
			}
		}
	case '*':
		for {
			more, err := r.more(at)
			if !more {
				return err
			}
			if _, _, err := r.byteElem(); err != nil {
				return err
			}
		}
	case ']':
		return r.errorf(at, "unexpected ']'")
	}
	return r.errorf(at, "missing value")
}

// copyFrom copies the next value of r into e token for token. Each source
// entry is copied once, however often it is referenced, so the copy is
// never larger than the source. The checks are those of skip.
func (e *sjEncoder) copyFrom(r *sjReader, depth int) error {
	if len(r.remap) < len(r.offs) {
		r.remap = make([]int32, len(r.offs))
		for i := range r.remap {
			r.remap[i] = -1
		}
	}
	err := e.copyValue(r, depth)
	for _, i := range r.mapped {
		r.remap[i] = -1
	}
	r.mapped = r.mapped[:0]
	return err
}

func (e *sjEncoder) copyValue(r *sjReader, depth int) error {
	at := r.pos
	kind, n, err := r.next()
	if err != nil {
		return err
	}
	switch kind {
	case sjTokRef:
		e.copyRef(r, n)
		return nil
	case sjTokLit:
		e.lit(uint32(n))
		return nil
	case '@', '$', '#', '*':
		if err := r.open(at, depth); err != nil {
			return err
		}
		e.open(kind)
		for {
			more, err := r.more(at)
			if err != nil {
				return err
			}
			if !more {
				e.closeToken()
				return nil
			}
			switch kind {
			case '*':
				_, n, err := r.byteElem()
				if err != nil {
					return err
				}
				e.copyRef(r, n)
				continue
			case '$', '#':
				k, err := r.key()
				if err != nil {
					return err
				}
				if k < 0 {
					e.lit(sjLitEmpty)
				} else {
					e.copyRef(r, k)
				}
				if err := r.member(at); err != nil {
					return err
				}
			}
			if err := e.copyValue(r, depth+1); err != nil {
				return err
			}
		}
	case ']':
		return r.errorf(at, "unexpected ']'")
	}
	return r.errorf(at, "missing value")
}

// copyRef adds a reference to source entry n, copying its text the first
// time. An empty STRINGS entry becomes the empty-string literal (an empty
// entry cannot be written as the only one of a section).
func (e *sjEncoder) copyRef(r *sjReader, n int) {
	sec, text := r.entry(n)
	if sec == sjSecStr && len(text) == 0 {
		e.lit(sjLitEmpty)
		return
	}
	if m := r.remap[n]; m >= 0 {
		e.toks = append(e.toks, uint32(m)<<sjTagBits|uint32(sec))
		return
	}
	r.remap[n] = int32(e.n[sec])
	r.mapped = append(r.mapped, n)
	e.sec[sec] = append(e.entry(sec), text...)
	e.ref(sec)
}
