package cluster

import (
	"errors"
	"strings"
	"sync"

	"github.com/go-clusterclient/clusterclient/protocol"
)

// A Coder is an error that names its code: it crosses the wire with it,
// and ErrorCode finds it on either role.
type Coder interface {
	error
	ClusterCode() string
}

// registry holds the error codes of the program (RegisterErrorCode).
var registry struct {
	mu        sync.RWMutex
	sentinels map[string]error // code → sentinel
	order     []string         // codes, in registration order (the first match wins)
}

// RegisterErrorCode makes sentinel cross the wire with code, so that
// errors.Is(err, sentinel) holds for a method's error on a follower as on
// the leader: a method error matching sentinel (errors.Is) travels with
// code (unless it carries a code of its own, see Coder), and an error
// received with code matches sentinel too. Register the same pairs in
// every process of the cluster, at start (in an init function, say).
// Codes starting with "ERR_CLUSTER_" are the package's; a code or a
// sentinel registered twice is refused.
func RegisterErrorCode(sentinel error, code string) error {
	switch {
	case sentinel == nil || code == "":
		return optErr("error code %q for %v: both must be given", code, sentinel)
	case strings.HasPrefix(code, "ERR_CLUSTER_"):
		return optErr("error code %q: codes starting with ERR_CLUSTER_ are the package's", code)
	case len(code) > maxErrCode:
		return optErr("error code of %d bytes, more than %d", len(code), maxErrCode)
	}
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if registry.sentinels == nil {
		registry.sentinels = make(map[string]error)
	}
	if _, dup := registry.sentinels[code]; dup {
		return optErr("error code %q is registered already", code)
	}
	for _, c := range registry.order {
		if registry.sentinels[c] == sentinel {
			return optErr("%v is registered already, with code %q", sentinel, c)
		}
	}
	registry.sentinels[code] = sentinel
	registry.order = append(registry.order, code)
	return nil
}

// ErrorCode returns the code of err, the same on the leader and on a
// follower: a Coder's, a registered sentinel's (RegisterErrorCode), the
// package's own (Code* constants), or the code a remote error arrived
// with; "" if it has none.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	if c, ok := errors.AsType[Coder](err); ok {
		return c.ClusterCode()
	}
	if re, ok := errors.AsType[*protocol.RemoteError](err); ok && re.Code != "" {
		return re.Code
	}
	for sentinel, nc := range sentinelNames {
		if errors.Is(err, sentinel) {
			return nc.code
		}
	}
	return registeredCode(err)
}

// registeredCode returns the code of the first registered sentinel err
// matches.
func registeredCode(err error) string {
	registry.mu.RLock()
	defer registry.mu.RUnlock()
	for _, code := range registry.order {
		if errors.Is(err, registry.sentinels[code]) {
			return code
		}
	}
	return ""
}

// registeredSentinel returns the sentinel registered with code.
func registeredSentinel(code string) error {
	registry.mu.RLock()
	defer registry.mu.RUnlock()
	return registry.sentinels[code]
}

// remoteErr is a method's error received from the leader: the remote
// error itself, matching the sentinel registered with its code too.
type remoteErr struct {
	*protocol.RemoteError
	sentinel error
}

func (e *remoteErr) Unwrap() []error { return []error{e.RemoteError, e.sentinel} }

// fromRemote returns what a follower's caller gets for a method's error:
// re, and the user sentinel its code stands for, if any.
func fromRemote(re *protocol.RemoteError) error {
	if s := registeredSentinel(re.Code); s != nil {
		return &remoteErr{re, s}
	}
	return re
}
