package childproc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	Main(map[string]func(args []string) int{
		"echo":  echoMode,
		"fatal": func(args []string) int { Fatalf("boom: %s", args[0]); return 0 },
		"exit": func(args []string) int {
			code, _ := strconv.Atoi(args[0])
			return code
		},
		"hang":  hangMode,
		"spawn": spawnMode,
		"share-stdout": func([]string) int {
			// A grandchild that inherits stdout and stderr, with no
			// parent-death signal, and whose stdin never ends: it
			// holds the pipe's write end itself.
			exe, _ := os.Executable()
			gc := exec.Command(exe, "-test.run=^$")
			gc.Env = append(os.Environ(), EnvMode+"=hang")
			gc.Stdout, gc.Stderr = os.Stdout, os.Stderr
			r, w, err := os.Pipe()
			if err != nil {
				Fatalf("pipe: %v", err)
			}
			gc.Stdin, gc.ExtraFiles = r, []*os.File{w}
			if err := gc.Start(); err != nil {
				Fatalf("start grandchild: %v", err)
			}
			Emit("grandchild", gc.Process.Pid)
			return hangMode(nil)
		},
		"noise": func([]string) int {
			fmt.Println("not an event")
			Emit("done", nil)
			return 0
		},
	})
	goleak.VerifyTestMain(m)
}

// echoMode reports its args, then sends every event back until "quit".
func echoMode(args []string) int {
	Emit("ready", args)
	for {
		ev := Receive()
		if ev.Name == "quit" {
			return 0
		}
		Emit(ev.Name, ev.Data)
	}
}

func hangMode([]string) int {
	Emit("ready", os.Getpid())
	for {
		time.Sleep(time.Hour)
	}
}

// spawnMode starts a grandchild in hang mode and reports its pid.
func spawnMode([]string) int {
	gc, err := start(func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }, "hang", nil)
	if err != nil {
		Fatalf("start grandchild: %v", err)
	}
	Emit("grandchild", gc.Pid())
	return hangMode(nil)
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestEventsRoundTrip(t *testing.T) {
	ctx := testCtx(t)
	c := Start(t, "echo", "a", "b c", `"quoted"`)
	ev, err := c.Expect(ctx, "ready")
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	if err := ev.Decode(&args); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b c", `"quoted"`}; !reflect.DeepEqual(args, want) {
		t.Fatalf("child got args %q, want %q", args, want)
	}
	type payload struct {
		N int
		S string
	}
	for i := range 3 {
		if err := c.Send("ping", payload{i, strings.Repeat("x", i*100000)}); err != nil {
			t.Fatal(err)
		}
		ev, err := c.Expect(ctx, "ping")
		if err != nil {
			t.Fatal(err)
		}
		var got payload
		if err := ev.Decode(&got); err != nil {
			t.Fatal(err)
		}
		if got.N != i || len(got.S) != i*100000 {
			t.Fatalf("echo %d: got N=%d len(S)=%d", i, got.N, len(got.S))
		}
	}
	if err := c.Send("quit", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(ctx); err != nil {
		t.Fatalf("child exit: %v", err)
	}
	if _, err := c.Next(ctx); !errors.Is(err, ErrExited) {
		t.Fatalf("Next after exit: %v, want ErrExited", err)
	}
}

func TestFatalBecomesError(t *testing.T) {
	c := Start(t, "fatal", "disk on fire")
	_, err := c.Expect(testCtx(t), "ready")
	if err == nil || !strings.Contains(err.Error(), "boom: disk on fire") {
		t.Fatalf("Expect: %v, want the child's fatal message", err)
	}
}

func TestExitBeforeEvent(t *testing.T) {
	c := Start(t, "exit", "7")
	_, err := c.Expect(testCtx(t), "ready")
	if !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "exit status 7") {
		t.Fatalf("Expect: %v, want ErrExited with exit status 7", err)
	}
}

func TestUnknownMode(t *testing.T) {
	c := Start(t, "no-such-mode")
	err := c.Wait(testCtx(t))
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != ExitUnknownMode {
		t.Fatalf("Wait: %v, want exit code %d", err, ExitUnknownMode)
	}
	if !strings.Contains(c.Stderr(), "no-such-mode") {
		t.Fatalf("stderr %q does not name the mode", c.Stderr())
	}
}

func TestStdinEOFEndsChild(t *testing.T) {
	ctx := testCtx(t)
	c := Start(t, "echo")
	if _, err := c.Expect(ctx, "ready"); err != nil {
		t.Fatal(err)
	}
	c.CloseStdin()
	err := c.Wait(ctx)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != ExitParentGone {
		t.Fatalf("Wait: %v, want exit code %d", err, ExitParentGone)
	}
	if err := c.Send("ping", nil); err == nil {
		t.Fatal("Send after CloseStdin succeeded")
	}
}

func TestKill(t *testing.T) {
	ctx := testCtx(t)
	c := Start(t, "hang")
	if _, err := c.Expect(ctx, "ready"); err != nil {
		t.Fatal(err)
	}
	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}
	err := c.Wait(ctx)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Success() {
		t.Fatalf("Wait after Kill: %v, want a failed exit", err)
	}
	if err := c.Kill(); err != nil {
		t.Fatalf("second Kill: %v", err)
	}
}

func TestNoiseIsSkipped(t *testing.T) {
	c := Start(t, "noise")
	if _, err := c.Expect(testCtx(t), "done"); err != nil {
		t.Fatal(err)
	}
}

func TestNextHonoursContext(t *testing.T) {
	c := Start(t, "hang")
	ctx := testCtx(t)
	if _, err := c.Expect(ctx, "ready"); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := c.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next: %v, want DeadlineExceeded", err)
	}
}
