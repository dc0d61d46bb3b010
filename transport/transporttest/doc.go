// Package transporttest is the test kit every clusterclient transport runs:
// one call checks the transport.Transport contract with named subtests, and
// two benchmark helpers measure the numbers later work compares against.
//
// # Using it
//
// A transport's test package describes how to make a fresh transport and a
// fresh, unused address, then calls Run:
//
//	func TestMain(m *testing.M) {
//		// In the child processes of the multi-process subtests, this runs
//		// the child side and exits; in the test run itself it returns.
//		transporttest.MaybeRunChild(func(kind string) (transport.Transport, error) {
//			return mytransport.New(mytransport.DefaultConfig())
//		})
//		goleak.VerifyTestMain(m)
//	}
//
//	func TestTransport(t *testing.T) {
//		transporttest.Run(t, transporttest.Harness{
//			NewTransport: func(tb testing.TB) transport.Transport { ... },
//			NewAddr:      func(tb testing.TB) string { ... },
//		})
//	}
//
// A package with its own child modes merges ChildModes(factory) into the map
// it gives childproc.Main instead of calling MaybeRunChild. A package with
// several harnesses (say yamux over TCP and over unix sockets) sets
// Harness.Kind, which the factory receives in the child, to rebuild the
// matching transport there.
//
// # Subtests
//
// Run runs these subtests, in this order, each under a watchdog that, if
// the subtest hangs, fails it naming the subtest (on the standard error
// too, so the message survives without -v), closes every listener, conn
// and child process the kit made for it, and panics (dumping every
// goroutine) if that does not free it within 10 s.
//
// A subtest's budget is Harness.Watchdog (DefaultWatchdog, 30 s, when
// zero) times its factor: nettest 11× (5 min 30 s by default: its eleven
// checks run as one unit), multi-process-exclusivity 4× (2 min), every
// other subtest 1× (30 s). A conn that hangs is reported only when the
// budget ends: while developing a transport, set Harness.Watchdog lower
// (5 s, say) to hear of it sooner.
//
// Run logs, at its start and again at its end, the subtests it skips
// because a Harness field is nil (Harness.NotRun), with the field that
// enables each: UnansweredAddr for dial-honours-deadline and
// dial-honours-cancel, HoldAddr for stranger.
//
// The subtests:
//
//   - nettest: golang.org/x/net/nettest.TestConn on a listened, dialed and
//     accepted pair. nettest.TestConn runs its eleven checks as one unit
//     and offers no way to skip one of them, so a harness can only skip the
//     whole subtest (with a reason, in Harness.Skip).
//   - exclusive-listen: while a listener holds an address, Listen on it
//     through the same or another transport fails with ErrAddrInUse naming
//     the address, and the holder keeps serving; after Close the address
//     can be listened on again at once.
//   - dial-no-listener: Dial to an address nobody listens on, and to the
//     address of a closed listener, fails with ErrNoListener before its
//     (generous) deadline.
//   - dial-honours-deadline, dial-honours-cancel: Dial to
//     Harness.UnansweredAddr returns an error matching
//     context.DeadlineExceeded or context.Canceled. Skipped when the harness
//     has no such address.
//   - listener-close-unblocks-accept: Close returns a blocked Accept with an
//     error matching net.ErrClosed or transport.ErrClosed.
//   - listener-close-keeps-conns: conns accepted before the listener closed
//     keep working in both directions (skipped for a transport that
//     declares otherwise, transport.ListenerBound: a closing leader's
//     hand-over relies on it).
//   - concurrent-dials: 32 concurrent Dials to one listener are all
//     accepted, and each conn carries its own bytes.
//   - half-close: if a conn implements transport.HalfCloser, CloseWrite
//     delivers io.EOF to the peer, which can still answer.
//   - peer-credentials: if a conn implements transport.PeerCredentials, both
//     ends report this process's pid and uid; with a multi-process
//     transport, an accepted conn dialed by a child reports the child's pid.
//   - multi-process-exclusivity: (transport.IsMultiProcess only) 8 child
//     processes Listen on one address at the same moment; exactly one
//     succeeds and the seven others get ErrAddrInUse. 20 rounds.
//   - failover-after-sigkill: (multi-process) a child listens and serves a
//     conn from this process; after SIGKILL of the child, Listen here
//     succeeds within 10 s (the time is logged).
//   - eof-after-peer-sigkill: (multi-process) a conn to a child's listener
//     reads an error (io.EOF or a reset) once the child is SIGKILLed. A
//     medium without connection teardown (KCP) skips it.
//   - stranger: a plain listener of the medium that speaks no protocol
//     (Harness.HoldAddr) holds the address; Listen fails with ErrAddrInUse
//     wrapping the OS error, and Dial connects (or fails, as HoldAddr
//     says): recognising the stranger is the session layer's job.
//
// # Child processes
//
// The multi-process subtests re-execute the test binary (see
// internal/childproc) as "contenders": processes that build the transport
// with the package's ChildFactory and Listen, Close or Dial on command.
// StartContender and Compete expose them for a package's own multi-process
// tests (the unix transport's stale socket file cases, for instance).
//
// # Helpers for socket transports
//
// FreeAddr, Hold and UnansweredTCPAddr fill a Harness for a transport on
// the host's sockets (NewAddr, HoldAddr, UnansweredAddr), and
// CheckIPAddrRules checks the address rules the IP transports share.
//
// # Benchmarks
//
// BenchmarkPingPong measures a round trip of size bytes over one conn;
// BenchmarkFailoverListen measures the time from SIGKILL of a child that
// listens to a successful Listen in the benchmark process. Both report p50
// and p99 (as the metrics p50-ns and p99-ns) besides ns/op.
package transporttest
