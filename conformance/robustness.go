package conformance

import (
	"errors"
	"io"
	"math"
	"os"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/protocol"
)

// strangerRegisterDeadline is the leaders' register deadline in the
// robustness cases: how long a connection may stay silent before
// registering.
const strangerRegisterDeadline = time.Second

// An attack is what a stranger does on a connection to the leader: it
// writes payload (nothing if nil) and then waits.
type attack struct {
	name    string
	payload func() []byte
}

// header returns a packet header announcing conn and app object lengths.
func header(connLen, appLen int32) []byte {
	b := make([]byte, protocol.HeaderSize)
	protocol.Header{Version: protocol.Version, Type: protocol.TypeRequest, ID: 1, Timeout: 3000,
		ConnLen: connLen, AppLen: appLen}.Put(b)
	return b
}

// attacks are the strangers of the robustness subtest, each a case.
var attacks = []attack{
	{"garbage", func() []byte {
		b := make([]byte, 256)
		for i := range b {
			b[i] = byte(i*131 + 7)
		}
		b[0] = protocol.Version + 0x7f
		return b
	}},
	{"http-request", func() []byte {
		return []byte("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: conformance\r\nAccept: */*\r\n\r\n")
	}},
	{"2GB-length", func() []byte { return header(2, math.MaxInt32) }},
	{"negative-length", func() []byte { return header(-1, 0) }},
	{"header-then-silence", func() []byte { return header(100, 0) }},
	{"silence", nil},
}

var robustnessCases = func() []testCase {
	var cs []testCase
	for _, a := range attacks {
		cs = append(cs, testCase{name: a.name, run: func(e *env) { testStranger(e, a) }})
	}
	return append(cs, attackCases...)
}()

// A stranger connects to the leader and misbehaves: the leader drops that
// connection (a silent one after its register deadline) and goes on
// serving its follower, which never notices.
func testStranger(e *env, a attack) {
	addr := e.addr()
	l, f := e.pair2(addr, "Robust", cluster.WithRegisterDeadline(strangerRegisterDeadline))
	before := f.whoami()
	tr := e.h.NewTransport(e.t)
	e.stepf("a stranger dials %s", addr)
	c, err := tr.Dial(e.Timeout(opTimeout), addr)
	if err != nil {
		e.fatalf("stranger: Dial(%q): %v", addr, err)
	}
	e.OnTeardown(func() { c.Close() })
	if a.payload != nil {
		p := a.payload()
		e.stepf("the stranger writes %d bytes (%s)", len(p), a.name)
		c.SetWriteDeadline(time.Now().Add(opTimeout))
		// The leader may hang up before it read everything: a failed
		// write is no failure.
		if _, err := c.Write(p); err != nil {
			e.t.Logf("stranger: write: %v", err)
		}
	}
	bound := strangerRegisterDeadline + opTimeout
	e.stepf("waiting up to %v for the leader to drop the stranger", bound)
	c.SetReadDeadline(time.Now().Add(bound))
	start := time.Now()
	// io.Copy ends at io.EOF (nil) or at a reset (an error of the medium).
	n, err := io.Copy(io.Discard, c)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		e.fatalf("the leader kept the stranger's connection (%s) open for %v", a.name, bound)
	}
	if err == nil {
		err = io.EOF
	}
	e.t.Logf("the leader dropped the stranger (%s) after %v, having sent it %d bytes; the stranger read: %v",
		a.name, time.Since(start).Round(time.Millisecond), n, err)

	// Everyone else is still served, by the same leader.
	if got := f.whoami(); got != before {
		e.errorf("after the stranger the follower reaches %q, before it reached %q", got, before)
	}
	e.checkLeaderServes(l, f)
	if n := l.c.Stats().Followers; n != 1 {
		e.errorf("the leader counts %d followers, want 1 (the stranger never registered)", n)
	}
}
