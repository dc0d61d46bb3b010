package link

import (
	"bytes"
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/protocol"
)

// hasWritev: the systems where a socket's wire writes a large frame's
// app object from where it lies (writer_vec.go).
var hasWritev = runtime.GOOS == "linux" || runtime.GOOS == "darwin" || runtime.GOOS == "openbsd"

// wirePair returns a connected pair of conns of kind: "tcp" and "unix"
// (plain sockets: the wire writes to them directly) and "pipe" (net.Pipe:
// every frame goes through the writer goroutine). The socket buffers are
// made small, so that direct writes come out partial.
func wirePair(t *testing.T, kind string) (a, b net.Conn) {
	t.Helper()
	if kind == "pipe" {
		a, b = net.Pipe()
		t.Cleanup(func() { a.Close(); b.Close() })
		return a, b
	}
	addr := "127.0.0.1:0"
	if kind == "unix" {
		addr = filepath.Join(t.TempDir(), "s")
	}
	ln, err := net.Listen(kind, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	a, err = net.Dial(kind, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b = <-accepted
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	type buffers interface {
		SetWriteBuffer(int) error
		SetReadBuffer(int) error
	}
	a.(buffers).SetWriteBuffer(32 << 10)
	b.(buffers).SetReadBuffer(32 << 10)
	return a, b
}

// TestWireKeepsFramesWhole: many senders at once, frames of many sizes,
// a peer that does not read at first (so direct writes stop part-way and
// the writer goroutine takes over): every frame arrives whole, and each
// sender's frames in the order it sent them. send never blocks meanwhile.
func TestWireKeepsFramesWhole(t *testing.T) {
	for _, kind := range []string{"tcp", "unix", "pipe"} {
		t.Run(kind, func(t *testing.T) {
			a, b := wirePair(t, kind)
			w := newWire(a, 64<<20)
			if (w.direct != nil) != (kind != "pipe") {
				t.Fatalf("direct writer present = %v on %s", w.direct != nil, kind)
			}
			if hasWritev && (w.vec != nil) != (kind != "pipe") {
				t.Fatalf("vectored writer present = %v on %s", w.vec != nil, kind)
			}
			const senders, perSender = 8, 100
			payload := func(s, i int) []byte {
				n := (s*perSender + i*131) % 20000 // 0 B .. 20 KB
				return bytes.Repeat([]byte{byte('a' + s)}, n)
			}
			var wg sync.WaitGroup
			sent := make(chan struct{})
			for s := range senders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range perSender {
						co := &protocol.ConnObject{Type: protocol.KindInvoke, Method: fmt.Sprintf("m%d", s), ArgLength: i}
						app := payload(s, i)
						if err := w.send(false, int64(s*perSender+i+1), 1000, co, app); err != nil {
							t.Errorf("send: %v", err)
							return
						}
						// send keeps no reference to app (a vectored
						// write's rest is copied).
						clear(app)
					}
				}()
			}
			go func() { wg.Wait(); close(sent) }()
			if kind != "pipe" { // a pipe has no buffer: senders can finish only once the peer reads
				select {
				case <-sent:
				case <-time.After(20 * time.Second):
					t.Fatal("send blocked while the peer did not read")
				}
			}
			r := protocol.NewReader(b, protocol.Limits{MaxAppLen: 1 << 20})
			next := make([]int, senders)
			for range senders * perSender {
				b.SetReadDeadline(time.Now().Add(20 * time.Second))
				p, err := r.Next()
				if err != nil {
					t.Fatalf("read after %v frames: %v", next, err)
				}
				co, err := protocol.ParseConn(p.Conn)
				if err != nil {
					t.Fatal(err)
				}
				var s int
				fmt.Sscanf(co.Method, "m%d", &s)
				i := co.ArgLength
				if i != next[s] {
					t.Fatalf("sender %d: frame %d arrived where %d was due", s, i, next[s])
				}
				next[s]++
				if p.ID != int64(s*perSender+i+1) || !bytes.Equal(p.App, payload(s, i)) {
					t.Fatalf("sender %d frame %d: id %d, %d bytes: not what was sent", s, i, p.ID, len(p.App))
				}
			}
			<-sent
			w.close(nil)
			w.wait()
		})
	}
}

// TestWireFlushCloseWritesQueuedFrames: a flushClose that comes while a
// direct write holds the socket still writes everything queued, then
// closes.
func TestWireFlushCloseWritesQueuedFrames(t *testing.T) {
	for _, kind := range []string{"tcp", "unix", "pipe"} {
		t.Run(kind, func(t *testing.T) {
			a, b := wirePair(t, kind)
			w := newWire(a, 64<<20)
			big := bytes.Repeat([]byte("x"), 200<<10)
			go func() {
				for i := range 5 {
					w.send(true, int64(i+1), 0, &protocol.ConnObject{Type: protocol.KindInvokeResult, Success: true}, big)
				}
				w.flushClose(ErrClosed, 20*time.Second)
			}()
			r := protocol.NewReader(b, protocol.Limits{MaxAppLen: 1 << 20})
			b.SetReadDeadline(time.Now().Add(20 * time.Second))
			for i := range 5 {
				p, err := r.Next()
				if err != nil {
					t.Fatalf("frame %d: %v", i+1, err)
				}
				if p.ID != int64(i+1) || len(p.App) != len(big) {
					t.Fatalf("frame %d: id %d, %d bytes", i+1, p.ID, len(p.App))
				}
			}
			if _, err := r.Next(); err == nil {
				t.Fatal("the connection stayed open after flushClose")
			}
			w.wait()
		})
	}
}

// Frames sent while the wire is held are written when it is no longer
// held, all of them, in order. The state is the wire's: setting it twice
// changes nothing, and one setHeld(false) releases.
func TestWireHoldRelease(t *testing.T) {
	for _, kind := range []string{"tcp", "unix"} {
		t.Run(kind, func(t *testing.T) {
			a, b := wirePair(t, kind)
			w := newWire(a, 64<<20)
			defer func() { w.close(nil); w.wait() }()
			w.setHeld(true)
			for i := range 3 {
				w.setHeld(true)
				if err := w.send(true, int64(i+1), 0, &protocol.ConnObject{Type: protocol.KindInvokeResult, Success: true}, []byte(`"x"`)); err != nil {
					t.Fatal(err)
				}
			}
			b.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			if n, err := b.Read(make([]byte, 1)); n != 0 || err == nil {
				t.Fatalf("read %d bytes (%v) while the wire was held", n, err)
			}
			w.setHeld(false)
			b.SetReadDeadline(time.Now().Add(10 * time.Second))
			r := protocol.NewReader(b, protocol.Limits{})
			for i := range 3 {
				p, err := r.Next()
				if err != nil || p.ID != int64(i+1) {
					t.Fatalf("frame %d: id %d, %v", i+1, p.ID, err)
				}
			}
		})
	}
}
