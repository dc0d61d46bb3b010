package childproc_test

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/go-clusterclient/clusterclient/internal/childproc"
)

// Events are JSON lines; Decode reads an event's data.
func ExampleEvent_Decode() {
	var ev childproc.Event
	if err := json.Unmarshal([]byte(`{"event":"leader","data":{"pid":4242,"addr":"127.0.0.1:7777"}}`), &ev); err != nil {
		panic(err)
	}
	var status struct {
		PID  int
		Addr string
	}
	if err := ev.Decode(&status); err != nil {
		panic(err)
	}
	fmt.Println(ev.Name, status.PID, status.Addr)
	// Output: leader 4242 127.0.0.1:7777
}

// A program starts a child without a test: here this test binary again, in
// the package's "echo" mode, which says "ready" with its arguments.
func ExampleStartCmd() {
	c, err := childproc.StartCmd(childproc.Command("echo", "hello"), childproc.Options{Name: "echoer"})
	if err != nil {
		panic(err)
	}
	defer c.Stop(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ev, err := c.Expect(ctx, "ready")
	if err != nil {
		panic(err)
	}
	var args []string
	if err := ev.Decode(&args); err != nil {
		panic(err)
	}
	fmt.Println(c.Mode(), ev.Name, args)
	// Output: echoer ready [hello]
}
