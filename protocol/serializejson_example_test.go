package protocol_test

import (
	"fmt"
	"time"

	"github.com/go-clusterclient/clusterclient/protocol"
)

// A small object in serialize-json's text form, the bytes Node writes for
// the same object: the strings, integers (in base 36), floats and dates
// sections, then the structure, which refers to them by index.
func ExampleSerializeJSON() {
	type reg struct {
		DataID string    `json:"dataId"`
		Count  int       `json:"count"`
		Ratio  float64   `json:"ratio"`
		At     time.Time `json:"at"`
		Data   []byte    `json:"data"`
	}
	in := reg{DataID: "my app", Count: 36, Ratio: 0.5, At: time.UnixMilli(1000), Data: []byte{1, 255}}
	b, err := protocol.SerializeJSON.Append(nil, in)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(b))

	var out reg
	if err := protocol.SerializeJSON.Decode(b, &out); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(out.DataID, out.Count, out.Ratio, out.At.UnixMilli(), out.Data)

	var natural any
	if err := protocol.SerializeJSON.Decode(b, &natural); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%T %v\n", natural.(map[string]any)["count"], natural.(map[string]any)["count"])
	// Output:
	// dataId|my+app|count|ratio|at|data^10|1|73^0.5^RS^$0|1|2|6|3|9|4|A|5|*7|8]]
	// my app 36 0.5 1000 [1 255]
	// int64 36
}

// Errors travel as Node Errors; a Go error that is not a
// *protocol.RemoteError is sent with the name "Error".
func ExampleSerializeJSON_error() {
	b, _ := protocol.SerializeJSON.Append(nil, &protocol.RemoteError{Name: "ConnError", Message: "refused", Code: "ECONNREFUSED"})
	fmt.Println(string(b))

	var err error
	if e := protocol.SerializeJSON.Decode(b, &err); e != nil {
		fmt.Println(e)
		return
	}
	fmt.Println(err)
	// Output:
	// message|refused|stack|name|ConnError|code|ECONNREFUSED^^^^#0|1|2|-4|3|4|5|6]
	// ConnError: refused (code ECONNREFUSED)
}
