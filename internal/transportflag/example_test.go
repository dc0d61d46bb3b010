package transportflag_test

import (
	"fmt"

	"github.com/go-clusterclient/clusterclient/internal/transportflag"
)

// A command takes --transport and --over and builds the transport once.
func ExampleNew() {
	tr, err := transportflag.New("yamux", "unix")
	if err != nil {
		panic(err)
	}
	fmt.Println(tr.Name())
	_, err = transportflag.New("carrier-pigeon", "")
	fmt.Println(err)
	// Output:
	// yamux
	// transportflag: unknown transport "carrier-pigeon" (want tcp, unix, yamux or kcp)
}
