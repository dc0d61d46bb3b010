package protocol

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAppendConnShapes(t *testing.T) {
	reg := json.RawMessage(`{"dataId":"d"}`)
	for _, c := range []struct {
		obj  ConnObject
		want string
	}{
		{ConnObject{Type: KindRegisterChannel, ChannelName: "DataClient"}, `{"type":"register_channel","channelName":"DataClient"}`},
		{ConnObject{Type: KindRegisterChannelRes}, `{"type":"register_channel_res"}`},
		{ConnObject{Type: KindSubscribe, Key: "k", Reg: reg}, `{"type":"subscribe","key":"k","reg":{"dataId":"d"}}`},
		{ConnObject{Type: KindUnsubscribe, Key: "k", Reg: reg}, `{"type":"unSubscribe","key":"k","reg":{"dataId":"d"}}`},
		{ConnObject{Type: KindSubscribe, Key: "k"}, `{"type":"subscribe","key":"k"}`},
		{ConnObject{Type: KindSubscribeResult, Key: "k"}, `{"type":"subscribe_result","key":"k"}`},
		{ConnObject{Type: KindSubscribeResultRes}, `{"type":"subscribe_result_res"}`},
		{ConnObject{Type: KindInvoke, Method: "m", ArgLength: 2, Oneway: true}, `{"type":"invoke","method":"m","argLength":2,"oneway":true}`},
		{ConnObject{Type: KindInvoke}, `{"type":"invoke","method":"","argLength":0,"oneway":false}`},
		{ConnObject{Type: KindInvokeResult, Success: true}, `{"type":"invoke_result","success":true}`},
		{ConnObject{Type: KindHeartbeat}, `{"type":"heartbeat"}`},
		{ConnObject{Type: KindHeartbeatRes}, `{"type":"heartbeat_res"}`},
		// Fields of other kinds are not written.
		{ConnObject{Type: KindHeartbeat, Method: "m", Key: "k", Success: true}, `{"type":"heartbeat"}`},
		// Extensions: sorted after Node's fields; names of the kind's fields skipped; empty is null.
		{ConnObject{Type: KindRegisterChannel, ChannelName: "C", Ext: map[string]json.RawMessage{
			"zeta": json.RawMessage(`1`), "auth": json.RawMessage(`{"mac":"00"}`), "channelName": json.RawMessage(`"X"`),
			"type": json.RawMessage(`"x"`), "nil": nil,
		}}, `{"type":"register_channel","channelName":"C","auth":{"mac":"00"},"nil":null,"zeta":1}`},
		// Unknown kind: type, then Ext.
		{ConnObject{Type: "hello", Ext: map[string]json.RawMessage{"v": json.RawMessage(`2`), "method": json.RawMessage(`"m"`)}},
			`{"type":"hello","method":"m","v":2}`},
		// JSON.stringify escaping.
		{ConnObject{Type: KindInvoke, Method: "a\"b\\c\n<>&\u2028\x01\x7f", ArgLength: 1},
			`{"type":"invoke","method":"a\"b\\c\n<>&` + "\u2028" + `\u0001` + "\x7f" + `","argLength":1,"oneway":false}`},
	} {
		assert.Equal(t, c.want, string(AppendConn(nil, &c.obj)))
		assert.Equal(t, "prefix"+c.want, string(AppendConn([]byte("prefix"), &c.obj)), "appends")
	}
}

func TestAppendConnInvalidUTF8(t *testing.T) {
	c := ConnObject{Type: KindRegisterChannel, ChannelName: "a\xffb\xe2\x82"}
	assert.Equal(t, `{"type":"register_channel","channelName":"a`+"\uFFFD"+`b`+"\uFFFD"+`"}`, string(AppendConn(nil, &c)))
}

func TestParseConn(t *testing.T) {
	for _, c := range []struct {
		in   string
		want ConnObject
	}{
		{`{"channelName":"C","type":"register_channel"}`, ConnObject{Type: KindRegisterChannel, ChannelName: "C"}},
		{` { "type" : "subscribe" , "reg" : { "a" : [ 1 , 2 ] } , "key" : "k" } `,
			ConnObject{Type: KindSubscribe, Key: "k", Reg: json.RawMessage(`{"a":[1,2]}`)}},
		{`{"type":"subscribe","key":"k","reg":"s p"}`, ConnObject{Type: KindSubscribe, Key: "k", Reg: json.RawMessage(`"s p"`)}},
		{`{"type":"subscribe","key":"k","reg":null}`, ConnObject{Type: KindSubscribe, Key: "k", Reg: json.RawMessage(`null`)}},
		{`{"type":"invoke","method":"m","argLength":3.0,"oneway":true}`, ConnObject{Type: KindInvoke, Method: "m", ArgLength: 3, Oneway: true}},
		{`{"type":"invoke","argLength":2e1}`, ConnObject{Type: KindInvoke, ArgLength: 20}},
		{`{"type":"invoke_result","success":false,"success":true}`, ConnObject{Type: KindInvokeResult, Success: true}},
		{`{"type":"heartbeat","type":"heartbeat_res"}`, ConnObject{Type: KindHeartbeatRes}},
		{`{"type":"invoke","oneway":"yes","oneway":true,"x":1,"x":[2]}`, ConnObject{Type: KindInvoke, Oneway: true,
			Ext: map[string]json.RawMessage{"x": json.RawMessage(`[2]`)}}},
		{`{"typ\u0065":"heartbeat","\u006bey":"k"}`, ConnObject{Type: KindHeartbeat, Ext: map[string]json.RawMessage{"key": json.RawMessage(`"k"`)}}},
		// A field of another kind is an extension of this one.
		{`{"type":"subscribe_result","key":"k","method":"m","success":1}`, ConnObject{Type: KindSubscribeResult, Key: "k",
			Ext: map[string]json.RawMessage{"method": json.RawMessage(`"m"`), "success": json.RawMessage(`1`)}}},
		// Unknown kinds and fields.
		{`{"type":"hello","v":2,"auth":{"nonce" : "x"}}`, ConnObject{Type: "hello",
			Ext: map[string]json.RawMessage{"v": json.RawMessage(`2`), "auth": json.RawMessage(`{"nonce":"x"}`)}}},
		{`{"type":"invoke","method":"\u00e9\ud83d\ude00\/"}`, ConnObject{Type: KindInvoke, Method: "é😀/"}},
	} {
		got, err := ParseConn([]byte(c.in))
		require.NoError(t, err, c.in)
		assert.Equal(t, c.want, got, c.in)
	}
}

func TestParseConnErrors(t *testing.T) {
	for _, c := range []struct{ in, says string }{
		{``, "want a JSON object"},
		{`[]`, "want a JSON object"},
		{`{"type":"heartbeat"`, "unexpected end of JSON"},
		{`{"type":"heartbeat"} x`, "want end of conn object"},
		{`{"type":"heartbeat",}`, "want a string key"},
		{`{"type" "heartbeat"}`, "want ':'"},
		{`{"type":"heartbeat" "a":1}`, "want ',' or '}'"},
		{`{"a":"\x"}`, "want a valid escape"},
		{"{\"a\":\"\x01\"}", "no control character"},
		{`{"a":01}`, "want ',' or '}'"},
		{`{"a":tru}`, "want true"},
		{`{}`, `no "type"`},
		{`{"channelName":"C"}`, `no "type"`},
		{`{"type":1}`, `"type" is a number, want a string`},
		{`{"type":null}`, `"type" is null, want a string`},
		{`{"type":"register_channel","channelName":{}}`, `register_channel field "channelName" is an object, want a string`},
		{`{"type":"invoke","argLength":-1}`, `field "argLength" is "-1", want an integer in [0, 2147483647]`},
		{`{"type":"invoke","argLength":1.5}`, `want an integer`},
		{`{"type":"invoke","argLength":2147483648}`, `want an integer`},
		{`{"type":"invoke","argLength":"3"}`, `field "argLength" is a string, want a number`},
		{`{"type":"invoke","oneway":"yes"}`, `field "oneway" is a string, want a boolean`},
		{`{"type":"invoke_result","success":null}`, `field "success" is null, want a boolean`},
		{`{"type":"subscribe","key":["k"]}`, `field "key" is an array, want a string`},
	} {
		_, err := ParseConn([]byte(c.in))
		if assert.ErrorIs(t, err, ErrConnObject, c.in) {
			assert.Contains(t, err.Error(), c.says, c.in)
		}
	}
}

func TestParseConnDoesNotAlias(t *testing.T) {
	in := []byte(`{"type":"subscribe","key":"k","reg":{"a":1},"x":[1]}`)
	c, err := ParseConn(in)
	require.NoError(t, err)
	for i := range in {
		in[i] = ' '
	}
	assert.Equal(t, `{"a":1}`, string(c.Reg))
	assert.Equal(t, `[1]`, string(c.Ext["x"]))
	assert.Equal(t, len(c.Reg), cap(c.Reg), "Reg cannot be appended into its neighbours")
}

func TestConnRoundTripWithExtensions(t *testing.T) {
	// What AppendConn writes, ParseConn reads back, and the bytes are stable.
	for _, in := range []string{
		`{"type":"register_channel","channelName":"C","auth":{"mac":"ab"},"cluster":"c1"}`,
		`{"type":"invoke","method":"m","argLength":1,"oneway":false,"deadline":12}`,
		`{"type":"hello","proto":2}`,
		`{"type":"heartbeat"}`,
		`{"type":"subscribe","key":"$$inner$$__\"x\"","reg":"x"}`,
		`{"type":"subscribe","key":"k\ud800"}`,
	} {
		c, err := ParseConn([]byte(in))
		require.NoError(t, err, in)
		assert.Equal(t, in, string(AppendConn(nil, &c)))
	}
}

func TestConnAllocs(t *testing.T) {
	buf := make([]byte, 0, 256)
	reg := json.RawMessage(`{"dataId":"d"}`)
	for _, c := range []ConnObject{
		{Type: KindRegisterChannel, ChannelName: "DataClient"},
		{Type: KindSubscribe, Key: SubscriptionKey(reg), Reg: reg},
		{Type: KindSubscribeResult, Key: SubscriptionKey(reg)},
		{Type: KindInvoke, Method: "getData", ArgLength: 3},
		{Type: KindInvokeResult, Success: true},
		{Type: KindHeartbeat},
	} {
		allocs := testing.AllocsPerRun(100, func() { buf = AppendConn(buf[:0], &c) })
		assert.Zero(t, allocs, "AppendConn %s", c.Type)
	}
	for in, want := range map[string]float64{
		`{"type":"invoke_result","success":true}`:                           0,
		`{"type":"heartbeat_res"}`:                                          0,
		`{"type":"invoke","method":"getData","argLength":3,"oneway":false}`: 1, // the method string
	} {
		b := []byte(in)
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := ParseConn(b); err != nil {
				t.Fatal(err)
			}
		})
		assert.Equal(t, want, allocs, "ParseConn %s", in)
	}
}
