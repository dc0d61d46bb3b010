package link

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/protocol"
)

// echo is a serving handler: a request of kind "echo" is answered with
// its app object by a job; "sleep" sleeps for the milliseconds its app
// object says first; "block" blocks until release is closed; "drop" gets
// no answer.
type echo struct {
	l       *Link
	release chan struct{}
	ended   chan error
}

func (e *echo) Request(pk protocol.Packet, co protocol.ConnObject) Job {
	app := append([]byte(nil), pk.App...)
	switch co.Type {
	case "echo":
		return Job{Method: "echo", Run: func([]byte) {
			e.l.Send(true, pk.ID, pk.Timeout, &protocol.ConnObject{Type: protocol.KindInvokeResult, Success: true}, app)
		}}
	case "sleep": // sleeps for the milliseconds in its argument
		d, _ := time.ParseDuration(string(app) + "ms")
		return Job{Method: "sleep", Run: func([]byte) {
			time.Sleep(d)
			e.l.Send(true, pk.ID, pk.Timeout, &protocol.ConnObject{Type: protocol.KindInvokeResult, Success: true}, app)
		}}
	case "block":
		return Job{Method: "block", Run: func([]byte) {
			<-e.release
			e.l.Send(true, pk.ID, pk.Timeout, &protocol.ConnObject{Type: protocol.KindInvokeResult, Success: true}, app)
		}}
	}
	return Job{}
}
func (e *echo) Response(protocol.Packet, protocol.ConnObject) {}
func (e *echo) Ended(err error)                               { e.ended <- err; e.l.Close(err) }

// caller is a calling handler that closes its link when reading ends.
type caller struct {
	l     *Link
	ended chan error
}

func (c *caller) Request(protocol.Packet, protocol.ConnObject) Job { return Job{} }
func (c *caller) Response(protocol.Packet, protocol.ConnObject)    {}
func (c *caller) Ended(err error)                                  { c.ended <- err; c.l.Close(err) }

var errTimedOut = errors.New("timed out")

// tcpConns returns the two ends of a loopback TCP connection.
func tcpConns(t *testing.T) (a, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if a, err = net.Dial("tcp", ln.Addr().String()); err != nil {
		t.Fatal(err)
	}
	if b, err = ln.Accept(); err != nil {
		t.Fatal(err)
	}
	return a, b
}

// pair connects a serving link and a calling link over loopback TCP.
func pair(t *testing.T, timeout time.Duration) (srv *echo, cl *caller) {
	t.Helper()
	a, b := tcpConns(t)
	srv = &echo{release: make(chan struct{}), ended: make(chan error, 1)}
	srv.l = New(b, Config{Server: true, MaxWriteBuffer: 1 << 20, Timeout: time.Minute}, srv)
	cl = &caller{ended: make(chan error, 1)}
	cl.l = New(a, Config{MaxWriteBuffer: 1 << 20, Timeout: timeout,
		TimeoutError: func(string, int64) error { return errTimedOut }}, cl)
	go srv.l.Serve()
	cl.l.StartReading()
	t.Cleanup(func() {
		select {
		case <-srv.release:
		default:
			close(srv.release)
		}
		cl.l.Close(nil)
		srv.l.Close(nil)
		cl.l.Wait()
		srv.l.Wait()
	})
	return srv, cl
}

var ids protocol.IDs

func callKind(l *Link, ctx context.Context, kind, arg string) (Answer, error) {
	return l.Call(ctx, ids.Next(), 60000, kind, &protocol.ConnObject{Type: kind}, []byte(arg))
}

// Calls are answered whoever reads: callers in turn and concurrently,
// with the background reader stopping and starting between them.
func TestCallAnswered(t *testing.T) {
	_, cl := pair(t, time.Minute)
	for i := range 20 {
		ans, err := callKind(cl.l, context.Background(), "echo", `"x"`)
		if err != nil || !ans.OK || string(ans.Data) != `"x"` {
			t.Fatalf("call %d: %+v %v", i, ans, err)
		}
		if i%5 == 0 {
			time.Sleep(5 * ReaderIdle) // nobody calls: a background reader comes and goes
		}
	}
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 50 {
				if ans, err := callKind(cl.l, context.Background(), "echo", `"y"`); err != nil || string(ans.Data) != `"y"` {
					t.Errorf("%+v %v", ans, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// A call ends with its context (ErrAbandoned), with the link's timeout
// (TimeoutError), or with the link's close reason; a call after Close is
// not sent.
func TestCallEnds(t *testing.T) {
	srv, cl := pair(t, 200*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := callKind(cl.l, ctx, "block", "1"); !errors.Is(err, ErrAbandoned) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("abandoned call: %v", err)
	}
	if _, err := callKind(cl.l, context.Background(), "block", "2"); err != errTimedOut {
		t.Fatalf("timed-out call: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := callKind(cl.l, context.Background(), "block", "3")
		done <- err
	}()
	for cl.l.InFlight() == 0 {
		time.Sleep(time.Millisecond)
	}
	srv.l.Close(nil) // the peer hangs up
	if err := <-done; err == nil || errors.Is(err, ErrNotSent) {
		t.Fatalf("call in flight when the peer hung up: %v", err)
	}
	select {
	case <-cl.ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the calling handler was not told that reading ended")
	}
	if _, err := callKind(cl.l, context.Background(), "echo", "4"); !errors.Is(err, ErrNotSent) {
		t.Fatalf("call after the link closed: %v", err)
	}
}

// A job that runs long on the reader moves reading to a new goroutine:
// the peer's next requests are answered meanwhile.
func TestLongJobHandsReadingOver(t *testing.T) {
	srv, cl := pair(t, time.Minute)
	blocked := make(chan error, 1)
	go func() {
		_, err := callKind(cl.l, context.Background(), "block", "1")
		blocked <- err
	}()
	for range 3 {
		if ans, err := callKind(cl.l, context.Background(), "echo", `"z"`); err != nil || string(ans.Data) != `"z"` {
			t.Fatalf("echo while a job blocks the first reader: %+v %v", ans, err)
		}
	}
	close(srv.release)
	if err := <-blocked; err != nil {
		t.Fatal(err)
	}
}

// failingConn fails every write once told to.
type failingConn struct {
	net.Conn
	mu   sync.Mutex
	fail error
}

func (c *failingConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	err := c.fail
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

// A write that fails closes the connection under the reader: the handler
// is told, with the write's error, so that it can drop the peer (a link
// that fell silent instead kept a departed follower's calls running).
func TestWriteFailureEndsReading(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	fc := &failingConn{Conn: b}
	srv := &echo{release: make(chan struct{}), ended: make(chan error, 1)}
	srv.l = New(fc, Config{Server: true, MaxWriteBuffer: 1 << 20, Timeout: time.Minute}, srv)
	defer func() { srv.l.Close(nil); srv.l.Wait() }()
	go srv.l.Serve()
	broken := errors.New("broken pipe")
	fc.mu.Lock()
	fc.fail = broken
	fc.mu.Unlock()
	go a.Write(protocol.AppendPacket(nil, &protocol.Packet{ID: 1, Timeout: 3000,
		Conn: protocol.AppendConn(nil, &protocol.ConnObject{Type: "echo"})}))
	select {
	case err := <-srv.ended:
		if !errors.Is(err, broken) {
			t.Fatalf("reading ended with %v, want the write's error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the handler was never told that the connection failed")
	}
}

// Ordered jobs run one at a time in the order read, also when the first
// blocks long enough for reading to move on.
func TestOrderedJobs(t *testing.T) {
	var mu sync.Mutex
	var got []int
	done := make(chan struct{})
	const n = 30
	h := &orderedHandler{run: func(i int) {
		if i == 0 {
			time.Sleep(20 * time.Millisecond)
		}
		mu.Lock()
		got = append(got, i)
		if len(got) == n {
			close(done)
		}
		mu.Unlock()
	}}
	a, b := net.Pipe()
	defer a.Close()
	l := New(b, Config{Server: true, MaxWriteBuffer: 1 << 20, Timeout: time.Minute}, h)
	defer func() { l.Close(nil); l.Wait() }()
	go l.Serve()
	var stream []byte
	for i := range n {
		stream = protocol.AppendPacket(stream, &protocol.Packet{ID: int64(i), Conn: protocol.AppendConn(nil, &protocol.ConnObject{Type: "note"})})
	}
	go a.Write(stream)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("ordered jobs did not all run")
	}
	mu.Lock()
	defer mu.Unlock()
	for i, v := range got {
		if v != i {
			t.Fatalf("ran in the order %v", got)
		}
	}
}

type orderedHandler struct{ run func(int) }

func (o *orderedHandler) Request(pk protocol.Packet, _ protocol.ConnObject) Job {
	i := int(pk.ID)
	return Job{Method: "note", Ordered: true, Run: func([]byte) { o.run(i) }}
}
func (o *orderedHandler) Response(protocol.Packet, protocol.ConnObject) {}
func (o *orderedHandler) Ended(error)                                   {}

// A peer that went away is a hang-up however it shows: EOF on a read, a
// reset, or a write to a connection it closed (a broken pipe; the
// in-memory transport's closed pipe). A malformed frame is not.
func TestIsEOF(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{io.EOF, true},
		{io.ErrUnexpectedEOF, true},
		{net.ErrClosed, true},
		{&net.OpError{Op: "read", Err: syscall.ECONNRESET}, true},
		{&net.OpError{Op: "write", Err: os.NewSyscallError("write", syscall.EPIPE)}, true},
		{fmt.Errorf("write mem a->b: %w", io.ErrClosedPipe), true},
		{protocol.ErrVersion, false},
		{errors.New("something else"), false},
	} {
		if got := IsEOF(c.err); got != c.want {
			t.Errorf("IsEOF(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
