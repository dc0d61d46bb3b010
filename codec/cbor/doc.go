// Package cbor is a binary app-object codec for clusters of Go processes:
// CBOR (RFC 8949) through github.com/fxamacker/cbor/v2.
package cbor
