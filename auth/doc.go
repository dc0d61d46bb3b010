// Package auth is the session layer that decides whether two processes may
// form one cluster: mutual authentication and a cluster identity, checked
// during registration, before any call, publish or subscription flows.
//
// # Why
//
// A failed bind only proves that someone holds the address. Without this
// layer, any local process that can reach the port can invoke the real
// client's methods, inject publishes and read cached values, and whoever
// binds the port first is the leader and receives every follower's calls.
//
// # Model
//
// A Handshake runs four steps carried in extension fields (ExtKey) of
// register_channel, of its reply and of one more follower message:
//
//	follower: Hello   -> leader: Admit   -> follower: Confirm -> leader: Verify
//
// Each side authenticates the other, in one of two ways chosen per
// connection by the leader in Admit:
//
//   - peercred: both ends have kernel peer credentials (unix sockets, and
//     yamux streams over them: SO_PEERCRED). Each side checks the other's
//     uid (same user, or Config.AllowUIDs / AllowGIDs). Nothing secret is
//     exchanged; the kernel vouches for both.
//   - hmac: anything else (tcp, yamux over tcp, kcp). Each side sends a
//     fresh 32-byte nonce and proves, with HMAC-SHA256 over both nonces and
//     both identities, that it holds the key: the per-user secret file
//     (DefaultSecretPath, LoadOrCreateSecret) or Config.Key. The key never
//     crosses the wire; proofs are compared with hmac.Equal. The leader
//     proves itself first, so a follower sends nothing to a stranger that
//     grabbed the address, not even its own proof.
//
// Both sides also compare the cluster identity (Identity: channel,
// transport, address and the optional Config.Fingerprint of the real
// client's configuration) and refuse a mismatch with ErrIdentityMismatch,
// naming both sides' values (Node compares the channel name only, so
// two differently configured clients of one name shared a leader).
//
// # Using it
//
// Package cluster runs the steps during registration, by default (see its
// WithAuth, WithInsecure and the Handshake interface, which this package's
// Handshake implements): Hello and Admit ride on register_channel and its
// reply, Confirm's result on a register_confirm request. The methods are
// stateless, so the caller hands each step the messages it needs. A Node
// peer sends no handshake and is refused with ErrUnauthenticated; talking
// to Node needs authentication turned off on the Go side.
//
// SECURITY.md at the repository root has the threat model: what this
// protects against, what it does not, and how to configure it.
package auth
