package interop

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Bounds of every wait. They are generous: the machine is shared and the
// tests run with -race; nothing here measures speed.
const (
	ioTimeout   = 15 * time.Second // one reply, one delivered value
	readyWithin = 60 * time.Second // a process starting up, an election
	stopWithin  = 10 * time.Second // a process exiting once told to
)

// event is one JSON line of a member's event stream, {"event", "data"}:
// what a Node peer prints, what a Go child emits, and what the in-process
// Go peers record, so that the tests read all of them the same way.
type event struct {
	Name string          `json:"event"`
	Data json.RawMessage `json:"data"`
}

// decode unmarshals the event's data into v.
func (e event) decode(v any) error { return json.Unmarshal(e.Data, v) }

// str returns a top-level string field of the data ("" if absent).
func (e event) str(field string) string {
	var m map[string]any
	_ = json.Unmarshal(e.Data, &m)
	s, _ := m[field].(string)
	return s
}

func (e event) String() string { return e.Name + " " + string(e.Data) }

// eventLog keeps every event of one member in arrival order. It is safe
// for concurrent use; waiters are woken on every append.
type eventLog struct {
	name string

	mu      sync.Mutex
	partial []byte
	events  []event
	raw     []string // every stdout line, parsed or not
	changed chan struct{}
}

func newEventLog(name string) *eventLog {
	return &eventLog{name: name, changed: make(chan struct{})}
}

// Write takes a child's stdout: one event per line.
func (l *eventLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		line := string(l.partial[:i])
		l.partial = l.partial[i+1:]
		l.raw = append(l.raw, line)
		var ev event
		if json.Unmarshal([]byte(line), &ev) == nil && ev.Name != "" {
			l.appendLocked(ev)
		}
	}
	return len(p), nil
}

// add records an event made in this process; data is marshalled to JSON.
func (l *eventLog) add(name string, data any) {
	b, err := json.Marshal(data)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"marshal": err.Error()})
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.raw = append(l.raw, name+" "+string(b))
	l.appendLocked(event{Name: name, Data: b})
}

func (l *eventLog) appendLocked(ev event) {
	l.events = append(l.events, ev)
	close(l.changed)
	l.changed = make(chan struct{})
}

// mark returns the number of events so far, for waits that must only
// consider what comes later.
func (l *eventLog) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.events)
}

// find returns the first event at or after index from that satisfies
// match, with its index, or -1.
func (l *eventLog) find(from int, match func(event) bool) (event, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := from; i < len(l.events); i++ {
		if match(l.events[i]) {
			return l.events[i], i
		}
	}
	return event{}, -1
}

// all returns the events at or after from that satisfy match.
func (l *eventLog) all(from int, match func(event) bool) []event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []event
	for _, ev := range l.events[min(from, len(l.events)):] {
		if match(ev) {
			out = append(out, ev)
		}
	}
	return out
}

// waitFor waits until an event at or after from satisfies match. It
// returns the event and its index, or fails the test naming what.
func (l *eventLog) waitFor(t testing.TB, what string, from int, within time.Duration, match func(event) bool) (event, int) {
	t.Helper()
	ev, i, ok := l.await(from, within, match)
	if !ok {
		t.Fatalf("%s: no %s within %v; events so far:\n%s", l.name, what, within, l.dump())
	}
	return ev, i
}

// await is waitFor without failing: ok is false on timeout.
func (l *eventLog) await(from int, within time.Duration, match func(event) bool) (ev event, i int, ok bool) {
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		changed := l.changed
		l.mu.Unlock()
		if ev, i := l.find(from, match); i >= 0 {
			return ev, i, true
		}
		select {
		case <-changed:
		case <-deadline.C:
			return event{}, -1, false
		}
	}
}

// dump returns the last lines of the log.
func (l *eventLog) dump() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := l.raw
	if len(lines) > 200 {
		lines = append([]string{fmt.Sprintf("... %d earlier lines", len(lines)-200)}, lines[len(lines)-200:]...)
	}
	return strings.Join(lines, "\n")
}

// named matches events by name.
func named(name string) func(event) bool {
	return func(ev event) bool { return ev.Name == name }
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// requireNode returns the node binary, installing the pinned npm package
// first when interop/node_modules is missing (ensureNodeModules: npm ci,
// once). It skips the test, loudly, when Node is missing, or npm is
// missing with node_modules, or the install failed. These are the only
// reasons an interop test skips, and only outside CI: where the CI
// environment variable is set (CI services set CI=true), they must run, so
// a missing Node fails the test instead.
func requireNode(t testing.TB) string {
	t.Helper()
	missing := func(reason string) {
		t.Helper()
		if ci := os.Getenv("CI"); ci != "" {
			t.Fatalf("INTEROP TEST CANNOT RUN, and must in CI (CI=%q): %s", ci, reason)
		}
		t.Skip("INTEROP TEST SKIPPED: " + reason)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("`node` is not on PATH; install Node.js (>= 18) to run clusterclient against the real cluster-client 3.7.0")
	}
	if err := ensureNodeModules(); err != nil {
		missing(err.Error())
	}
	return node
}

// nodeOptions are cluster-client options of a Node peer (zero: Node's
// default).
type nodeOptions struct {
	HeartbeatInterval int   `json:"heartbeatInterval,omitempty"` // ms
	ResponseTimeout   int   `json:"responseTimeout,omitempty"`   // ms
	NeedHeartbeat     *bool `json:"needHeartbeat,omitempty"`
}

// nodeProc is one node/peer.js process.
type nodeProc struct {
	t    testing.TB
	name string
	role string // as started: leader, follower, auto
	cmd  *exec.Cmd
	log  *eventLog

	stdinMu sync.Mutex
	stdin   io.WriteCloser
	stderr  *lockedBuffer
	exited  chan struct{}
	waitErr error
	ids     atomic.Int64
}

// startNode starts node/peer.js on port in role for channel and waits
// until its client is ready. Its stdin is closed, then the process killed
// if it lingers, by t.Cleanup; on Linux the kernel also kills it if the
// test process dies (Pdeathsig).
func startNode(t testing.TB, name string, port int, role, channel string, opts nodeOptions) *nodeProc {
	t.Helper()
	n := launchNode(t, name, port, role, channel, opts)
	n.waitReady(t, 0)
	return n
}

// launchNode starts the process without waiting for it to be ready.
func launchNode(t testing.TB, name string, port int, role, channel string, opts nodeOptions) *nodeProc {
	t.Helper()
	node := requireNode(t)
	o, err := json.Marshal(opts)
	if err != nil {
		t.Fatal(err)
	}
	n := &nodeProc{t: t, name: name, role: role, log: newEventLog(name), stderr: &lockedBuffer{}, exited: make(chan struct{})}
	n.cmd = exec.Command(node, filepath.Join("node", "peer.js"), strconv.Itoa(port), role, channel, string(o))
	n.cmd.Stdout = n.log
	n.cmd.Stderr = n.stderr
	setPdeathsig(n.cmd)
	if n.stdin, err = n.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		n.waitErr = n.cmd.Wait()
		close(n.exited)
	}()
	t.Cleanup(n.stop)
	return n
}

func (n *nodeProc) String() string { return n.name }

func (n *nodeProc) events() *eventLog { return n.log }

// waitReady waits for a ready event at or after from and returns whether
// the process leads.
func (n *nodeProc) waitReady(t testing.TB, from int) bool {
	t.Helper()
	ev, _ := n.log.waitFor(t, "ready", from, readyWithin, func(ev event) bool {
		return ev.Name == "ready" || ev.Name == "fatal"
	})
	var d struct {
		Leader bool `json:"leader"`
	}
	if ev.Name != "ready" || ev.decode(&d) != nil {
		t.Fatalf("%s did not start: %s\nstderr: %s", n.name, ev, n.stderr.String())
	}
	if want := n.role == "leader"; n.role != "auto" && d.Leader != want && from == 0 {
		t.Fatalf("%s started as %s but leader=%v", n.name, n.role, d.Leader)
	}
	return d.Leader
}

// send writes one command to the process.
func (n *nodeProc) send(t testing.TB, command string, data any) {
	t.Helper()
	if err := n.trySend(command, data); err != nil {
		t.Fatal(err)
	}
}

// trySend is send for goroutines other than the test's: it returns the
// error instead of failing the test.
func (n *nodeProc) trySend(command string, data any) error {
	b, err := json.Marshal(map[string]any{"event": command, "data": data})
	if err != nil {
		return err
	}
	n.stdinMu.Lock()
	defer n.stdinMu.Unlock()
	if _, err := n.stdin.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("%s: send %s: %w\nstderr: %s", n.name, command, err, n.stderr.String())
	}
	return nil
}

// nodeResult is the answer to an invoke.
type nodeResult struct {
	ID    int64           `json:"id"`
	OK    bool            `json:"ok"`
	Value json.RawMessage `json:"value"` // a tag
	Error *struct {
		Name    string  `json:"name"`
		Message string  `json:"message"`
		Code    *string `json:"code"`
		Stack   *string `json:"stack"`
	} `json:"error"`
}

// invoke calls method with args (tags) and waits for the result.
func (n *nodeProc) invoke(t testing.TB, method string, args ...json.RawMessage) nodeResult {
	t.Helper()
	return n.call(t, map[string]any{"method": method, "args": nonNil(args)})
}

// call sends an invoke command (fields besides id) and waits for its result.
func (n *nodeProc) call(t testing.TB, fields map[string]any) nodeResult {
	t.Helper()
	r, err := n.tryCall(fields)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// tryCall is call for goroutines other than the test's.
func (n *nodeProc) tryCall(fields map[string]any) (nodeResult, error) {
	id := n.ids.Add(1)
	fields["id"] = id
	from := n.log.mark()
	if err := n.trySend("invoke", fields); err != nil {
		return nodeResult{}, err
	}
	ev, _, ok := n.log.await(from, ioTimeout, func(ev event) bool {
		var r nodeResult
		return ev.Name == "result" && ev.decode(&r) == nil && r.ID == id
	})
	if !ok {
		return nodeResult{}, fmt.Errorf("%s: no result of invoke %v (id %d) within %v", n.name, fields["method"], id, ioTimeout)
	}
	var r nodeResult
	return r, ev.decode(&r)
}

func nonNil(args []json.RawMessage) []json.RawMessage {
	if args == nil {
		return []json.RawMessage{}
	}
	return args
}

// isLeader asks the process whether it leads now.
func (n *nodeProc) isLeader(t testing.TB) bool {
	t.Helper()
	id := n.ids.Add(1)
	from := n.log.mark()
	n.send(t, "info", map[string]any{"id": id})
	ev, _ := n.log.waitFor(t, "info", from, ioTimeout, func(ev event) bool {
		var d struct {
			ID int64 `json:"id"`
		}
		return ev.Name == "info" && ev.decode(&d) == nil && d.ID == id
	})
	var d struct {
		Leader bool `json:"leader"`
	}
	if err := ev.decode(&d); err != nil {
		t.Fatal(err)
	}
	return d.Leader
}

func (n *nodeProc) subscribe(t testing.TB, sub string, reg dataReg) {
	t.Helper()
	n.send(t, "subscribe", map[string]any{"sub": sub, "reg": reg})
}

func (n *nodeProc) unsubscribe(t testing.TB, sub string, reg dataReg) {
	t.Helper()
	n.send(t, "unsubscribe", map[string]any{"sub": sub, "reg": reg})
}

func (n *nodeProc) publish(t testing.TB, reg pubReg) {
	t.Helper()
	n.send(t, "publish", map[string]any{"reg": reg})
}

// report returns the last value of every delivery to the quiet
// subscription sub, in order (null for a key with no value yet).
func (n *nodeProc) report(t testing.TB, sub string) []*string {
	t.Helper()
	id := n.ids.Add(1)
	from := n.log.mark()
	n.send(t, "report", map[string]any{"id": id, "sub": sub})
	ev, _ := n.log.waitFor(t, "report", from, ioTimeout, func(ev event) bool {
		var d struct {
			ID int64 `json:"id"`
		}
		return ev.Name == "report" && ev.decode(&d) == nil && d.ID == id
	})
	var d struct {
		Values []*string `json:"values"`
	}
	if err := ev.decode(&d); err != nil {
		t.Fatal(err)
	}
	return d.Values
}

// kill sends SIGKILL and waits until the process is gone.
func (n *nodeProc) kill(t testing.TB) {
	t.Helper()
	if err := n.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill %s: %v", n.name, err)
	}
	select {
	case <-n.exited:
	case <-time.After(stopWithin):
		t.Fatalf("%s did not die within %v of SIGKILL", n.name, stopWithin)
	}
}

// stop closes stdin (the script closes its client and exits) and kills
// the process if it does not exit in time.
func (n *nodeProc) stop() {
	n.stdinMu.Lock()
	_ = n.stdin.Close()
	n.stdinMu.Unlock()
	select {
	case <-n.exited:
	case <-time.After(stopWithin):
		n.t.Errorf("%s did not exit within %v of stdin closing; killing it", n.name, stopWithin)
		_ = n.cmd.Process.Kill()
		<-n.exited
	}
	if n.t.Failed() {
		n.t.Logf("%s stdout:\n%s\nstderr:\n%s", n.name, n.log.dump(), n.stderr.String())
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// testLogger returns a logger for the Go clients of a test that keeps
// their records in memory and prints them only if the test fails.
func testLogger(t testing.TB) *slog.Logger {
	buf := &lockedBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Go client logs:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
