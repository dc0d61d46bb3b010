package cluster

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"

	"github.com/go-clusterclient/clusterclient/auth"
	"github.com/go-clusterclient/clusterclient/protocol"
)

// Factory builds the real client. It runs only in the leader (or once per
// name in single mode), once per leadership term, and it should return
// when the real client is ready to serve (Node's ready()). Its error is the
// ready error: every call on the leader and on every follower fails with
// it while the leader runs the factory again, with a pause that grows
// (WithStartRetry; each failure replaces the ready error), until a run
// succeeds or a new term starts.
//
// ctx is cancelled if the Client closes while the factory runs. emit lets
// the real client raise its own events (see EventUpstream); it may be
// called from any goroutine for as long as the real client lives, and does
// nothing once the term ended.
type Factory func(ctx context.Context, emit Emit) (*Service, error)

// Emit raises an event of the real client on the Client that leads (in
// single mode: on every Client sharing the real client). name is free
// text; data may be an error, then Event.Err is set too.
type Emit func(name string, data any)

// Service declares what the real client offers. Only what is declared is
// reachable from another process: an undeclared method (or operation) gets
// an error reply naming it (ErrUnknownMethod), where Node's leader would
// crash.
//
// Every function may be called concurrently from many goroutines, except
// that Subscribe and Unsubscribe of one key never overlap. Nil fields are
// simply not offered.
//
// A follower's call starts on the goroutine that reads its connection, so
// a method that answers from memory costs no goroutine switch. A call
// still running after 1-2 ms gets that goroutine to itself (reading moves
// on), and a method whose calls ran longer than 1 ms three times in a row
// starts its calls on goroutines of their own for the next 10 s: a
// follower's other requests wait at most about 2 ms behind a slow method,
// and soon not at all. Once a method's last 16 calls each took less than
// 1 ms, a slow call of it is noticed within about 10 ms instead (checking
// every millisecond while calls flow would cost more than the rest of a
// call's round trip on a small host).
type Service struct {
	// Subscribe starts the one upstream subscription for reg. It is called
	// once per distinct subscription key for the whole host, when the first
	// subscriber of the key appears anywhere, and should return promptly
	// (Subscribe and Unsubscribe calls run one at a time, in the order the
	// leader received them; a method or Publish that reached the leader
	// after a subscribe runs only once that Subscribe returned, as in
	// Node). The real client calls push with each new value for reg, from
	// any goroutine, also from inside Subscribe; push encodes the value at
	// once (it may be reused after push returns) and never blocks.
	// Subscribe and Unsubscribe must not call the Client (a call would wait
	// for them to return).
	Subscribe func(reg Reg, push func(value any)) error
	// Unsubscribe ends the upstream subscription of reg when its last
	// subscriber on the host left (Node never does this). Values
	// pushed after it are dropped.
	Unsubscribe func(reg Reg) error
	// Publish receives every Client's Publish, and the replay of every
	// remembered publication after a failover.
	Publish func(ctx context.Context, reg Reg) error
	// Unpublish receives Client.Unpublish (Node's unPublish delegated as a
	// one-way invoke).
	Unpublish func(ctx context.Context, reg Reg) error
	// Methods are the named methods Invoke and InvokeOneway may call.
	// "publish", "unPublish", "subscribe", "unSubscribe" and "close" are
	// reserved for the fields above (they are Node's names for those
	// operations on the wire), and a name may not be empty: a Service that
	// declares such a method, or a nil handler, is refused when the
	// factory returns, and the error naming the method is the ready error
	// of the leader and of every follower.
	Methods map[string]Handler
	// Idempotent names the methods of Methods that are safe to run twice
	// (reads, puts of the same value). A follower's call to one of them
	// that fails with ErrLeaderLost (the leader died with the call in
	// flight, so whether it ran is unknown) is sent once more, to the next
	// leader, within the caller's context; other methods fail with
	// ErrLeaderLost, for the caller to decide. The leader tells its
	// followers the list when they register; a Node leader tells none, so
	// its Go followers never repeat a call. A name that is not in Methods
	// is refused like a reserved one. (Subscriptions and publications need
	// no such declaration: every follower replays them to each new
	// leader.)
	Idempotent []string
	// Close closes the real client. It is called exactly once per term,
	// when the last Client using it closes or the term ends.
	Close func(ctx context.Context) error
}

// Names reserved on the wire for the Service's operations.
const (
	methodPublish   = "publish"
	methodUnpublish = "unPublish"
)

// reservedMethods maps each method name reserved on the wire to the
// Service field that serves it.
var reservedMethods = map[string]string{
	methodPublish: "Publish", methodUnpublish: "Unpublish",
	"subscribe": "Subscribe", "unSubscribe": "Unsubscribe", "close": "Close",
}

// validate refuses a Service no follower could use as declared: a method
// with a reserved or empty name, or a nil handler. The error names the
// method (the first in name order, so it is the same on every run); it is
// the ready error of the leader and of every follower.
func (s *Service) validate() error {
	for _, name := range slices.Sorted(maps.Keys(s.Methods)) {
		if name == "" {
			return fmt.Errorf("%w: the Service declares a method with an empty name", ErrInvalidOption)
		}
		if field, ok := reservedMethods[name]; ok {
			return fmt.Errorf("%w: method name %q is reserved (declare it as the Service's %s field)", ErrInvalidOption, name, field)
		}
		if s.Methods[name] == nil {
			return fmt.Errorf("%w: method %q has a nil handler", ErrInvalidOption, name)
		}
	}
	for _, name := range s.Idempotent {
		if s.Methods[name] == nil {
			return fmt.Errorf("%w: the Service declares %q idempotent, but it has no such method", ErrInvalidOption, name)
		}
	}
	return nil
}

// Handler is a method of the real client. args are the caller's arguments,
// decoded lazily; the result is encoded with the channel's codec (return a
// protocol.Raw to send bytes already encoded). A panic becomes an error
// reply (ErrPanic with the stack); the leader keeps serving.
//
// ctx carries the caller's deadline (the follower's response timeout) and
// is cancelled when the leader's term ends.
type Handler func(ctx context.Context, args Args) (any, error)

// Args are the arguments of one call. On the leader they are the caller's
// own Go values; from a follower they are encoded bytes, decoded on
// demand. An Args is valid only during the call that received it.
type Args struct {
	codec protocol.Codec
	enc   [][]byte // from a follower: one codec text per argument
	vals  []any    // from this process: the values passed to Invoke
}

// Len returns the number of arguments.
func (a Args) Len() int {
	if a.vals != nil {
		return len(a.vals)
	}
	return len(a.enc)
}

// Decode stores argument i in v, a non-nil pointer, as the codec's Decode
// does. A local argument whose type matches *v exactly is assigned without
// encoding (it is then the caller's own value, as in Node's leader); other
// local arguments make a round trip through the codec.
func (a Args) Decode(i int, v any) error {
	if i < 0 || i >= a.Len() {
		return fmt.Errorf("%w: argument %d of %d", ErrProtocol, i, a.Len())
	}
	if a.vals != nil {
		return assign(a.codec, a.vals[i], v)
	}
	return a.codec.Decode(a.enc[i], v)
}

// Raw returns argument i as codec bytes, without decoding it (a local
// argument is encoded). Returning it as the result sends it back as is,
// from where it lies in the follower's frame, without a copy on the
// leader: the fast path for passing bytes through. Like the Args, it is
// valid only during the call: copy it to keep it.
func (a Args) Raw(i int) (protocol.Raw, error) {
	if i < 0 || i >= a.Len() {
		return nil, fmt.Errorf("%w: argument %d of %d", ErrProtocol, i, a.Len())
	}
	if a.vals != nil {
		return a.codec.Append(nil, a.vals[i])
	}
	return a.enc[i], nil // in the frame, valid during the call
}

// assign stores the Go value val in the pointer v: directly when the types
// allow, else through the codec.
func assign(codec protocol.Codec, val any, v any) error {
	switch p := v.(type) {
	case *any:
		*p = val
		return nil
	case *protocol.Raw:
		b, err := codec.Append(nil, val)
		if err != nil {
			return err
		}
		*p = b
		return nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer && !rv.IsNil() && val != nil {
		if ev := reflect.ValueOf(val); ev.Type() == rv.Elem().Type() {
			rv.Elem().Set(ev)
			return nil
		}
	}
	b, err := codec.Append(nil, val)
	if err != nil {
		return err
	}
	return codec.Decode(b, v)
}

// Reg is a registration: what a Client passed to Subscribe, Unsubscribe,
// Publish or Unpublish, as the real client receives it.
type Reg struct {
	data  []byte
	codec protocol.Codec
	key   string
}

// Key returns the subscription key of a subscribe or unsubscribe
// registration ("$$inner$$__" + its JSON text, as Node computes it); it is
// empty for publications.
func (r Reg) Key() string { return r.key }

// Decode decodes the registration into v (a pointer), like json.Unmarshal.
func (r Reg) Decode(v any) error { return r.codec.Decode(r.data, v) }

// Bytes returns the registration as encoded: JSON for subscriptions, the
// channel codec's bytes for publications. Do not modify it.
func (r Reg) Bytes() []byte { return r.data }

// String returns the registration's text.
func (r Reg) String() string { return string(r.data) }

// Value is one value delivered to a subscription listener. Each listener
// decodes its own copy, so listeners never share a map or slice.
type Value struct {
	data  []byte
	codec protocol.Codec
}

// Decode decodes the value into v (a pointer).
func (v Value) Decode(ptr any) error { return v.codec.Decode(v.data, ptr) }

// Raw returns a copy of the value's codec bytes.
func (v Value) Raw() protocol.Raw { return append(protocol.Raw(nil), v.data...) }

// Result is the result of Invoke.
type Result struct {
	codec protocol.Codec
	data  []byte // from the leader, encoded
	val   any    // local call: the method's own result
	local bool
}

// Decode stores the result in v, a non-nil pointer. A local result whose
// type matches *v exactly is assigned as is; otherwise it is decoded.
func (r Result) Decode(v any) error {
	if r.local {
		return assign(r.codec, r.val, v)
	}
	if len(r.data) == 0 {
		return nil // undefined
	}
	return r.codec.Decode(r.data, v)
}

// Raw returns the result's codec bytes.
func (r Result) Raw() (protocol.Raw, error) {
	var raw protocol.Raw
	return raw, r.Decode(&raw)
}

// Ext holds extension fields of register_channel, of its reply and of
// register_confirm (JSON values keyed by name). A Node peer ignores them.
type Ext = auth.Ext

// PeerInfo describes one end of a registration for a Handshake: the
// channel, the transport's name, the address (as configured) and the
// connection, which may implement transport.PeerCredentials (unix
// sockets).
type PeerInfo = auth.PeerInfo

// Handshake is the session layer that authenticates registration in both
// directions, before anything else of the connection is served or sent.
// It runs once per connection, in four steps:
//
//  1. the follower adds Hello's fields to its register_channel;
//  2. the leader's Admit checks them and returns the fields of its reply,
//     or refuses (the follower gets ErrHandshake with Admit's message);
//  3. the follower's Confirm checks the reply before it trusts the leader
//     (on failure it hangs up and elects again: ErrHandshake) and returns
//     the fields of register_confirm, a Go-only request it sends next,
//     before anything else;
//  4. the leader's Verify checks them; only then is the connection
//     admitted, and the leader answers register_confirm_res (or refuses
//     and hangs up). Before that it answers heartbeats and nothing else,
//     and drops the connection if it asks for anything else or does not
//     confirm within the register deadline. The follower is ready once
//     admitted.
//
// Each step gets the earlier messages it needs (hello, reply), so an
// implementation may be stateless. The default is package auth's (see
// WithAuth); a Node peer speaks no handshake, so a Node follower is
// refused and a Node leader fails Confirm (see WithInsecure,
// WithNodeCompat).
type Handshake interface {
	Hello(ctx context.Context, info PeerInfo) (Ext, error)
	Admit(ctx context.Context, info PeerInfo, hello Ext) (Ext, error)
	Confirm(ctx context.Context, info PeerInfo, hello, reply Ext) (Ext, error)
	Verify(ctx context.Context, info PeerInfo, hello, reply, confirm Ext) error
}

var _ Handshake = (*auth.Handshake)(nil)
