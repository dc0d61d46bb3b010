package protocol

// This file fixes the API the rest of the project programs against. The
// implementations live in the files named in each comment.

import "time"

// Codec encodes and decodes app objects (invoke arguments, results, pushed
// values, error payloads).
//
// Concurrency: a Codec is stateless and safe for concurrent use.
type Codec interface {
	// Name is "json", "serialize-json", or another codec's name (the
	// module codec/cbor's is "cbor"). It must not be empty: the register
	// handshake compares the names of a leader's and a follower's codecs.
	Name() string
	// Append encodes v and appends it to dst.
	Append(dst []byte, v any) ([]byte, error)
	// Decode decodes data into v, which is a non-nil pointer (as in
	// encoding/json.Unmarshal). Decoding into *any yields the codec's
	// natural Go values (see each codec's doc).
	Decode(data []byte, v any) error
}

// RemoteError is an error that crossed the wire: the Node shape
// {name, message, code, stack}. Codecs encode a Go error as a RemoteError
// and decode an error payload into one.
type RemoteError struct {
	Name    string `json:"name,omitempty"`
	Message string `json:"message"`
	Code    string `json:"code,omitempty"`
	Stack   string `json:"stack,omitempty"`
}

func (e *RemoteError) Error() string {
	s := e.Name
	if s == "" {
		s = "Error"
	}
	s += ": " + e.Message
	if e.Code != "" {
		s += " (code " + e.Code + ")"
	}
	return s
}

// Raw is an already-encoded app object: codecs pass it through unchanged
// on Append and fill it without decoding on Decode. It is the fast path
// for forwarding values without re-encoding them.
type Raw []byte

// Timeout converts a wire timeout to a duration.
func Timeout(ms int32) time.Duration { return time.Duration(ms) * time.Millisecond }
