// Package cluster lets the processes of one host share one upstream client
// (a registry, config or message-bus connection): the client API users
// import.
//
// # Model
//
// Every process creates a Client with the same name (the channel) and a
// Factory for the real client. The processes compete for a local address
// (TCP 127.0.0.1:7777 by default; see package election): the winner is
// the leader and runs the factory, once per leadership term; every other
// Client is a follower that forwards its calls over a connection to the
// leader, in Node cluster-client 3.7.0's wire format (package protocol).
// Several channels share one address; a second Client of the same name in
// one process is a follower over a real connection, like a Client in
// another process (as in Node).
//
//	c, err := cluster.New("DataClient", func(ctx context.Context, emit cluster.Emit) (*cluster.Service, error) {
//		rc, err := registry.Dial(ctx, upstream) // only the leader does this
//		if err != nil {
//			return nil, err
//		}
//		return &cluster.Service{
//			Subscribe: rc.Subscribe, Publish: rc.Publish, Close: rc.Close,
//			Methods: map[string]cluster.Handler{"getData": cluster.Method(rc.GetData)},
//		}, nil
//	})
//	...
//	data, err := cluster.Call[Data](ctx, c, "getData", query)
//
// The real client declares what it offers in a Service: subscribe,
// unsubscribe, publish, unpublish, close and named methods. Nothing else
// is reachable from another process: an undeclared method is answered
// with ErrUnknownMethod naming it, and a panic in a method becomes an
// error reply (ErrPanic, with the stack) while the leader keeps serving.
//
// # What every role sees
//
// The API and its results are the same on the leader and on a follower:
//
//   - Subscriptions: one upstream subscription per key for the whole host,
//     started by the first subscriber anywhere and ended (Service.Unsubscribe)
//     when the last one leaves. The last value is cached on the leader and
//     in each Client: a late subscriber gets it at once. Listeners run
//     one at a time, in order, never inside Subscribe (see Listener),
//     each with its own decoded copy. With broadcast off, each value goes to one
//     subscriber chosen at random and nothing is replayed.
//   - Calls: Invoke waits while no leader is ready (bounded by its
//     context) and fails with the ready error after a failed start. From a
//     follower it fails with ErrTimeout after the response timeout (the
//     leader drops the late reply and reports ErrLeaderTimeout), and with
//     ErrLeaderLost when the leader dies with the call in flight. Errors
//     cross the wire as {name, message, code, stack}; errors.As finds a
//     *protocol.RemoteError on both sides, errors.Is finds the package
//     sentinels on both sides.
//   - Publications: Publish is remembered and published again to every new
//     leader; Unpublish forgets it (Node forgets nothing and
//     replays every publication it ever saw).
//
// # Failover
//
// A follower notices a dead leader by its connection's EOF (a crashed
// process: well under a millisecond), by the listener closing, or by
// heartbeats. Every survivor elects again (package election, with jitter);
// exactly one binds the address and runs the factory; the others register
// with it. Each Client then subscribes again, publishes again, and runs the
// calls that waited. Calls that were in flight on the dead leader fail at
// once with ErrLeaderLost: their effect is unknown, so only the caller can
// decide to retry, unless the Service declared the method safe to repeat
// (Service.Idempotent): then the follower sends the call once more, to the
// next leader, within the caller's context.
//
// A leader that closes on purpose (Client.Close: a deploy, a CLI that is
// done) hands over instead of failing calls (WithHandoverTimeout, on by
// default): it frees the address at once, tells its Go followers that it
// is leaving so that they elect the next leader without waiting, answers
// the calls they had already sent, and only then closes the real client.
// Calls made meanwhile wait for the next leader; nothing fails. A Node
// follower is not told: it sees its connection close once its calls were
// answered, as when a Node leader exits. The hand-over is bounded by the
// option and by Close's context; past the bound, what is left fails with
// ErrLeaderLost. (On a transport whose conns end with their listener,
// KCP, the address is freed only at the end, so the followers elect once
// the hand-over is done; calls still wait rather than fail.)
//
// A hung leader (stopped with SIGSTOP, deadlocked, or a stranger holding
// the address) is the one failure nobody can cure by electing: the kernel
// still holds the address for it, and still accepts connections into its
// backlog. The decision: followers detect it when nothing (not even a
// heartbeat answer) arrives for two heartbeat intervals, report
// ErrLeaderUnresponsive as an EventLeaderLost, fail their calls (with
// ErrLeaderLost or ErrTimeout) instead of queueing them forever, and keep
// electing: when the leader resumes they register with it again (its real
// client is kept), and when it dies one of them takes over. With
// heartbeats off (WithHeartbeatInterval(0)) only call timeouts reveal it.
//
// A leader whose factory fails keeps the address and answers every
// register with its error, so every follower fails with the same ready
// error (Node's behaviour), and runs the factory again after a pause that
// doubles up to a bound (WithStartRetry; Node never retries). Each new
// failure is the latest ready error: a follower told an older one is
// disconnected and registers again to learn it. Once a start succeeds,
// every follower that was told a failure is disconnected, registers again
// and becomes ready: the cluster recovers by itself when the upstream
// comes back. A follower that reaches a process that owns the address but has
// no leader for its channel gets ErrNoChannel at once and tries again
// every register-retry interval (Node drops the request and retries
// forever).
//
// # Single mode
//
// WithSingleMode(true) (or CLUSTER_CLIENT_SINGLE_MODE=1) keeps the API
// and drops the network: the Clients of one name in a process share one
// reference-counted real client, closed with the last of them.
//
// # Events, logs and stats
//
// WithEventHandler receives role changes, readiness, lost leaders,
// followers joining and leaving the leader, background errors (a subscribe
// timeout, a follower dropped for idleness, an unacknowledged push, a late
// reply dropped, a listener panic) and the real client's own events; Stats
// returns counters and per-method figures (calls, errors, latency
// quantiles) for the calls made and, on the leader, served. Logs go to a
// *slog.Logger with the attributes channel, addr, role and term; at the
// default level (Info) a normal run writes one line per Client, when it
// becomes ready.
//
// WithStatsHandler installs a StatsHandler, the hook for metrics and
// tracing: it sees each call at its start and end on the caller (any role)
// and on the leader serving a follower's call, and its TagCall returns the
// context the call goes on with (a tracer puts its trace context into the
// call's metadata there, and takes it out on the leader); it also sees
// terms, time to ready, followers, subscriptions, publications and pushes.
// The module github.com/go-clusterclient/clusterclient/otel implements it
// for OpenTelemetry. Without one, a call pays a single nil test.
//
// # Authentication and limits
//
// Every connection is authenticated in both directions while it registers,
// before anything is served or sent (package auth; SECURITY.md has the
// threat model): on unix sockets each side checks the other's uid as the
// kernel reports it, elsewhere each proves with HMAC-SHA256 that it holds
// the per-user secret. The leader proves itself first, so a follower sends
// nothing to a stranger that took the address; it reports ErrHandshake and
// keeps electing until it reaches a real leader. The handshake also
// compares the cluster identity (channel, transport, address and an
// optional configuration fingerprint, WithAuth), so a follower never joins
// the leader of a differently configured client of the same name. Turning
// it off (WithInsecure) is what Node peers need (WithNodeCompat).
//
// Limits, each with a Default constant and an option, keep a process
// bounded whatever its peers do: frame sizes (WithLimits), the register
// deadline (WithRegisterDeadline), the unread bytes per connection
// (WithMaxWriteBuffer), calls in flight per follower (WithMaxPending) and
// connections per leader (WithMaxConns); beyond them calls fail at once
// with ErrOverloaded. Errors cross the wire with bounded strings.
//
// # Extensions
//
// Go peers add an extension field to register_channel and its reply
// (their codec, so a mismatch is refused with a clear error), the
// Handshake's fields, and a register_confirm request with the follower's
// proof. A Node peer ignores the fields, but sends and accepts no
// handshake.
//
// # Behaviour catalogue
//
// BEHAVIOURS.md, next to this file, states each behaviour of Node's
// library in a sentence: what Node does, what this package does, and the
// test that checks it here (or why it does not apply to Go).
package cluster
