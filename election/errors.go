package election

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// Errors returned (wrapped in an *Error) by Elect and Reelect. Match them
// with errors.Is; the transport's own error (ErrAddrInUse, the OS error,
// ...) is wrapped too.
var (
	// ErrNoLeader means a forced follower found no leader within MaxWait.
	ErrNoLeader = errors.New("election: no leader")
	// ErrLeaderBind means a forced leader could not bind the address; the
	// transport's error (with the OS error) is wrapped alongside.
	ErrLeaderBind = errors.New("election: forced leader cannot bind")
	// ErrChannelLeading means a forced leader asked for a channel that this
	// process already leads on the address. Only one lease per channel and
	// address exists in a process (as Node's per-process table of
	// leading channels).
	ErrChannelLeading = errors.New("election: channel already leads on this address in this process")
	// ErrCannotElect means an auto election can neither bind the address
	// nor reach a leader on it, for a reason that retrying will not cure
	// (an invalid address, a bind refused with something other than
	// "address in use" while nobody listens).
	ErrCannotElect = errors.New("election: cannot lead or follow")
	// ErrInvalidConfig means Config.Validate failed.
	ErrInvalidConfig = errors.New("election: invalid config")
)

// Error is the error type of Elect and Reelect. It names what an operator
// needs to find the problem: the channel, the transport, the address, the
// mode and, for a forced follower, how long it waited.
type Error struct {
	Channel   string
	Transport string // Transport.Name()
	Addr      string
	Mode      Mode
	// Kind is one of the sentinels above, or nil when the election was
	// abandoned because its context ended.
	Kind error
	// Waited is the time spent in the election (all modes).
	Waited time.Duration
	// MaxWait is the forced follower's limit (Config.MaxWait); zero in the
	// other modes.
	MaxWait time.Duration
	// Attempts counts binds and dials tried.
	Attempts int
	// Err is the cause: the last transport error, or the context's error.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("election: channel ")
	b.WriteString(strconv.Quote(e.Channel))
	b.WriteString(" on ")
	b.WriteString(e.Transport)
	b.WriteString(" ")
	b.WriteString(e.Addr)
	b.WriteString(": ")
	switch e.Kind {
	case ErrNoLeader:
		b.WriteString("no leader after ")
		b.WriteString(e.MaxWait.String())
	case ErrLeaderBind:
		b.WriteString("cannot bind")
	case ErrChannelLeading:
		b.WriteString("channel already leads here in this process")
	case ErrCannotElect:
		b.WriteString("cannot lead or follow")
	case nil:
		b.WriteString("election abandoned after ")
		b.WriteString(e.Waited.Round(time.Millisecond).String())
	default:
		b.WriteString(e.Kind.Error())
	}
	b.WriteString(" (")
	b.WriteString(e.Mode.describe())
	b.WriteString(")")
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns Kind and Err, so errors.Is matches the sentinel, the
// transport's sentinel and the OS error alike.
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
