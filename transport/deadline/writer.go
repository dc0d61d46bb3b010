package deadline

import (
	"io"
	"os"
	"time"
)

// Writer gives an io.Writer that must not be interrupted (a *tls.Conn,
// say, whose state is corrupt once a write to its socket times out) the
// write deadline of a net.Conn. A conn wrapping such a writer writes
// through a Writer and sends its SetWriteDeadline to Writer.SetDeadline
// instead of the socket.
//
// Write hands a copy of its bytes to a goroutine that writes them to the
// underlying writer with no deadline, and waits until they are written
// or the deadline passes. A Write that times out returns 0 and
// os.ErrDeadlineExceeded, but its bytes are still written, whole and
// before any later Write's, once the peer reads: the stream stays intact
// and in order (what golang.org/x/net/nettest.TestConn checks after a
// timeout), and the peer may receive the bytes of a Write that reported a
// timeout. A later Write waits, within its own deadline, for them first.
// Closing the underlying conn ends a write that never completes.
//
// After the underlying writer fails, every Write returns that error.
//
// Concurrency: Write and SetDeadline are safe for concurrent use; Writes
// are written one at a time, in the order they were accepted.
type Writer struct {
	w  io.Writer
	dl Deadline

	turn    chan struct{} // a token: held by the Write whose turn it is
	pending chan error    // the write that timed out, while it runs
	err     error         // the underlying writer's error, once it failed
}

// NewWriter returns a Writer writing to w, with no deadline.
func NewWriter(w io.Writer) *Writer {
	wr := &Writer{w: w, turn: make(chan struct{}, 1)}
	wr.turn <- struct{}{}
	return wr
}

// SetDeadline sets the deadline of current and future Writes; the zero
// time removes it. A Write blocked now returns once it passes.
func (w *Writer) SetDeadline(t time.Time) { w.dl.Set(t) }

// Write writes p to the underlying writer, within the deadline (see the
// type's doc for what a timeout leaves behind).
func (w *Writer) Write(p []byte) (int, error) {
	if !w.wait(w.turn) {
		return 0, os.ErrDeadlineExceeded
	}
	defer func() { w.turn <- struct{}{} }()
	if w.pending != nil {
		select {
		case err := <-w.pending:
			w.pending = nil
			w.fail(err)
		default:
			if !w.wait(nil) {
				return 0, os.ErrDeadlineExceeded
			}
		}
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.dl.Passed() {
		return 0, os.ErrDeadlineExceeded
	}
	done := make(chan error, 1)
	buf := append([]byte(nil), p...)
	go func() {
		_, err := w.w.Write(buf)
		done <- err
	}()
	w.pending = done
	if !w.wait(nil) {
		return 0, os.ErrDeadlineExceeded
	}
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

// wait waits, until the deadline passes, for the turn token (turn non-nil)
// or for the pending write to finish (turn nil), and reports whether it
// came in time. A deadline moved later while waiting is honoured.
func (w *Writer) wait(turn chan struct{}) bool {
	for {
		var pending chan error
		if turn == nil {
			pending = w.pending
		}
		select {
		case <-turn:
			return true
		case err := <-pending:
			w.pending = nil
			w.fail(err)
			return true
		case <-w.dl.Done():
			if w.dl.Passed() {
				return false
			}
			// Moved later after it passed: wait on the new setting.
		}
	}
}

func (w *Writer) fail(err error) {
	if err != nil && w.err == nil {
		w.err = err
	}
}
