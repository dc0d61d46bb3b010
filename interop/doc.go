// Package interop holds the tests that run clusterclient against the real
// Node cluster-client 3.7.0 (npm, pinned in package.json and
// package-lock.json). Run `npm ci` in this directory first; without Node or
// node_modules the tests skip, saying so.
//
// node/leader.js is a real cluster-client leader around a tiny real client;
// node/gen_jsjson.js generates protocol/testdata/jsjson.json, the V8
// behaviour the protocol package's JSON text handling is tested against.
package interop
