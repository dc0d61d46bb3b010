package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
)

// Bounds of a call's metadata: what WithMetadata accepts, and what a
// leader accepts from a follower.
const (
	MaxMetadataPairs = 64
	MaxMetadataBytes = 8 << 10 // keys and values together
)

// metadataKey is the context key of a call's metadata.
type metadataKey struct{}

// metadataMember is the Go-only member of an invoke's conn object that
// carries the call's metadata to the leader (a JSON object of strings;
// Node ignores members it does not know).
const metadataMember = "metadata"

// WithMetadata returns a copy of ctx whose calls carry the pairs key,
// value, ... in their metadata, beside what ctx carries already (a later
// value replaces an earlier one of the same key). The method's handler
// reads them with Metadata, on the leader, whether the call was made
// there or on a follower: a trace context, a tenant, a request id. It
// panics on an odd number of strings, as the caller's mistake.
// Metadata is bounded (MaxMetadataPairs pairs, MaxMetadataBytes bytes):
// a call with more fails with ErrInvalidOption.
func WithMetadata(ctx context.Context, kv ...string) context.Context {
	if len(kv)%2 != 0 {
		panic("cluster.WithMetadata: odd number of strings: key without a value")
	}
	md := maps.Clone(Metadata(ctx))
	if md == nil {
		md = make(map[string]string, len(kv)/2)
	}
	for i := 0; i < len(kv); i += 2 {
		md[kv[i]] = kv[i+1]
	}
	return context.WithValue(ctx, metadataKey{}, md)
}

// Metadata returns the metadata of ctx: in a method's handler, the
// caller's (see WithMetadata). The map must not be changed.
func Metadata(ctx context.Context) map[string]string {
	md, _ := ctx.Value(metadataKey{}).(map[string]string)
	return md
}

// withMetadata returns ctx carrying md (ctx itself when md is empty).
func withMetadata(ctx context.Context, md map[string]string) context.Context {
	if len(md) == 0 {
		return ctx
	}
	return context.WithValue(ctx, metadataKey{}, md)
}

// checkMetadata reports metadata over its bounds.
func checkMetadata(md map[string]string) error {
	if len(md) > MaxMetadataPairs {
		return optErr("%d metadata pairs, more than %d", len(md), MaxMetadataPairs)
	}
	n := 0
	for k, v := range md {
		n += len(k) + len(v)
	}
	if n > MaxMetadataBytes {
		return optErr("%d bytes of metadata, more than %d", n, MaxMetadataBytes)
	}
	return nil
}

// metadataExt encodes ctx's metadata for an invoke's conn object (nil
// when it has none).
func metadataExt(ctx context.Context) (Ext, error) {
	md := Metadata(ctx)
	if len(md) == 0 {
		return nil, nil
	}
	if err := checkMetadata(md); err != nil {
		return nil, err
	}
	raw, err := json.Marshal(md)
	if err != nil {
		return nil, err
	}
	return Ext{metadataMember: raw}, nil
}

// withPeerMetadata returns ctx carrying the metadata a follower's invoke
// brought (ctx itself when it brought none).
func withPeerMetadata(ctx context.Context, ext Ext) (context.Context, error) {
	raw, ok := ext[metadataMember]
	if !ok {
		return ctx, nil
	}
	var md map[string]string
	if err := json.Unmarshal(raw, &md); err != nil {
		return ctx, fmt.Errorf("metadata: %w", err)
	}
	if err := checkMetadata(md); err != nil {
		return ctx, err
	}
	return context.WithValue(ctx, metadataKey{}, md), nil
}
