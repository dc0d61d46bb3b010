// Package protocol is clusterclient's wire format: bytes only, no I/O
// beyond reading frames from an io.Reader, and no imports of the project's
// other packages.
//
// It is bit-exact with Node's cluster-client 3.7.0 (see spec.md, and the
// golden Node fixtures its tests check): a 24-byte big-endian header, a
// compact JSON "conn object" that says what the packet is, and optional
// "app" bytes encoded by a Codec (JSON for Go-only clusters, Node's
// serialize-json for mixed clusters).
//
// # Encoding
//
// Everything appends to a caller's buffer, so a reused buffer costs no
// allocation: AppendConn writes a ConnObject exactly as JavaScript's
// JSON.stringify would, AppendArg frames one invoke argument, and
// AppendPacket (or Header.Put over reserved space) writes the packet.
// IDs hands out request ids in Node's range; SubscriptionKey and
// NormalizeJSON make registration keys that Node processes agree with.
//
// # Decoding
//
// A Reader returns one packet at a time from a stream and DecodePacket one
// from a byte slice; both check the header against Limits before they
// reserve room for a body, reject a peer that is not speaking the protocol
// at its first bytes, and wrap one of the exported sentinel errors (ErrVersion,
// ErrPacketType, ErrNegativeLength, ErrTooLarge, ErrConnObject, ErrShort)
// with what they saw. ParseConn decodes a conn object, keeping unknown kinds
// and members (extensions) instead of failing on them; SplitArgs and NextArg
// take invoke arguments apart.
//
// # Concurrency
//
// Functions and codecs are safe for concurrent use; IDs is too. A Reader
// belongs to one goroutine.
package protocol
