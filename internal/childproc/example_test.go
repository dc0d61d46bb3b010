package childproc_test

import (
	"encoding/json"
	"fmt"

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
