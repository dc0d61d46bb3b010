// Package childproc runs the current test binary again as a child process,
// so tests can exercise what only separate processes show: exclusive binds,
// SIGKILL, sockets left behind.
//
// # Model
//
// A test package opts in from its TestMain, before m.Run:
//
//	func TestMain(m *testing.M) {
//		childproc.Main(map[string]func(args []string) int{
//			"hold": holdMode,
//		})
//		goleak.VerifyTestMain(m)
//	}
//
// In the parent, Main returns at once. A test calls Start(t, "hold", args...),
// which re-executes os.Args[0] with the mode and arguments in the
// environment; in that child, Main runs the mode's function and exits with
// its result, so the child never runs the tests. (Should a package forget
// to call Main, the child gets -test.run=^$ and runs no test.)
//
// A program that is not a test starts its children with StartCmd, which
// runs any command (this executable again, or another program such as
// node) that speaks the same events, and ends them with Child.Stop.
//
// The two sides talk in line-based JSON events, {"event":name,"data":...}:
// the child writes them to stdout with Emit, the parent reads them with
// Next or Expect; the parent writes them to the child's stdin with Send and
// the child reads them with Receive. Anything else the child prints on
// stdout is logged by the parent, not parsed; stderr is kept (the last
// 16 KiB) for error messages.
//
// # Lifetime
//
// A child never outlives its test: t.Cleanup kills it with SIGKILL and reaps
// it (StartCmd's caller does the same with Stop); on Linux it also gets SIGKILL from the kernel when the parent dies
// (Pdeathsig), and on every OS it exits when its stdin reaches EOF, which
// happens when the parent dies.
package childproc

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// Environment variables that carry the mode and its arguments to a child.
const (
	EnvMode = "CLUSTERCLIENT_CHILDPROC_MODE"
	EnvArgs = "CLUSTERCLIENT_CHILDPROC_ARGS"
)

// Exit codes used by the child side.
const (
	// ExitUnknownMode: the mode named in EnvMode is not in Main's map, or
	// EnvArgs is malformed.
	ExitUnknownMode = 120
	// ExitParentGone: stdin reached EOF, so the parent is gone.
	ExitParentGone = 121
)

// Event is one line of the event stream, in either direction.
type Event struct {
	Name string          `json:"event"`
	Data json.RawMessage `json:"data,omitempty"`
}

// Decode unmarshals the event's data into v.
func (e Event) Decode(v any) error {
	if len(e.Data) == 0 {
		return fmt.Errorf("childproc: event %q has no data", e.Name)
	}
	if err := json.Unmarshal(e.Data, v); err != nil {
		return fmt.Errorf("childproc: event %q: %w", e.Name, err)
	}
	return nil
}

func encodeEvent(name string, data any) ([]byte, error) {
	ev := Event{Name: name}
	if data != nil {
		raw, err := json.Marshal(data)
		if err != nil {
			return nil, fmt.Errorf("childproc: encode event %q: %w", name, err)
		}
		ev.Data = raw
	}
	line, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("childproc: encode event %q: %w", name, err)
	}
	return append(line, '\n'), nil
}

// child-side state
var (
	emitMu   sync.Mutex
	received = make(chan Event, 64)
)

// Main runs the child side if this process was started by Start: it calls
// the function of the mode named by the parent with the parent's
// arguments and exits with its result. In the parent (the ordinary test
// run) Main returns at once. Call it first thing in TestMain.
//
// While the mode runs, a goroutine reads the parent's events from stdin
// for Receive and exits the process with ExitParentGone when stdin ends.
func Main(modes map[string]func(args []string) int) {
	mode := os.Getenv(EnvMode)
	if mode == "" {
		return
	}
	fn, ok := modes[mode]
	if !ok {
		fmt.Fprintf(os.Stderr, "childproc: unknown mode %q\n", mode)
		os.Exit(ExitUnknownMode)
	}
	var args []string
	if raw := os.Getenv(EnvArgs); raw != "" {
		if err := json.Unmarshal([]byte(raw), &args); err != nil {
			fmt.Fprintf(os.Stderr, "childproc: mode %q: bad %s: %v\n", mode, EnvArgs, err)
			os.Exit(ExitUnknownMode)
		}
	}
	go readParent(os.Stdin)
	os.Exit(fn(args))
}

// readParent feeds Receive and exits the process when the parent is gone.
func readParent(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var ev Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			fmt.Fprintf(os.Stderr, "childproc: bad event from parent %q: %v\n", sc.Text(), err)
			continue
		}
		received <- ev
	}
	os.Exit(ExitParentGone)
}

// Emit writes an event for the parent to stdout. data is marshalled as
// JSON; nil means no data. It is safe for concurrent use. A failure to
// write means the parent is gone, so the process exits.
func Emit(name string, data any) {
	line, err := encodeEvent(name, data)
	if err != nil {
		panic(err) // a programming error in the child mode
	}
	emitMu.Lock()
	defer emitMu.Unlock()
	if _, err := os.Stdout.Write(line); err != nil {
		os.Exit(ExitParentGone)
	}
}

// Receive returns the next event the parent sent with Child.Send, waiting
// for one. (When the parent goes away the process exits instead.)
func Receive() Event { return <-received }

// ErrExited is returned (wrapped) by Child.Next and Child.Expect when the
// child exited before the awaited event; the error also carries its exit
// status and the end of its stderr.
var ErrExited = errors.New("childproc: child exited")
