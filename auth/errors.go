package auth

import (
	"errors"
	"strings"
)

// Errors returned (wrapped in an *Error) by a Handshake, and by the secret
// file functions. Match them with errors.Is.
var (
	// ErrUnauthenticated: the peer did not prove that it may join: its
	// kernel-reported uid/gid is not allowed (unix sockets), its proof does
	// not match the shared secret (other transports), or it sent no
	// authentication at all (a Node peer, or a Go peer with auth off).
	ErrUnauthenticated = errors.New("auth: peer not authenticated")

	// ErrIdentityMismatch: the peer authenticated but belongs to another
	// cluster: its channel, transport, address or configuration
	// fingerprint differs from ours.
	ErrIdentityMismatch = errors.New("auth: cluster identity mismatch")

	// ErrMalformed: the peer's handshake fields are not what this version
	// sends (bad JSON, wrong sizes, unknown version or mode). It is reported
	// together with ErrUnauthenticated.
	ErrMalformed = errors.New("auth: malformed handshake field")

	// ErrSecretFile: the per-user secret file or its directory cannot be
	// used: wrong owner, permissions open to other users, a symbolic link,
	// a wrong size, or an I/O error.
	ErrSecretFile = errors.New("auth: unusable secret file")

	// ErrInvalidConfig: a Config field is out of range (see Config.Validate).
	ErrInvalidConfig = errors.New("auth: invalid config")
)

// Role names the side of a handshake.
const (
	RoleLeader   = "leader"
	RoleFollower = "follower"
)

// Error is a handshake failure. It names the side that detected it, the
// channel and the address, and wraps a sentinel (Kind) and the detail.
type Error struct {
	Role      string // RoleLeader or RoleFollower: the side that refused
	Channel   string
	Transport string
	Addr      string
	Kind      error // one of the sentinels above
	Err       error // detail; may be nil
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("auth: ")
	b.WriteString(e.Role)
	b.WriteString(" of channel ")
	b.WriteString(quote(e.Channel))
	b.WriteString(" at ")
	b.WriteString(e.Transport)
	b.WriteString(" ")
	b.WriteString(e.Addr)
	if e.Kind != nil {
		b.WriteString(": ")
		b.WriteString(strings.TrimPrefix(e.Kind.Error(), "auth: "))
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the sentinel and the detail.
func (e *Error) Unwrap() []error {
	var errs []error
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}
