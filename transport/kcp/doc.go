// Package kcp is the KCP transport: reliable, ordered streams over UDP on
// the loopback interface, built on github.com/xtaci/kcp-go/v5.
//
// # Model
//
// An address is a literal loopback IP and a UDP port ("127.0.0.1:7777",
// "[::1]:7777"); other hosts are refused unless Config.AllowNonLoopback.
// Election needs an exclusive Listen, and a UDP bind gives one: Listen binds
// the port without SO_REUSEADDR or SO_REUSEPORT (with SO_EXCLUSIVEADDRUSE
// on Windows), so while one socket, of this package or any other, holds
// the port, every other Listen fails with transport.ErrAddrInUse. The
// kernel frees the port the moment its owner dies, so a new leader can
// bind at once after a SIGKILL.
//
// kcp-go alone is not enough for election: its Dial does no handshake (it
// "succeeds" with nobody listening), there is no FIN or RST, and a listener
// creates a session for any packet carrying a conversation id, so the
// followers of a dead leader would be taken, mid-stream, for new sessions
// by the next leader. This package adds the minimum on top:
//
//   - Hello. Dial opens a new connected UDP socket, picks a random 32-bit
//     conversation id (it does not rely on kcp-go to pick one) and a random
//     64-bit nonce, and sends a hello as the conversation's first message.
//     The listener answers with a hello-ack echoing the nonce; only then do
//     Dial and Accept return the conn. A listener lets a new conversation
//     reach kcp-go only through a packet whose first segment (sequence
//     number 0) is a hello: packets of conversations it never admitted
//     (a previous leader's, or ones it already closed) create nothing, and
//     their sender gets a RESET.
//   - Heartbeats. Each side of an established conn sends a heartbeat
//     datagram every Config.PingInterval, beside KCP rather than inside it,
//     so a slow reader or a full window never delays them. A conn that
//     hears nothing (no data, acknowledgement or heartbeat) for
//     Config.DeadPeerTimeout fails with ErrPeerTimeout.
//   - Faster than the heartbeat, when it can: the kernel answers a packet
//     sent to a port nobody holds with ICMP port unreachable, which a
//     connected UDP socket reports as ECONNREFUSED, and a new leader
//     answers a conversation it does not know with a RESET. Either fails
//     the follower's conn with ErrPeerReset, usually within a millisecond
//     of its next packet, and makes a Dial to a port nobody holds fail at
//     once with transport.ErrNoListener.
//   - FIN. Close sends a FIN carrying the number of bytes written, so the
//     peer's Read returns everything, then io.EOF, without waiting for a
//     timeout, and the peer acknowledges it. The closed conn keeps its KCP
//     session (so unacknowledged data is still retransmitted) until that
//     acknowledgement, or for at most Config.Linger.
//
// KCP runs with no delay, a 10 ms internal clock, fast resend after two
// duplicate acknowledgements and no congestion window (the loopback
// interface does not congest), Config.Window packets in flight and
// Config.MTU-byte packets; no FEC and no encryption (authentication is the
// session layer's job).
//
// # Wire format
//
// The conversation's first KCP message in each direction is 16 bytes:
// "CCKH" (hello) or "CCKA" (hello-ack), version 1, three zero bytes and
// the nonce (little endian). Control datagrams are 16-byte UDP datagrams
// sent beside KCP on the same socket: the conversation id (4 bytes, little
// endian, where KCP has it too), the marker 0xCC (where KCP has its
// command, 81..84), a kind (1 heartbeat, 2 FIN, 3 FIN-ack, 4 RESET), two
// zero bytes and a value (8 bytes, little endian: a FIN's byte count).
// Everything else is KCP as kcp-go encodes it.
//
// # Limitations
//
// A listener's conns share its UDP socket, so Close, which must release the
// port for the next leader, ends them: they fail with net.ErrClosed, and
// their peers get a RESET. (The transport contract wants accepted conns
// to survive their listener; the transport says they do not by
// implementing transport.ListenerBound, and the kit's
// listener-close-keeps-conns check skips itself. A closing leader on KCP
// therefore keeps its address until its hand-over is done: the followers
// elect the next leader only then.) Conns do not implement transport.HalfCloser:
// once the peer has closed, Write fails with ErrPeerClosed.
//
// Conns pass golang.org/x/net/nettest.TestConn in full.
//
// kcp-go starts process-wide goroutines on first use that never exit (its
// timed scheduler, TimedSched.run, and its packet pipeline workers,
// postProcessWorker); goroutine leak checks must ignore them. Every
// goroutine of this package ends when its listener or conn is done:
// a listener's Close waits for its goroutines, and a closed conn's goroutines
// end when its linger does.
package kcp
