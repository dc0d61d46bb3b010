// Package interop holds the tests that run clusterclient against the real
// Node cluster-client 3.7.0 (npm, pinned in package.json and
// package-lock.json): Go and Node processes in one cluster, each side as
// leader and as follower. When node_modules is missing, the first test
// that needs Node runs `npm ci` in this directory (once, under a file lock
// shared by concurrent test processes); without Node, or without npm and
// node_modules, the tests skip, saying so (and fail under CI=true).
//
// The Node side is node/peer.js: one cluster-client process (role leader,
// follower or auto) around a small real client, driven by JSON-line
// commands on stdin and reporting JSON-line events on stdout. The Go side
// is cluster.Client with cluster.WithNodeCompat, in the test process (each
// with its own election registry, as if alone in its process) or, where a
// Go leader must be SIGKILLed, in a child process (the test binary run
// again through internal/childproc). Both sides run the same real client
// (node/peer.js's DataClient, realclient_test.go's dataClient) and speak
// the same event vocabulary, so a scenario checks Go and Node members alike.
//
// Tests:
//
//   - TestGoLeaderNodeFollowers, TestNodeLeaderGoFollowers: register,
//     cached values, publish, invoke with every JavaScript type (tags_test.go),
//     errors, one-way calls, response timeouts, heartbeats, unsubscribe.
//   - TestFailover: SIGKILL the Node or the Go leader; the Go or the Node
//     follower takes over and the other registers with it.
//   - TestMixedCluster: 1 Node leader, 3 Go followers and 2 Node followers
//     under continuous traffic for -mixed-duration (default 10 s).
//   - TestNodeMisbehaviour: what Node itself gets wrong, with evidence.
//   - TestNodeLeaderByHand: the wire protocol spoken by hand to a Node leader.
//
// node/gen_jsjson.js generates protocol/testdata/jsjson.json, the V8
// behaviour the protocol package's JSON text handling is tested against.
package interop
