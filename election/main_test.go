package election_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/go-clusterclient/clusterclient/election"
	"github.com/go-clusterclient/clusterclient/internal/childproc"
	"github.com/go-clusterclient/clusterclient/transport"
	"github.com/go-clusterclient/clusterclient/transport/mem"
	"github.com/go-clusterclient/clusterclient/transport/tcp"
)

func TestMain(m *testing.M) {
	childproc.Main(childModes)
	goleak.VerifyTestMain(m)
}

// testTimeout bounds every wait in these tests; a hang fails the test
// instead of stalling the binary.
const testTimeout = 20 * time.Second

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func newMem(t testing.TB) *mem.Transport {
	t.Helper()
	tr, err := mem.New(mem.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

var addrSeq atomic.Int64

// memAddr returns a mem address no other test uses.
func memAddr(t testing.TB) string {
	return fmt.Sprintf("election-test/%s/%d", t.Name(), addrSeq.Add(1))
}

// acceptor is what the cluster package attaches to a leader's listener,
// reduced to its lifetime: it accepts every conn, reads it until it ends
// (counting the conns still open), and closes them all when closed. Its
// Close closes the listener itself to unblock Accept, then waits for its
// goroutines, as election.Attach allows.
type acceptor struct {
	ln   net.Listener
	done chan struct{} // closed when the accept loop returns
	live atomic.Int64  // accepted conns not yet ended
	wg   sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// attach attaches an acceptor to l's listener, or returns the one there.
func attach(l *election.Lease) *acceptor {
	a, ok := election.Attach(l, startAcceptor)
	if !ok {
		panic("election.Attach: the listener's last lease was released")
	}
	return a
}

func startAcceptor(ln net.Listener) *acceptor {
	a := &acceptor{ln: ln, done: make(chan struct{}), conns: make(map[net.Conn]struct{})}
	go a.loop()
	return a
}

func (a *acceptor) loop() {
	defer close(a.done)
	for {
		c, err := a.ln.Accept()
		if err != nil {
			return
		}
		a.mu.Lock()
		if a.closed {
			a.mu.Unlock()
			c.Close()
			continue
		}
		a.conns[c] = struct{}{}
		a.live.Add(1)
		a.wg.Add(1)
		a.mu.Unlock()
		go a.drain(c)
	}
}

// drain reads c until it ends (the follower left or the acceptor closed).
func (a *acceptor) drain(c net.Conn) {
	defer a.wg.Done()
	io.Copy(io.Discard, c)
	c.Close()
	a.live.Add(-1)
	a.mu.Lock()
	delete(a.conns, c)
	a.mu.Unlock()
}

func (a *acceptor) Close() error {
	a.mu.Lock()
	a.closed = true
	for c := range a.conns {
		c.Close()
	}
	a.mu.Unlock()
	err := a.ln.Close()
	<-a.done
	a.wg.Wait()
	return err
}

// recorder wraps a transport and records Listen calls and listener
// closes, in order, so tests can check how many binds happened and that
// the attachment closes before the listener.
type recorder struct {
	transport.Transport
	listens atomic.Int64

	mu     sync.Mutex
	events []string
}

func (r *recorder) record(ev string) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
}

func (r *recorder) Events() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

func (r *recorder) Listen(ctx context.Context, addr string) (net.Listener, error) {
	r.listens.Add(1)
	ln, err := r.Transport.Listen(ctx, addr)
	if err != nil {
		return nil, err
	}
	r.record("listen")
	return &recListener{Listener: ln, rec: r}, nil
}

type recListener struct {
	net.Listener
	rec  *recorder
	once sync.Once
}

func (l *recListener) Close() error {
	l.once.Do(func() { l.rec.record("listener closed") })
	return l.Listener.Close()
}

// fakeTransport answers Listen and Dial with fixed errors, to drive the
// election's policy through cases a real transport produces only by
// accident (a holder that dies between bind and dial, a refused bind).
type fakeTransport struct {
	listenErr, dialErr error
	listens, dials     atomic.Int64
}

func (f *fakeTransport) Name() string        { return "fake" }
func (f *fakeTransport) DefaultAddr() string { return "fake-addr" }

func (f *fakeTransport) Listen(ctx context.Context, addr string) (net.Listener, error) {
	f.listens.Add(1)
	return nil, f.listenErr
}

func (f *fakeTransport) Dial(ctx context.Context, addr string) (net.Conn, error) {
	f.dials.Add(1)
	return nil, f.dialErr
}

// newTCPTransport returns the default tcp transport (loopback only).
func newTCPTransport() *tcp.Transport { return tcp.New(tcp.Config{}) }

func newTCP(testing.TB) *tcp.Transport { return newTCPTransport() }

// doneWatch is a context that reports the first call of its Done method.
// An election asks for Done first when it has to wait: in the registry,
// for a bind or close of its address in progress in this process (before
// that, it only reads Err). So waitDone returns once the election is
// parked there, the state a test of that wait needs.
type doneWatch struct {
	context.Context
	once   sync.Once
	called chan struct{}
}

func watchDone(ctx context.Context) *doneWatch {
	return &doneWatch{Context: ctx, called: make(chan struct{})}
}

func (c *doneWatch) Done() <-chan struct{} {
	c.once.Do(func() { close(c.called) })
	return c.Context.Done()
}

func (c *doneWatch) waitDone(t testing.TB) {
	t.Helper()
	select {
	case <-c.called:
	case <-time.After(testTimeout):
		t.Fatal("the election never waited on its context")
	}
}
