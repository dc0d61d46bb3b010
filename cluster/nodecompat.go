package cluster

import "github.com/go-clusterclient/clusterclient/protocol"

// WithNodeCompat makes the Client a member of a cluster that Node.js
// processes running cluster-client 3.7.0 (npm) also belong to: on the same
// port and channel, a Go process can lead Node followers, follow a Node
// leader, and take over from a dead Node leader (or hand over to a Node
// follower) on failover. It is one switch for everything such a mixed
// cluster needs:
//
//   - Codec: protocol.SerializeJSON, the format of npm serialize-json
//     1.0.3 that cluster-client uses by default (its transcode option),
//     for arguments, results, pushed values, publications and errors.
//     JavaScript types keep their meaning: a Buffer is a []byte, a Date a
//     time.Time, undefined is protocol.Undefined, an Error a
//     *protocol.RemoteError with name, message, code and stack.
//   - Subscription keys: Node's, "$$inner$$__" + JSON.stringify(reg). Every
//     Client computes keys this way (protocol.SubscriptionKey over reg's
//     JSON in JavaScript's normal form), so a Go and a Node subscriber of
//     the same reg share one upstream subscription and the cached value.
//     Node keeps an object's members in the order it was built with; a Go
//     map has no order and is written with sorted keys, so give reg as a
//     struct (or json.RawMessage) with the members in Node's order.
//   - Channel names: Node's rules. The channel is the client name (Node's
//     name option, by default the DataClient's class name, so "DataClient"
//     for `class DataClient`), travels as a JSON string in
//     register_channel, and is matched exactly, case and all. Give the Go
//     Client the Node client's name, as valid UTF-8 text; a name that is
//     not valid UTF-8 cannot cross JSON unchanged and never matches.
//   - No authentication (WithInsecure): Node speaks no handshake and would
//     be refused by one, so WithNodeCompat turns off the default
//     authentication and removes a Handshake given before it (give none
//     after it), and New logs a warning. Any local process that can connect to the port can
//     then register as a follower, call every method the Service declares,
//     publish, and receive every cached and pushed value; and whoever binds
//     the port first leads and receives every follower's calls. Use it only
//     where every local user is trusted, as with Node itself.
//
// Node speaks only TCP on 127.0.0.1: keep the default transport and give
// the Node clients' port (WithPort, or CLUSTER_CLIENT_PORT where Node uses
// NODE_CLUSTER_CLIENT_PORT). Heartbeat interval and response timeout
// default to Node's values; set them as on the Node side when it sets its
// own (heartbeatInterval, responseTimeout).
//
// A Node leader ignores the extension members Go followers add to
// register_channel; a Node follower ignores those of a Go leader's reply.
func WithNodeCompat() Option {
	return func(c *config) error {
		c.codec = protocol.SerializeJSON
		c.handshake, c.insecure = nil, true
		return nil
	}
}
