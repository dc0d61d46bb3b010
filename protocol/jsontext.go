package protocol

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// This file is the JSON text layer of conn objects: a strict scanner (the
// same grammar as encoding/json), string escaping exactly as JavaScript's
// JSON.stringify does it, and NormalizeJSON, which re-encodes a JSON text
// the way Node would after JSON.parse.

// ErrJSON: a text that must be JSON is not (NormalizeJSON).
var ErrJSON = errors.New("protocol: invalid JSON")

// maxJSONDepth bounds nesting, as encoding/json does, so that hostile input
// costs bounded stack.
const maxJSONDepth = 10000

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// scanner walks one JSON value. It records whether the value has
// insignificant whitespace inside it (so callers know it is not compact).
type scanner struct {
	spaced bool
}

// value checks the JSON value starting exactly at b[i] and returns the
// index just after it.
func (s *scanner) value(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return i, errEnd
	}
	switch c := b[i]; {
	case c == '{':
		return s.object(b, i, depth+1)
	case c == '[':
		return s.array(b, i, depth+1)
	case c == '"':
		end, _, err := scanString(b, i)
		return end, err
	case c == '-' || (c >= '0' && c <= '9'):
		return scanNumber(b, i)
	case c == 't':
		return literal(b, i, "true")
	case c == 'f':
		return literal(b, i, "false")
	case c == 'n':
		return literal(b, i, "null")
	default:
		return i, syntaxErr(b, i, "a value")
	}
}

func (s *scanner) space(b []byte, i int) int {
	j := skipSpace(b, i)
	if j != i {
		s.spaced = true
	}
	return j
}

func (s *scanner) object(b []byte, i, depth int) (int, error) {
	if depth > maxJSONDepth {
		return i, fmt.Errorf("nesting deeper than %d", maxJSONDepth)
	}
	i = s.space(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return i, syntaxErr(b, i, "a string key")
		}
		end, _, err := scanString(b, i)
		if err != nil {
			return end, err
		}
		i = s.space(b, end)
		if i >= len(b) || b[i] != ':' {
			return i, syntaxErr(b, i, "':'")
		}
		i = s.space(b, i+1)
		if i, err = s.value(b, i, depth); err != nil {
			return i, err
		}
		i = s.space(b, i)
		if i < len(b) && b[i] == ',' {
			i = s.space(b, i+1)
			continue
		}
		if i < len(b) && b[i] == '}' {
			return i + 1, nil
		}
		return i, syntaxErr(b, i, "',' or '}'")
	}
}

func (s *scanner) array(b []byte, i, depth int) (int, error) {
	if depth > maxJSONDepth {
		return i, fmt.Errorf("nesting deeper than %d", maxJSONDepth)
	}
	i = s.space(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, nil
	}
	for {
		var err error
		if i, err = s.value(b, i, depth); err != nil {
			return i, err
		}
		i = s.space(b, i)
		if i < len(b) && b[i] == ',' {
			i = s.space(b, i+1)
			continue
		}
		if i < len(b) && b[i] == ']' {
			return i + 1, nil
		}
		return i, syntaxErr(b, i, "',' or ']'")
	}
}

var errEnd = errors.New("unexpected end of JSON")

func syntaxErr(b []byte, i int, want string) error {
	if i >= len(b) {
		return fmt.Errorf("%w, want %s", errEnd, want)
	}
	return fmt.Errorf("got %s at offset %d, want %s", snippet(b[i:], 16), i, want)
}

func literal(b []byte, i int, lit string) (int, error) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, syntaxErr(b, i, lit)
	}
	return i + len(lit), nil
}

// scanNumber checks the JSON number at b[i].
func scanNumber(b []byte, i int) (int, error) {
	start := i
	if b[i] == '-' {
		i++
	}
	digits := func() int {
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i - j
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case digits() == 0:
		return i, syntaxErr(b, start, "a number")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return i, syntaxErr(b, start, "a number")
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return i, syntaxErr(b, start, "a number")
		}
	}
	return i, nil
}

// scanString checks the string literal at b[i] (b[i] == '"') and returns
// the index after its closing quote and whether it needs unquoting (it has
// escapes or bytes that are not valid UTF-8).
func scanString(b []byte, i int) (end int, complex bool, err error) {
	start := i
	for i++; i < len(b); {
		c := b[i]
		switch {
		case c == '"':
			return i + 1, complex, nil
		case c == '\\':
			complex = true
			if i+1 >= len(b) {
				return i, false, syntaxErr(b, i+1, "an escape")
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if len(b)-i < 6 {
					return i, false, syntaxErr(b, i, `\uXXXX`)
				}
				for _, h := range b[i+2 : i+6] {
					if unhex(h) < 0 {
						return i, false, syntaxErr(b, i, `\uXXXX`)
					}
				}
				i += 6
			default:
				return i, false, syntaxErr(b, i, "a valid escape")
			}
		case c < 0x20:
			return i, false, syntaxErr(b, i, "no control character in a string")
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				complex = true
			}
			i += size
		}
	}
	return i, false, fmt.Errorf("%w: string at offset %d has no closing quote", errEnd, start)
}

func unhex(c byte) rune {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0')
	case c >= 'a' && c <= 'f':
		return rune(c - 'a' + 10)
	case c >= 'A' && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

// unquote decodes a checked string literal (quotes included) as Node's
// JSON.parse of the UTF-8 bytes would: escapes resolved and surrogate
// pairs joined; bytes that are not UTF-8 become U+FFFD (one per maximal
// invalid subsequence, as Node's UTF-8 decoder does); an escaped lone
// surrogate, which a JavaScript string can hold, is kept as its 3-byte
// WTF-8 form so that appendJSString writes it back as the same escape.
func unquote(lit []byte, complex bool) string {
	body := lit[1 : len(lit)-1]
	if !complex {
		return string(body)
	}
	var out strings.Builder // its String does not copy: one allocation
	out.Grow(len(body))
	for i := 0; i < len(body); {
		c := body[i]
		if c != '\\' {
			if c < utf8.RuneSelf {
				out.WriteByte(c)
				i++
				continue
			}
			r, size := decodeRuneJS(body[i:])
			out.WriteRune(r) // U+FFFD for invalid bytes
			i += size
			continue
		}
		switch body[i+1] {
		case 'u':
			r := hex4(body[i+2:])
			i += 6
			if utf16.IsSurrogate(r) {
				if r < 0xDC00 && i+6 <= len(body) && body[i] == '\\' && body[i+1] == 'u' {
					if r2 := utf16.DecodeRune(r, hex4(body[i+2:])); r2 != utf8.RuneError {
						out.WriteRune(r2)
						i += 6
						continue
					}
				}
				out.Write([]byte{0xE0 | byte(r>>12), 0x80 | byte(r>>6)&0x3F, 0x80 | byte(r)&0x3F})
				continue
			}
			out.WriteRune(r)
			continue
		case 'b':
			out.WriteByte('\b')
		case 'f':
			out.WriteByte('\f')
		case 'n':
			out.WriteByte('\n')
		case 'r':
			out.WriteByte('\r')
		case 't':
			out.WriteByte('\t')
		default: // '"', '\\', '/'
			out.WriteByte(body[i+1])
		}
		i += 2
	}
	return out.String()
}

// decodeRuneJS is utf8.DecodeRune, except that an invalid sequence is
// as long as its maximal subpart (the longest prefix of a well-formed
// sequence, at least one byte): the unit that Node's UTF-8 decoder, like
// the WHATWG Encoding Standard, replaces by one U+FFFD.
func decodeRuneJS(b []byte) (rune, int) {
	r, size := utf8.DecodeRune(b)
	if r != utf8.RuneError || size != 1 {
		return r, size
	}
	lo, hi := byte(0x80), byte(0xBF)
	n := 0 // continuation bytes a well-formed sequence would have
	switch c := b[0]; {
	case c >= 0xC2 && c <= 0xDF:
		n = 1
	case c == 0xE0:
		n, lo = 2, 0xA0
	case c == 0xED:
		n, hi = 2, 0x9F
	case c >= 0xE1 && c <= 0xEF:
		n = 2
	case c == 0xF0:
		n, lo = 3, 0x90
	case c == 0xF4:
		n, hi = 3, 0x8F
	case c >= 0xF1 && c <= 0xF3:
		n = 3
	}
	i := 1
	for ; i <= n && i < len(b) && b[i] >= lo && b[i] <= hi; i++ {
		lo, hi = 0x80, 0xBF
	}
	return utf8.RuneError, i
}

func hex4(b []byte) rune {
	return unhex(b[0])<<12 | unhex(b[1])<<8 | unhex(b[2])<<4 | unhex(b[3])
}

// appendJSString appends s as a JSON string literal exactly as JavaScript's
// JSON.stringify writes it: only '"', '\\' and control characters are
// escaped (\b \t \n \f \r, others as lowercase \u00xx); '<', '>', '&',
// U+2028 and U+2029 stay raw. A lone surrogate in WTF-8 form (what
// unquote makes of an escaped one) is written as a lowercase \udxxx escape,
// as JSON.stringify writes lone surrogates; other bytes that are not UTF-8
// become U+FFFD, as in a JavaScript string decoded from the same bytes.
func appendJSString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
			dst = append(dst, s[start:i]...)
			if c == 0xED && len(s)-i >= 3 && s[i+1] >= 0xA0 && s[i+1] <= 0xBF && s[i+2] >= 0x80 && s[i+2] <= 0xBF {
				u := 0xD000 | uint16(s[i+1]&0x3F)<<6 | uint16(s[i+2]&0x3F)
				dst = append(dst, '\\', 'u', hexDigits[u>>12], hexDigits[u>>8&0xF], hexDigits[u>>4&0xF], hexDigits[u&0xF])
				i += 3
			} else {
				_, size = decodeRuneJS([]byte(s[i:min(len(s), i+4)]))
				dst = append(dst, "\uFFFD"...)
				i += size
			}
			start = i
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\r':
			dst = append(dst, '\\', 'r')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

const hexDigits = "0123456789abcdef"

// appendJSNumber appends f as JavaScript's Number.prototype.toString()
// (and so JSON.stringify) writes a finite number: the shortest digits that
// round-trip, plain notation for 1e-7 < |f| < 1e21, exponent notation
// ("1e+21", "1.5e-7") outside, and "0" for -0.
func appendJSNumber(dst []byte, f float64) []byte {
	if f == 0 {
		return append(dst, '0')
	}
	if f < 0 {
		dst = append(dst, '-')
		f = -f
	}
	// Shortest round-trip digits from strconv as d[.ddd]e±xx, then
	// ECMAScript's layout of value = 0.digits × 10^n.
	var tmp [32]byte
	e := strconv.AppendFloat(tmp[:0], f, 'e', -1, 64)
	p := bytes.IndexByte(e, 'e')
	x := 0
	for _, c := range e[p+2:] {
		x = x*10 + int(c-'0')
	}
	if e[p+1] == '-' {
		x = -x
	}
	var digs [24]byte
	digits := append(digs[:0], e[0])
	if p > 1 {
		digits = append(digits, e[2:p]...)
	}
	k, n := len(digits), x+1
	switch {
	case k <= n && n <= 21:
		dst = append(dst, digits...)
		for ; k < n; k++ {
			dst = append(dst, '0')
		}
	case 0 < n && n <= 21:
		dst = append(dst, digits[:n]...)
		dst = append(dst, '.')
		dst = append(dst, digits[n:]...)
	case -6 < n && n <= 0:
		dst = append(dst, '0', '.')
		for ; n < 0; n++ {
			dst = append(dst, '0')
		}
		dst = append(dst, digits...)
	default:
		dst = append(dst, digits[0])
		if k > 1 {
			dst = append(dst, '.')
			dst = append(dst, digits[1:]...)
		}
		dst = append(dst, 'e')
		if n-1 >= 0 {
			dst = append(dst, '+')
		}
		dst = strconv.AppendInt(dst, int64(n-1), 10)
	}
	return dst
}

// NormalizeJSON appends src re-encoded exactly as Node's
// JSON.stringify(JSON.parse(src)) would produce it, and returns an error
// wrapping ErrJSON if src is not one valid JSON value.
//
// That means: compact; strings escaped as JSON.stringify does (see
// AppendConn); numbers as JavaScript prints the double they parse to
// (1.0 → 1, 1e2 → 100, too large → null); object members in JavaScript
// property order (integer-like keys ascending first, then the others in
// order of first appearance) with a repeated key keeping its last value.
// Node's subscription keys and the reg objects it sends are in this form,
// so a registration built in Go must be normalized to match theirs.
func NormalizeJSON(dst, src []byte) ([]byte, error) {
	i := skipSpace(src, 0)
	out, i, err := normValue(dst, src, i, 0)
	if err == nil {
		if i = skipSpace(src, i); i != len(src) {
			err = syntaxErr(src, i, "end of input")
		}
	}
	if err != nil {
		return dst, fmt.Errorf("%w: %w", ErrJSON, err)
	}
	return out, nil
}

type member struct {
	key string
	val []byte
}

func normValue(dst, b []byte, i, depth int) ([]byte, int, error) {
	if i >= len(b) {
		return dst, i, syntaxErr(b, i, "a value")
	}
	switch c := b[i]; {
	case c == '{':
		return normObject(dst, b, i, depth+1)
	case c == '[':
		return normArray(dst, b, i, depth+1)
	case c == '"':
		end, complex, err := scanString(b, i)
		if err != nil {
			return dst, end, err
		}
		if !complex { // raw valid UTF-8 without escapes: JSON.stringify writes it the same
			return append(dst, b[i:end]...), end, nil
		}
		return appendJSString(dst, unquote(b[i:end], complex)), end, nil
	case c == '-' || (c >= '0' && c <= '9'):
		end, err := scanNumber(b, i)
		if err != nil {
			return dst, end, err
		}
		f, err := strconv.ParseFloat(string(b[i:end]), 64)
		if math.IsInf(f, 0) { // JSON.parse gives Infinity, which stringifies as null
			return append(dst, "null"...), end, nil
		}
		if err != nil {
			return dst, end, err
		}
		return appendJSNumber(dst, f), end, nil
	default:
		var s scanner
		end, err := s.value(b, i, depth)
		if err != nil {
			return dst, end, err
		}
		return append(dst, b[i:end]...), end, nil
	}
}

func normArray(dst, b []byte, i, depth int) ([]byte, int, error) {
	if depth > maxJSONDepth {
		return dst, i, fmt.Errorf("nesting deeper than %d", maxJSONDepth)
	}
	dst = append(dst, '[')
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return append(dst, ']'), i + 1, nil
	}
	for {
		var err error
		if dst, i, err = normValue(dst, b, i, depth); err != nil {
			return dst, i, err
		}
		i = skipSpace(b, i)
		if i < len(b) && b[i] == ',' {
			dst = append(dst, ',')
			i = skipSpace(b, i+1)
			continue
		}
		if i < len(b) && b[i] == ']' {
			return append(dst, ']'), i + 1, nil
		}
		return dst, i, syntaxErr(b, i, "',' or ']'")
	}
}

func normObject(dst, b []byte, i, depth int) ([]byte, int, error) {
	if depth > maxJSONDepth {
		return dst, i, fmt.Errorf("nesting deeper than %d", maxJSONDepth)
	}
	var members []member
	index := map[string]int{}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return append(dst, '{', '}'), i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return dst, i, syntaxErr(b, i, "a string key")
		}
		end, complex, err := scanString(b, i)
		if err != nil {
			return dst, end, err
		}
		key := unquote(b[i:end], complex)
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return dst, i, syntaxErr(b, i, "':'")
		}
		var val []byte
		if val, i, err = normValue(nil, b, skipSpace(b, i+1), depth); err != nil {
			return dst, i, err
		}
		if at, ok := index[key]; ok {
			members[at].val = val
		} else {
			index[key] = len(members)
			members = append(members, member{key, val})
		}
		i = skipSpace(b, i)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
			continue
		}
		if i < len(b) && b[i] == '}' {
			i++
			break
		}
		return dst, i, syntaxErr(b, i, "',' or '}'")
	}
	// JavaScript's own-property order: array indexes ascending, then
	// string keys in creation order.
	slices.SortStableFunc(members, func(a, b member) int {
		ai, aok := arrayIndex(a.key)
		bi, bok := arrayIndex(b.key)
		switch {
		case aok && bok:
			return cmpUint(ai, bi)
		case aok:
			return -1
		case bok:
			return 1
		}
		return 0
	})
	dst = append(dst, '{')
	for k, m := range members {
		if k > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSString(dst, m.key)
		dst = append(dst, ':')
		dst = append(dst, m.val...)
	}
	return append(dst, '}'), i, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// arrayIndex reports whether key is a JavaScript array index (the
// canonical decimal form of an integer in [0, 2^32-2]); those properties
// come first, ascending, in an object's own-key order.
func arrayIndex(key string) (uint64, bool) {
	if key == "" || len(key) > 10 || (key[0] == '0' && len(key) > 1) {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, v <= math.MaxUint32-1
}
