package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"
)

// The line protocol between the parent and its children (Go and Node
// alike): the parent writes one request per line on the child's stdin,
// {"cmd":name,"data":...}, and the child answers each, in order, with one
// reply line on its stdout, {"ok":true,"data":...} or
// {"ok":false,"error":"..."}. Right after it starts, a child writes one
// reply for its setup (listening, dialed, elected, ...). A child exits when
// its stdin reaches EOF, which is also what happens when the parent dies;
// on Linux the kernel SIGKILLs it as well (Pdeathsig). Children write
// nothing else on stdout; stderr is free text, kept for error messages.

// Environment of a Go child: its role and the role's JSON arguments.
const (
	envRole = "CLUSTERBENCH_ROLE"
	envArgs = "CLUSTERBENCH_ARGS"
)

// ErrChildFailed matches every error reply of a child, and a child that
// exited while the parent waited for a reply.
var ErrChildFailed = errors.New("clusterbench: child process failed")

type request struct {
	Cmd  string `json:"cmd"`
	Data any    `json:"data,omitempty"`
}

type reply struct {
	OK    bool            `json:"ok"`
	Error string          `json:"error,omitempty"`
	Data  json.RawMessage `json:"data,omitempty"`
}

// maxLine bounds one reply line (raw latency samples travel in them).
const maxLine = 256 << 20

// stderrTail is how much of a child's stderr is kept for error messages.
const stderrTail = 8 << 10

// proc is a running child process.
//
// Concurrency: send and recv may run concurrently with each other and with
// kill and stop, but recv must not be called from two goroutines at once
// (replies come in order).
type proc struct {
	name string // for messages: "tcp leader", "node follower 3", ...
	cmd  *exec.Cmd

	sendMu sync.Mutex
	stdin  io.WriteCloser

	replies chan []byte   // reply lines, closed at stdout EOF
	exited  chan struct{} // closed once the child is reaped
	waitErr error         // set before exited closes
	stderr  tailBuffer
}

// procSet owns every child of a run so that none outlives it.
//
// Concurrency: safe for concurrent use.
type procSet struct {
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
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envRole+"=") && !strings.HasPrefix(kv, envArgs+"=") {
			env = append(env, kv)
		}
	}
	return env
}

// start starts cmd as a child speaking the line protocol and waits for its
// setup reply.
func (s *procSet) start(ctx context.Context, name string, cmd *exec.Cmd, ready any) (*proc, error) {
	p := &proc{
		name:    name,
		cmd:     cmd,
		replies: make(chan []byte, 16),
		exited:  make(chan struct{}),
	}
	setParentDeathSignal(cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = &p.stderr
	p.stdin = stdin

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, fmt.Errorf("start %s: %w", name, context.Canceled)
	}
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	s.all = append(s.all, p)
	s.mu.Unlock()

	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		defer close(p.replies)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), maxLine)
		for sc.Scan() {
			p.replies <- append([]byte(nil), sc.Bytes()...)
		}
	}()
	go func() {
		<-readDone // Wait closes stdout: read it to the end first
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	if err := p.recv(ctx, ready); err != nil {
		s.stopAll(p)
		return nil, err
	}
	return p, nil
}

// pid returns the child's process id.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// send writes a request without waiting for its reply.
func (p *proc) send(cmd string, data any) error {
	line, err := json.Marshal(request{Cmd: cmd, Data: data})
	if err != nil {
		return err
	}
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	if _, err := p.stdin.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("%s (pid %d): send %q: %w", p.name, p.pid(), cmd, err)
	}
	return nil
}

// recv waits for the next reply and decodes its data into out (unless out
// is nil). An error reply, or the child's exit, matches ErrChildFailed.
func (p *proc) recv(ctx context.Context, out any) error {
	var line []byte
	select {
	case l, ok := <-p.replies:
		if !ok {
			status := "closed its stdout"
			select {
			case <-p.exited:
				status = fmt.Sprintf("exited (%v)", p.waitErr)
			case <-time.After(5 * time.Second):
			}
			return fmt.Errorf("%w: %s (pid %d) %s; stderr: %s", ErrChildFailed, p.name, p.pid(), status, p.stderr.String())
		}
		line = l
	case <-ctx.Done():
		return fmt.Errorf("%s (pid %d): waiting for a reply: %w", p.name, p.pid(), ctx.Err())
	}
	var r reply
	if err := json.Unmarshal(line, &r); err != nil {
		return fmt.Errorf("%w: %s (pid %d) wrote %q: %v", ErrChildFailed, p.name, p.pid(), truncate(line, 200), err)
	}
	if !r.OK {
		return fmt.Errorf("%w: %s (pid %d): %s", ErrChildFailed, p.name, p.pid(), r.Error)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(r.Data, out); err != nil {
		return fmt.Errorf("%w: %s (pid %d): reply %q: %v", ErrChildFailed, p.name, p.pid(), truncate(r.Data, 200), err)
	}
	return nil
}

// call sends a request and waits for its reply.
func (p *proc) call(ctx context.Context, cmd string, data, out any) error {
	if err := p.send(cmd, data); err != nil {
		return err
	}
	if err := p.recv(ctx, out); err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	return nil
}

// kill sends SIGKILL (TerminateProcess on Windows) without waiting.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
}

// wait waits until the child is reaped or ctx ends.
func (p *proc) wait(ctx context.Context) error {
	select {
	case <-p.exited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s (pid %d): not reaped: %w", p.name, p.pid(), ctx.Err())
	}
}

// stop closes the child's stdin (its cue to exit), waits up to grace, then
// kills it, and reaps it.
func (p *proc) stop(grace time.Duration) {
	p.sendMu.Lock()
	_ = p.stdin.Close()
	p.sendMu.Unlock()
	select {
	case <-p.exited:
		return
	case <-time.After(grace):
	}
	p.kill()
	<-p.exited // SIGKILL cannot be ignored
}

// stopAll stops the given children in parallel and forgets them.
func (s *procSet) stopAll(ps ...*proc) {
	var wg sync.WaitGroup
	for _, p := range ps {
		if p == nil {
			continue
		}
		wg.Go(func() { p.stop(2 * time.Second) })
	}
	wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.all = slices.DeleteFunc(s.all, func(q *proc) bool {
		select {
		case <-q.exited:
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
		p.kill()
	}
	for _, p := range all {
		<-p.exited
	}
}

// tailBuffer keeps the last stderrTail bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - stderrTail; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimSpace(string(b.buf))
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
