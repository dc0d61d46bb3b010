package transporttest_test

import (
	"context"
	"fmt"
	"time"

	"github.com/go-clusterclient/clusterclient/transport/mem"
	"github.com/go-clusterclient/clusterclient/transport/transporttest"
)

// A would-be leader waits for the address to be released, as the failover
// subtest and benchmark do after killing the holder.
func ExampleListenWhenFree() {
	tr, err := mem.New(mem.DefaultConfig())
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	holder, err := tr.Listen(ctx, "example-leader")
	if err != nil {
		panic(err)
	}
	time.AfterFunc(20*time.Millisecond, func() { holder.Close() })

	l, attempts, err := transporttest.ListenWhenFree(ctx, tr, "example-leader")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	fmt.Println("listening:", l.Addr(), "after more than one attempt:", attempts > 1)
	// Output: listening: example-leader after more than one attempt: true
}
