// Package conformance is the suite every clusterclient transport passes:
// it runs whole clusters (package cluster) over the transport, with leaders,
// followers, child processes and misbehaving strangers, and checks that
// registration, subscriptions, publications, calls, close, failover and bad
// input behave as they do on every other transport. It also runs the
// transport kit (package transport/transporttest), so one call checks a
// transport from its conns up.
//
// # Using it
//
// A transport's test package says how to make a fresh transport and a fresh,
// unused address, and calls Run; its TestMain calls Main, so the suite can
// re-execute the test binary as child processes. For a transport on TCP
// (New returning a transport.Transport and an error):
//
//	func TestMain(m *testing.M) {
//		conformance.Main(func(kind string) (transport.Transport, error) {
//			return mytransport.New()
//		})
//		goleak.VerifyTestMain(m)
//	}
//
//	func TestConformance(t *testing.T) {
//		conformance.Run(t, conformance.Harness{
//			NewTransport: func(tb testing.TB) transport.Transport {
//				tr, err := mytransport.New()
//				if err != nil {
//					tb.Fatal(err)
//				}
//				return tr
//			},
//			NewAddr: func(tb testing.TB) string { return transporttest.FreeAddr(tb, "tcp", "127.0.0.1") },
//			Kit: transporttest.Harness{
//				HoldAddr: func(tb testing.TB, addr string) bool {
//					transporttest.Hold(tb, "tcp", addr)
//					return true // false if Dial waits for a handshake
//				},
//				UnansweredAddr: transporttest.UnansweredTCPAddr("127.0.0.1"),
//			},
//		})
//	}
//
// Kit.HoldAddr and Kit.UnansweredAddr enable the kit's stranger,
// dial-honours-deadline and dial-honours-cancel subtests; without them the
// suite logs, at its start and in its summary, what it skipped and which
// field enables it. The examples module of this repository has a whole
// transport written this way (examples/tlstransport, TLS 1.3 over TCP),
// run by CI.
//
// A package with several configurations (yamux over TCP and over unix
// sockets) gives each harness a Kind, which the factory receives in the
// child, to rebuild the matching transport there.
//
// # What the transport must do, and the capability probe
//
// Before any case, Run probes the transport: it Listens on an address of
// Harness.NewAddr, Accepts in a goroutine that never reads or writes the
// conn, and Dials, each within 15 s (or Harness.Watchdog if shorter); then
// it looks at what the two conns implement (transport.PeerCredentials) and
// asks transport.IsMultiProcess. A failure stops the whole run and says
// what the transport must do:
//
//   - Listen failed: Listen must bind an address nobody uses (and NewAddr
//     must return one).
//   - Dial did not complete in time: a Dial must complete without the
//     accepting side doing any I/O. A transport with a handshake runs the
//     server side of it as soon as a conn is accepted, not lazily on the
//     conn's first Read as crypto/tls does.
//   - Dial did not return 5 s after its context ended: Dial must honour
//     its context in every step, a handshake included.
//   - Accept did not return although Dial completed: Accept must return
//     the conn a Dial made.
//
// The rest of the contract (go doc transport, "What a transport must do")
// is checked by the kit (the transport subtest) and the cases.
//
// # Time budgets
//
// Each case runs under a watchdog of Harness.Watchdog (DefaultWatchdog,
// 60 s, when zero); within it, a wait for something that should happen
// promptly fails after 15 s. The transport subtest runs the kit, whose
// subtests have budgets of their own: Kit.Watchdog (30 s by default) times
// a factor, 11× for nettest and 4× for multi-process-exclusivity (see go
// doc transporttest). If a case hangs, the watchdog fails it, naming the
// case and the step it was at ("waiting for process 2's Register client to
// be ready") on the test's output and on the standard error (which
// survives without -v), closes every Client, conn and child process the
// case made, and panics with every goroutine's stack if that does not free
// the case within 10 s.
//
// # Subtests
//
// Subtests lists the names.
//
//   - transport: the transport kit (transporttest.Run with Harness.Kit):
//     golang.org/x/net/nettest.TestConn on the transport's conns, exclusive
//     Listen, dial errors and deadlines, listener close, half-close, peer
//     credentials, and the multi-process checks. A harness declares the kit
//     subtests its medium cannot pass in Harness.Kit.Skip.
//   - register: follower (a follower registers and reaches the leader's real
//     client); second-channel (two channels share one address and one
//     listener); unknown-channel (a follower of a channel nobody leads gets
//     cluster.ErrNoChannel naming it, long before its response timeout, and
//     joins once the channel gets a leader); peer-credentials (when conns
//     implement transport.PeerCredentials: the session layer's Handshake sees
//     this process on both ends).
//   - subscribe: fan-out (one value reaches the leader's own listener,
//     every follower's, and two listeners of one Client, with one upstream
//     subscription for the host); late-subscriber-cached (a late subscriber
//     gets the cached push, with no new upstream subscription or push);
//     broadcast-off (each value reaches exactly one subscriber, and every
//     value arrives); unsubscribe (delivery stops for that subscriber only,
//     and the real client's Unsubscribe runs once, when the last one leaves).
//   - publish: every-subscriber (a follower's and the leader's publications
//     reach the real client and every subscriber); child-processes (the same
//     across OS processes; multi-process transports only).
//   - invoke: result, typed-error (name, code and message cross the wire),
//     unknown-method (cluster.ErrUnknownMethod naming it; the leader serves
//     on), panic (cluster.ErrPanic with the stack; the leader survives),
//     oneway, response-timeout (cluster.ErrTimeout without waiting for the
//     method; the late answer is dropped and the connection serves on),
//     1MiB-argument, concurrent-1000 (1,000 concurrent calls from 4 follower
//     processes, each answer checked).
//   - close: idempotent (concurrent and repeated Close; operations after it
//     fail with cluster.ErrClosed); real-client-once; address-freed-after-
//     last-channel; no-goroutine-left (after every Client closed and the
//     transports were released; Harness.IgnoreGoroutines lists goroutines a
//     medium keeps for the life of the process).
//   - failover: leader-closes (Close hands over: a call in flight is
//     answered by the old leader while calls made meanwhile reach the new
//     one, and none fails), leader-hangs-up (Close without a hand-over) and
//     leader-sigkill (multi-process transports only: the leader is a child
//     process, killed with SIGKILL): there calls in flight fail with
//     cluster.ErrLeaderLost; in every case exactly one survivor leads with
//     a new real client, subscriptions and publications reach it through
//     replay, and calls made after the loss succeed there, also from another
//     child process.
//   - robustness: a stranger connects to the leader and sends garbage, an
//     HTTP request, a header announcing 2 GB, a negative length, a valid
//     header then nothing, or nothing at all; the leader drops that
//     connection (a silent one after its register deadline) and serves its
//     follower as before. Then the attacks on authentication and limits:
//     a stranger that registers, invokes, publishes and subscribes without
//     authenticating is refused and reaches nothing; one that holds 2,000
//     connections cannot make the leader hold more than its bound
//     (cluster.WithMaxConns) nor lock members out; a squatter that binds
//     the address first is refused by followers, which form the real
//     cluster once it is gone (skipped where the kernel vouches for peers:
//     a same-user squatter is trusted there by design).
//
// Soak, run separately (it takes about a minute), is the chaos test:
// member processes SIGKILLed and replaced every few hundred milliseconds
// under continuous publishes and calls.
//
// A case that needs a capability the transport lacks (several processes,
// peer credentials) skips by itself, saying why. Harness.Skip declares the
// rest: only a real, documented limitation of the medium belongs there.
//
// # The clusters it builds
//
// A case runs Clients in simulated processes: each has its own
// election.Registry (cluster.WithRegistry) and its own transport, so its
// Clients reach the others only through real connections, as separate
// processes would. Where the medium is multi-process, cases also start child
// processes (StartProcess): the test binary, re-executed, runs one Client and
// reports its role, readiness, the real clients it built and the values it
// received, and subscribes, publishes, invokes and closes on command.
//
// Every real client is the suite's own: a registry whose subscriptions
// receive a Snapshot of every value published under their key, with the ID
// of the real client that pushed it (so a case can tell a new leader's value
// from the old one's), and the methods MethodWhoami, MethodEcho, MethodSquare,
// MethodDigest, MethodFail, MethodPanic, MethodHold, MethodRecord and
// MethodRecords. Each real client keeps its own data, as a registry forgets
// a dead client's publications: after a failover, the new one knows them only
// through replay.
//
// # Adding cases
//
// Each subtest is a table of cases, each with the capabilities it needs.
// The robustness subtest is built from a table of attacks (what a stranger
// sends); attacks on authentication and limits join it there, and cases that
// need more of the host (a second user id, say) add a capability that the
// probe answers before the cases run.
package conformance
