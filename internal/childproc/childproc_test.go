package childproc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
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
		"long": func(args []string) int {
			n, _ := strconv.Atoi(args[0])
			Emit("long", strings.Repeat("x", n))
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
	gc, err := StartCmd(Command("hang"), Options{Logf: func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }})
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

// A child started with StartCmd and stopped with a grace period exits by
// itself on its stdin's EOF; its name is in the errors.
func TestStartCmdStopGrace(t *testing.T) {
	ctx := testCtx(t)
	c, err := StartCmd(Command("echo", "x"), Options{Name: "echoer"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop(0)
	if c.Mode() != "echoer" {
		t.Errorf("Mode() = %q, want the Options.Name", c.Mode())
	}
	if _, err := c.Expect(ctx, "ready"); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	var ee *exec.ExitError
	if err := c.Wait(ctx); !errors.As(err, &ee) || ee.ExitCode() != ExitParentGone {
		t.Fatalf("Wait after Stop: %v, want exit code %d (stdin EOF, not a kill)", err, ExitParentGone)
	}
	_, err = c.Next(ctx)
	if !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "(echoer)") {
		t.Fatalf("Next after Stop: %v, want ErrExited naming echoer", err)
	}
	if err := c.Stop(0); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

func TestStartCmdDefaultName(t *testing.T) {
	cmd := Command("exit", "3")
	c, err := StartCmd(cmd, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop(0)
	if want := filepath.Base(cmd.Path); c.Mode() != want {
		t.Errorf("Mode() = %q, want %q", c.Mode(), want)
	}
	_, err = c.Next(testCtx(t))
	if !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("Next: %v, want ErrExited with exit status 3", err)
	}
}

func TestStartCmdFailsToStart(t *testing.T) {
	cmd := exec.Command(filepath.Join(t.TempDir(), "no-such-program"))
	if _, err := StartCmd(cmd, Options{Name: "ghost"}); err == nil || !strings.Contains(err.Error(), "ghost") {
		t.Fatalf("StartCmd: %v, want an error naming ghost", err)
	}
}

// A line longer than Options.MaxLine is an error, not a silent EOF.
func TestMaxLine(t *testing.T) {
	ctx := testCtx(t)
	short, err := StartCmd(Command("long", "4096"), Options{MaxLine: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer short.Stop(0)
	if _, err := short.Next(ctx); !errors.Is(err, bufio.ErrTooLong) {
		t.Fatalf("Next of a 4 KiB line with MaxLine 1 KiB: %v, want bufio.ErrTooLong", err)
	}
	long, err := StartCmd(Command("long", "4096"), Options{MaxLine: 8192})
	if err != nil {
		t.Fatal(err)
	}
	defer long.Stop(0)
	ev, err := long.Expect(ctx, "long")
	var got string
	if err == nil {
		err = ev.Decode(&got)
	}
	if err != nil || len(got) != 4096 {
		t.Fatalf("Expect of a 4 KiB line with MaxLine 8 KiB: %d bytes, %v", len(got), err)
	}
}

func TestEnvWithout(t *testing.T) {
	t.Setenv("CHILDPROC_TEST_A", "1")
	t.Setenv("CHILDPROC_TEST_AB", "2")
	t.Setenv("CHILDPROC_TEST_C", "3")
	env := EnvWithout("CHILDPROC_TEST_A", "CHILDPROC_TEST_C")
	if slices.Contains(env, "CHILDPROC_TEST_A=1") || slices.Contains(env, "CHILDPROC_TEST_C=3") {
		t.Errorf("EnvWithout kept a variable it was to drop: %q", env)
	}
	if !slices.Contains(env, "CHILDPROC_TEST_AB=2") {
		t.Errorf("EnvWithout dropped CHILDPROC_TEST_AB, which only shares a prefix")
	}
	if len(env) != len(os.Environ())-2 {
		t.Errorf("EnvWithout returned %d variables, want %d", len(env), len(os.Environ())-2)
	}
}

func TestCopyExecutable(t *testing.T) {
	dir := t.TempDir()
	dst, err := CopyExecutable(dir)
	if err != nil {
		t.Fatal(err)
	}
	src, _ := os.Executable()
	a, errA := os.ReadFile(src)
	b, errB := os.ReadFile(dst)
	if errA != nil || errB != nil || !bytes.Equal(a, b) {
		t.Fatalf("copy differs from %s (%v, %v)", src, errA, errB)
	}
	if fi, err := os.Stat(dst); err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("mode of %s: %v, %v", dst, fi, err)
	}
	if _, err := CopyExecutable(dir); err == nil {
		t.Fatal("a second copy over the first succeeded")
	}
}
