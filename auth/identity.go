package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Identity is what makes two processes members of the same cluster: the
// channel name, the transport and address they meet on, and a fingerprint
// of the real client's configuration. Two clients with the same channel
// name but, say, different namespaces must carry different fingerprints,
// or they would share one leader and receive each other's data (Node shares them).
type Identity struct {
	Channel     string `json:"channel"`
	Transport   string `json:"transport"`
	Addr        string `json:"addr"`
	Fingerprint string `json:"fp,omitempty"`
}

// Limits on identity fields, checked in Config.Validate and on every field
// a peer sends, before anything is compared or logged.
const (
	// MaxFingerprint is the longest Config.Fingerprint, in bytes.
	MaxFingerprint = 256
	// MaxIdentityField bounds the channel name, the transport name and
	// the address, in bytes: a leader refuses a hello with a longer one,
	// and Hello does not send it.
	MaxIdentityField = 4096
)

// String formats the identity for error messages.
func (id Identity) String() string {
	s := "channel " + quote(id.Channel) + " at " + id.Transport + " " + quote(id.Addr)
	if id.Fingerprint != "" {
		s += " with fingerprint " + quote(id.Fingerprint)
	} else {
		s += " without fingerprint"
	}
	return s
}

// diff lists the fields in which id (ours) and peer differ, for
// a mismatch error naming both sides.
func (id Identity) diff(peer Identity, us, them string) string {
	var s string
	add := func(name, x, y string) {
		if x == y {
			return
		}
		if s != "" {
			s += "; "
		}
		s += fmt.Sprintf("%s: %s has %s, %s has %s", name, us, quote(x), them, quote(y))
	}
	add("channel", id.Channel, peer.Channel)
	add("transport", id.Transport, peer.Transport)
	add("address", id.Addr, peer.Addr)
	add("fingerprint", id.Fingerprint, peer.Fingerprint)
	return s
}

func (id Identity) valid() error {
	for _, f := range [...]struct {
		name string
		v    string
		max  int
	}{
		{"channel", id.Channel, MaxIdentityField},
		{"transport", id.Transport, MaxIdentityField},
		{"address", id.Addr, MaxIdentityField},
		{"fingerprint", id.Fingerprint, MaxFingerprint},
	} {
		if len(f.v) > f.max {
			return fmt.Errorf("%s is %d bytes (at most %d)", f.name, len(f.v), f.max)
		}
		if !utf8.ValidString(f.v) {
			return fmt.Errorf("%s is not valid UTF-8", f.name)
		}
	}
	return nil
}

// Fingerprint returns a short stable digest of v's JSON encoding, for
// Config.Fingerprint: pass the real client's configuration (endpoint,
// namespace, credentials' identity...), and clients whose configurations
// differ will refuse to share a leader. Struct fields encode in
// declaration order and map keys sorted, so equal values give equal
// fingerprints in every process built from the same types.
func Fingerprint(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("auth: fingerprint: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16]), nil
}

// quote quotes s for a message, cut to a readable length.
func quote(s string) string {
	const max = 128
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "..."
	}
	return strconv.Quote(s)
}
