package auth_test

import (
	"context"
	"fmt"

	"github.com/go-clusterclient/clusterclient/auth"
)

// The four steps, as package cluster runs them during registration, here
// with a key given by option (without one, both sides would read the
// per-user secret file).
func ExampleHandshake() {
	ctx := context.Background()
	key := []byte("an example key of 32 bytes......")
	leader, _ := auth.New(auth.Config{Key: key})
	follower, _ := auth.New(auth.Config{Key: key})
	info := auth.PeerInfo{Channel: "DataClient", Transport: "tcp", Addr: "127.0.0.1:7777"}

	hello, _ := follower.Hello(ctx, info)                   // in register_channel
	reply, err := leader.Admit(ctx, info, hello)            // in its reply
	fmt.Println("leader admits:", err)                      //
	proof, err := follower.Confirm(ctx, info, hello, reply) // the leader proved itself
	fmt.Println("follower trusts the leader:", err)         //
	err = leader.Verify(ctx, info, hello, reply, proof)     // the follower proved itself
	fmt.Println("leader trusts the follower:", err)         //
	// Output:
	// leader admits: <nil>
	// follower trusts the leader: <nil>
	// leader trusts the follower: <nil>
}

// Two clients of one channel name with different configurations refuse to
// share a leader (in Node they do, and read each other's data), and the error names both sides.
func ExampleFingerprint() {
	type acmConfig struct{ Endpoint, Namespace string }
	ctx := context.Background()
	key := []byte("an example key of 32 bytes......")
	fpProd, _ := auth.Fingerprint(acmConfig{"acm.example:8080", "prod"})
	fpTest, _ := auth.Fingerprint(acmConfig{"acm.example:8080", "test"})
	leader, _ := auth.New(auth.Config{Key: key, Fingerprint: fpProd})
	follower, _ := auth.New(auth.Config{Key: key, Fingerprint: fpTest})
	info := auth.PeerInfo{Channel: "DiamondClient", Transport: "tcp", Addr: "127.0.0.1:7777"}

	hello, _ := follower.Hello(ctx, info)
	_, err := leader.Admit(ctx, info, hello)
	fmt.Println(fpProd)
	fmt.Println(err)
	// Output:
	// b9236c14a5a009c7cb801c7423ee5933
	// auth: leader of channel "DiamondClient" at tcp 127.0.0.1:7777: cluster identity mismatch: fingerprint: leader has "b9236c14a5a009c7cb801c7423ee5933", follower has "21d81b7cef5510137f451f59a56fac24"
}
