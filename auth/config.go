package auth

import (
	"fmt"
)

// MinKeySize is the shortest Config.Key accepted, in bytes. The secret
// file holds SecretSize random bytes.
const MinKeySize = 16

// Config sets up a Handshake. The zero value is the default: same user
// only, the per-user secret file, no fingerprint.
type Config struct {
	// Key is the secret both sides prove they hold on connections without
	// kernel peer credentials (tcp, yamux over tcp, kcp). It never crosses
	// the wire. At least MinKeySize bytes; every process of the cluster
	// needs the same key. Default (nil): the contents of SecretFile.
	Key []byte

	// SecretFile is the file read, or created by the first process, when
	// Key is nil. Default: DefaultSecretPath(). See LoadOrCreateSecret for
	// the rules it must follow.
	SecretFile string

	// Fingerprint identifies the real client's configuration (see
	// Fingerprint): peers whose fingerprints differ refuse each other with
	// ErrIdentityMismatch. At most MaxFingerprint bytes of UTF-8. Default:
	// none, which only matches none.
	Fingerprint string

	// AllowUIDs and AllowGIDs admit other users on connections with kernel
	// peer credentials (unix sockets, yamux over unix sockets): a peer is
	// accepted if its effective uid is this process's, or is listed in
	// AllowUIDs, or its effective (primary) gid is listed in AllowGIDs.
	// Supplementary groups are not seen by the kernel's SO_PEERCRED.
	// Default: none (same user only). Other transports rely on the key:
	// share Key or SecretFile with the users you admit.
	AllowUIDs []uint32
	AllowGIDs []uint32
}

// Validate reports whether the configuration is usable; the error matches
// ErrInvalidConfig.
func (c Config) Validate() error {
	if c.Key != nil && len(c.Key) < MinKeySize {
		return fmt.Errorf("%w: key is %d bytes (at least %d)", ErrInvalidConfig, len(c.Key), MinKeySize)
	}
	if c.Key != nil && c.SecretFile != "" {
		return fmt.Errorf("%w: both a key and a secret file %q given", ErrInvalidConfig, c.SecretFile)
	}
	if err := (Identity{Fingerprint: c.Fingerprint}).valid(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	return nil
}
