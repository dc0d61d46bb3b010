// Package leaks holds the goleak options the module's tests share: the
// goroutines a dependency starts for the whole process and never stops,
// which are not leaks of ours. It is imported by tests only.
package leaks

import "go.uber.org/goleak"

// KCP ignores kcp-go's process-wide goroutines, started once when a KCP
// session first runs and never stopped by design: the timed scheduler
// that drives every session's clock (one per CPU, at most two) and the
// workers of its outgoing packet pipeline (parked in sync.Cond.Wait, so
// their top frame is the runtime's).
func KCP() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreTopFunction("github.com/xtaci/kcp-go/v5.(*TimedSched).run"),
		goleak.IgnoreAnyFunction("github.com/xtaci/kcp-go/v5.postProcessWorker"),
	}
}
