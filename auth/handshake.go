package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/go-clusterclient/clusterclient/transport"
)

// Ext holds extension fields of register_channel and of the replies
// (JSON values keyed by name); a Handshake reads and writes ExtKey.
type Ext = map[string]json.RawMessage

// PeerInfo describes one end of a registration: what this process believes
// the cluster is (channel, transport name, address) and the connection.
type PeerInfo struct {
	Channel   string
	Transport string
	Addr      string
	// Conn is the connection being registered; when it implements
	// transport.PeerCredentials (unix sockets, yamux over unix sockets),
	// the kernel's word on the peer replaces the key.
	Conn net.Conn
}

// Handshake authenticates both ends of a connection and checks that they
// belong to the same cluster, in four messages carried by registration:
//
//	follower                                   leader
//	Hello           -- hello (nonceF, id) -->
//	                <-- reply (nonceL, id, proofL) --   Admit
//	Confirm         -- proof (proofF) -->
//	                                                    Verify
//
// On a connection with kernel peer credentials on both ends, each side
// checks the other's uid/gid (Admit and Confirm); the nonces and proofs are
// not used. The leader checks the uid/gid whenever its own end reports
// them, whatever the hello says. Elsewhere proofL = HMAC(key, "leader", nonceF, nonceL, both
// identities), which the follower checks in Confirm before it sends
// anything else, and proofF is the same with "follower", which the leader
// checks in Verify before it serves anything of the connection. Each proof
// covers the other side's fresh nonce, so a recorded proof is worthless on
// another connection; the labels keep a leader's proof from serving as a
// follower's. The key itself is never sent.
//
// The methods are stateless: the caller passes back the messages of the
// exchange (hello, reply) that each later step needs. None of them
// blocks; ctx is accepted for the session-layer interface and not used.
//
// Concurrency: a Handshake is immutable after New and safe for concurrent
// use by any number of connections.
type Handshake struct {
	key        []byte
	secretFile string // where key came from, for messages; "" for Config.Key
	fp         string
	self       int // effective uid, -1 where there is none (Windows)
	allowUIDs  []uint32
	allowGIDs  []uint32
}

// New validates cfg and returns a Handshake. Without Config.Key it reads
// the secret file, creating it first if no process has yet (see
// LoadOrCreateSecret); the error then matches ErrSecretFile.
func New(cfg Config) (*Handshake, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	h := &Handshake{
		fp:        cfg.Fingerprint,
		self:      os.Geteuid(),
		allowUIDs: slices.Clone(cfg.AllowUIDs),
		allowGIDs: slices.Clone(cfg.AllowGIDs),
	}
	if cfg.Key != nil {
		h.key = slices.Clone(cfg.Key)
		return h, nil
	}
	path := cfg.SecretFile
	if path == "" {
		var err error
		if path, err = DefaultSecretPath(); err != nil {
			return nil, err
		}
	}
	key, err := LoadOrCreateSecret(path)
	if err != nil {
		return nil, err
	}
	h.key, h.secretFile = key, path
	return h, nil
}

// Identity returns the identity this Handshake presents for info.
func (h *Handshake) Identity(info PeerInfo) Identity {
	return Identity{Channel: info.Channel, Transport: info.Transport, Addr: info.Addr, Fingerprint: h.fp}
}

// Hello is the follower's first step: the fields to add to
// register_channel. It refuses (ErrInvalidConfig) an identity that every
// leader would refuse as malformed: a channel, transport or address over
// MaxIdentityField bytes or not valid UTF-8.
func (h *Handshake) Hello(_ context.Context, info PeerInfo) (Ext, error) {
	id := h.Identity(info)
	if err := id.valid(); err != nil {
		return nil, h.failer(RoleFollower, info)(ErrInvalidConfig, fmt.Errorf("no leader accepts this identity: %w", err))
	}
	_, cred := peerCred(info.Conn)
	return encode(helloMsg{V: version, Nonce: nonce(), Cred: cred, ID: id})
}

// Admit is the leader's step on a follower's hello: it refuses a peer
// whose kernel credentials are not allowed or whose identity differs, and
// returns the fields of the register reply (in hmac mode, the leader's
// proof and its challenge for the follower). The follower is not yet
// authenticated in hmac mode: serve nothing before Verify succeeds.
//
// Whether the kernel's credentials are checked depends on info.Conn
// alone: if it reports them (a unix socket on Linux), the follower's uid
// and gid must be allowed whatever its hello says. A follower whose own
// end reports none (its hello says so) is then also held to the key
// (hmac mode), so that it can check the leader in turn.
func (h *Handshake) Admit(_ context.Context, info PeerInfo, hello Ext) (Ext, error) {
	fail := h.failer(RoleLeader, info)
	m, err := parseHello(hello)
	if err != nil {
		return nil, fail(ErrUnauthenticated, err)
	}
	own := h.Identity(info)
	// Whether the kernel's check applies is decided by this side's
	// connection, never by the hello: a follower that says it has no
	// credentials (m.Cred false) on a socket that has them is still
	// checked, and then must also prove the key (hmac mode below).
	cred, ok, err := kernelCred(info.Conn)
	if err != nil {
		return nil, fail(ErrUnauthenticated, err)
	}
	if ok {
		if err := h.allowed("follower", cred); err != nil {
			return nil, fail(ErrUnauthenticated, err)
		}
	}
	if d := own.diff(m.ID, RoleLeader, RoleFollower); d != "" {
		return nil, fail(ErrIdentityMismatch, errors.New(d))
	}
	if ok && m.Cred {
		return encode(replyMsg{V: version, Mode: modeCred, ID: own})
	}
	nl := nonce()
	return encode(replyMsg{V: version, Mode: modeHMAC, Nonce: nl, ID: own,
		Proof: proof(h.key, labelLeader, m.Nonce, nl, own, m.ID)})
}

// Confirm is the follower's step on the leader's reply (hello is what its
// own Hello returned): it refuses a leader that cannot prove itself or
// belongs to another cluster, and returns the fields of the follower's
// proof for the leader's Verify. Send nothing else to a leader before
// Confirm succeeds.
func (h *Handshake) Confirm(_ context.Context, info PeerInfo, hello, reply Ext) (Ext, error) {
	fail := h.failer(RoleFollower, info)
	mine, err := parseHello(hello)
	if err != nil {
		return nil, fail(ErrMalformed, fmt.Errorf("own hello: %w", err))
	}
	r, err := parseReply(reply)
	if err != nil {
		return nil, fail(ErrUnauthenticated, err)
	}
	own := h.Identity(info)
	switch r.Mode {
	case modeCred:
		cred, ok := peerCred(info.Conn)
		if !ok {
			return nil, fail(ErrUnauthenticated, errors.New("the leader relies on kernel peer credentials, which this connection cannot report"))
		}
		if err := h.allowed("leader", cred); err != nil {
			return nil, fail(ErrUnauthenticated, err)
		}
	case modeHMAC:
		if !hmac.Equal(r.Proof, proof(h.key, labelLeader, mine.Nonce, r.Nonce, r.ID, own)) {
			return nil, fail(ErrUnauthenticated, fmt.Errorf("the leader's proof does not match %s: a stranger holds the address, or the processes use different secrets", h.keyName()))
		}
	}
	if d := own.diff(r.ID, RoleFollower, RoleLeader); d != "" {
		return nil, fail(ErrIdentityMismatch, errors.New(d))
	}
	if r.Mode == modeCred {
		return encode(proofMsg{V: version})
	}
	return encode(proofMsg{V: version, Proof: proof(h.key, labelFollower, mine.Nonce, r.Nonce, r.ID, own)})
}

// Verify is the leader's last step, on the follower's proof (hello is the
// follower's hello, reply what Admit returned for it): the connection is
// authenticated when it returns nil.
func (h *Handshake) Verify(_ context.Context, info PeerInfo, hello, reply, proofExt Ext) error {
	fail := h.failer(RoleLeader, info)
	m, err := parseHello(hello)
	if err != nil {
		return fail(ErrUnauthenticated, err)
	}
	r, err := parseReply(reply)
	if err != nil {
		return fail(ErrMalformed, fmt.Errorf("own reply: %w", err))
	}
	p, err := parseProof(proofExt, r.Mode)
	if err != nil {
		return fail(ErrUnauthenticated, err)
	}
	if r.Mode == modeHMAC && !hmac.Equal(p.Proof, proof(h.key, labelFollower, m.Nonce, r.Nonce, r.ID, m.ID)) {
		return fail(ErrUnauthenticated, fmt.Errorf("the follower's proof does not match %s", h.keyName()))
	}
	return nil
}

func (h *Handshake) failer(role string, info PeerInfo) func(kind, err error) error {
	return func(kind, err error) error {
		return &Error{Role: role, Channel: info.Channel, Transport: info.Transport, Addr: info.Addr, Kind: kind, Err: err}
	}
}

func (h *Handshake) keyName() string {
	if h.secretFile != "" {
		return "this process's secret (" + h.secretFile + ")"
	}
	return "this process's key"
}

// allowed applies the uid/gid policy to a peer's kernel credentials.
func (h *Handshake) allowed(who string, c transport.Cred) error {
	if (h.self >= 0 && c.UID == uint32(h.self)) || slices.Contains(h.allowUIDs, c.UID) || slices.Contains(h.allowGIDs, c.GID) {
		return nil
	}
	allow := []string{"uid " + strconv.Itoa(h.self)}
	for _, u := range h.allowUIDs {
		allow = append(allow, "uid "+strconv.FormatUint(uint64(u), 10))
	}
	for _, g := range h.allowGIDs {
		allow = append(allow, "gid "+strconv.FormatUint(uint64(g), 10))
	}
	return fmt.Errorf("the %s (pid %d) runs as uid %d gid %d; allowed: %s", who, c.PID, c.UID, c.GID, strings.Join(allow, ", "))
}

// peerCred returns the kernel's credentials of c's peer, if c has them.
func peerCred(c net.Conn) (transport.Cred, bool) {
	cred, ok, err := kernelCred(c)
	return cred, ok && err == nil
}

// kernelCred is the leader's view of c: ok is false when c cannot report
// its peer's credentials at all (it does not implement
// transport.PeerCredentials, or the OS has none: errors.ErrUnsupported);
// any other failure of a conn that should report them is an error, so
// that a connection the kernel cannot vouch for is refused, not admitted
// on the key alone.
func kernelCred(c net.Conn) (cred transport.Cred, ok bool, err error) {
	pc, isPC := c.(transport.PeerCredentials)
	if !isPC {
		return transport.Cred{}, false, nil
	}
	cred, err = pc.PeerCred()
	switch {
	case err == nil:
		return cred, true, nil
	case errors.Is(err, errors.ErrUnsupported):
		return transport.Cred{}, false, nil
	}
	return transport.Cred{}, false, fmt.Errorf("the connection's kernel peer credentials cannot be read: %w", err)
}

func nonce() []byte {
	b := make([]byte, nonceSize)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return b
}
