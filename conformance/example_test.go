package conformance_test

import (
	"fmt"

	"github.com/go-clusterclient/clusterclient/conformance"
)

// The names Run gives its subtests and cases, which Harness.Skip and
// go test -run accept.
func ExampleSubtests() {
	for _, name := range conformance.Subtests() {
		fmt.Println(name)
	}
	// Output:
	// transport
	// register
	// register/follower
	// register/second-channel
	// register/unknown-channel
	// register/peer-credentials
	// subscribe
	// subscribe/fan-out
	// subscribe/late-subscriber-cached
	// subscribe/broadcast-off
	// subscribe/unsubscribe
	// publish
	// publish/every-subscriber
	// publish/child-processes
	// invoke
	// invoke/result
	// invoke/typed-error
	// invoke/unknown-method
	// invoke/panic
	// invoke/oneway
	// invoke/response-timeout
	// invoke/1MiB-argument
	// invoke/concurrent-1000
	// close
	// close/idempotent
	// close/real-client-once
	// close/address-freed-after-last-channel
	// close/no-goroutine-left
	// failover
	// failover/leader-closes
	// failover/leader-hangs-up
	// failover/leader-sigkill
	// robustness
	// robustness/garbage
	// robustness/http-request
	// robustness/2GB-length
	// robustness/negative-length
	// robustness/header-then-silence
	// robustness/silence
	// robustness/unauthenticated
	// robustness/2000-connections
	// robustness/squatter
	// robustness/does-not-read
}

// A Snapshot tells which real client pushed it, so a case can tell the
// new leader's value from the old one's.
func ExampleSnapshot() {
	s := conformance.Snapshot{Key: "k", Values: []string{"a", "b"}, By: "pid 4242 Orders #2", Seq: 7}
	fmt.Println(s.Has("b"), s.Has("c"), s.By)
	// Output: true false pid 4242 Orders #2
}
