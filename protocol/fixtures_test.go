package protocol

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The golden fixtures in testdata/ were produced by running the real Node
// cluster-client 3.7.0 (see testdata/README.md).

type fixturePacket struct {
	Name    string `json:"name"`
	Hex     string `json:"hex"`
	Length  int    `json:"length"`
	Decoded struct {
		Version       int             `json:"version"`
		Type          int             `json:"type"`
		Reserved      int             `json:"reserved"`
		ID            int64           `json:"id"`
		Timeout       int32           `json:"timeout"`
		ConnObjLength *int            `json:"connObjLength"` // packets.json only
		AppObjLength  *int            `json:"appObjLength"`  // packets.json only
		ConnJSON      *string         `json:"connJson"`      // packets.json only
		ConnObj       json.RawMessage `json:"connObj"`
		AppHex        string          `json:"appHex"`
		AppArgs       []struct {
			LengthPrefix int    `json:"lengthPrefix"`
			Hex          string `json:"hex"`
		} `json:"appArgs"`
	} `json:"decoded"`
}

type fixtureCapture struct {
	FollowerToLeader []fixturePacket `json:"followerToLeader"`
	LeaderToFollower []fixturePacket `json:"leaderToFollower"`
}

func readFixture(t testing.TB, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, v), name)
}

func loadPackets(t testing.TB) []fixturePacket {
	var ps []fixturePacket
	readFixture(t, "packets.json", &ps)
	return ps
}

func loadCapture(t testing.TB) fixtureCapture {
	var c fixtureCapture
	readFixture(t, "capture.json", &c)
	return c
}

func unhexT(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	require.NoError(t, err)
	return b
}

// connAsMap turns a ConnObject back into the generic JSON value its wire
// form has, to compare with the fixtures' parsed connObj.
func connAsMap(t testing.TB, c ConnObject) map[string]any {
	t.Helper()
	m := map[string]any{"type": c.Type}
	switch c.Type {
	case KindRegisterChannel:
		m["channelName"] = c.ChannelName
	case KindSubscribe, KindUnsubscribe:
		m["key"] = c.Key
		if c.Reg != nil {
			var reg any
			require.NoError(t, json.Unmarshal(c.Reg, &reg))
			m["reg"] = reg
		}
	case KindSubscribeResult:
		m["key"] = c.Key
	case KindInvoke:
		m["method"] = c.Method
		m["argLength"] = float64(c.ArgLength)
		m["oneway"] = c.Oneway
	case KindInvokeResult:
		m["success"] = c.Success
	}
	for k, v := range c.Ext {
		var x any
		require.NoError(t, json.Unmarshal(v, &x))
		m[k] = x
	}
	return m
}

// checkFixturePacket checks one decoded packet against its fixture entry,
// then encodes it back from its fields and compares the bytes.
func checkFixturePacket(t *testing.T, fp fixturePacket, p Packet) {
	t.Helper()
	d := fp.Decoded
	want := unhexT(t, fp.Hex)

	h, err := ParseHeader(want, Limits{})
	require.NoError(t, err)
	assert.Equal(t, byte(d.Version), h.Version, "version")
	assert.Equal(t, byte(d.Type), h.Type, "type")
	assert.Equal(t, uint16(d.Reserved), h.Reserved, "reserved")
	assert.Equal(t, d.ID, h.ID, "header id")
	assert.Equal(t, d.Timeout, h.Timeout, "header timeout")
	assert.Equal(t, len(want), h.Len(), "header Len")

	assert.Equal(t, d.Type == TypeResponse, p.Response, "response")
	assert.Equal(t, d.ID, p.ID, "id")
	assert.Equal(t, d.Timeout, p.Timeout, "timeout")
	if d.ConnJSON != nil {
		assert.Equal(t, *d.ConnJSON, string(p.Conn), "conn json")
		assert.Equal(t, *d.ConnObjLength, len(p.Conn), "conn length")
		assert.Equal(t, *d.AppObjLength, len(p.App), "app length")
	}
	if d.AppHex == "" {
		assert.Nil(t, p.App, "app must be nil when absent")
	} else {
		assert.Equal(t, d.AppHex, hex.EncodeToString(p.App), "app")
	}

	c, err := ParseConn(p.Conn)
	require.NoError(t, err)
	var wantObj map[string]any
	require.NoError(t, json.Unmarshal(d.ConnObj, &wantObj))
	assert.Equal(t, wantObj, connAsMap(t, c), "conn object")
	assert.Nil(t, c.Ext, "Node's conn objects have no extension fields")

	conn := AppendConn(nil, &c)
	assert.Equal(t, string(p.Conn), string(conn), "AppendConn(ParseConn(conn))")
	if c.Type == KindSubscribe || c.Type == KindUnsubscribe || c.Type == KindSubscribeResult {
		if c.Reg != nil {
			assert.Equal(t, c.Key, SubscriptionKey(c.Reg), "key computed from reg")
		}
		assert.Contains(t, c.Key, SubscriptionKeyPrefix)
	}

	var app []byte
	if d.AppHex != "" {
		app = unhexT(t, d.AppHex)
	}
	if c.Type == KindInvoke {
		args, err := SplitArgs(p.App, c.ArgLength)
		require.NoError(t, err)
		if d.AppArgs != nil || d.ConnJSON != nil { // packets.json lists every argument
			require.Len(t, d.AppArgs, c.ArgLength, "fixture appArgs vs argLength")
			for i, a := range d.AppArgs {
				assert.Equal(t, a.LengthPrefix, len(args[i]), "arg %d length", i)
				assert.Equal(t, a.Hex, hex.EncodeToString(args[i]), "arg %d bytes", i)
			}
		}
		var framed []byte
		for _, a := range args {
			framed, err = AppendArg(framed, JSON, Raw(a))
			require.NoError(t, err)
		}
		assert.Equal(t, hex.EncodeToString(app), hex.EncodeToString(framed), "AppendArg framing")
	}

	enc := AppendPacket(nil, &Packet{Response: p.Response, ID: d.ID, Timeout: d.Timeout, Conn: conn, App: app})
	assert.Equal(t, fp.Hex, hex.EncodeToString(enc), "AppendPacket(fields)")
}

func TestFixturePackets(t *testing.T) {
	packets := loadPackets(t)
	require.Len(t, packets, 28, "packets.json has 28 entries")
	kinds := map[string]int{}
	for _, fp := range packets {
		t.Run(fp.Name, func(t *testing.T) {
			b := unhexT(t, fp.Hex)
			require.Len(t, b, fp.Length)
			p, n, err := DecodePacket(b, Limits{})
			require.NoError(t, err)
			require.Equal(t, len(b), n)
			checkFixturePacket(t, fp, p)

			// The same packet through a Reader.
			r := NewReader(bytes.NewReader(b), Limits{})
			p2, err := r.Next()
			require.NoError(t, err)
			assert.Equal(t, p, p2)
			_, err = r.Next()
			assert.Equal(t, io.EOF, err)

			c, err := ParseConn(p.Conn)
			require.NoError(t, err)
			kinds[c.Type]++
		})
	}
	// Every kind Node uses is among the fixtures.
	for _, k := range []string{KindRegisterChannel, KindRegisterChannelRes, KindSubscribe, KindUnsubscribe,
		KindSubscribeResult, KindSubscribeResultRes, KindInvoke, KindInvokeResult, KindHeartbeat, KindHeartbeatRes} {
		assert.NotZero(t, kinds[k], "no fixture packet of kind %s", k)
	}
	t.Logf("checked %d of %d fixture packets, kinds %v", len(packets), 28, kinds)
}

func TestFixtureCapture(t *testing.T) {
	capture := loadCapture(t)
	dirs := []struct {
		name    string
		packets []fixturePacket
		count   int
	}{
		{"follower-to-leader", capture.FollowerToLeader, 13},
		{"leader-to-follower", capture.LeaderToFollower, 10},
	}
	readers := []struct {
		name string
		wrap func(io.Reader) io.Reader
	}{
		{"whole", func(r io.Reader) io.Reader { return r }},
		{"one-byte", iotest.OneByteReader},
		{"half", iotest.HalfReader},
		{"data-err", iotest.DataErrReader},
	}
	for _, dir := range dirs {
		require.Len(t, dir.packets, dir.count, dir.name)
		var stream []byte
		for _, fp := range dir.packets {
			stream = append(stream, unhexT(t, fp.Hex)...)
		}
		for _, rd := range readers {
			t.Run(dir.name+"/"+rd.name, func(t *testing.T) {
				r := NewReader(rd.wrap(bytes.NewReader(stream)), Limits{})
				for i, fp := range dir.packets {
					p, err := r.Next()
					require.NoError(t, err, "packet %d", i)
					checkFixturePacket(t, fp, p)
				}
				_, err := r.Next()
				assert.Equal(t, io.EOF, err)
			})
		}
		t.Run(dir.name+"/DecodePacket", func(t *testing.T) {
			rest := stream
			for i, fp := range dir.packets {
				p, n, err := DecodePacket(rest, Limits{})
				require.NoError(t, err, "packet %d", i)
				checkFixturePacket(t, fp, p)
				rest = rest[n:]
			}
			assert.Empty(t, rest)
		})
		t.Logf("%s: %d packets parsed in order", dir.name, len(dir.packets))
	}
}
