// Package protocol is clusterclient's wire format: bytes only, no I/O
// beyond reading frames from an io.Reader, and no imports of the project's
// other packages.
//
// It is bit-exact with Node's cluster-client 3.7.0 (see spec.md): a 24-byte
// big-endian header, a compact JSON "conn object" that says what the packet
// is, and optional "app" bytes encoded by a Codec (JSON for Go-only
// clusters, Node's serialize-json for mixed clusters).
//
// Encoding appends to a caller's buffer so a reused buffer costs no
// allocation. Decoding enforces Limits before allocating, so a peer that
// claims a 2 GB frame costs nothing but an error.
package protocol
