// Package grpcshare lets the processes of one host share one gRPC client
// connection: a Conn implements grpc.ClientConnInterface, so every
// generated client stub works over it unchanged.
//
//	conn, err := grpcshare.New("inventory", "dns:///inventory.internal:443",
//		grpcshare.WithDialOptions(grpc.WithTransportCredentials(creds)))
//	...
//	inv := inventorypb.NewInventoryClient(conn) // instead of a *grpc.ClientConn
//
// It is a module of its own, so that the clusterclient library does not
// depend on gRPC.
//
// # Model
//
// New creates a cluster.Client on the channel name (package cluster: the
// processes compete for a local address, 127.0.0.1:7777 by default; see
// WithClusterOptions). The process that leads runs grpc.NewClient(target,
// dial options...) and holds the host's only *grpc.ClientConn, hence one
// HTTP/2 connection to the server; every other process forwards its calls
// to it. The leader's own calls take the same path (the cluster calls its
// handlers in process), so a Conn behaves the same on every role. When the
// leader dies, another process leads and dials again.
//
// # Calls
//
// A unary call is one cluster call. The caller marshals the request with
// the call's codec (proto, from gRPC's codec registry, unless
// grpc.ForceCodec, ForceCodecV2 or CallContentSubtype say otherwise); the
// leader sends those bytes upstream with a pass-through codec and returns
// the reply's bytes, which the caller unmarshals: the leader never needs
// the generated types, and never uses reflection on them. What crosses
// the hop is a small envelope in protobuf wire format, written with
// protowire (see wire.go), carried as one []byte argument and result of
// the cluster call: base64 in JSON with the default cluster codec, raw
// bytes with the binary codec of the module codec/cbor
// (WithClusterOptions(cluster.WithCodec(cbor.Codec)) in every process).
//
//   - Deadline: the caller's context's, which is also the deadline the
//     upstream server sees. A call without one gets WithCallTimeout's
//     (DefaultCallTimeout, 30 s) on every role: a call that crosses the
//     hop needs a bound, and the leader's own calls get the same one.
//   - Cancellation: a caller that gives up ends the upstream call (on a
//     follower through the cluster's invoke_cancel).
//   - Metadata: the outgoing metadata of the caller's context
//     (metadata.AppendToOutgoingContext) travels in the envelope, every
//     value of every key, binary -bin values as their bytes, in order. We
//     do not map it onto cluster.WithMetadata: that map has one string per
//     key and a bound (64 pairs, 8 KiB) gRPC does not have, so the mapping
//     would need an escaping scheme and would refuse calls gRPC accepts.
//     The envelope needs neither.
//   - Results: the upstream status (code, message and details, as a
//     google.rpc.Status), header and trailer come back as the server sent
//     them: status.Code, status.FromError(err).Details() and the
//     grpc.Header/grpc.Trailer call options give the same on every role as
//     on a direct connection.
//
// Call options honoured on every role: grpc.Header, grpc.Trailer,
// grpc.Peer (the upstream's address as the leader saw it),
// grpc.WaitForReady, grpc.UseCompressor, grpc.CallContentSubtype,
// grpc.ForceCodec and grpc.ForceCodecV2. Ignored on every role:
// grpc.PerRPCCredentials (give credentials in the dial options: the
// leader's connection carries every process's calls),
// grpc.MaxCallRecvMsgSize and MaxCallSendMsgSize (messages are bounded
// by the cluster's frame limit, 16 MiB by default, see cluster.WithLimits;
// base64 makes a JSON envelope a third larger than its message),
// grpc.OnFinish, grpc.MaxRetryRPCBufferSize, grpc.StaticMethod. gRPC's
// retries, load balancing and interceptors are those of the leader's
// dial options.
//
// # Errors
//
// A call that reached the server fails with the server's status error,
// unchanged. A call that failed on the way fails with an *Error whose Code
// is the one grpc-go gives the same situation, and which wraps the cause
// (errors.Is finds the cluster sentinels):
//
//	leader died with the call in flight (cluster.ErrLeaderLost),
//	leader left, hung leader, no leader, failed start codes.Unavailable
//	a stream the leader no longer has (ErrStreamGone) codes.Unavailable
//	the context's deadline, cluster.ErrTimeout        codes.DeadlineExceeded
//	the context cancelled, the Conn closed            codes.Canceled
//	cluster.ErrOverloaded                             codes.ResourceExhausted
//	a malformed envelope (ErrProtocol)                codes.Internal
//
// A call in flight on a leader that dies fails with codes.Unavailable, the
// code gRPC's retry policy and most callers treat as retryable: its effect
// upstream is unknown. New calls wait for the next leader, bounded by
// their context.
//
// # Streams
//
// NewStream serves server-streaming, client-streaming and bidirectional
// calls. For a server-streaming call, SendMsg makes a "grpc.open" call:
// the leader opens the stream upstream, sends the request, closes its
// sending side, and answers with the stream's id. For the others,
// NewStream makes the "grpc.open" call at once, each SendMsg is a
// "grpc.send" call that returns once the leader's gRPC took the message
// (so sending has the pace of the server's reading, and the messages keep
// their order: a caller sends one at a time), and CloseSend is a
// "grpc.closesend" call; SendMsg returns io.EOF once the stream is over,
// and RecvMsg says why, as with gRPC. A message sent costs a round trip
// to the leader. Whatever the kind, from the open on the calling process
// polls: a "grpc.recv" call returns the header once, the
// messages received since the previous poll (in order, at most as many as
// the caller has room for, up to 4 MiB), and, once every message went
// out, the status and trailer. A poll that finds nothing waits on the
// leader for a message or for the poll hold (WithPollHold, 5 s) and then
// returns empty. Why a poll and not a cluster subscription: a poll's
// answer carries messages and the end together and in order, whereas
// pushed values reach listeners on another goroutine than a call's
// result, so a caller could see the end before the last messages; and
// polling only when there is room is the flow control (a caller polls
// once half its window is free, so that messages come in batches even
// when it reads as fast as they arrive). Messages wait in a
// window (WithStreamWindow, 64) on the leader and another in the caller's
// process; when both are full the leader stops reading the upstream
// stream and HTTP/2 flow control holds the server back, as with a direct
// stream whose reader is slow. A poll runs on a goroutine of the stream,
// so messages arrive as the server sends them, whatever the pace of
// RecvMsg.
//
// The stream's context carries the caller's deadline and metadata
// upstream. Cancelling it ends the poll (invoke_cancel) and sends a
// "grpc.cancel" call, which cancels the upstream stream: the server sees
// the cancellation. A stream nobody polls for the idle timeout
// (WithStreamIdle, 30 s) is cancelled upstream by the leader: that frees
// the streams of a process that died or closed its Conn without
// cancelling them. A caller with less than half its window free still
// polls for nothing every hold, so a slow reader keeps its stream. When
// the leader dies or closes (the cluster's hand-over), a stream in flight
// ends with codes.Unavailable, also when no other process leads within
// the poll's bound (twice the hold, at least hold + 1 s); streams are not
// resumed on the next leader (their position upstream is lost with the
// leader).
// An open stream keeps one poll in flight to the leader, counted with the
// process's other calls in cluster.WithMaxPending (10000 by default);
// beyond it calls fail with codes.ResourceExhausted. The leader holds at
// most WithMaxStreams streams open for the whole host (1024 by default;
// one more fails with codes.ResourceExhausted before anything is opened
// upstream), and its own WithStreamWindow and WithStreamIdle bound what a
// caller asks for: a larger window or idle timeout gets the leader's.
//
// # What it does not do
//
// It does not resume streams or retry calls across a leader change, does
// not expose the connectivity state of the leader's connection, and
// checks nothing about the target: every process should give the same
// target and dial options, since any of them may lead.
package grpcshare
