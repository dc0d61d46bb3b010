package protocol_test

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/go-clusterclient/clusterclient/protocol"
)

// A follower frames a heartbeat exactly as Node's cluster-client does.
func ExampleAppendPacket() {
	conn := protocol.AppendConn(nil, &protocol.ConnObject{Type: protocol.KindHeartbeat})
	pkt := protocol.AppendPacket(nil, &protocol.Packet{ID: 5, Timeout: 3000, Conn: conn})
	fmt.Printf("% x\n", pkt[:protocol.HeaderSize])
	fmt.Printf("%s\n", pkt[protocol.HeaderSize:])
	// Output:
	// 01 00 00 00 00 00 00 00 00 00 00 05 00 00 0b b8 00 00 00 14 00 00 00 00
	// {"type":"heartbeat"}
}

// Encoding an invoke in one buffer, without copying: header space first,
// then the conn object and the arguments, then the header.
func ExampleHeader_Put() {
	var ids protocol.IDs
	buf := make([]byte, protocol.HeaderSize, 256)
	buf = protocol.AppendConn(buf, &protocol.ConnObject{Type: protocol.KindInvoke, Method: "echo", ArgLength: 2})
	connEnd := len(buf)
	for _, arg := range []any{"hello", 42} {
		var err error
		if buf, err = protocol.AppendArg(buf, protocol.JSON, arg); err != nil {
			panic(err)
		}
	}
	protocol.Header{
		Version: protocol.Version, Type: protocol.TypeRequest, ID: ids.Next(), Timeout: 3000,
		ConnLen: int32(connEnd - protocol.HeaderSize), AppLen: int32(len(buf) - connEnd),
	}.Put(buf)

	// The other side.
	p, _, err := protocol.DecodePacket(buf, protocol.Limits{})
	if err != nil {
		panic(err)
	}
	c, _ := protocol.ParseConn(p.Conn)
	args, _ := protocol.SplitArgs(p.App, c.ArgLength)
	fmt.Println(p.ID, c.Method, len(args))
	for _, a := range args {
		fmt.Printf("%s\n", a)
	}
	// Output:
	// 1 echo 2
	// "hello"
	// 42
}

// A leader reads packets from a connection one at a time; a peer that is
// not speaking the protocol is rejected at its first bytes.
func ExampleReader() {
	conn := protocol.AppendConn(nil, &protocol.ConnObject{Type: protocol.KindRegisterChannel, ChannelName: "DataClient"})
	stream := protocol.AppendPacket(nil, &protocol.Packet{ID: 1, Timeout: 3000, Conn: conn})
	stream = append(stream, "GET / HTTP/1.1\r\n\r\n"...)

	r := protocol.NewReader(bytes.NewReader(stream), protocol.Limits{})
	for {
		p, err := r.Next()
		if err != nil {
			fmt.Println(err)
			return
		}
		c, _ := protocol.ParseConn(p.Conn)
		fmt.Println(p.ID, c.Type, c.ChannelName)
	}
	// Output:
	// 1 register_channel DataClient
	// protocol: bad version byte: got 0x47, want 0x01; stream starts "GET / HTTP/1.1\r\n"...
}

// Go and Node processes agree on subscription keys whatever JSON encoder
// built the registration.
func ExampleSubscriptionKey() {
	reg, _ := json.Marshal(map[string]any{"dataId": "demo", "group": "<g>"})
	fmt.Println(string(reg))
	fmt.Println(protocol.SubscriptionKey(reg))
	// Output:
	// {"dataId":"demo","group":"\u003cg\u003e"}
	// $$inner$$__{"dataId":"demo","group":"<g>"}
}
