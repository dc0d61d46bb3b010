package link

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/protocol"
)

// aliasing is a serving handler whose jobs use the frame's app object
// where the reader left it (Job.App: the link copies it when the job
// leaves the reader), as the leader's invoke does. A request of kind
// "echo" is answered with its app object at once; a kind listed in wait
// only once its channel is closed.
type aliasing struct {
	l    *Link
	wait map[string]chan struct{}
}

func (h *aliasing) Request(pk protocol.Packet, co protocol.ConnObject) Job {
	id, timeout := pk.ID, pk.Timeout
	release := h.wait[co.Type]
	return Job{Method: co.Type, Ordered: strings.HasPrefix(co.Type, "ord"), App: pk.App, Run: func(app []byte) {
		if release != nil {
			<-release
		}
		h.l.Send(true, id, timeout, &protocol.ConnObject{Type: protocol.KindInvokeResult, Success: true}, app)
	}}
}
func (h *aliasing) Response(protocol.Packet, protocol.ConnObject) {}
func (h *aliasing) Ended(err error)                               { h.l.Close(err) }

// aliasPair connects a serving link with an aliasing handler and a calling
// link over loopback TCP.
func aliasPair(t *testing.T, budget time.Duration, wait ...string) (*aliasing, *Link) {
	t.Helper()
	a, b := tcpConns(t)
	h := &aliasing{wait: map[string]chan struct{}{}}
	for _, k := range wait {
		h.wait[k] = make(chan struct{})
	}
	h.l = New(b, Config{Server: true, MaxWriteBuffer: 1 << 20, Timeout: time.Minute, InlineBudget: budget}, h)
	cl := &caller{ended: make(chan error, 1)}
	cl.l = New(a, Config{MaxWriteBuffer: 1 << 20, Timeout: time.Minute,
		TimeoutError: func(string, int64) error { return errTimedOut }}, cl)
	go h.l.Serve()
	cl.l.StartReading()
	t.Cleanup(func() {
		for _, ch := range h.wait {
			select {
			case <-ch:
			default:
				close(ch)
			}
		}
		cl.l.Close(nil)
		h.l.Close(nil)
		cl.l.Wait()
		h.l.Wait()
	})
	return h, cl.l
}

// callBG makes a call of kind with arg in the background.
func callBG(l *Link, kind, arg string) <-chan string {
	got := make(chan string, 1)
	go func() {
		ans, err := callKind(l, context.Background(), kind, arg)
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		got <- string(ans.Data)
	}()
	return got
}

func expect(t *testing.T, got <-chan string, want, what string) {
	t.Helper()
	select {
	case g := <-got:
		if g != want {
			t.Fatalf("%s: answered %.40q…, want %.40q…", what, g, want)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: no answer", what)
	}
}

// A job that runs on the reader uses its frame where the reader left it.
// When it runs long, the reader that takes over reads into a buffer of
// its own: the frames it reads meanwhile (same size, other bytes, at the
// same place in the buffer) do not change the long job's arguments.
func TestLongJobKeepsItsFrame(t *testing.T) {
	h, cl := aliasPair(t, 0, "block")
	blockArg := strings.Repeat("b", 3000)
	blocked := callBG(cl, "block", blockArg)
	for i := range 5 {
		arg := strings.Repeat(string(rune('0'+i)), 3000)
		expect(t, callBG(cl, "echo", arg), arg, "echo while a job holds its frame")
	}
	close(h.wait["block"])
	expect(t, blocked, blockArg, "the long job's answer")
}

// A job that ran long returns while the reader that took over runs a job
// of its own on its frame: the first takes reading back and reads into a
// buffer of its own, leaving the second job's frame alone. (If the second
// job is itself handed over first, the new reader detaches instead; the
// answers must be the same either way.)
func TestReadingTakenBackKeepsFrames(t *testing.T) {
	h, cl := aliasPair(t, 300*time.Millisecond, "first", "second")
	firstArg, secondArg := strings.Repeat("f", 3000), strings.Repeat("s", 3000)
	first := callBG(cl, "first", firstArg)
	// Answered once the first job was handed over (after the budget).
	expect(t, callBG(cl, "echo", strings.Repeat("e", 3000)), strings.Repeat("e", 3000), "echo after the hand-over")
	second := callBG(cl, "second", secondArg)
	// The second job runs on the new reader (whether it has started is
	// not observable; if not yet, it runs on the first's reader, which is
	// just as well).
	close(h.wait["first"])
	expect(t, first, firstArg, "the first job's answer")
	for i := range 5 {
		arg := strings.Repeat(string(rune('0'+i)), 3000)
		expect(t, callBG(cl, "echo", arg), arg, "echo after reading was taken back")
	}
	close(h.wait["second"])
	expect(t, second, secondArg, "the second job's answer")
}

// Jobs that leave the reader get a copy of Job.App: ordered jobs queued behind
// one that runs long keep their frames while the reader reads on.
func TestQueuedJobKeepsItsFrame(t *testing.T) {
	h, cl := aliasPair(t, 0, "ord-block")
	blocked := callBG(cl, "ord-block", "b")
	var queued []<-chan string
	var args []string
	for i := range 5 {
		// Read (and queued) only once the blocked job was handed over.
		args = append(args, strings.Repeat(string(rune('0'+i)), 3000))
		queued = append(queued, callBG(cl, "ord", args[i]))
	}
	for i := range 5 { // the reader reads on meanwhile, into the same buffer
		arg := strings.Repeat(string(rune('a'+i)), 3000)
		expect(t, callBG(cl, "echo", arg), arg, "echo while ordered jobs wait")
	}
	close(h.wait["ord-block"])
	expect(t, blocked, "b", "the blocked job's answer")
	for i, got := range queued {
		expect(t, got, args[i], "a queued job's answer")
	}
}
