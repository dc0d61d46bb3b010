package clusterbench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sync"
	"time"

	"github.com/go-clusterclient/clusterclient/internal/childproc"
)

// The line protocol between the parent and its children (Go and Node
// alike) is internal/childproc's: one JSON event per line,
// {"event":name,"data":...}. The parent writes one request per line on the
// child's stdin, an event named after the command; the child answers
// each, in order, with one reply on its stdout: {"event":"ok","data":...}
// or {"event":"error","data":"message"}. Right after it starts, a child
// writes one reply for its setup (listening, dialed, elected, ...). A
// child exits when its stdin reaches EOF, which is also what happens when
// the parent dies; on Linux the kernel SIGKILLs it as well (Pdeathsig).
// Children write nothing else on stdout (other lines are logged, not
// parsed); stderr is free text, kept for error messages.

// Environment of a Go child: its role and the role's JSON arguments.
const (
	envRole = "CLUSTERBENCH_ROLE"
	envArgs = "CLUSTERBENCH_ARGS"
)

// Names of the reply events.
const (
	replyOK    = "ok"
	replyError = "error"
)

// ErrChildFailed matches every error reply of a child, and a child that
// exited while the parent waited for a reply.
var ErrChildFailed = errors.New("clusterbench: child process failed")

// maxLine bounds one reply line (raw latency samples travel in them).
const maxLine = 256 << 20

// proc is a running child process; Send, Pid, Kill and Stop are
// childproc.Child's.
//
// Concurrency: send and recv may run concurrently with each other and with
// Kill and Stop, but recv must not be called from two goroutines at once
// (replies come in order).
type proc struct {
	*childproc.Child
	name string // for messages: "tcp leader", "node follower 3", ...
}

// procSet owns every child of a run so that none outlives it.
//
// Concurrency: safe for concurrent use.
type procSet struct {
	// logf, when set, receives the lines children write on stdout that
	// are not events; it is called from the goroutines reading them.
	logf func(format string, args ...any)

	mu     sync.Mutex
	all    []*proc
	closed bool
}

// goChild starts this executable again in role with args, and waits
// (bounded by ctx) for its setup reply, decoded into ready when not nil.
func (s *procSet) goChild(ctx context.Context, name, role string, args, ready any) (*proc, error) {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	raw, err := json.Marshal(args)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(childEnv(), envRole+"="+role, envArgs+"="+string(raw))
	return s.start(ctx, name, cmd, ready)
}

// childEnv is the parent's environment without the child variables.
func childEnv() []string { return childproc.EnvWithout(envRole, envArgs) }

// start starts cmd as a child speaking the line protocol and waits for its
// setup reply.
func (s *procSet) start(ctx context.Context, name string, cmd *exec.Cmd, ready any) (*proc, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, fmt.Errorf("start %s: %w", name, context.Canceled)
	}
	c, err := childproc.StartCmd(cmd, childproc.Options{Name: name, Logf: s.logf, MaxLine: maxLine})
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	p := &proc{Child: c, name: name}
	s.all = append(s.all, p)
	s.mu.Unlock()

	if err := p.recv(ctx, ready); err != nil {
		s.stopAll(p)
		return nil, err
	}
	return p, nil
}

// recv waits for the next reply and decodes its data into out (unless out
// is nil). An error reply, or the child's exit, matches ErrChildFailed.
func (p *proc) recv(ctx context.Context, out any) error {
	ev, err := p.Next(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: waiting for a reply: %w", p.name, err)
		}
		return fmt.Errorf("%w: %w", ErrChildFailed, err)
	}
	switch ev.Name {
	case replyOK:
		if out == nil {
			return nil
		}
		if err := ev.Decode(out); err != nil {
			return fmt.Errorf("%w: %s (pid %d): %w", ErrChildFailed, p.name, p.Pid(), err)
		}
		return nil
	case replyError:
		var msg string
		if err := ev.Decode(&msg); err != nil {
			return fmt.Errorf("%w: %s (pid %d): %w", ErrChildFailed, p.name, p.Pid(), err)
		}
		return fmt.Errorf("%w: %s (pid %d): %s", ErrChildFailed, p.name, p.Pid(), msg)
	default:
		return fmt.Errorf("%w: %s (pid %d): unexpected reply %q", ErrChildFailed, p.name, p.Pid(), ev.Name)
	}
}

// call sends a request and waits for its reply.
func (p *proc) call(ctx context.Context, cmd string, data, out any) error {
	if err := p.Send(cmd, data); err != nil {
		return err
	}
	if err := p.recv(ctx, out); err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	return nil
}

// wait waits until the child is reaped or ctx ends.
func (p *proc) wait(ctx context.Context) error {
	select {
	case <-p.Exited():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s (pid %d): not reaped: %w", p.name, p.Pid(), ctx.Err())
	}
}

// stopGrace is how long a child has to exit by itself once its stdin is
// closed, before stopAll kills it.
const stopGrace = 2 * time.Second

// stopAll stops the given children in parallel and forgets them.
func (s *procSet) stopAll(ps ...*proc) {
	var wg sync.WaitGroup
	for _, p := range ps {
		if p == nil {
			continue
		}
		wg.Go(func() { p.Stop(stopGrace) })
	}
	wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.all = slices.DeleteFunc(s.all, func(q *proc) bool {
		select {
		case <-q.Exited():
			return true
		default:
			return false
		}
	})
}

// close kills and reaps every child still running; later starts fail.
func (s *procSet) close() {
	s.mu.Lock()
	s.closed = true
	all := s.all
	s.all = nil
	s.mu.Unlock()
	for _, p := range all {
		p.Kill()
	}
	for _, p := range all {
		p.Stop(0)
	}
}
