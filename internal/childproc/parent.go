package childproc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// FatalEvent is the event Fatalf emits; Next and Expect turn it into an
// error carrying its message.
const FatalEvent = "fatal"

// Fatalf reports a failure of the child mode to the parent (as FatalEvent)
// and exits with status 1.
func Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintln(os.Stderr, msg)
	Emit(FatalEvent, msg)
	os.Exit(1)
}

// stderrTail is how much of a child's stderr is kept for error messages.
const stderrTail = 16 << 10

// pipeGrace is how long stop waits, once the child is reaped, for its
// stdout and stderr to reach EOF.
var pipeGrace = 5 * time.Second

// Child is a running child process started by Start.
//
// Concurrency: Send, Kill, Pid, Exited and Stderr are safe for concurrent
// use. Next and Expect consume one shared event queue, so call them from
// one goroutine at a time.
type Child struct {
	logf func(format string, args ...any)
	mode string
	cmd  *exec.Cmd

	sendMu sync.Mutex
	stdin  *os.File // write end of the child's stdin
	stdout *os.File // read end of the child's stdout

	mu     sync.Mutex
	events []Event
	eof    bool          // stdout reached EOF
	notify chan struct{} // one token: events or eof changed

	exited  chan struct{} // closed once the child is reaped
	waitErr error         // cmd.Wait's result, set before exited closes
	stderr  tailBuffer
	readers sync.WaitGroup
}

// Start runs the current test binary as a child process in the given
// mode, with args for the mode's function (see Main). It fails tb if the
// process cannot start. The child is killed (SIGKILL) and reaped by
// tb.Cleanup.
func Start(tb testing.TB, mode string, args ...string) *Child {
	tb.Helper()
	c, err := start(tb.Logf, mode, args)
	if err != nil {
		tb.Fatalf("childproc: start mode %q: %v", mode, err)
	}
	tb.Cleanup(func() {
		if err := c.stop(); err != nil {
			tb.Error(err)
		}
		if tb.Failed() {
			if s := c.Stderr(); s != "" {
				tb.Logf("childproc: child %d (%s) stderr:\n%s", c.Pid(), c.mode, s)
			}
		}
	})
	return c
}

// start starts a child; logf receives stdout lines that are not events.
func start(logf func(string, ...any), mode string, args []string) (*Child, error) {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	rawArgs, err := json.Marshal(args)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-test.run=^$", "-test.count=1")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, EnvMode+"=") && !strings.HasPrefix(kv, EnvArgs+"=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, EnvMode+"="+mode, EnvArgs+"="+string(rawArgs))
	setParentDeathSignal(cmd)

	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		stdinR.Close()
		stdinW.Close()
		return nil, err
	}
	c := &Child{
		logf:   logf,
		mode:   mode,
		cmd:    cmd,
		stdin:  stdinW,
		stdout: stdoutR,
		notify: make(chan struct{}, 1),
		exited: make(chan struct{}),
	}
	cmd.Stdin = stdinR
	cmd.Stdout = stdoutW
	cmd.Stderr = &c.stderr
	// Should the child pass its stderr to a process that outlives it, do
	// not wait for that one.
	cmd.WaitDelay = pipeGrace
	err = cmd.Start()
	// The child has its own copies now (or never will).
	stdinR.Close()
	stdoutW.Close()
	if err != nil {
		stdinW.Close()
		stdoutR.Close()
		return nil, err
	}
	c.readers.Add(2)
	go c.readEvents()
	go func() {
		defer c.readers.Done()
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

func (c *Child) readEvents() {
	defer c.readers.Done()
	sc := bufio.NewScanner(c.stdout)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var ev Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev.Name == "" {
			c.logf("childproc: child %d (%s) stdout: %s", c.Pid(), c.mode, sc.Text())
			continue
		}
		c.mu.Lock()
		c.events = append(c.events, ev)
		c.mu.Unlock()
		poke(c.notify)
	}
	c.mu.Lock()
	c.eof = true
	c.mu.Unlock()
	poke(c.notify)
}

// stop kills and reaps the child and waits for the goroutines reading it.
func (c *Child) stop() error {
	c.Kill()
	c.CloseStdin()
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		// SIGKILL cannot be ignored; only an unkillable (D-state) process
		// gets here. Report it rather than hang the test binary.
		return fmt.Errorf("childproc: child %d (%s) not reaped 30s after SIGKILL", c.Pid(), c.mode)
	}
	read := make(chan struct{})
	go func() {
		c.readers.Wait()
		close(read)
	}()
	select {
	case <-read:
	case <-time.After(pipeGrace):
		// A process the child started still holds its stdout open.
	}
	c.stdout.Close() // unblocks readEvents if it is still reading
	<-read
	return nil
}

// CloseStdin closes the child's stdin; the child side exits with
// ExitParentGone when it sees the EOF. Later Sends fail.
func (c *Child) CloseStdin() {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	c.stdin.Close()
}

// Pid returns the child's process id.
func (c *Child) Pid() int { return c.cmd.Process.Pid }

// Mode returns the mode the child runs.
func (c *Child) Mode() string { return c.mode }

// Send writes an event to the child's stdin, for Receive.
func (c *Child) Send(name string, data any) error {
	line, err := encodeEvent(name, data)
	if err != nil {
		return err
	}
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if _, err := c.stdin.Write(line); err != nil {
		return fmt.Errorf("childproc: send %q to child %d (%s): %w", name, c.Pid(), c.mode, err)
	}
	return nil
}

// Next returns the child's next event, waiting for it until ctx is done.
// A FatalEvent becomes an error with the child's message. If the child
// exits first, the error matches ErrExited.
func (c *Child) Next(ctx context.Context) (Event, error) {
	for {
		c.mu.Lock()
		if len(c.events) > 0 {
			ev := c.events[0]
			c.events = c.events[1:]
			c.mu.Unlock()
			if ev.Name == FatalEvent {
				var msg string
				_ = json.Unmarshal(ev.Data, &msg)
				return ev, fmt.Errorf("childproc: child %d (%s) failed: %s", c.Pid(), c.mode, msg)
			}
			return ev, nil
		}
		eof := c.eof
		c.mu.Unlock()
		if eof {
			select {
			case <-c.exited:
				return Event{}, c.exitError()
			case <-ctx.Done():
				return Event{}, fmt.Errorf("childproc: child %d (%s) closed stdout but was not reaped: %w", c.Pid(), c.mode, ctx.Err())
			}
		}
		select {
		case <-c.notify:
		case <-ctx.Done():
			return Event{}, fmt.Errorf("childproc: child %d (%s): waiting for an event: %w", c.Pid(), c.mode, ctx.Err())
		}
	}
}

// Expect returns the next event named name, waiting until ctx is done.
// Events with other names that come first are logged and dropped.
func (c *Child) Expect(ctx context.Context, name string) (Event, error) {
	for {
		ev, err := c.Next(ctx)
		if err != nil {
			return ev, fmt.Errorf("expecting %q: %w", name, err)
		}
		if ev.Name == name {
			return ev, nil
		}
		c.logf("childproc: child %d (%s): dropped event %q while expecting %q", c.Pid(), c.mode, ev.Name, name)
	}
}

func (c *Child) exitError() error {
	err := fmt.Errorf("%w: pid %d (%s): %v", ErrExited, c.Pid(), c.mode, c.waitErr)
	if c.waitErr == nil {
		err = fmt.Errorf("%w: pid %d (%s): exit status 0", ErrExited, c.Pid(), c.mode)
	}
	if s := c.Stderr(); s != "" {
		err = fmt.Errorf("%w; stderr:\n%s", err, s)
	}
	return err
}

// Kill sends SIGKILL to the child (TerminateProcess on Windows) without
// waiting for it to die. Killing an exited child is not an error.
func (c *Child) Kill() error {
	err := c.cmd.Process.Kill()
	if errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("childproc: kill child %d (%s): %w", c.Pid(), c.mode, err)
	}
	return nil
}

// Exited returns a channel closed once the child has exited and been reaped.
func (c *Child) Exited() <-chan struct{} { return c.exited }

// Wait waits until the child has exited or ctx is done, and returns the
// child's exit status (nil for a zero exit, an *exec.ExitError otherwise).
func (c *Child) Wait(ctx context.Context) error {
	select {
	case <-c.exited:
		return c.waitErr
	case <-ctx.Done():
		return fmt.Errorf("childproc: waiting for child %d (%s) to exit: %w", c.Pid(), c.mode, ctx.Err())
	}
}

// Stderr returns the end of what the child wrote to stderr so far.
func (c *Child) Stderr() string { return c.stderr.String() }

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
	return string(b.buf)
}

func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
