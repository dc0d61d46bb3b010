package protocol

import "errors"

// SerializeJSON is the app-object codec of Node's cluster-client: the
// npm package serialize-json 1.0.3, byte for byte. Use it in clusters that
// mix Go and Node processes. It is safe for concurrent use.
//
// # Format
//
// A document is UTF-8 text in five sections joined by '^': STRINGS,
// INTEGERS, FLOATS, DATES and STRUCTURE. The first four are one
// dictionary, entries joined by '|' and numbered across the sections in
// that order; entries are appended in depth-first order and never shared,
// every occurrence of a value has its own. Strings are escaped in one pass
// (space → '+', '+' → %2B, '|' → %7C, '^' → %5E, '%' → %25); integral
// numbers are base 36, upper case; other numbers are as JavaScript prints
// them; dates are milliseconds in base 36. STRUCTURE is a token stream:
// dictionary indexes in base 36, the literals -1 true, -2 false, -3 null,
// -4 empty string and -5 undefined, and containers opened by '@' (array),
// '$' (object: key, value, ...), '*' (Buffer: one INTEGERS entry per byte)
// or '#' (Error: key, value pairs, message and stack first) and closed by
// ']'; '|' separates siblings. {a: "x", b: 1} is a|x|b^1^^^$0|1|2|3].
//
// # Encoding
//
// Append writes exactly what Node's encoder writes for the corresponding
// JavaScript value. In order of precedence:
//
//   - nil, and nil pointers, maps, slices and interfaces: null.
//   - Raw: at the top level appended as is; inside a value its document is
//     spliced in entry for entry (a nil or empty Raw is null).
//   - Undefined (any UndefinedValue): undefined.
//   - time.Time: a Date of t.UnixMilli() (rounded down to the millisecond).
//   - json.Number: as the number it spells (see integers below).
//   - RemoteError and error values: an Error with "message", "stack", then
//     "name" and "code" when not empty. For an error that is not a
//     *RemoteError, the *RemoteError errors.As finds in its chain is sent;
//     without one, name "Error" and message err.Error() (a Go error has no
//     JavaScript stack: the stack is the empty string).
//   - json.Marshaler: its JSON re-encoded (objects keep the member order of
//     the JSON text); then encoding.TextMarshaler: its text as a string.
//   - strings; booleans.
//   - integers of every Go kind: INTEGERS, digit-exact in base 36, also
//     beyond 2^53 (Node then reads the nearest double).
//   - floats: as the JavaScript number they are. Integral values
//     (x % 1 === 0, -0 and 1e21 included) go to INTEGERS with the digits
//     V8's toString(36) prints, bit for bit; NaN, ±Infinity and other
//     values go to FLOATS as Number#toString prints them (shortest
//     round-trip digits, exponent form below 1e-6). A float32 is sent as the
//     double it converts to, as a Float32Array element would be.
//   - []byte (and byte slices without marshaling methods): a Buffer.
//   - other slices and arrays (including [N]byte): arrays.
//   - maps with string, integer or TextMarshaler keys: objects, members in
//     JavaScript's for-in order: keys that are array indexes ("0", "7",
//     up to 2^32-2) ascending first, then the others, which a Go map holds
//     in no order, sorted by their bytes. Node keeps insertion order; use
//     a struct or a json.Marshaler when the order matters.
//   - structs: objects with the fields encoding/json would write, in field
//     order: json tag names, "-", omitempty and omitzero, embedded structs
//     promoted. The ",string" option is ignored (values keep their type).
//   - pointers and interfaces: what they hold.
//
// Functions, channels, complex numbers and unsafe pointers return an error
// matching ErrSerializeJSONUnsupported (Node writes null for functions,
// symbols and bigints; Go refuses rather than lose data silently), as
// does nesting deeper than SerializeJSONMaxDepth, which also stops cyclic
// values. Encoding is deterministic and appends into dst; a reused dst
// and the pooled internal buffers make a []byte, a string or a small
// object cost no allocation.
//
// # Decoding into *any
//
// Decoding into *any gives natural values (unless it holds a non-nil
// pointer, which is decoded into, as encoding/json does): string; int64
// for an INTEGERS entry up to 2^53-1 in magnitude (a JavaScript safe
// integer: Go and Node agree exactly) and float64 beyond, computed as
// V8's parseInt does so Go and Node read the same double; float64 for
// FLOATS (NaN and ±Inf included); bool; nil for null and for undefined;
// []byte for a Buffer; time.Time (UTC) for a Date; *RemoteError for an
// Error; []any; map[string]any.
//
// # Decoding into typed targets
//
// Decode follows encoding/json.Unmarshal: struct fields by json name, then
// case-insensitively; maps (string, integer and TextUnmarshaler keys),
// slices (the backing array is reused), arrays, pointers (allocated when
// nil), interfaces (a non-nil pointer inside is decoded into, otherwise
// the natural value is stored), numbers with range checks (integer
// targets read INTEGERS digit-exact and accept integral FLOATS; an out of
// range or fractional value is an error), []byte from a Buffer, an array
// of bytes or a string (its UTF-8 bytes), time.Time from a Date or an
// RFC 3339 string, RemoteError and error targets from an Error (or an
// object), json.Number from any number. A json.Unmarshaler receives the
// natural value marshaled by encoding/json (a Buffer as base64, a Date as
// RFC 3339, NaN is an error); an encoding.TextUnmarshaler receives a
// string. A *Raw target receives a copy of the data, checked first; a Raw
// inside a value receives that value as a document of its own.
//
// null sets pointers, interfaces, maps and slices to nil and leaves other
// targets alone, as in encoding/json. undefined means "absent": the target
// keeps its value. Empty data (an absent app object) decodes as undefined.
// On a type error decoding stops; what was decoded before stays in the
// target. Errors match ErrSerializeJSON (malformed input) or
// ErrSerializeJSONType (a value that does not fit its target), with the
// offset and the target path in the message.
//
// Decoding never panics and bounds its work: nesting is limited to
// SerializeJSONMaxDepth, every index is checked against the dictionary,
// numbers are checked when the dictionary is indexed (an INTEGERS or DATES
// entry may have at most 256 characters, a FLOATS entry 64), each string
// entry is unescaped once however often it is referenced, and copies that
// shared entries could multiply ([]byte from strings, UnmarshalText and
// UnmarshalJSON input, nested Raw) may not exceed 8 bytes per input byte.
// It is stricter than Node: a '|' may repeat but nothing may follow the
// value, keys must be strings, Buffer elements must be integers in 0..255;
// where Node would silently produce undefined or NaN, Go reports an error.
// Bytes that are not UTF-8 are kept as they are (Node would substitute
// U+FFFD).
//
// # Where the format is lossy
//
//   - -0 is integral, so it is written as the integer 0 and read back as 0.
//   - Integral doubles above 2^53: V8 prints only as many base-36 digits as
//     its division loop keeps (2^60 is 8RC4KBDVSS00, exactly 8RC4KBDVSS1S)
//     and parseInt accumulates rounding errors: 1e21 comes back as
//     1.0000000000000001e21 and 1.5e300 as 1.4999999999999992e300. Go
//     writes and reads those numbers exactly as V8 does, so a Go peer and a
//     Node peer see the same double, and the same drift (about 1e-15
//     relative per round trip). Go integers are written digit-exact and read
//     back exactly by integer targets.
//   - An invalid JavaScript Date is written as NAN, which reads back as the
//     base-36 number NAN: 30191 ms after the epoch. Go has no invalid time;
//     it reads NAN as Node does. A Go time beyond JavaScript's ±8.64e15 ms
//     is written as is; Node makes it an Invalid Date.
//   - Sparse array holes are written as undefined and read as nil.
//   - Node writes functions, symbols and bigints as null, Map and Set as
//     empty objects, typed arrays other than Buffer as objects keyed "0",
//     "1", ...; Go reads what was written.
//   - An Error's own properties other than message, stack, name and code
//     are dropped by RemoteError, and so is the distinction between null
//     and undefined inside *any.
var SerializeJSON Codec = sjCodec{}

type sjCodec struct{}

func (sjCodec) Name() string { return "serialize-json" }

// SerializeJSONMaxDepth is how deeply SerializeJSON nests arrays, objects,
// Errors and pointers, encoding and decoding.
const SerializeJSONMaxDepth = 1000

// Errors of the SerializeJSON codec. They are wrapped with what was seen
// and where; match them with errors.Is.
var (
	// ErrSerializeJSON: the data is not a serialize-json document, or
	// decoding it would exceed a limit.
	ErrSerializeJSON = errors.New("protocol: malformed serialize-json")
	// ErrSerializeJSONType: a value does not fit its Go target (also a
	// nil or non-pointer target, and an error from an Unmarshal method).
	ErrSerializeJSONType = errors.New("protocol: serialize-json value does not fit the Go type")
	// ErrSerializeJSONUnsupported: a Go value that serialize-json cannot
	// carry (functions, channels, complex numbers, nesting or size beyond
	// the limits, invalid MarshalJSON output).
	ErrSerializeJSONUnsupported = errors.New("protocol: Go value not representable in serialize-json")
)

// UndefinedValue is the type of Undefined.
type UndefinedValue struct{}

// Undefined is JavaScript's undefined for SerializeJSON (the -5 token),
// for example an argument that must be sent but has no value. The JSON
// codec writes it as null.
var Undefined = UndefinedValue{}

// MarshalJSON writes null: JSON has no undefined.
func (UndefinedValue) MarshalJSON() ([]byte, error) { return []byte("null"), nil }

// String returns "undefined".
func (UndefinedValue) String() string { return "undefined" }
