package clusterbench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
)

// The child roles of the handover workload (handover.go): "caller", a
// member that calls all the time and records every call, and "oneshot", a
// short-lived process that makes one call.

func init() {
	roles["caller"] = callerRole
	roles["oneshot"] = oneshotRole
}

// workMethod is the method the handover members call: it works for
// callerArgs.Work on the leader (so that calls are in flight when the
// leader goes) and answers the leader's pid.
const workMethod = "work"

// callerArgs are the setup arguments of a caller or oneshot member.
type callerArgs struct {
	memberArgs
	// Features: the hand-over on Close (cluster.DefaultHandoverTimeout)
	// and, with Idempotent, the work method declared idempotent. Without:
	// WithHandoverTimeout(0) and no declaration.
	Features bool `json:"features"`
	// Idempotent declares the work method idempotent when Features is set.
	Idempotent bool `json:"idempotent"`
	// Callers goroutines each call every Every (a caller: continuously);
	// the leader's work method takes Work.
	Callers int   `json:"callers"`
	Every   int64 `json:"every_ns"`
	Work    int64 `json:"work_ns"`
}

// callBudget bounds one call of the handover workload: a call that waits
// longer counts as failed (a timeout).
const callBudget = 10 * time.Second

// newHandoverClient creates the Client of a caller or oneshot member; it
// does not wait until it is ready.
func newHandoverClient(a callerArgs) (*cluster.Client, error) {
	tr, err := newTransport(a.Transport)
	if err != nil {
		return nil, err
	}
	handover := cluster.DefaultHandoverTimeout
	if !a.Features {
		handover = 0
	}
	work := time.Duration(a.Work)
	pid := os.Getpid()
	svc := &cluster.Service{Methods: map[string]cluster.Handler{
		workMethod: func(context.Context, cluster.Args) (any, error) {
			time.Sleep(work) // real work does not stop when the caller leaves
			return pid, nil
		},
	}}
	if a.Features && a.Idempotent {
		svc.Idempotent = []string{workMethod}
	}
	return cluster.New(a.Channel, func(context.Context, cluster.Emit) (*cluster.Service, error) { return svc, nil },
		cluster.WithTransport(tr),
		cluster.WithAddr(a.Addr),
		cluster.WithHandoverTimeout(handover),
		cluster.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))),
	)
}

// callOutcome classifies a call's error for the figures.
type callOutcome struct {
	OK       int64  `json:"ok"`
	Lost     int64  `json:"lost"`     // cluster.ErrLeaderLost
	Timeouts int64  `json:"timeouts"` // cluster.ErrTimeout, or the call budget passed
	Other    int64  `json:"other"`
	LastErr  string `json:"last_error,omitempty"`
}

func (o *callOutcome) count(err error) {
	switch {
	case err == nil:
		o.OK++
		return
	case errors.Is(err, cluster.ErrLeaderLost):
		o.Lost++
	case errors.Is(err, cluster.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		o.Timeouts++
	default:
		o.Other++
	}
	o.LastErr = err.Error()
}

func (o callOutcome) failed() int64 { return o.Lost + o.Timeouts + o.Other }

func (o *callOutcome) add(p callOutcome) {
	o.OK += p.OK
	o.Lost += p.Lost
	o.Timeouts += p.Timeouts
	o.Other += p.Other
	if p.LastErr != "" {
		o.LastErr = p.LastErr
	}
}

// callerState answers "state": the member's role and calls so far.
type callerState struct {
	PID    int    `json:"pid"`
	Role   string `json:"role"`
	Ready  bool   `json:"ready"` // its current term is ready
	OK     int64  `json:"ok"`
	Failed int64  `json:"failed"`
}

// callerExit answers "exit": every call the member made, to the last,
// after its Client closed.
type callerExit struct {
	callOutcome
	// Start and Lat: each successful call's start (monoNow) and latency.
	Start []int64 `json:"start_ns"`
	Lat   []int64 `json:"lat_ns"`
	// Retried: idempotent calls sent again to the next leader
	// (Stats().Retried).
	Retried uint64 `json:"retried"`
	// CloseErr is Client.Close's error, if any.
	CloseErr string `json:"close_error,omitempty"`
	// Role it had when it closed.
	Role string `json:"role"`
}

// caller is a member that calls the work method all the time.
//
// Concurrency: the caller goroutines record their calls under mu; the
// child's command loop (one goroutine) reads them. stop and wg are the
// command loop's.
type caller struct {
	c    *cluster.Client
	stop chan struct{}
	wg   sync.WaitGroup

	mu    sync.Mutex
	out   callOutcome
	start []int64
	lat   []int64
}

// callerRole runs a member that calls the work method from Callers
// goroutines, each a call every Every, from the moment it is ready until
// "exit" (which stops the calls, closes the Client and answers every call
// made). "state" answers its role and counts.
func callerRole(raw json.RawMessage) (any, map[string]command, func(), error) {
	var a callerArgs
	if err := decodeArgs(raw, &a); err != nil {
		return nil, nil, nil, err
	}
	c, err := newHandoverClient(a)
	if err != nil {
		return nil, nil, nil, err
	}
	closeCtx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 2*cluster.DefaultHandoverTimeout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Ready(ctx); err != nil {
		cctx, ccancel := closeCtx()
		defer ccancel()
		c.Close(cctx)
		return nil, nil, nil, fmt.Errorf("caller on %s %s: %w", a.Transport, a.Addr, err)
	}
	m := &caller{c: c, stop: make(chan struct{})}
	for range max(a.Callers, 1) {
		m.wg.Go(func() { m.loop(time.Duration(a.Every)) })
	}
	closed := false
	exit := func() callerExit {
		close(m.stop)
		m.wg.Wait()
		role := c.Role().String()
		cctx, ccancel := closeCtx()
		defer ccancel()
		var x callerExit
		if err := c.Close(cctx); err != nil {
			x.CloseErr = err.Error()
		}
		closed = true
		x.Role, x.Retried = role, c.Stats().Retried
		m.mu.Lock()
		defer m.mu.Unlock()
		x.callOutcome, x.Start, x.Lat = m.out, m.start, m.lat
		return x
	}
	cmds := map[string]command{
		"state": func(json.RawMessage) (any, error) {
			st := c.Stats()
			m.mu.Lock()
			defer m.mu.Unlock()
			return callerState{PID: os.Getpid(), Role: st.Role.String(), Ready: st.Ready,
				OK: m.out.OK, Failed: m.out.failed()}, nil
		},
		"exit": func(json.RawMessage) (any, error) {
			if closed {
				return nil, errors.New("already closed")
			}
			return exit(), nil
		},
	}
	closeFn := func() {
		if !closed {
			exit()
		}
	}
	return memberReady{PID: os.Getpid(), Leader: c.IsLeader()}, cmds, closeFn, nil
}

// loop calls the work method every every until stop closes.
func (m *caller) loop(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), callBudget)
		start := monoNow()
		_, err := cluster.Call[int](ctx, m.c, workMethod)
		lat := monoNow() - start
		cancel()
		m.mu.Lock()
		m.out.count(err)
		if err == nil {
			m.start = append(m.start, start)
			m.lat = append(m.lat, lat)
		}
		m.mu.Unlock()
	}
}

// oneshotReply answers "go": the one call's outcome.
type oneshotReply struct {
	PID int `json:"pid"`
	// Role when the call returned: "leader" if this process led then.
	Role     string `json:"role"`
	Err      string `json:"error,omitempty"`
	Lost     bool   `json:"lost,omitempty"`    // Err is ErrLeaderLost
	Timeout  bool   `json:"timeout,omitempty"` // Err is ErrTimeout or the call budget passed
	CloseErr string `json:"close_error,omitempty"`
}

// oneshotRole is a short-lived process: it creates its Client at once and
// on "go" makes one call and closes it, as a CLI that is done.
func oneshotRole(raw json.RawMessage) (any, map[string]command, func(), error) {
	var a callerArgs
	if err := decodeArgs(raw, &a); err != nil {
		return nil, nil, nil, err
	}
	c, err := newHandoverClient(a)
	if err != nil {
		return nil, nil, nil, err
	}
	closed := false
	closeClient := func() error {
		closed = true
		ctx, cancel := context.WithTimeout(context.Background(), 2*cluster.DefaultHandoverTimeout)
		defer cancel()
		return c.Close(ctx)
	}
	cmds := map[string]command{
		"go": func(json.RawMessage) (any, error) {
			if closed {
				return nil, errors.New("already closed")
			}
			ctx, cancel := context.WithTimeout(context.Background(), callBudget)
			_, err := cluster.Call[int](ctx, c, workMethod)
			cancel()
			r := oneshotReply{PID: os.Getpid(), Role: c.Role().String()}
			if err != nil {
				r.Err, r.Lost = err.Error(), errors.Is(err, cluster.ErrLeaderLost)
				r.Timeout = errors.Is(err, cluster.ErrTimeout) || errors.Is(err, context.DeadlineExceeded)
			}
			if err := closeClient(); err != nil {
				r.CloseErr = err.Error()
			}
			return r, nil
		},
	}
	closeFn := func() {
		if !closed {
			closeClient()
		}
	}
	return struct {
		PID int `json:"pid"`
	}{os.Getpid()}, cmds, closeFn, nil
}
