// Package cbor is a binary app-object codec for clusters of Go processes:
// CBOR (RFC 8949) through github.com/fxamacker/cbor/v2. A []byte travels
// as a CBOR byte string, its bytes as they are behind a head of 1 to 9
// bytes, instead of as base64 inside a JSON string (4 KiB: 4,099 bytes on
// the wire instead of 5,466, and no base64 to write or read).
//
//	c, err := cluster.New("Registry", factory, cluster.WithCodec(cbor.Codec))
//
// Every process of the channel must use it: Codec's Name is "cbor", and
// the register handshake refuses a follower that announces another codec
// (and a CBOR follower of a leader speaking another), with "codec
// mismatch: leader speaks ..., this follower ..." in the error. Node's
// cluster-client cannot speak it: clusters that mix Go and Node keep
// protocol.SerializeJSON. clusterctl speaks only json and serialize-json
// and so cannot register on a CBOR channel. The package is a module of its
// own so that importers of the library download nothing for it.
//
// # Meaning of values
//
// Values keep the Go meaning they have with protocol.JSON (decoding into
// the same Go targets gives the same result; the differential tests check
// it): struct fields are named and left out as encoding/json does (the
// json tag is read, "cbor" tags win); map keys are written sorted; nil
// and nil slices and maps are null; a time.Time is its RFC 3339 text;
// MarshalText and MarshalJSON are used as encoding/json uses them (JSON
// output is transcoded into CBOR, and back for UnmarshalJSON); an error
// value is sent as a *protocol.RemoteError {name, message, code, stack}
// (the one errors.As finds in it, or name "Error" and its message), and a
// *error or *protocol.RemoteError target gets one back; a protocol.Raw is
// appended unchanged and decodes into a copy of the bytes; empty data (an
// absent app object) decodes as null; protocol.Undefined is null.
//
// Where the meaning differs from protocol.JSON's (TestDifferences pins
// each):
//
//   - Into a *any, an integer decodes as int64 (a big.Int beyond it),
//     not float64, a byte string as []byte, not its base64 text, and a
//     map must have string keys (a map[int]T value does not decode into
//     *any; it does into a map[int]T).
//   - A []byte decodes into a *string as its bytes; a string does not
//     decode into a *[]byte (JSON base64-decodes it).
//   - Strings keep invalid UTF-8 byte for byte (JSON writes U+FFFD).
//   - NaN and ±Inf encode (JSON refuses them).
//   - omitempty does not leave out a field whose type has MarshalJSON or
//     MarshalText: the library always writes those (use omitzero).
//   - MarshalText wins over MarshalJSON when a type has both
//     (encoding/json prefers MarshalJSON): both sides use the same codec,
//     so the value still round-trips. encoding.BinaryMarshaler is not
//     used, as with encoding/json.
//
// # Hostile input
//
// Decode accepts at most MaxNestedLevels of nesting, MaxArrayElements
// elements in an array and MaxMapPairs pairs in a map; no tags and no
// indefinite-length items (Append writes neither); nothing after the one
// item. The library checks that the whole input is well formed before it
// allocates for it, so a byte string, text string, array or map cannot
// claim more than the input holds, and the input is an app object, which
// the cluster's frame limit bounds (16 MiB by default; cluster.WithLimits).
// FuzzCBORDecode checks that no input panics and that decoding allocates
// at most a bounded multiple of the input's size.
//
// # Why CBOR, and this library
//
// Measured on a shared 2-core VM (go test -bench Codec -benchmem: ns/op
// over two alternating runs of the same sitting, allocations per op in
// parentheses):
//
//	                     JSON          CBOR (this)   gob              msgpack*
//	encode 64 B string   29–43 (0)     9–10 (0)      504–690 (11)     15–16 (0)
//	decode 64 B string   70–84 (2)     56–97 (2)     855–2041 (19)    119–170 (3)
//	encode 4 KiB []byte  3208–3769 (0) 51–57 (0)     1775–3930 (11)   56–58 (0)
//	decode 4 KiB []byte  3965–6534 (2) 893–2077 (2)  3068–5373 (21)   1909–2164 (3)
//	encode small struct  627–644 (6)   246–305 (0)   2671–3612 (23)   343–368 (0)
//	decode small struct  2316–2925 (19) 837–1372 (13) 13046–16296 (202) 1014–1129 (11)
//
//	encoded size, JSON / CBOR / gob / msgpack: 64 B string 66 / 66 / 68 /
//	66 B; 4 KiB []byte 5466 / 4099 / 4104 / 4099 B; the small struct (six
//	fields: strings, an int, a bool, a float, a slice, a map) 126 / 90 /
//	201 / 96 B.
//
//	* github.com/vmihailenco/msgpack/v5 v5.4.1, measured in a scratch
//	  module outside this repository with the same values.
//
// encoding/gob needs no module but must describe a value's type in every
// message when each value is encoded alone, as a stateless Codec encodes
// it: 10–20× slower than the others for small values, 200 allocations to
// decode a small struct, and no limits on what a peer's type descriptions
// make it build. MessagePack and CBOR are equally fast and compact here;
// CBOR is an IETF standard, and fxamacker/cbor is built for untrusted
// input (the DecOptions limits used above, validation before allocation,
// fuzzed upstream), reads json tags, and brings one small dependency
// (x448/float16). A hand-written binary format in the core module would
// serve strings and byte slices only; this codec does exactly that itself
// (the fast paths: a string or []byte is a head and its bytes, with the
// library's very bytes, checked by TestFastPathsSameBytes and the fuzz
// target) and leaves structs, maps and the rest to the library.
//
// End to end, in one process (a leader and a follower over loopback TCP,
// an echo method that returns its argument as it came, the follower
// decoding the result into the argument's type; the same sitting, JSON
// and CBOR alternating, three runs each; cpu-µs is the CPU time of the
// process per call, which other work on the host barely moves):
//
//	                                    JSON                    CBOR
//	sequential, 4 KiB []byte            36.7–40.5 µs/op         28.4–32.1 µs/op
//	  (BenchmarkInvokeFollower)         37.5–42.6 cpu-µs/op     28.9–31.3 cpu-µs/op
//	                                    17.6 KB, 10 allocs/op   14.3 KB, 10 allocs/op
//	sequential, 64 B string             17.6–20.9 µs/op         17.8–21.3 µs/op
//	                                    18.0–18.5 cpu-µs/op     18.1–18.4 cpu-µs/op
//	64 in flight, 4 KiB []byte          32.9–45.0k calls/s      36.4–64.7k calls/s
//	  (BenchmarkInvokeThroughput)       36.9–40.7 cpu-µs/op     26.1–29.2 cpu-µs/op
//	64 in flight, 64 B string           133–182k calls/s        135–161k calls/s
//	                                    7.2–9.9 cpu-µs/op       7.4–8.9 cpu-µs/op
//
// A 4 KiB []byte call costs about a quarter less CPU with CBOR; strings
// cost the same (both codecs copy them as they are).
//
// # Default codec
//
// protocol.JSON stays the default for Go-only clusters: making CBOR the
// default would put this module's dependency into every importer's
// build, which the core module avoids, and values decoded into *any
// change type (int64 for float64). Choose it with WithCodec where byte
// slices or structs are the traffic.
package cbor
