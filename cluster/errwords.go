package cluster

import "strings"

// connCause returns what a call that failed with its connection wraps:
// the connection's *Error e said where (channel, address, role) and
// what (its sentinel) already, and the call's own *Error says the same
// where and ErrLeaderLost, so only e's sentinel (unless it is
// ErrLeaderLost too) and cause are kept. errors.Is still finds e's
// sentinel and cause.
func connCause(e *Error) error {
	if e.Kind == nil || e.Kind == ErrLeaderLost {
		if e.Err == nil {
			return e.Kind
		}
		return e.Err
	}
	return &kindCause{kind: e.Kind, err: e.Err}
}

// kindCause is a sentinel and its cause, worded as one.
type kindCause struct{ kind, err error }

func (k *kindCause) Error() string {
	s := strings.TrimPrefix(k.kind.Error(), "cluster: ")
	if k.err != nil {
		s += ": " + k.err.Error()
	}
	return s
}

func (k *kindCause) Unwrap() []error {
	if k.err == nil {
		return []error{k.kind}
	}
	return []error{k.kind, k.err}
}
