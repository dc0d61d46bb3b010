package link

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-clusterclient/clusterclient/protocol"
)

// More errors of a Link.
var (
	// ErrNotSent: a call never left this process, because the link was
	// closed before it was sent (the close reason is wrapped too).
	ErrNotSent = errors.New("link: call not sent")
	// ErrAbandoned: the caller's context ended before the answer came
	// (the context's error is wrapped too).
	ErrAbandoned = errors.New("link: call abandoned")
)

// DefaultInlineBudget is how long a job may run on the reading goroutine
// before reading moves to a new goroutine.
const DefaultInlineBudget = time.Millisecond

// ReaderIdle is how long a calling link may go unread, with no call in
// flight, before a background reader starts (pushes, heartbeat replies
// and a dead peer are then noticed).
const ReaderIdle = time.Millisecond

// Config configures a Link. Zero fields take the defaults noted.
type Config struct {
	// Server makes the link the serving side (the leader's): a reader
	// always reads it (Serve), and while requests already read wait in
	// its buffer their answers are held, then written in one go.
	// Otherwise the link is the calling side (the follower's): callers
	// read their own answers when nobody else reads (Call).
	Server bool
	// MaxWriteBuffer bounds the bytes queued that the peer has not read;
	// beyond it Send fails with ErrFull. Required.
	MaxWriteBuffer int
	// Limits are the frame limits of what the link reads.
	Limits protocol.Limits
	// Timeout is the response timeout of every call and notification the
	// link makes. Required.
	Timeout time.Duration
	// MaxCalls bounds the calls in flight; beyond, Call fails with
	// ErrCallsFull. 0: no bound.
	MaxCalls int
	// InlineBudget: DefaultInlineBudget when 0.
	InlineBudget time.Duration
	// Paces remembers which methods ran long, for all the links that share
	// it (a leader's). nil: the link's own.
	Paces *Paces
	// TimeoutError returns the error a call fails with when no answer
	// came within Timeout. Required for a link that makes calls.
	TimeoutError func(method string, id int64) error
}

// An Unacker is a Handler told of a notification that got no answer
// within the link's Timeout (key is the one given to Notify).
type Unacker interface {
	Unacked(key string, id int64)
}

// A Handler gives meaning to the frames a Link reads. Its methods run on
// the link's reading goroutine, one frame at a time.
type Handler interface {
	// Request handles a request. Work that may take long (a method call)
	// it returns as a Job, which the link runs on the reader or on a
	// goroutine of its own; what is quick (a heartbeat reply) it does
	// itself. The frame's Conn and App alias the reader's buffer: a job
	// gets the bytes it uses through Job.App, which the link copies when
	// the job leaves the reader.
	Request(pk protocol.Packet, co protocol.ConnObject) Job
	// Response handles a response that answers none of the link's calls
	// or notifications (a heartbeat reply, the answer to a request sent
	// with Send).
	Response(pk protocol.Packet, co protocol.ConnObject)
	// Ended is told why reading ended: the read error (the peer hung up,
	// a malformed frame, a read deadline on a serving link). It is told
	// once, and not at all when the link was closed first.
	Ended(err error)
}

// A Job is the work of one request.
type Job struct {
	// Method names the work: a method whose jobs ran past the inline
	// budget three times in a row runs on goroutines of its own for a
	// while (see Paces).
	Method string
	// Ordered jobs run one at a time, in the order they were read (a
	// follower's one-way calls).
	Ordered bool
	// App is what Run uses of the frame (a call's arguments). While the
	// job runs on the reader it is where the reader read it, not copied;
	// the link copies it when the job leaves the reader (it is queued
	// behind ordered jobs, or runs on a goroutine of its own), as the
	// next read reuses the buffer. A job that runs long on the reader
	// keeps it as well: reading moves to a new goroutine, which reads
	// into a buffer of its own (protocol.Reader.Detach).
	App []byte
	// Run does the work, given App; nil means there is none.
	Run func(app []byte)
}

// leave is the job leaving the reader, with its own copy of App.
func (job Job) leave() Job {
	if job.App != nil {
		job.App = append([]byte(nil), job.App...)
	}
	return job
}

// Answer is the response to a call.
type Answer struct {
	OK   bool   // the response's success flag (invoke_result)
	Data []byte // its app object, owned by the caller
}

// Link is one framed connection to a peer. See the package doc for its
// goroutines and lock order.
type Link struct {
	cfg    Config
	conn   net.Conn
	w      *wire
	r      *protocol.Reader
	calls  *pending
	paces  *Paces
	h      atomic.Pointer[handlerBox]
	ended  sync.Once   // the handler was told why reading ended, or Close came first
	closed atomic.Bool // Close was called

	// Reading: one goroutine at a time holds the read token.
	rmu       sync.Mutex
	reading   bool   // a goroutine holds the token
	stopped   bool   // closed: no reader starts again
	freeSince moment // calling side: since when nobody reads
	freedAt   int64  // calling side: when free last ran (unix nanos)

	// Jobs on the reader (serving side): see inline.
	relay       atomic.Uint64 // a state of the reader, and whose (see inline)
	inlines     atomic.Uint64 // jobs run on a reader so far: their owner marks in relay
	inlineSince moment        // when the job the reader runs began (the last reader to mark it)
	ordered     Serial

	wg sync.WaitGroup // goroutines of the link: readers, jobs, Serve
}

type handlerBox struct{ h Handler }

// New returns a Link over conn; h gets the frames it reads (SetHandler
// may change it later, from the reader). Nothing is read until Serve
// (serving side) or StartReading (calling side).
func New(conn net.Conn, cfg Config, h Handler) *Link {
	if cfg.InlineBudget <= 0 {
		cfg.InlineBudget = DefaultInlineBudget
	}
	l := &Link{cfg: cfg, conn: conn, w: newWire(conn, cfg.MaxWriteBuffer), r: protocol.NewReader(conn, cfg.Limits), paces: cfg.Paces}
	if l.paces == nil {
		l.paces = new(Paces)
	}
	l.calls = newPending(cfg.Timeout, func(c *call) error { return cfg.TimeoutError(c.method, c.id) }, func(c *call, err error) {
		if u, ok := l.handler().(Unacker); ok && err == nil {
			u.Unacked(c.key, c.id)
		}
	})
	l.calls.max = cfg.MaxCalls
	if !cfg.Server {
		l.calls.onExpired = l.kick
	}
	l.h.Store(&handlerBox{h})
	watch.add(l)
	return l
}

// SetHandler makes h the handler of the frames read from now on, and
// paces (if not nil) the link's record of slow methods. It is called from
// the reader (a Handler method), before the link ran any job: as when a
// connection's first frame names the channel whose leader then handles
// it.
func (l *Link) SetHandler(h Handler, paces *Paces) {
	if paces != nil {
		l.paces = paces
	}
	l.h.Store(&handlerBox{h})
}

// HandOver does what the watchdog does when a job has run on the reader
// past the inline budget: a new goroutine reads. It reports false when
// the reader was not running a job. A follower's heartbeat calls it (a
// listener that runs long on the calling side is not watched otherwise),
// and tests, to choose the moment.
func (l *Link) HandOver() bool {
	if l.relay.Load()&relayState != relayInline {
		return false
	}
	l.handOver()
	return true
}

// SetHeld makes sends queue their frames without writing them (true) or
// writes what was queued (false); on a serving link each reader sets it
// before every read. Tests hold a calling link to make frames leave
// together.
func (l *Link) SetHeld(on bool) { l.w.setHeld(on) }

func (l *Link) handler() Handler { return l.h.Load().h }

// Conn returns the link's connection.
func (l *Link) Conn() net.Conn { return l.conn }

// Send writes one frame. app is copied. It fails with the close reason
// once the link is closed, and with ErrFull (the link stays open) when the
// peer does not read.
func (l *Link) Send(response bool, id int64, timeout int32, co *protocol.ConnObject, app []byte) error {
	return l.w.send(response, id, timeout, co, app)
}

// Notify sends a request whose answer nobody waits for: an answer in
// time is dropped; none in time is told to the handler, if it is an
// Unacker, with key.
func (l *Link) Notify(key string, id int64, timeout int32, co *protocol.ConnObject, app []byte) error {
	c := getCall(id)
	c.push, c.key = true, key
	if err := l.calls.add(c, true); err != nil {
		putCall(c)
		return err
	}
	if err := l.w.send(false, id, timeout, co, app); err != nil {
		if l.calls.removeID(id, c) { // else closing the link failed it and put it back
			putCall(c)
		}
		return err
	}
	return nil
}

// Call sends a request and waits for its answer, reading the connection
// itself when nobody else reads it. Its errors: ErrCallsFull or ErrNotSent
// (never sent), ErrFull (not sent: the peer does not read), ErrAbandoned
// (ctx ended first), Config.TimeoutError's (no answer within the link's
// Timeout), or the close reason (the link closed with the call in flight:
// its effect on the peer is unknown).
func (l *Link) Call(ctx context.Context, id int64, timeout int32, method string, co *protocol.ConnObject, app []byte) (Answer, error) {
	return l.call(ctx, true, id, timeout, method, co, app)
}

// CallUntil is Call bounded by ctx alone, not by the link's Timeout: a
// caller with a deadline of its own waits until it.
func (l *Link) CallUntil(ctx context.Context, id int64, timeout int32, method string, co *protocol.ConnObject, app []byte) (Answer, error) {
	return l.call(ctx, false, id, timeout, method, co, app)
}

func (l *Link) call(ctx context.Context, timed bool, id int64, timeout int32, method string, co *protocol.ConnObject, app []byte) (Answer, error) {
	c := getCall(id)
	c.method = method
	if err := l.calls.add(c, timed); err != nil {
		putCall(c)
		if err == ErrCallsFull {
			return Answer{}, err
		}
		return Answer{}, fmt.Errorf("%w: %w", ErrNotSent, err)
	}
	if err := l.w.send(false, id, timeout, co, app); err != nil {
		if l.calls.remove(c) {
			putCall(c)
			if errors.Is(err, ErrFull) {
				return Answer{}, err
			}
			return Answer{}, fmt.Errorf("%w: %w", ErrNotSent, err)
		}
		<-c.ch // failed by Close at the same moment: never sent
		putCall(c)
		return Answer{}, fmt.Errorf("%w: %w", ErrNotSent, err)
	}
	if !l.await(ctx, c) {
		putCall(c)
		return Answer{}, fmt.Errorf("%w: %w", ErrAbandoned, ctx.Err())
	}
	ans, err := Answer{OK: c.ok, Data: c.data}, c.err
	putCall(c)
	return ans, err
}

// InFlight returns the calls and notifications waiting for an answer.
func (l *Link) InFlight() int { return l.calls.len() }

// Ordered returns the ordered jobs waiting to run.
func (l *Link) Ordered() int { return l.ordered.Len() }

// OrderedBusy reports whether an ordered job runs or waits to run.
func (l *Link) OrderedBusy() bool { return l.ordered.Busy() }

// Idle returns how long nothing was read.
func (l *Link) Idle(now time.Time) time.Duration { return l.w.idle(now) }

// Admit gives the link a member's budget: the frame limits and the write
// bound it reads and queues from now on. It runs on the reader (a Handler
// method): the reader's limits are the reader's.
func (l *Link) Admit(lim protocol.Limits, maxWriteBuffer int) {
	l.r.SetLimits(lim)
	l.w.setMax(maxWriteBuffer)
}

// Close closes the link once, recording why: sends fail with reason,
// calls in flight fail with it, ordered jobs not started never start,
// and reading ends (the handler is not told). Frames not yet written are
// dropped.
func (l *Link) Close(reason error) {
	if reason == nil {
		reason = ErrClosed
	}
	l.ended.Do(func() {}) // the handler learns of its own close from itself
	l.closed.Store(true)
	l.rmu.Lock()
	l.stopped = true
	l.freeSince.clear()
	l.rmu.Unlock()
	watch.remove(l)
	l.ordered.Drop()
	l.w.close(reason)
	l.calls.fail(reason)
}

// FlushClose writes what is queued and then closes (at the latest after
// d): a last refusal reaches the peer before the hang-up.
func (l *Link) FlushClose(reason error, d time.Duration) {
	l.w.flushClose(reason, d)
	l.Close(reason)
}

// Err returns why the link closed (nil while open).
func (l *Link) Err() error { return l.w.reason() }

// Done is closed when the link closed.
func (l *Link) Done() <-chan struct{} { return l.w.closed }

// Wait waits, after Close, for the link's goroutines: its writer, the
// readers and jobs it started, and Serve.
func (l *Link) Wait() {
	l.wg.Wait()
	l.ordered.Wait()
	l.w.wait()
}

// end closes the link because reading failed, and tells the handler
// (once; not after a Close).
func (l *Link) end(err error) {
	told := false
	l.ended.Do(func() { told = true })
	if told {
		l.handler().Ended(err)
	}
}

// next reads one frame and handles it: a response settles its call (or
// goes to the handler), a request goes to the handler and its job is
// run. answered reports a call answered; reader is false when reading
// moved to another goroutine while this one ran a job; err is a read
// error (the writer's, if a write failed first), errKicked after a kick
// on the calling side, or errStopped once the link is closed.
func (l *Link) next(caller bool) (answered, reader bool, err error) {
	if l.cfg.Server {
		l.w.setHeld(l.r.Pending())
	}
	pk, err := l.r.Next()
	if err == nil && l.closed.Load() {
		// Closed while frames it sent were still buffered: none of them
		// is handled now.
		return false, true, errStopped
	}
	if err != nil {
		werr := l.w.reason()
		switch ne, ok := errors.AsType[net.Error](err); {
		case l.closed.Load():
			return false, true, errStopped
		case ok && ne.Timeout() && !l.cfg.Server && werr == nil:
			return false, true, errKicked
		case werr != nil:
			return false, true, werr // a write failed first: that is why
		}
		return false, true, err
	}
	l.w.touch()
	co, err := protocol.ParseConn(pk.Conn)
	if err != nil {
		return false, true, err
	}
	h := l.handler()
	if pk.Response {
		var data []byte
		if len(pk.App) > 0 {
			data = append([]byte(nil), pk.App...)
		}
		if l.calls.settle(pk.ID, co.Success, data) {
			return true, true, nil
		}
		h.Response(pk, co)
		return false, true, nil
	}
	job := h.Request(pk, co)
	if job.Run == nil {
		return false, true, nil
	}
	return false, l.run(job, caller), nil
}

var (
	errKicked  = errors.New("read kicked")
	errStopped = errors.New("link closed")
)

// read loops are the reader's: readLoop serves (serving side) or reads
// until no call waits (calling side), until the link ends or reading
// moved to another goroutine.
func (l *Link) readLoop() {
	for {
		answered, reader, err := l.next(false)
		switch {
		case err == errKicked:
			l.conn.SetReadDeadline(time.Time{})
			continue
		case err == errStopped:
			return
		case err != nil:
			l.end(err)
			return
		case !reader:
			return
		case l.cfg.Server || !answered:
			continue
		}
		l.rmu.Lock()
		idle := !l.stopped && l.calls.len() == 0
		if idle {
			l.free()
		}
		l.rmu.Unlock()
		if idle {
			return
		}
	}
}

// Serve reads the link (serving side) until it ends, on the calling
// goroutine; it returns early when a job ran long on it and reading moved
// to a new goroutine, which then serves on.
func (l *Link) Serve() {
	l.rmu.Lock()
	if l.reading || l.stopped {
		l.rmu.Unlock()
		return
	}
	l.reading = true
	l.wg.Add(1)
	l.rmu.Unlock()
	defer l.wg.Done()
	l.readLoop()
}

// StartReading starts a background reader (calling side): it reads until
// no call is in flight, and another starts whenever nobody read for
// ReaderIdle.
func (l *Link) StartReading() { l.idleRead() }

// goRead starts a reader goroutine (l.rmu held, or the token held).
func (l *Link) goRead() {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.readLoop()
	}()
}

// ---- the calling side: who reads ----

// kick makes the current (or next) read return at once: a reading caller
// then checks whether its call ended some other way.
func (l *Link) kick() { l.conn.SetReadDeadline(time.Unix(1, 0)) }

// takeReader makes the caller the reader if nobody reads.
func (l *Link) takeReader() bool {
	l.rmu.Lock()
	defer l.rmu.Unlock()
	if l.reading || l.stopped {
		return false
	}
	l.reading = true
	l.freeSince.clear()
	return true
}

// handOn is a reading caller giving reading up: to a background reader
// at once when calls still wait, else after ReaderIdle.
func (l *Link) handOn() {
	l.rmu.Lock()
	defer l.rmu.Unlock()
	switch {
	case l.stopped:
		l.reading = false
	case l.calls.len() > 0:
		l.goRead()
	default:
		l.free()
	}
}

// free leaves reading to nobody for now (l.rmu held). A background
// reader starts if nobody reads for ReaderIdle; the watchdog looks that
// finely after a call made alone, and at its coarse period in a stream
// of calls (the link freed itself less than CoarseWatch ago), whose next
// caller will read.
func (l *Link) free() {
	l.reading = false
	now := time.Now().UnixNano()
	fine := now-l.freedAt > int64(CoarseWatch)
	l.freedAt = now
	l.freeSince.mark(now, fine, ReaderIdle)
}

// idleRead starts a background reader if nobody reads.
func (l *Link) idleRead() {
	l.rmu.Lock()
	defer l.rmu.Unlock()
	if l.reading || l.stopped {
		return
	}
	l.reading = true
	l.freeSince.clear()
	l.goRead()
}

// await waits for c's answer, reading the connection itself if nobody
// does. It reports false when ctx ended first and c was taken out of the
// table (c is then the caller's to put back); after true, c holds the
// answer or the error.
func (l *Link) await(ctx context.Context, c *call) bool {
	if !l.cfg.Server && l.takeReader() && !l.readFor(ctx, c) {
		return false
	}
	if !l.cfg.Server && l.relay.Load()&relayState == relayInline {
		// The reader runs a job (a listener that calls, maybe): nobody
		// reads the answer until it returns. Reading moves on now.
		l.handOver()
	}
	select {
	case <-c.ch:
	case <-ctx.Done():
		if l.calls.remove(c) {
			return false
		}
		<-c.ch
	}
	return true
}

// readFor reads, as the reader, until c is answered (or failed), or ctx
// ended and c was taken out of the table (false); then it hands reading
// on.
func (l *Link) readFor(ctx context.Context, c *call) bool {
	var stop func() bool
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, l.kick)
	}
	answered, handed := true, false
	for len(c.ch) == 0 {
		_, reader, err := l.next(true)
		if err == errKicked {
			l.conn.SetReadDeadline(time.Time{})
			if len(c.ch) == 0 && ctx.Err() != nil && l.calls.remove(c) {
				answered = false
				break
			}
			continue
		}
		if err != nil {
			if err != errStopped {
				l.end(err) // the handler closes the link: c fails
			}
			break
		}
		if !reader {
			handed = true // a job ran long: another goroutine reads now
			break
		}
	}
	if stop != nil {
		stop()
	}
	if !handed {
		l.handOn()
	}
	return answered
}

// ---- the serving side: jobs on the reader ----

// States of Link.relay (its low bits; the others say whose job it is,
// for relayInline and relayHanded).
const (
	relayIdle   = iota // the reader reads
	relayInline        // the reader runs a job
	relayHanded        // the job ran long: a new goroutine reads

	relayState = 3
	relayOwner = 2 // shift of the owner mark
)

// run runs a job: on the reader when its method has been fast, else on a
// goroutine of its own; ordered jobs after those before them. Never on a
// caller of Call that reads (caller): its work is not the caller's. It
// reports whether the calling goroutine still reads.
func (l *Link) run(job Job, caller bool) (reader bool) {
	inline, fine := l.paces.look(job.Method)
	inline = inline && !caller
	if job.Ordered {
		if !inline || !l.ordered.claim() {
			left := job.leave()
			l.ordered.Do(func() { l.timed(left) })
			return true
		}
		// Nothing queued or running: run it here, and any ordered job
		// queued behind it meanwhile (after a hand-over) after it.
		return l.inline(job, true, fine)
	}
	if inline {
		return l.inline(job, false, fine)
	}
	left := job.leave()
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.timed(left)
	}()
	return true
}

// timed runs job and notes how long its method took.
func (l *Link) timed(job Job) {
	start := time.Now()
	job.Run(job.App)
	l.paces.ran(job.Method, time.Since(start), l.cfg.InlineBudget)
}

// inline runs job on the reading goroutine itself (and, for an ordered
// job, the ordered jobs queued behind it meanwhile): a job that answers
// from memory then costs no goroutine and no hand-over between threads,
// which on a small host costs more than the whole loopback round trip. If
// it runs longer than the inline budget, a new goroutine takes over
// reading (the watchdog calls handOver) and inline reports false: the
// caller, no longer the reader, must then return once the job is done. A
// goroutine whose job returns while the current reader runs a job of its
// own takes reading back (the compare-and-swap below); whoever reads then
// acts on the link's state as it is now, never on what it saw before.
//
// The watchdog looks at the job once it ran for the budget if fine (its
// method has not been seen to be fast), else at its coarse period
// (CoarseWatch) on the serving side, and not at all on the calling side:
// there a job (a follower's listeners) of a method seen to be fast gives
// reading up when a call needs it read (await) or its owner says so
// (HandOver, from a follower's heartbeat), so that subscriber processes
// that get a value every few milliseconds keep no timer running (a 10 ms
// tick in each of 32 such processes on one CPU doubled the fan-out's
// latency).
func (l *Link) inline(job Job, ordered, fine bool) (reader bool) {
	mine := l.inlines.Add(1)<<relayOwner | relayInline
	l.relay.Store(mine)
	var mark int64
	if fine || l.cfg.Server {
		mark = l.inlineSince.mark(time.Now().UnixNano(), fine, l.cfg.InlineBudget)
	}
	l.timed(job)
	if ordered {
		l.ordered.run()
	}
	if mark != 0 {
		l.inlineSince.clearMine(mark)
	}
	for {
		cur := l.relay.Load()
		if cur&relayState != relayInline {
			return false
		}
		if l.relay.CompareAndSwap(cur, relayIdle) {
			if cur != mine {
				// Reading taken back from a reader that runs a job of
				// its own, maybe on the frame in the Reader's buffer:
				// read on in a buffer of our own.
				l.r.Detach()
			}
			return true
		}
	}
}

// handOver starts a new reader if a job still runs on the reader.
func (l *Link) handOver() {
	cur := l.relay.Load()
	if cur&relayState != relayInline || !l.relay.CompareAndSwap(cur, cur&^relayState|relayHanded) {
		return
	}
	l.rmu.Lock()
	defer l.rmu.Unlock()
	if l.stopped {
		return
	}
	// The job may still use the frame's bytes in the reader's buffer:
	// the new reader reads into one of its own. It alone touches the
	// Reader now (the job's goroutine no longer reads).
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.r.Detach()
		l.readLoop()
	}()
}

// watch is the watchdog's look at the link: a job that ran on the reader
// past the budget moves reading on; a calling link nobody read for
// ReaderIdle gets a background reader. It returns when to
// look again while a job runs or the link is free.
func (l *Link) watch(now int64) (next int64) {
	next, late := l.inlineSince.check(now, l.cfg.InlineBudget, CoarseWatch)
	if late {
		l.handOver()
	}
	if l.cfg.Server {
		return next
	}
	free, late := l.freeSince.check(now, ReaderIdle, CoarseWatch)
	if late {
		l.idleRead()
	}
	if next == 0 || (free != 0 && free < next) {
		next = free
	}
	return next
}

// IsEOF reports whether err means the peer went away (it closed, reset,
// or died mid-frame), rather than that it sent something malformed.
func IsEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, io.ErrClosedPipe)
}
