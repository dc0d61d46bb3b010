package cluster

import (
	"fmt"
	"time"
)

// Role is what a Client currently is.
type Role int

const (
	// RoleNone: not elected yet, between terms, or closed.
	RoleNone Role = iota
	// RoleLeader: this Client owns the real client and serves followers.
	RoleLeader
	// RoleFollower: this Client forwards everything to a leader.
	RoleFollower
	// RoleSingle: single mode (no network; IsLeader reports true).
	RoleSingle
)

func (r Role) String() string {
	switch r {
	case RoleNone:
		return "none"
	case RoleLeader:
		return "leader"
	case RoleFollower:
		return "follower"
	case RoleSingle:
		return "single"
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// MarshalText returns the role's name ("leader", "follower", ...), so a
// Role reads as text in JSON, logs and status output.
func (r Role) MarshalText() ([]byte, error) {
	if r < RoleNone || r > RoleSingle {
		return nil, fmt.Errorf("cluster: cannot marshal unknown role %d", int(r))
	}
	return []byte(r.String()), nil
}

// UnmarshalText parses a name MarshalText returns.
func (r *Role) UnmarshalText(b []byte) error {
	for x := RoleNone; x <= RoleSingle; x++ {
		if string(b) == x.String() {
			*r = x
			return nil
		}
	}
	return fmt.Errorf("cluster: unknown role %q", b)
}

// EventKind says what an Event reports.
type EventKind int

const (
	// EventRole: a new term started with Role (after an election).
	EventRole EventKind = iota + 1
	// EventReady: the term became ready (Err nil) or failed to (Err is the
	// ready error). While the leader retries a failed factory
	// (WithStartRetry), each failure is one more EventReady with its error,
	// and the start that succeeds an EventReady without one.
	EventReady
	// EventLeaderLost: a ready term ended (the leader died, its listener
	// failed, a heartbeat was lost); Err says why. A new election follows.
	EventLeaderLost
	// EventError: a background error (a subscribe timeout, a follower
	// dropped for idleness, a late reply dropped, a failed replay, a
	// listener panic, ...). Err matches one of the package sentinels.
	EventError
	// EventUpstream: the real client emitted an event (Factory's emit). Name
	// and Data are what it passed; Err is Data when Data is an error. Only
	// the leader's Client sees these (in single mode: every Client sharing
	// the real client).
	EventUpstream
	// EventClosed: Close finished. It is the last event.
	EventClosed
	// EventFollowerJoined: on the leader, a follower's connection was
	// admitted to the channel (registered, and authenticated when the
	// cluster authenticates). Remote is its address; PID its process id
	// when the transport reports it (unix sockets), else 0.
	EventFollowerJoined
	// EventFollowerLeft: on the leader, an admitted follower's connection
	// ended (it closed, died, was dropped, or the term ended); Err says
	// why when it was not a plain hang-up. Remote and PID as for
	// EventFollowerJoined.
	EventFollowerLeft
)

func (k EventKind) String() string {
	switch k {
	case EventRole:
		return "role"
	case EventReady:
		return "ready"
	case EventLeaderLost:
		return "leader-lost"
	case EventError:
		return "error"
	case EventUpstream:
		return "upstream"
	case EventClosed:
		return "closed"
	case EventFollowerJoined:
		return "follower-joined"
	case EventFollowerLeft:
		return "follower-left"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is something that happened to a Client, delivered to the handler
// given by WithEventHandler.
type Event struct {
	Kind    EventKind
	Time    time.Time
	Channel string
	Role    Role   // the role when it happened
	Term    uint64 // the term it happened in (terms count from 1 per Client)
	Err     error
	Name    string // EventUpstream: the real client's event name
	Data    any    // EventUpstream: its data
	Remote  string // EventFollowerJoined, EventFollowerLeft: the follower's address
	PID     int    // EventFollowerJoined, EventFollowerLeft: its process id, when known (else 0)
}

func (e Event) String() string {
	s := fmt.Sprintf("%s channel=%q role=%s term=%d", e.Kind, e.Channel, e.Role, e.Term)
	if e.Name != "" {
		s += fmt.Sprintf(" name=%q", e.Name)
	}
	if e.Remote != "" {
		s += " remote=" + e.Remote
	}
	if e.PID != 0 {
		s += fmt.Sprintf(" pid=%d", e.PID)
	}
	if e.Err != nil {
		s += " err=" + e.Err.Error()
	}
	return s
}

// Stats is a snapshot of a Client's state and counters.
type Stats struct {
	Channel   string
	Transport string
	Addr      string
	Role      Role
	Term      uint64 // the current term (0 before the first election)
	Ready     bool   // the current term is ready
	Closed    bool

	Followers     int // leader: followers registered on this channel now
	Conns         int // leader: connections open on its address now (every channel, registered or not)
	InFlight      int // calls waiting for their answer (follower) or running (leader)
	Subscriptions int // keys this Client subscribes
	Publications  int // publications this Client remembers for replay

	Invokes       uint64 // calls made through this Client
	InvokeErrors  uint64 // calls that returned an error
	Timeouts      uint64 // calls that failed with ErrTimeout
	LeaderLost    uint64 // calls that failed with ErrLeaderLost
	Retried       uint64 // idempotent calls sent again after ErrLeaderLost (Service.Idempotent)
	Served        uint64 // leader: calls served for followers
	Deliveries    uint64 // values handed to this Client's listeners
	Pushes        uint64 // leader: values sent to followers
	Elections     uint64 // elections won or joined (terms)
	Events        uint64 // events delivered to the handler
	EventsDropped uint64 // events dropped because the handler fell behind

	// Methods are the figures of the calls made through this Client, by
	// method (nil before the first); ServedMethods, on the leader, those
	// of the calls it ran for followers. See MethodStats.
	Methods       map[string]MethodStats
	ServedMethods map[string]MethodStats
}
