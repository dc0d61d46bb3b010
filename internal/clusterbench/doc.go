// Package clusterbench is the body of the clusterbench command
// (cmd/clusterbench, whose doc describes what it measures, its flags and
// its outputs). It is a package of its own so that a program in another
// module can run the same benchmark with a codec the core module cannot
// import: codec/cbor's cmd/clusterbench-cbor calls RegisterCodec with the
// CBOR codec and then Main, and --codecs json,cbor measures both in one
// run.
//
// Main is the whole program: it parses os.Args, starts the same
// executable again as its child processes (members, echo servers, raw
// clients), drives them, and writes results.md, results.json and
// bench.svg. It does not return before the run ends, and it is not
// meant to be called twice in one process. The package keeps no state
// between runs other than the codecs registered.
package clusterbench
