// Package link is the connection engine of package cluster: one framed
// connection between a leader and a follower, with the same code on both
// sides. It writes frames, keeps the table of its own requests in flight
// with their timeouts, decides which goroutine reads the connection, and
// where the work of a request runs. What a frame means — who may send
// which kind in which state, registration, subscriptions, calls — is the
// Handler's, in package cluster; this package knows kinds only as
// strings it passes on.
//
// # Writing
//
// Frames are encoded by the goroutine that sends them. Whoever finds the
// socket free writes: a sender writes its frame itself, without blocking,
// when the conn is a plain socket (tcp, unix); what the socket does not
// take at once, and everything on conns of other kinds, goes to the
// link's writer goroutine, which writes all frames queued meanwhile in
// one Write. A lone call then costs no hand-over between goroutines (on a
// 2-core host a hand-over costs more than the loopback round trip),
// concurrent senders coalesce into few syscalls, and a sender never
// blocks on the socket. Beyond Config.MaxWriteBuffer unread bytes a send
// fails with ErrFull.
//
// # Reading
//
// One goroutine at a time reads: it holds the read token. Which one
// changes at run time, so nothing about the connection lives in a
// reader's locals; what a reader must know is in the Link, and the
// goroutine that reads now acts on it as it is now.
//
//   - The serving side (Config.Server, the leader): Serve makes its caller
//     the reader for the link's life. While requests already read wait in
//     the reader's buffer, the answers are held (queued, not written) and
//     then leave in one write; each reader sets that state from its own
//     buffer before every read.
//   - The calling side (the follower): a caller whose call finds nobody
//     reading reads the connection itself until its own answer came
//     (Call), and then hands reading to a background reader when other
//     calls still wait, or leaves it free. A background reader starts
//     when nobody read for ReaderIdle (pushes, heartbeat replies and a
//     dead peer are noticed) after a call made alone, and within
//     CoarseWatch after the last of a stream of calls (its next caller
//     would read), and stops after the last call in flight was answered. A reading caller whose call times out or whose context
//     ends is woken by a past read deadline ("kick").
//
// # Jobs
//
// The Handler returns the work of a request as a Job. A job runs on the
// reader itself when its method has been fast (no goroutine, no
// hand-over). When it runs past the inline budget (1 ms), the process-wide
// watchdog moves reading to a new goroutine, so the follower's other
// requests are read and served meanwhile; the goroutine whose job returns
// while the current reader is itself running a job takes reading back.
// The watchdog notices that after about the budget for a method not yet
// seen to be fast, and within about CoarseWatch (10 ms) for one whose
// last FastRuns jobs finished within the budget: a timer that fires
// every millisecond while calls flow would cost the loopback round trip
// more than all the rest of our code (see CoarseWatch). The calling side
// runs jobs too (a follower's listeners of a pushed value), never on a
// reading caller; one of a method seen to be fast is not watched at all
// there: it gives reading up when a call waits for an answer (Call) or
// its owner asks (HandOver, from the follower's heartbeat), so that a
// subscriber process that gets a value every few milliseconds keeps no
// timer running.
// A method whose jobs ran past the budget three times in a row, by their
// own clock, runs on goroutines of its own for 10 s (Paces). Ordered jobs
// (a follower's one-way calls) run one at a time in the order read. A
// job gets the bytes of its frame it uses (Job.App) where the reader
// read them while it runs on the reader; the link copies them when the
// job leaves the reader, and a reader that takes over from a job still
// running reads into a buffer of its own.
//
// # Goroutines and locks
//
// Per link: the writer goroutine (always); at most one reader at a time
// (Serve's caller, a reading caller of Call, or a goroutine the link
// started); goroutines running jobs that left the reader; the ordered
// queue's goroutine while it has work. One watchdog timer serves every
// link of the process and runs only while some link needs it.
//
// Locks: the reading lock (Link.rmu) is taken before the writer's and
// the call table's, and nothing is called out of the package under any of
// them; the writer's lock, the call table's, the ordered queue's and the
// watchdog's are leaves. Handler methods and jobs run with no lock of the
// link held. The timers of the call table run their callbacks
// (Config.TimeoutError, Config.Unacked) with no lock held.
//
// # What it does not do
//
// It does not parse what a request asks for, authenticate, retry, or
// reconnect: a closed link stays closed, and the Handler decides what a
// failed read means.
package link
