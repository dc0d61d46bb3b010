package childproc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
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

// DefaultMaxLine is the default of Options.MaxLine.
const DefaultMaxLine = 16 << 20

// reapTimeout is how long Stop waits for a child to be reaped after
// SIGKILL.
const reapTimeout = 30 * time.Second

// pipeGrace is how long Stop waits, once the child is reaped, for its
// stdout and stderr to reach EOF.
var pipeGrace = 5 * time.Second

// TB is the part of testing.TB that Start uses (*testing.T, *testing.B
// and *testing.F have it). Taking this rather than testing.TB keeps the
// testing package out of programs that use StartCmd.
type TB interface {
	Helper()
	Cleanup(func())
	Error(args ...any)
	Fatalf(format string, args ...any)
	Failed() bool
	Logf(format string, args ...any)
}

// Options configure StartCmd. The zero value is ready to use.
type Options struct {
	// Name names the child in errors and log lines. Default: the base
	// name of the command's path.
	Name string
	// Logf receives the lines of the child's stdout that are not events.
	// Default: they are dropped.
	Logf func(format string, args ...any)
	// MaxLine bounds one line of the child's stdout, in bytes. A longer
	// line ends the reading: Next then fails with bufio.ErrTooLong.
	// Default: DefaultMaxLine.
	MaxLine int
}

// Child is a running child process started by Start or StartCmd.
//
// Concurrency: Send, CloseStdin, Kill, Wait, Stop, Pid, Exited and Stderr
// are safe for concurrent use. Next and Expect consume one shared event
// queue, so call them from one goroutine at a time.
type Child struct {
	logf func(format string, args ...any)
	name string
	cmd  *exec.Cmd

	sendMu sync.Mutex
	stdin  *os.File // write end of the child's stdin
	stdout *os.File // read end of the child's stdout

	mu      sync.Mutex
	events  []Event
	eof     bool          // reading stdout ended
	readErr error         // why reading ended early, if it did
	notify  chan struct{} // one token: events or eof changed

	exited  chan struct{} // closed once the child is reaped
	waitErr error         // cmd.Wait's result, set before exited closes
	stderr  tailBuffer
	readers sync.WaitGroup
}

// Start runs the current test binary as a child process in the given
// mode, with args for the mode's function (see Main). It fails tb if the
// process cannot start. The child is killed (SIGKILL) and reaped by
// tb.Cleanup.
func Start(tb TB, mode string, args ...string) *Child {
	tb.Helper()
	c, err := StartCmd(Command(mode, args...), Options{Name: mode, Logf: tb.Logf})
	if err != nil {
		tb.Fatalf("%v", err) // names the mode
	}
	tb.Cleanup(func() {
		if err := c.Stop(0); err != nil {
			tb.Error(err)
		}
		if tb.Failed() {
			if s := c.Stderr(); s != "" {
				tb.Logf("childproc: child %d (%s) stderr:\n%s", c.Pid(), c.name, s)
			}
		}
	})
	return c
}

// Command returns the command Start runs: the current executable again,
// told to run no test, with the mode and its arguments in its environment
// (EnvMode, EnvArgs) for Main.
func Command(mode string, args ...string) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	rawArgs, _ := json.Marshal(args) // a []string always marshals
	cmd := exec.Command(exe, "-test.run=^$", "-test.count=1")
	cmd.Env = append(EnvWithout(EnvMode, EnvArgs), EnvMode+"="+mode, EnvArgs+"="+string(rawArgs))
	return cmd
}

// EnvWithout returns this process's environment without the variables
// named, for a child that must not inherit them.
func EnvWithout(names ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(names, name) {
			env = append(env, kv)
		}
	}
	return env
}

// StartCmd starts cmd as a child process that speaks events (see the
// package doc) on its stdin and stdout; it need not be a Go program. It
// sets cmd's Stdin, Stdout and Stderr, keeps the end of the child's
// stderr for Stderr and error messages, and on Linux has the kernel
// SIGKILL the child when this process dies. The caller must end the
// child with Stop.
func StartCmd(cmd *exec.Cmd, opts Options) (*Child, error) {
	if opts.Name == "" {
		opts.Name = filepath.Base(cmd.Path)
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if opts.MaxLine <= 0 {
		opts.MaxLine = DefaultMaxLine
	}
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
		logf:   opts.Logf,
		name:   opts.Name,
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
		return nil, fmt.Errorf("childproc: start %s: %w", opts.Name, err)
	}
	c.readers.Add(2)
	go c.readEvents(opts.MaxLine)
	go func() {
		defer c.readers.Done()
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

func (c *Child) readEvents(maxLine int) {
	defer c.readers.Done()
	sc := bufio.NewScanner(c.stdout)
	sc.Buffer(make([]byte, 0, min(64<<10, maxLine)), maxLine)
	for sc.Scan() {
		var ev Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev.Name == "" {
			c.logf("childproc: child %d (%s) stdout: %s", c.Pid(), c.name, sc.Text())
			continue
		}
		c.mu.Lock()
		c.events = append(c.events, ev)
		c.mu.Unlock()
		poke(c.notify)
	}
	c.mu.Lock()
	c.eof = true
	c.readErr = sc.Err()
	c.mu.Unlock()
	poke(c.notify)
}

// Stop ends the child: it closes the child's stdin, gives the child up
// to grace to exit by itself, then kills it (SIGKILL) and reaps it, and
// waits (up to a few seconds) for the reading of its stdout to end. It
// fails only if the child is not reaped 30 s after SIGKILL. Stopping a
// stopped child does nothing.
func (c *Child) Stop(grace time.Duration) error {
	c.CloseStdin()
	if grace > 0 {
		select {
		case <-c.exited:
		case <-time.After(grace):
		}
	}
	c.Kill()
	select {
	case <-c.exited:
	case <-time.After(reapTimeout):
		// SIGKILL cannot be ignored; only an unkillable (D-state) process
		// gets here. Report it rather than hang.
		return fmt.Errorf("childproc: child %d (%s) not reaped %v after SIGKILL", c.Pid(), c.name, reapTimeout)
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

// Mode returns the child's name in messages: its mode when Start started
// it, Options.Name when StartCmd did.
func (c *Child) Mode() string { return c.name }

// Send writes an event to the child's stdin, for Receive.
func (c *Child) Send(name string, data any) error {
	line, err := encodeEvent(name, data)
	if err != nil {
		return err
	}
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if _, err := c.stdin.Write(line); err != nil {
		return fmt.Errorf("childproc: send %q to child %d (%s): %w", name, c.Pid(), c.name, err)
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
				return ev, fmt.Errorf("childproc: child %d (%s) failed: %s", c.Pid(), c.name, msg)
			}
			return ev, nil
		}
		eof, readErr := c.eof, c.readErr
		c.mu.Unlock()
		if readErr != nil {
			return Event{}, fmt.Errorf("childproc: child %d (%s): reading its stdout: %w", c.Pid(), c.name, readErr)
		}
		if eof {
			select {
			case <-c.exited:
				return Event{}, c.exitError()
			case <-ctx.Done():
				return Event{}, fmt.Errorf("childproc: child %d (%s) closed stdout but was not reaped: %w", c.Pid(), c.name, ctx.Err())
			}
		}
		select {
		case <-c.notify:
		case <-ctx.Done():
			return Event{}, fmt.Errorf("childproc: child %d (%s): waiting for an event: %w", c.Pid(), c.name, ctx.Err())
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
		c.logf("childproc: child %d (%s): dropped event %q while expecting %q", c.Pid(), c.name, ev.Name, name)
	}
}

func (c *Child) exitError() error {
	err := fmt.Errorf("%w: pid %d (%s): %v", ErrExited, c.Pid(), c.name, c.waitErr)
	if c.waitErr == nil {
		err = fmt.Errorf("%w: pid %d (%s): exit status 0", ErrExited, c.Pid(), c.name)
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
		return fmt.Errorf("childproc: kill child %d (%s): %w", c.Pid(), c.name, err)
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
		return fmt.Errorf("childproc: waiting for child %d (%s) to exit: %w", c.Pid(), c.name, ctx.Err())
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
