package transporttest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/internal/childproc"
	"github.com/go-clusterclient/clusterclient/transport"
)

// ChildFactory builds, in a child process, the transport that the
// harness of the given Kind builds in the test process.
type ChildFactory func(kind string) (transport.Transport, error)

// contenderMode is the childproc mode of contender processes.
const contenderMode = "transporttest.contender"

// MaybeRunChild runs the kit's child side and exits if this process is one
// of the kit's child processes; otherwise it returns at once. Call it
// first in TestMain. It is childproc.Main(ChildModes(f)).
func MaybeRunChild(f ChildFactory) { childproc.Main(ChildModes(f)) }

// ChildModes returns the kit's childproc modes, for a package that adds
// modes of its own and calls childproc.Main itself.
func ChildModes(f ChildFactory) map[string]func(args []string) int {
	return map[string]func(args []string) int{
		contenderMode: func(args []string) int { return runContender(f, args) },
	}
}

// ListenResult is the outcome of a contender's Listen.
type ListenResult struct {
	OK        bool   // Listen succeeded; the contender holds the address
	AddrInUse bool   // the error matched transport.ErrAddrInUse
	Err       string // the error's text, if any
}

// DialResult is the outcome of a contender's Dial.
type DialResult struct {
	OK         bool   // Dial succeeded; the contender keeps the conn open
	NoListener bool   // the error matched transport.ErrNoListener
	Err        string // the error's text, if any
}

// listenCmd is the data of a listen command.
type listenCmd struct {
	Addr string
	At   int64 // wall clock (Unix ns) at which to call Listen; 0: at once
}

// commands a contender obeys
const (
	cmdListen = "listen" // data: listenCmd; answer: "listen" ListenResult
	cmdClose  = "close"  // close the listener and dialed conns; answer: "closed" error text
	cmdDial   = "dial"   // data: address; answer: "dial" DialResult
)

// childOpTimeout bounds one Listen or Dial in a contender.
const childOpTimeout = 10 * time.Second

// runContender is the child side: build the transport, then obey commands.
// Its listener echoes what every accepted conn sends.
func runContender(f ChildFactory, args []string) int {
	if len(args) != 1 {
		childproc.Fatalf("transporttest: contender wants [kind], got %q", args)
	}
	tr, err := f(args[0])
	if err != nil {
		childproc.Fatalf("transporttest: contender: build transport of kind %q: %v", args[0], err)
	}
	var (
		l       net.Listener
		serving sync.WaitGroup
		dialed  []net.Conn
	)
	childproc.Emit("ready", os.Getpid())
	for {
		ev := childproc.Receive()
		switch ev.Name {
		case cmdListen:
			var cmd listenCmd
			if err := ev.Decode(&cmd); err != nil {
				childproc.Fatalf("transporttest: contender: %v", err)
			}
			if l != nil {
				childproc.Fatalf("transporttest: contender: listen %q while holding %q", cmd.Addr, l.Addr())
			}
			if cmd.At != 0 {
				time.Sleep(time.Until(time.Unix(0, cmd.At)))
			}
			ctx, cancel := context.WithTimeout(context.Background(), childOpTimeout)
			var err error
			l, err = tr.Listen(ctx, cmd.Addr)
			cancel()
			res := ListenResult{OK: err == nil, AddrInUse: errors.Is(err, transport.ErrAddrInUse)}
			if err != nil {
				res.Err = err.Error()
			} else {
				serving.Add(1)
				go func(l net.Listener) {
					defer serving.Done()
					serveEcho(l)
				}(l)
			}
			childproc.Emit(cmdListen, res)
		case cmdDial:
			var addr string
			if err := ev.Decode(&addr); err != nil {
				childproc.Fatalf("transporttest: contender: %v", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), childOpTimeout)
			c, err := tr.Dial(ctx, addr)
			cancel()
			res := DialResult{OK: err == nil, NoListener: errors.Is(err, transport.ErrNoListener)}
			if err != nil {
				res.Err = err.Error()
			} else {
				dialed = append(dialed, c)
			}
			childproc.Emit(cmdDial, res)
		case cmdClose:
			var errText string
			if l != nil {
				if err := l.Close(); err != nil {
					errText = err.Error()
				}
				serving.Wait()
				l = nil
			}
			for _, c := range dialed {
				c.Close()
			}
			dialed = nil
			childproc.Emit("closed", errText)
		default:
			childproc.Fatalf("transporttest: contender: unknown command %q", ev.Name)
		}
	}
}

// serveEcho accepts until l closes and echoes every conn.
func serveEcho(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			io.Copy(c, c)
		}()
	}
}

// Contender is a child process that listens, dials or closes on command,
// using the transport the package's ChildFactory builds.
//
// Concurrency: a Contender's methods must not be called concurrently with
// each other (its answers arrive in order on one stream), except Kill and
// Pid.
type Contender struct {
	child *childproc.Child
}

// StartContender starts a contender for h's transport and waits until it is
// ready. It fails tb if the contender cannot start. tb.Cleanup kills it.
func StartContender(tb testing.TB, h Harness) *Contender {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := &Contender{child: childproc.Start(tb, contenderMode, h.Kind)}
	if _, err := c.child.Expect(ctx, "ready"); err != nil {
		tb.Fatalf("transporttest: contender did not start: %v", err)
	}
	return c
}

// StartContenders starts n contenders at once and waits until all are
// ready.
func StartContenders(tb testing.TB, h Harness, n int) []*Contender {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cs := make([]*Contender, n)
	for i := range cs {
		cs[i] = &Contender{child: childproc.Start(tb, contenderMode, h.Kind)}
	}
	for i, c := range cs {
		if _, err := c.child.Expect(ctx, "ready"); err != nil {
			tb.Fatalf("transporttest: contender %d of %d did not start: %v", i+1, n, err)
		}
	}
	return cs
}

// Pid returns the contender's process id.
func (c *Contender) Pid() int { return c.child.Pid() }

// Kill sends SIGKILL to the contender without waiting for it to die.
func (c *Contender) Kill() error { return c.child.Kill() }

// Wait waits until the contender has exited (for whatever reason) and been
// reaped; it fails only if ctx ends first.
func (c *Contender) Wait(ctx context.Context) error {
	select {
	case <-c.child.Exited():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("transporttest: contender %d still running: %w", c.Pid(), ctx.Err())
	}
}

func (c *Contender) send(name string, data any) error { return c.child.Send(name, data) }

func (c *Contender) answer(ctx context.Context, name string, v any) error {
	ev, err := c.child.Expect(ctx, name)
	if err != nil {
		return fmt.Errorf("transporttest: contender %d: %w", c.Pid(), err)
	}
	return ev.Decode(v)
}

// Listen makes the contender Listen on addr; on success it accepts and
// echoes conns until Close.
func (c *Contender) Listen(ctx context.Context, addr string) (ListenResult, error) {
	var res ListenResult
	if err := c.send(cmdListen, listenCmd{Addr: addr}); err != nil {
		return res, err
	}
	err := c.answer(ctx, cmdListen, &res)
	return res, err
}

// Dial makes the contender Dial addr and keep the conn open until Close.
func (c *Contender) Dial(ctx context.Context, addr string) (DialResult, error) {
	var res DialResult
	if err := c.send(cmdDial, addr); err != nil {
		return res, err
	}
	err := c.answer(ctx, cmdDial, &res)
	return res, err
}

// Close makes the contender close its listener (if any) and the conns it
// dialed.
func (c *Contender) Close(ctx context.Context) error {
	if err := c.send(cmdClose, nil); err != nil {
		return err
	}
	var errText string
	if err := c.answer(ctx, "closed", &errText); err != nil {
		return err
	}
	if errText != "" {
		return fmt.Errorf("transporttest: contender %d: close: %s", c.Pid(), errText)
	}
	return nil
}

// competeDelay is how far ahead Compete schedules the Listens, so every
// contender has its command before the moment comes.
const competeDelay = 20 * time.Millisecond

// Compete makes every contender Listen on addr at the same moment (a wall
// clock time a little ahead, sent with the command) and returns their
// results, in the order of cs.
func Compete(ctx context.Context, cs []*Contender, addr string) ([]ListenResult, error) {
	cmd := listenCmd{Addr: addr, At: time.Now().Add(competeDelay).UnixNano()}
	for _, c := range cs {
		if err := c.send(cmdListen, cmd); err != nil {
			return nil, err
		}
	}
	res := make([]ListenResult, len(cs))
	for i, c := range cs {
		if err := c.answer(ctx, cmdListen, &res[i]); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// ListenWhenFree calls tr.Listen(addr) until it stops failing with
// transport.ErrAddrInUse, pausing briefly between attempts. It returns the
// listener and the number of attempts; any other error, or the end of ctx,
// stops it.
func ListenWhenFree(ctx context.Context, tr transport.Transport, addr string) (net.Listener, int, error) {
	for attempt := 1; ; attempt++ {
		l, err := tr.Listen(ctx, addr)
		if err == nil {
			return l, attempt, nil
		}
		if !errors.Is(err, transport.ErrAddrInUse) {
			return nil, attempt, err
		}
		select {
		case <-ctx.Done():
			return nil, attempt, fmt.Errorf("still in use after %d attempts: %w (last: %w)", attempt, ctx.Err(), err)
		case <-time.After(100 * time.Microsecond):
		}
	}
}
