// Package election decides which process of a host leads a channel: the one
// that holds the channel's address. It is written only against
// transport.Transport and never reads or writes a byte of protocol.
//
// # The model
//
// A transport's Listen is exclusive: while one listener holds an address,
// every other Listen on it fails with transport.ErrAddrInUse. So the
// process whose Listen succeeds leads, and every other process dials the
// address and follows with the connection it got. There is no vote, no
// lock file and no timeout to tune: the kernel (or the transport) settles
// the race, and a leader that dies frees the address at once.
//
// Within a process, a Registry (Node's serverMap and typeSet) lets several
// channels share one listener per address: the first channel binds it,
// later channels join it and lead too, and the listener closes when the
// last of them releases its Lease. A second claim of a channel that already
// leads on the address makes the newcomer a follower over a real
// connection to its own process's listener, so it behaves exactly as a
// follower in another process would.
//
// # Modes
//
//   - Auto: bind, or else dial and follow; if the dial finds nobody (the
//     holder just died), back off and compete again.
//   - ForceLeader: bind once; fail at once with the real OS error.
//   - ForceFollower: dial with a short, growing backoff (milliseconds, not
//     Node's fixed 3 s) until a leader answers or MaxWait passes.
//
// After a follower's connection breaks (the leader died), Reelect runs the
// same election after a random delay of up to Config.Jitter, so that the
// survivors do not all compete in the same microsecond.
//
// # What election does not do
//
// A successful dial only proves that something accepts connections on the
// address. It may be a stranger (another program, another application's
// cluster on the same port). Election cannot tell, and returns a Follower
// outcome with the connection; the cluster package's handshake verifies
// the leader and calls Elect again if it is not one. Likewise, a follower
// of a channel that the address's owner does not lead (Node's leader
// ignores its register, so it waits forever) is
// detected by the handshake, not here.
//
// Election starts no goroutines: everything happens inside Elect,
// Reelect and Lease.Release, on the caller's goroutine.
package election
