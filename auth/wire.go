package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
)

// ExtKey is the extension field of register_channel (and of its reply and
// of the follower's proof) that carries the handshake. A Node peer ignores
// it.
const ExtKey = "auth"

const (
	version   = 1
	nonceSize = 32
	macSize   = sha256.Size
	// maxField bounds the raw JSON of one handshake field, checked before
	// it is decoded.
	maxField = 16 << 10

	// Modes, chosen by the leader in Admit.
	modeCred = "peercred" // both sides checked the kernel's peer credentials
	modeHMAC = "hmac"     // challenge/response over the shared secret
)

// helloMsg is the follower's first message: its challenge for the leader,
// its identity, and whether its end of the connection has kernel peer
// credentials.
type helloMsg struct {
	V     int      `json:"v"`
	Nonce []byte   `json:"nonce"`
	Cred  bool     `json:"cred,omitempty"`
	ID    Identity `json:"id"`
}

// replyMsg is the leader's answer: the mode, its identity and, in hmac
// mode, its challenge for the follower and its proof.
type replyMsg struct {
	V     int      `json:"v"`
	Mode  string   `json:"mode"`
	Nonce []byte   `json:"nonce,omitempty"`
	ID    Identity `json:"id"`
	Proof []byte   `json:"proof,omitempty"`
}

// proofMsg is the follower's last message: in hmac mode its proof.
type proofMsg struct {
	V     int    `json:"v"`
	Proof []byte `json:"proof,omitempty"`
}

// errNoAuth is the detail when the peer sent no handshake at all.
var errNoAuth = errors.New("the peer sent no authentication (a Node peer, or a Go peer with authentication turned off)")

// field returns our raw extension field; missing means the peer speaks no
// handshake.
func field(ext Ext) ([]byte, error) {
	raw, ok := ext[ExtKey]
	if !ok {
		return nil, errNoAuth
	}
	if len(raw) > maxField {
		return nil, fmt.Errorf("%w: %q field is %d bytes (at most %d)", ErrMalformed, ExtKey, len(raw), maxField)
	}
	return raw, nil
}

func decode(ext Ext, what string, v any) error {
	raw, err := field(ext)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrMalformed, what, err)
	}
	return nil
}

func checkVersion(what string, v int) error {
	if v != version {
		return fmt.Errorf("%w: %s: version %d (this side speaks %d)", ErrMalformed, what, v, version)
	}
	return nil
}

func checkLen(what, name string, b []byte, n int) error {
	if len(b) != n {
		return fmt.Errorf("%w: %s: %s is %d bytes (want %d)", ErrMalformed, what, name, len(b), n)
	}
	return nil
}

func parseHello(ext Ext) (helloMsg, error) {
	const what = "hello"
	var m helloMsg
	if err := decode(ext, what, &m); err != nil {
		return m, err
	}
	if err := checkVersion(what, m.V); err != nil {
		return m, err
	}
	if err := checkLen(what, "nonce", m.Nonce, nonceSize); err != nil {
		return m, err
	}
	if err := m.ID.valid(); err != nil {
		return m, fmt.Errorf("%w: %s: %v", ErrMalformed, what, err)
	}
	return m, nil
}

func parseReply(ext Ext) (replyMsg, error) {
	const what = "reply"
	var m replyMsg
	if err := decode(ext, what, &m); err != nil {
		return m, err
	}
	if err := checkVersion(what, m.V); err != nil {
		return m, err
	}
	switch m.Mode {
	case modeCred:
	case modeHMAC:
		if err := checkLen(what, "nonce", m.Nonce, nonceSize); err != nil {
			return m, err
		}
		if err := checkLen(what, "proof", m.Proof, macSize); err != nil {
			return m, err
		}
	default:
		return m, fmt.Errorf("%w: %s: unknown mode %s", ErrMalformed, what, quote(m.Mode))
	}
	if err := m.ID.valid(); err != nil {
		return m, fmt.Errorf("%w: %s: %v", ErrMalformed, what, err)
	}
	return m, nil
}

func parseProof(ext Ext, mode string) (proofMsg, error) {
	const what = "proof"
	var m proofMsg
	if err := decode(ext, what, &m); err != nil {
		return m, err
	}
	if err := checkVersion(what, m.V); err != nil {
		return m, err
	}
	if mode == modeHMAC {
		if err := checkLen(what, "proof", m.Proof, macSize); err != nil {
			return m, err
		}
	}
	return m, nil
}

// encode wraps a message as our extension field.
func encode(v any) (Ext, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return Ext{ExtKey: b}, nil
}

// Labels keep the two proofs apart: a leader's proof is never a valid
// follower proof of the same transcript, and the other way round.
const (
	labelLeader   = "leader"
	labelFollower = "follower"
)

// proof computes HMAC-SHA256(key, transcript) over an unambiguous
// (length-prefixed) encoding of: the protocol name and version, the label,
// both nonces and both identities.
func proof(key []byte, label string, nonceF, nonceL []byte, leader, follower Identity) []byte {
	m := hmac.New(sha256.New, key)
	var n [4]byte
	put := func(s []byte) {
		binary.BigEndian.PutUint32(n[:], uint32(len(s)))
		m.Write(n[:])
		m.Write(s)
	}
	put([]byte("clusterclient-auth/1"))
	put([]byte(label))
	put(nonceF)
	put(nonceL)
	for _, id := range [...]Identity{leader, follower} {
		put([]byte(id.Channel))
		put([]byte(id.Transport))
		put([]byte(id.Addr))
		put([]byte(id.Fingerprint))
	}
	return m.Sum(nil)
}
