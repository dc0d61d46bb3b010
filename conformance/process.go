package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/internal/childproc"
	"github.com/go-clusterclient/clusterclient/protocol"
	"github.com/go-clusterclient/clusterclient/transport/transporttest"
)

// ChildFactory builds, in a child process, the transport that the harness
// of the given Kind builds in the test process. It is the transport kit's
// factory type: one factory serves both.
type ChildFactory = transporttest.ChildFactory

// processMode is the childproc mode of member processes.
const processMode = "conformance.process"

// Main runs the child side and exits if this process is a child process
// of the suite or of the transport kit; otherwise it returns at once. Call
// it first in TestMain:
//
//	func TestMain(m *testing.M) {
//		conformance.Main(func(kind string) (transport.Transport, error) {
//			return mytransport.New(mytransport.DefaultConfig())
//		})
//		goleak.VerifyTestMain(m)
//	}
func Main(f ChildFactory) { childproc.Main(ChildModes(f)) }

// ChildModes returns the child modes of the suite and of the transport
// kit, for a package of this module that adds modes of its own and calls
// internal/childproc's Main itself.
func ChildModes(f ChildFactory) map[string]func(args []string) int {
	modes := transporttest.ChildModes(f)
	modes[processMode] = func(args []string) int { return runProcess(f, args) }
	return modes
}

// ProcessConfig describes the cluster member a child process runs.
type ProcessConfig struct {
	// Channel is the Client's name. Required.
	Channel string
	// Addr is the address competed for. Required.
	Addr string
	// Mode is the election mode (cluster.Auto by default).
	Mode cluster.Mode
	// LeakCheck makes Close fail if the child's Client left goroutines
	// running once it closed (checked in the child with goleak).
	LeakCheck bool
}

// processArgs travel to the child as its one argument, in JSON.
type processArgs struct {
	Kind      string
	Channel   string
	Addr      string
	Mode      cluster.Mode
	LeakCheck bool
}

// Events a member process emits, and the commands it obeys.
const (
	evStarted = "started" // data: pid
	evRole    = "role"    // data: stateEvent
	evReady   = "ready"   // data: stateEvent
	evLost    = "lost"    // data: stateEvent
	evError   = "error"   // data: stateEvent
	evBuilt   = "built"   // data: real client ID
	evHolding = "holding" // data: real client ID
	evValue   = "value"   // data: Snapshot
	evReply   = "reply"   // data: reply

	cmdSubscribe = "subscribe" // data: request (Key)
	cmdPublish   = "publish"   // data: request (Key, Value)
	cmdInvoke    = "invoke"    // data: request (Method, Args)
	cmdClose     = "close"     // data: request
)

type stateEvent struct {
	Role cluster.Role `json:"role"`
	Term uint64       `json:"term"`
	Err  string       `json:"err,omitempty"`
}

// request is a command of the parent; the child answers each with a
// reply carrying the same ID.
type request struct {
	ID     int64             `json:"id"`
	Key    string            `json:"key,omitempty"`
	Value  string            `json:"value,omitempty"`
	Method string            `json:"method,omitempty"`
	Args   []json.RawMessage `json:"args,omitempty"`
}

type reply struct {
	ID     int64           `json:"id"`
	Result json.RawMessage `json:"result,omitempty"`
	Err    *CallError      `json:"err,omitempty"`
}

// CallError is an error a member process's Client returned, as it
// crossed to the test process.
type CallError struct {
	// Message is the error's text.
	Message string `json:"message"`
	// Is lists the cluster sentinels the error matches, by name
	// ("ErrLeaderLost", ...).
	Is []string `json:"is,omitempty"`
	// Remote is the *protocol.RemoteError the error wraps, if any.
	Remote *protocol.RemoteError `json:"remote,omitempty"`
}

func (e *CallError) Error() string { return e.Message }

// Matches reports whether the error matched the cluster sentinel named
// name ("ErrTimeout", ...) in the member process.
func (e *CallError) Matches(name string) bool {
	for _, n := range e.Is {
		if n == name {
			return true
		}
	}
	return false
}

// sentinels are the cluster errors a CallError reports by name.
var sentinels = []struct {
	name string
	err  error
}{
	{"ErrClosed", cluster.ErrClosed},
	{"ErrTimeout", cluster.ErrTimeout},
	{"ErrLeaderLost", cluster.ErrLeaderLost},
	{"ErrUnknownMethod", cluster.ErrUnknownMethod},
	{"ErrPanic", cluster.ErrPanic},
	{"ErrNoLeader", cluster.ErrNoLeader},
	{"ErrNoChannel", cluster.ErrNoChannel},
	{"ErrNotReady", cluster.ErrNotReady},
	{"ErrOverloaded", cluster.ErrOverloaded},
	{"ErrProtocol", cluster.ErrProtocol},
	{"ErrHandshake", cluster.ErrHandshake},
	{"context.DeadlineExceeded", context.DeadlineExceeded},
	{"context.Canceled", context.Canceled},
}

func newCallError(err error) *CallError {
	if err == nil {
		return nil
	}
	ce := &CallError{Message: err.Error()}
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			ce.Is = append(ce.Is, s.name)
		}
	}
	var re *protocol.RemoteError
	if errors.As(err, &re) {
		ce.Remote = re
	}
	return ce
}

// runProcess is the child side: a Client on the harness's transport whose
// real client is the suite's, reporting its events and obeying commands.
func runProcess(f ChildFactory, args []string) int {
	if len(args) != 1 {
		childproc.Fatalf("conformance: member process wants one argument, got %q", args)
	}
	var a processArgs
	if err := json.Unmarshal([]byte(args[0]), &a); err != nil {
		childproc.Fatalf("conformance: member process: bad argument %q: %v", args[0], err)
	}
	tr, err := f(a.Kind)
	if err != nil {
		childproc.Fatalf("conformance: member process: build transport of kind %q: %v", a.Kind, err)
	}
	up := newUpstream(fmt.Sprintf("pid %d", os.Getpid()))
	up.onBuild = func(rc *realClient) { childproc.Emit(evBuilt, rc.id) }
	up.onHold = func(rc *realClient) { childproc.Emit(evHolding, rc.id) }
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	opts := append(suiteOptions(tr, a.Addr, logger), cluster.WithMode(a.Mode),
		cluster.WithEventHandler(func(ev cluster.Event) {
			se := stateEvent{Role: ev.Role, Term: ev.Term}
			if ev.Err != nil {
				se.Err = ev.Err.Error()
			}
			switch ev.Kind {
			case cluster.EventRole:
				childproc.Emit(evRole, se)
			case cluster.EventReady:
				childproc.Emit(evReady, se)
			case cluster.EventLeaderLost:
				childproc.Emit(evLost, se)
			case cluster.EventError:
				childproc.Emit(evError, se)
			}
		}))
	// What runs before the Client exists is not the Client's.
	baseline := goleak.IgnoreCurrent()
	// Started comes first: the parent waits for it before it reads the
	// Client's events.
	childproc.Emit(evStarted, os.Getpid())
	c, err := cluster.New(a.Channel, up.factory(a.Channel), opts...)
	if err != nil {
		childproc.Fatalf("conformance: member process: cluster.New(%q): %v", a.Channel, err)
	}
	var calls sync.WaitGroup
	for {
		ev := childproc.Receive()
		var req request
		if err := ev.Decode(&req); err != nil {
			childproc.Fatalf("conformance: member process: %v", err)
		}
		switch ev.Name {
		case cmdSubscribe:
			_, err := cluster.SubscribeTyped(c, Reg{Key: req.Key}, func(s Snapshot) { childproc.Emit(evValue, s) })
			childproc.Emit(evReply, reply{ID: req.ID, Err: newCallError(err)})
		case cmdPublish:
			err := c.Publish(Reg{Key: req.Key, Value: req.Value})
			childproc.Emit(evReply, reply{ID: req.ID, Err: newCallError(err)})
		case cmdInvoke:
			calls.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
				defer cancel()
				args := make([]any, len(req.Args))
				for i, a := range req.Args {
					args[i] = a
				}
				r := reply{ID: req.ID}
				res, err := c.Invoke(ctx, req.Method, args...)
				if err == nil {
					var raw protocol.Raw
					if raw, err = res.Raw(); err == nil {
						r.Result = json.RawMessage(raw)
					}
				}
				r.Err = newCallError(err)
				childproc.Emit(evReply, r)
			})
		case cmdClose:
			up.releaseHolds() // a leader's Close waits for running methods
			ctx, cancel := context.WithTimeout(context.Background(), suiteCloseTimeout)
			err := c.Close(ctx)
			cancel()
			calls.Wait()
			if err == nil && a.LeakCheck {
				if lerr := goleak.Find(baseline); lerr != nil {
					err = fmt.Errorf("conformance: member process %d: goroutines left after Close: %w", os.Getpid(), lerr)
				}
			}
			childproc.Emit(evReply, reply{ID: req.ID, Err: newCallError(err)})
			return 0
		default:
			childproc.Fatalf("conformance: member process: unknown command %q", ev.Name)
		}
	}
}

// Process is a cluster member running in a child process: the test
// binary, re-executed, runs a Client of ProcessConfig.Channel on the
// harness's transport, whose real client is the suite's (see the package
// doc for its methods). The Process reports the child's role, readiness,
// real clients built, held calls and subscription values as they happen,
// and makes the child subscribe, publish, invoke and close on command.
// The child never outlives the test: the test's cleanup kills it, and it
// dies with the test process.
//
// Concurrency: every method is safe for concurrent use.
type Process struct {
	ch  *childproc.Child
	cfg ProcessConfig

	mu      sync.Mutex
	state   ProcessState
	nextID  int64
	waiting map[int64]chan reply
	changed chan struct{} // closed and replaced on every state change
	snaps   *sink
	done    chan struct{} // closed when the event reader returned
}

// ProcessState is what a Process has reported so far.
type ProcessState struct {
	Role     cluster.Role
	Term     uint64
	Ready    bool   // the current term is ready
	ReadyErr string // the current term's ready error, if it failed
	Exited   bool
	Built    []string // IDs of the real clients the child built, in order
	Holding  int      // MethodHold calls that started in the child's real clients
	Lost     []string // why terms ended (EventLeaderLost)
	Errors   []string // background errors (EventError)
}

// StartProcess starts a member process for h's transport and waits until
// its Client exists. It fails tb if the process cannot start; tb.Cleanup
// kills it. The test binary's TestMain must call Main.
func StartProcess(tb testing.TB, h Harness, cfg ProcessConfig) *Process {
	tb.Helper()
	if cfg.Channel == "" || cfg.Addr == "" {
		tb.Fatal("conformance: StartProcess: ProcessConfig.Channel and Addr are required")
	}
	arg, err := json.Marshal(processArgs{Kind: h.Kind, Channel: cfg.Channel, Addr: cfg.Addr, Mode: cfg.Mode, LeakCheck: cfg.LeakCheck})
	if err != nil {
		tb.Fatal(err)
	}
	p := &Process{
		ch:      childproc.Start(tb, processMode, string(arg)),
		cfg:     cfg,
		waiting: map[int64]chan reply{},
		changed: make(chan struct{}),
		snaps:   newSink(),
		done:    make(chan struct{}),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := p.ch.Expect(ctx, evStarted); err != nil {
		tb.Fatalf("conformance: member process did not start (does TestMain call conformance.Main?): %v", err)
	}
	go p.read()
	tb.Cleanup(func() {
		p.ch.Kill()
		<-p.done
		// A child built with -race reports races on its stderr and is
		// usually killed before it could exit with status 66.
		if s := p.ch.Stderr(); strings.Contains(s, "WARNING: DATA RACE") || strings.Contains(s, "panic:") {
			tb.Errorf("conformance: member process %d:\n%s", p.Pid(), s)
		}
	})
	return p
}

// read applies the child's events until it exits.
func (p *Process) read() {
	defer close(p.done)
	for {
		ev, err := p.ch.Next(context.Background())
		if err != nil {
			p.update(func(s *ProcessState) { s.Exited, s.Ready = true, false })
			p.mu.Lock()
			for id, c := range p.waiting {
				close(c)
				delete(p.waiting, id)
			}
			p.mu.Unlock()
			return
		}
		switch ev.Name {
		case evRole, evReady, evLost, evError:
			var se stateEvent
			if ev.Decode(&se) != nil {
				continue
			}
			p.update(func(s *ProcessState) {
				switch ev.Name {
				case evRole:
					s.Role, s.Term, s.Ready, s.ReadyErr = se.Role, se.Term, false, ""
				case evReady:
					if se.Term == s.Term {
						s.Ready, s.ReadyErr = se.Err == "", se.Err
					}
				case evLost:
					s.Role, s.Ready = cluster.RoleNone, false
					s.Lost = append(s.Lost, se.Err)
				case evError:
					s.Errors = append(s.Errors, se.Err)
				}
			})
		case evBuilt, evHolding:
			var id string
			if ev.Decode(&id) != nil {
				continue
			}
			p.update(func(s *ProcessState) {
				if ev.Name == evBuilt {
					s.Built = append(s.Built, id)
				} else {
					s.Holding++
				}
			})
		case evValue:
			var snap Snapshot
			if ev.Decode(&snap) == nil {
				p.snaps.add(snap)
			}
		case evReply:
			var r reply
			if ev.Decode(&r) != nil {
				continue
			}
			p.mu.Lock()
			c := p.waiting[r.ID]
			delete(p.waiting, r.ID)
			p.mu.Unlock()
			if c != nil {
				c <- r
			}
		}
	}
}

func (p *Process) update(f func(s *ProcessState)) {
	p.mu.Lock()
	f(&p.state)
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

// Pid returns the child's process id.
func (p *Process) Pid() int { return p.ch.Pid() }

// Kill sends SIGKILL to the child without waiting for it to die.
func (p *Process) Kill() error { return p.ch.Kill() }

// Exited returns a channel closed once the child has exited and been
// reaped.
func (p *Process) Exited() <-chan struct{} { return p.ch.Exited() }

// State returns what the child has reported so far.
func (p *Process) State() ProcessState {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.state
	s.Built = append([]string(nil), s.Built...)
	s.Lost = append([]string(nil), s.Lost...)
	s.Errors = append([]string(nil), s.Errors...)
	return s
}

// WaitState waits until f accepts the child's state and returns that
// state; it fails if ctx ends first.
func (p *Process) WaitState(ctx context.Context, what string, f func(ProcessState) bool) (ProcessState, error) {
	for {
		p.mu.Lock()
		changed := p.changed
		p.mu.Unlock()
		s := p.State()
		if f(s) {
			return s, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return s, fmt.Errorf("conformance: member process %d: waiting for %s (state %+v): %w", p.Pid(), what, s, ctx.Err())
		}
	}
}

// WaitReady waits until the child's Client is ready and returns its role.
// It fails if the child's term fails to become ready, if the child
// exits, or if ctx ends first.
func (p *Process) WaitReady(ctx context.Context) (cluster.Role, error) {
	s, err := p.WaitState(ctx, "ready", func(s ProcessState) bool { return s.Ready || s.ReadyErr != "" || s.Exited })
	switch {
	case err != nil:
		return cluster.RoleNone, err
	case s.Exited:
		return cluster.RoleNone, fmt.Errorf("conformance: member process %d exited before it was ready: %w", p.Pid(), childproc.ErrExited)
	case s.ReadyErr != "":
		return s.Role, fmt.Errorf("conformance: member process %d: not ready: %s", p.Pid(), s.ReadyErr)
	}
	return s.Role, nil
}

// do sends a command and waits for its reply.
func (p *Process) do(ctx context.Context, cmd string, req request) (reply, error) {
	c := make(chan reply, 1)
	p.mu.Lock()
	p.nextID++
	req.ID = p.nextID
	p.waiting[req.ID] = c
	p.mu.Unlock()
	drop := func() {
		p.mu.Lock()
		delete(p.waiting, req.ID)
		p.mu.Unlock()
	}
	if err := p.ch.Send(cmd, req); err != nil {
		drop()
		return reply{}, err
	}
	select {
	case r, ok := <-c:
		if !ok {
			return reply{}, fmt.Errorf("conformance: member process %d exited before answering %s: %w", p.Pid(), cmd, childproc.ErrExited)
		}
		return r, nil
	case <-ctx.Done():
		drop()
		return reply{}, fmt.Errorf("conformance: member process %d: no answer to %s: %w", p.Pid(), cmd, ctx.Err())
	}
}

// Subscribe makes the child subscribe Reg{Key: key}; the Snapshots it
// receives are reported (see WaitSnapshot).
func (p *Process) Subscribe(ctx context.Context, key string) error {
	r, err := p.do(ctx, cmdSubscribe, request{Key: key})
	if err != nil {
		return err
	}
	if r.Err != nil {
		return r.Err
	}
	return nil
}

// Publish makes the child publish Reg{Key: key, Value: value}.
func (p *Process) Publish(ctx context.Context, key, value string) error {
	r, err := p.do(ctx, cmdPublish, request{Key: key, Value: value})
	if err != nil {
		return err
	}
	if r.Err != nil {
		return r.Err
	}
	return nil
}

// Invoke makes the child invoke method with args (each encoded as JSON)
// and returns the result's JSON. An error of the child's call is a
// *CallError; other errors mean the child did not answer.
func (p *Process) Invoke(ctx context.Context, method string, args ...any) (json.RawMessage, error) {
	req := request{Method: method}
	for _, a := range args {
		b, err := json.Marshal(a)
		if err != nil {
			return nil, fmt.Errorf("conformance: invoke %s: encode argument: %w", method, err)
		}
		req.Args = append(req.Args, b)
	}
	r, err := p.do(ctx, cmdInvoke, req)
	if err != nil {
		return nil, err
	}
	if r.Err != nil {
		return nil, r.Err
	}
	return r.Result, nil
}

// Snapshots returns the Snapshots of key the child received so far.
func (p *Process) Snapshots(key string) []Snapshot { return p.snaps.all(key) }

// WaitSnapshot waits until the child received a Snapshot of key that f
// accepts, and returns it.
func (p *Process) WaitSnapshot(ctx context.Context, key string, f func(Snapshot) bool) (Snapshot, error) {
	snap, ok := p.snaps.wait(ctx, key, f)
	if !ok {
		return snap, fmt.Errorf("conformance: member process %d: no matching Snapshot of %q (received %v): %w",
			p.Pid(), key, p.snaps.all(key), ctx.Err())
	}
	return snap, nil
}

// Close makes the child end its held calls, close its Client and exit,
// and waits until it did.
func (p *Process) Close(ctx context.Context) error {
	r, err := p.do(ctx, cmdClose, request{})
	if err != nil {
		return err
	}
	if r.Err != nil {
		return r.Err
	}
	select {
	case <-p.done: // the child exited and State says so
		return nil
	case <-ctx.Done():
		return fmt.Errorf("conformance: member process %d closed but did not exit: %w", p.Pid(), ctx.Err())
	}
}

// startProcess starts a member process that the watchdog can kill.
func (e *env) startProcess(cfg ProcessConfig) *Process {
	e.t.Helper()
	e.stepf("starting a member process of %q", cfg.Channel)
	p := StartProcess(e.t, *e.h, cfg)
	e.OnTeardown(func() { p.Kill() })
	return p
}
