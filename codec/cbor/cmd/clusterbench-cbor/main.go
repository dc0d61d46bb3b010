// Command clusterbench-cbor is cmd/clusterbench with the CBOR codec
// registered, so that --codecs can name "cbor" next to "json" and
// "serialize-json". It lives in the codec's module because the core
// module, clusterbench's, must not depend on a CBOR library. Every flag
// and output is clusterbench's (see its doc); run it from the repository
// (the gRPC baseline is built from bench/grpcecho, found in the working
// directory or above it):
//
//	cd codec/cbor && go run ./cmd/clusterbench-cbor --codecs json,cbor --workloads raw,invoke,grpc --transports tcp,unix --runs 3
//
// The rows of the CBOR members are labelled "ours/cbor" in results.json
// and have a "Codecs" section of their own in results.md, beside json's
// and the raw baselines of the same run.
package main

import (
	"os"

	"github.com/go-clusterclient/clusterclient/codec/cbor"
	"github.com/go-clusterclient/clusterclient/internal/clusterbench"
)

func main() {
	clusterbench.RegisterCodec(cbor.Codec)
	os.Exit(clusterbench.Main())
}
