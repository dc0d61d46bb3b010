// Package guard runs one test body under a watchdog: what the body starts
// registers its teardown with the Env, and if the body hangs past the
// watchdog the Env is torn down (listeners, conns, clients, child
// processes), the test fails with where it hung, and if it still does not
// return, the process panics with every goroutine's stack. It is the
// engine under the transport kit (transporttest) and the conformance
// suite.
package guard

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"
)

// Config describes a guarded run.
type Config struct {
	// Kind leads every report ("transporttest: subtest").
	Kind string
	// Name is the run's name in the report of a hang.
	Name string
	// Watchdog is how long the body may run.
	Watchdog time.Duration
	// Grace is how long a hung body has to return after the teardown
	// before the panic.
	Grace time.Duration
	// Where, if set, says where a hung body was; it follows "hung for d".
	Where func() string
	// BeforeTeardown, if set, runs first at every teardown.
	BeforeTeardown func()
}

// Env is what a guarded body registers its teardown with.
//
// Concurrency: safe for concurrent use.
type Env struct {
	// Ctx ends when the body ends or is declared hung.
	Ctx context.Context

	before   func()
	mu       sync.Mutex
	closers  []func()
	torndown bool
	wg       sync.WaitGroup
}

// Run runs body under cfg's watchdog with e (usually embedded in the
// caller's own environment), and tears e down when body returns.
func Run(t *testing.T, cfg Config, e *Env, body func()) {
	ctx, cancel := context.WithCancel(t.Context())
	e.Ctx, e.before = ctx, cfg.BeforeTeardown
	where := func() string {
		if cfg.Where == nil {
			return ""
		}
		return cfg.Where()
	}
	finished := make(chan struct{})
	watchdog := time.AfterFunc(cfg.Watchdog, func() {
		msg := fmt.Sprintf("%s %s hung for %v%s; tearing down what it started", cfg.Kind, cfg.Name, cfg.Watchdog, where())
		t.Error(msg)
		// Also where it survives a panic below: without -v, the test's
		// output is printed only when it ends, which a panic prevents.
		fmt.Fprintf(os.Stderr, "--- %s: %s\n", t.Name(), msg)
		cancel()
		e.Teardown()
		select {
		case <-finished:
		case <-time.After(cfg.Grace):
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			fmt.Fprintf(os.Stderr, "%s %s still hung %v after teardown%s; goroutines:\n%s\n", cfg.Kind, cfg.Name, cfg.Grace, where(), buf)
			panic(fmt.Sprintf("%s %s still hung %v after teardown", cfg.Kind, t.Name(), cfg.Grace))
		}
	})
	defer func() {
		cancel()
		e.Teardown()
		e.wg.Wait()
		watchdog.Stop()
		close(finished)
	}()
	body()
}

// OnTeardown registers fn to run when the body ends or hangs (last
// registered, first run). If the Env was already torn down, fn runs at
// once.
func (e *Env) OnTeardown(fn func()) {
	e.mu.Lock()
	if e.torndown {
		e.mu.Unlock()
		fn()
		return
	}
	e.closers = append(e.closers, fn)
	e.mu.Unlock()
}

// Teardown runs BeforeTeardown and then every registered function, last
// registered first; later registrations run at once.
func (e *Env) Teardown() {
	if e.before != nil {
		e.before()
	}
	e.mu.Lock()
	closers := e.closers
	e.closers = nil
	e.torndown = true
	e.mu.Unlock()
	for i := len(closers) - 1; i >= 0; i-- {
		closers[i]()
	}
}

// Go runs fn in a goroutine that Run waits for. fn must not call t.Fatal
// (t.Error is fine).
func (e *Env) Go(fn func()) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		fn()
	}()
}

// Timeout returns a context that ends after d or with the body.
func (e *Env) Timeout(d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(e.Ctx, d)
	e.OnTeardown(cancel)
	return ctx
}
