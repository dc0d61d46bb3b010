package protocol

import (
	"math"
	"strconv"
	"unsafe"
)

// Numbers in serialize-json: base-36 integers as V8 prints and parses them,
// and decimal floats as JavaScript prints them (appendJSNumber).

// sjDigits are the base-36 digits serialize-json writes (Node upper-cases
// V8's lower-case output).
const sjDigits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

// sjMaxSafe is Number.MAX_SAFE_INTEGER, 2^53-1: every integer up to it is
// a double, and V8's base-36 conversions are exact up to it.
const sjMaxSafe = 1<<53 - 1

// sjMaxNumberLen bounds the text of one INTEGERS or DATES entry. V8 prints
// the largest double in 198 base-36 digits; the bound keeps the work per
// reference constant however often an entry is referenced.
const sjMaxNumberLen = 256

// sjMaxFloatLen bounds the text of one FLOATS entry. JavaScript's
// shortest form of any double is at most 25 characters.
const sjMaxFloatLen = 64

// sjDigitVal maps a byte to its base-36 value (either case), or 0xFF.
var sjDigitVal = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xFF
	}
	for i := 0; i < 36; i++ {
		t[sjDigits[i]] = byte(i)
		if i >= 10 {
			t[sjDigits[i]+'a'-'A'] = byte(i)
		}
	}
	return t
}()

// sjAppendBase36 appends mag in upper-case base 36, with a '-' first when
// neg and mag is not zero.
func sjAppendBase36(dst []byte, neg bool, mag uint64) []byte {
	var buf [14]byte // 2^64-1 has 13 base-36 digits
	i := len(buf)
	for mag >= 36 {
		q := mag / 36
		i--
		buf[i] = sjDigits[mag-q*36]
		mag = q
	}
	i--
	buf[i] = sjDigits[mag]
	if neg && !(i == len(buf)-1 && mag == 0) {
		i--
		buf[i] = '-'
	}
	return append(dst, buf[i:]...)
}

// sjAppendInt appends v in base 36.
func sjAppendInt(dst []byte, v int64) []byte {
	mag := uint64(v)
	if v < 0 {
		mag = -mag
	}
	return sjAppendBase36(dst, v < 0, mag)
}

// sjAppendIntegralFloat appends the finite integral double f exactly as
// V8's Number.prototype.toString(36) does (upper-cased). Up to 2^53 the
// digits are exact. Above, V8 divides by 36 in floating point while the
// quotient stays at or above 2^53, writing a '0' each time, and then
// prints the rounded quotient: the digits identify the magnitude only
// approximately (2^60 prints as 8RC4KBDVSS00, exactly 8RC4KBDVSS1S), and
// this function reproduces those digits bit for bit.
func sjAppendIntegralFloat(dst []byte, f float64) []byte {
	if f == 0 {
		return append(dst, '0') // also -0, as (-0).toString(36)
	}
	neg := f < 0
	if neg {
		f = -f
	}
	if f <= sjMaxSafe {
		return sjAppendBase36(dst, neg, uint64(f))
	}
	var buf [sjMaxNumberLen]byte // 1.8e308 has 198 base-36 digits
	i := len(buf)
	for {
		q := f / 36
		if q < 1<<53 {
			break
		}
		f = q
		i--
		buf[i] = '0'
	}
	for {
		r := math.Mod(f, 36) // exact, like C's fmod
		i--
		buf[i] = sjDigits[int(r)]
		f = (f - r) / 36
		if !(f > 0) {
			break
		}
	}
	if neg {
		i--
		buf[i] = '-'
	}
	return append(dst, buf[i:]...)
}

// sjParseMag parses a base-36 integer text [-]digits (either case; the
// caller has checked the syntax). ok is false when the magnitude does not
// fit in a uint64.
func sjParseMag(text []byte) (neg bool, mag uint64, ok bool) {
	if len(text) > 0 && text[0] == '-' {
		neg, text = true, text[1:]
	}
	for _, c := range text {
		d := uint64(sjDigitVal[c])
		if mag > (math.MaxUint64-d)/36 {
			return neg, 0, false
		}
		mag = mag*36 + d
	}
	return neg, mag, true
}

// sjV8ParseInt returns what V8's parseInt(text, 36) returns for a valid
// base-36 integer text: leading zeros are skipped, then the digits are
// accumulated five at a time (the largest run whose multiplier stays
// within 32 bits) in double arithmetic. Beyond 2^53 that rounds at every
// step, which is why Node reads 5V1J4F4DS7C000 as 1.0000000000000001e21.
func sjV8ParseInt(text []byte) float64 {
	neg := false
	if len(text) > 0 && text[0] == '-' {
		neg, text = true, text[1:]
	}
	for len(text) > 0 && text[0] == '0' {
		text = text[1:]
	}
	const maxMultiplier = math.MaxUint32 / 36
	var result float64
	for len(text) > 0 {
		part, mult := uint32(0), uint32(1)
		for len(text) > 0 && mult*36 <= maxMultiplier {
			part = part*36 + uint32(sjDigitVal[text[0]])
			mult *= 36
			text = text[1:]
		}
		// The conversion forbids fusing the multiply and the add: V8
		// rounds after each.
		result = float64(result*float64(mult)) + float64(part)
	}
	if neg {
		return -result
	}
	return result
}

// sjIntegerValue is the natural Go value of an INTEGERS entry: an int64 when
// the magnitude is at most 2^53-1 (a JavaScript safe integer, so Go and Node
// agree exactly), otherwise the float64 Node's parseInt yields.
func sjIntegerValue(text []byte) (i int64, f float64, isInt bool) {
	neg, mag, ok := sjParseMag(text)
	if ok && mag <= sjMaxSafe {
		i = int64(mag)
		if neg {
			i = -i
		}
		return i, float64(i), true
	}
	f = sjV8ParseInt(text)
	return 0, f, false
}

// sjValidFloat reports whether text is a number as JavaScript prints one:
// NaN, [-]Infinity, or [-]digits[.digits][e[+-]digits] (also ".5"), at
// most sjMaxFloatLen characters.
func sjValidFloat(text []byte) bool {
	if len(text) == 0 || len(text) > sjMaxFloatLen {
		return false
	}
	if string(text) == "NaN" {
		return true
	}
	if text[0] == '-' {
		text = text[1:]
	}
	if string(text) == "Infinity" {
		return true
	}
	digits := func(i int) int {
		for i < len(text) && text[i] >= '0' && text[i] <= '9' {
			i++
		}
		return i
	}
	i := digits(0)
	mant := i
	if i < len(text) && text[i] == '.' {
		j := digits(i + 1)
		mant += j - i - 1
		i = j
	}
	if mant == 0 {
		return false
	}
	if i < len(text) && (text[i] == 'e' || text[i] == 'E') {
		i++
		if i < len(text) && (text[i] == '+' || text[i] == '-') {
			i++
		}
		j := digits(i)
		if j == i {
			return false
		}
		i = j
	}
	return i == len(text)
}

// sjFloatValue parses a FLOATS entry that sjValidFloat accepted, as
// JavaScript's parseFloat does (correctly rounded; overflow gives
// ±Infinity).
func sjFloatValue(text []byte) float64 {
	switch string(text) {
	case "NaN":
		return math.NaN()
	case "Infinity":
		return math.Inf(1)
	case "-Infinity":
		return math.Inf(-1)
	}
	// The string aliases text only for the duration of the call: the
	// bytes are not modified meanwhile and the error (which would keep the
	// string) is dropped. An out-of-range value comes back as ±Inf or 0
	// with ErrRange, which is JavaScript's answer too.
	f, _ := strconv.ParseFloat(unsafe.String(unsafe.SliceData(text), len(text)), 64)
	return f
}

// sjAppendNumberText appends the decimal text JavaScript's String(x) gives
// for a number (used where a number must become a string: json.Number
// targets, an Error's code).
func sjAppendNumberText(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	case math.IsInf(f, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(f, -1):
		return append(dst, "-Infinity"...)
	}
	return appendJSNumber(dst, f)
}
