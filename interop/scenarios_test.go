package interop

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/protocol"
)

// The two directions of issue 6's scenarios: a Go leader with Node
// followers, and a Node leader with Go followers, over TCP on a loopback
// port of their own. Every member runs with short heartbeats and response
// timeouts (the same on both sides), so the heartbeat and timeout
// scenarios take seconds, not minutes.
//
// A Node follower sends no heartbeat while a call is pending (see
// TestNodeMisbehaviour), so a call that runs into the response timeout
// leaves it silent for up to responseTimeout + heartbeat: that must stay
// well below the leaders' limit of three heartbeat intervals.
const (
	heartbeat       = 1200 * time.Millisecond
	responseTimeout = 1500 * time.Millisecond
	// idleFor is how long the heartbeat scenario stays silent: more than
	// three heartbeat intervals, after which both leaders drop a follower
	// that sent nothing.
	idleFor = 4 * heartbeat
)

func nodeOpts() nodeOptions {
	return nodeOptions{HeartbeatInterval: int(heartbeat.Milliseconds()), ResponseTimeout: int(responseTimeout.Milliseconds())}
}

func goOpts(mode cluster.Mode) goOptions {
	return goOptions{mode: mode, heartbeat: heartbeat, responseTimeout: responseTimeout}
}

// Arguments for Node invokes, as tags.
func jsString(s string) json.RawMessage {
	b, _ := json.Marshal(map[string]any{"t": "string", "v": s})
	return b
}

func jsInt(n int64) json.RawMessage {
	b, _ := json.Marshal(map[string]any{"t": "int", "v": n})
	return b
}

// resultTag returns the tag of a successful Node result.
func resultTag(t *testing.T, what string, r nodeResult) []byte {
	t.Helper()
	if !r.OK {
		t.Fatalf("%s failed: %+v", what, r.Error)
	}
	return r.Value
}

// resultString returns the string a successful Node result holds.
func resultString(t *testing.T, what string, r nodeResult) string {
	t.Helper()
	var tg struct {
		T string `json:"t"`
		V string `json:"v"`
	}
	if err := json.Unmarshal(resultTag(t, what, r), &tg); err != nil || tg.T != "string" {
		t.Fatalf("%s: want a string, got %s", what, r.Value)
	}
	return tg.V
}

// dataEvent is a delivery as both kinds of member log it.
type dataEvent struct {
	Sub   string    `json:"sub"`
	Value dataValue `json:"value"`
}

func dataOf(sub string, match func(dataValue) bool) func(event) bool {
	return func(ev event) bool {
		var d dataEvent
		return ev.Name == "data" && ev.decode(&d) == nil && d.Sub == sub && match(d.Value)
	}
}

func anyValue(dataValue) bool { return true }

func lastIs(v string) func(dataValue) bool {
	return func(d dataValue) bool { return d.Last != nil && *d.Last == v }
}

// waitData waits until m delivers to sub, at or after from, a value that
// satisfies match, and returns it.
func waitData(t testing.TB, m member, sub string, from int, what string, match func(dataValue) bool) dataValue {
	t.Helper()
	ev, _ := m.events().waitFor(t, "value "+what+" for subscription "+sub, from, ioTimeout, dataOf(sub, match))
	var d dataEvent
	if err := ev.decode(&d); err != nil {
		t.Fatal(err)
	}
	return d.Value
}

// rcOf matches the real-client calls of op for dataID ("" for calls
// without a registration) that a member logged.
func rcOf(op, dataID string) func(event) bool {
	return func(ev event) bool {
		var d struct {
			Op  string `json:"op"`
			Reg struct {
				DataID string `json:"dataId"`
			} `json:"reg"`
		}
		return ev.Name == "rc" && ev.decode(&d) == nil && d.Op == op && d.Reg.DataID == dataID
	}
}

func rcEvents(m member, op, dataID string) []event { return m.events().all(0, rcOf(op, dataID)) }

// waitRC waits for a real-client call of op for dataID at or after from.
func waitRC(t testing.TB, m member, from int, op, dataID string) event {
	t.Helper()
	ev, _ := m.events().waitFor(t, "real client "+op+" "+dataID, from, ioTimeout, rcOf(op, dataID))
	return ev
}

// errorKind matches a Go member's error events wrapping the sentinel
// named kind.
func errorKind(kind string) func(event) bool {
	return func(ev event) bool {
		var d struct {
			Kinds []string `json:"kinds"`
		}
		return ev.Name == "error" && ev.decode(&d) == nil && slices.Contains(d.Kinds, kind)
	}
}

func nodeError(name string) func(event) bool {
	return func(ev event) bool { return ev.Name == "error" && ev.str("name") == name }
}

// noLost fails if m lost its leader or its connection since from.
func noLost(t *testing.T, m member, from int) {
	t.Helper()
	if lost := m.events().all(from, named("lost")); len(lost) > 0 {
		t.Errorf("%s was dropped or lost its leader: %v", m, lost)
	}
}

// The subscription key every side must compute for sub(id).
func wantKey(dataID string) string {
	return `$$inner$$__{"group":"interop","dataId":"` + dataID + `"}`
}

func TestGoLeaderNodeFollowers(t *testing.T) {
	requireNode(t)
	port := freePort(t)
	const channel = "Données·数据Client" // Node's names are any string; Go must match them exactly
	leader := startGo(t, "go leader", port, channel, goOpts(cluster.ForceLeader))
	a := launchNode(t, "node follower A", port, "follower", channel, nodeOpts())
	b := launchNode(t, "node follower B", port, "auto", channel, nodeOpts())

	t.Run("register", func(t *testing.T) {
		for _, n := range []*nodeProc{a, b} {
			if n.waitReady(t, 0) {
				t.Errorf("%s leads, but the Go leader holds the port", n)
			}
		}
		if !leader.c.IsLeader() {
			t.Errorf("go leader: role %v", leader.c.Role())
		}
		if got := leader.c.Stats().Followers; got != 2 {
			t.Errorf("go leader: %d followers registered, want 2", got)
		}
	})
	members := []member{leader, a, b}

	t.Run("subscribe and receive the cached value", func(t *testing.T) {
		reg := sub("cached")
		leader.subscribe(t, "L", reg)
		if v := waitData(t, leader, "L", 0, "first", anyValue); v.N != 0 || v.Last != nil {
			t.Errorf("go leader: first value %+v", v)
		}
		a.subscribe(t, "A", reg)
		if v := waitData(t, a, "A", 0, "first", anyValue); v.N != 0 || v.Last != nil {
			t.Errorf("node A: first value %+v", v)
		}
		leader.publish(t, pubReg{DataID: "cached", Value: "v1"})
		waitData(t, leader, "L", 0, "v1", lastIs("v1"))
		waitData(t, a, "A", 0, "v1", lastIs("v1"))
		// B subscribes late: it gets the cached value at once.
		b.subscribe(t, "B", reg)
		if v := waitData(t, b, "B", 0, "first", anyValue); v.N != 1 || v.Last == nil || *v.Last != "v1" {
			t.Errorf("node B: first value %+v, want the cached {n:1, last:v1}", v)
		}
		// One upstream subscription for three subscribers: the Node
		// followers' keys are the Go leader's.
		subs := rcEvents(leader, "subscribe", "cached")
		if len(subs) != 1 {
			t.Errorf("go leader's real client subscribed %d times: %v", len(subs), subs)
		}
		if len(subs) > 0 && subs[0].str("key") != wantKey("cached") {
			t.Errorf("key %q, want %q", subs[0].str("key"), wantKey("cached"))
		}
	})

	t.Run("publish from either side reaches every subscriber", func(t *testing.T) {
		publishFromEach(t, members, sub("pub"), sentBy{leader, "from go leader"}, sentBy{a, "from node A"}, sentBy{b, "from node B"})
	})

	t.Run("invoke", func(t *testing.T) {
		for _, tc := range typeCases() {
			t.Run(tc.kind, func(t *testing.T) {
				// The argument as the Go leader decoded it.
				got := resultString(t, "describe", a.invoke(t, "describe", json.RawMessage(tc.tag)))
				if !sameTag([]byte(got), []byte(tc.tag)) {
					t.Errorf("argument: Node sent %s, Go decoded %s", tc.tag, got)
				}
				// A result the Go leader built.
				if r := resultTag(t, "build", a.invoke(t, "build", jsString(tc.tag))); !sameTag(r, []byte(tc.tag)) {
					t.Errorf("result: Go returned %s, Node decoded %s", tc.tag, r)
				}
				// Both ways at once.
				if r := resultTag(t, "echo", a.invoke(t, "echo", json.RawMessage(tc.tag))); !sameTag(r, []byte(tc.tag)) {
					t.Errorf("echo: sent %s, got back %s", tc.tag, r)
				}
			})
		}
		if r := a.invoke(t, "add", jsInt(2), jsInt(40)); !sameTag(resultTag(t, "add", r), jsInt(42)) {
			t.Errorf("add(2, 40) = %s", r.Value)
		}
	})

	t.Run("error result", func(t *testing.T) {
		r := a.invoke(t, "fail", jsString("ValidationError"), jsString("bad input: <x>"), jsString("E_INVALID"))
		if r.OK || r.Error == nil {
			t.Fatalf("fail succeeded: %s", r.Value)
		}
		if r.Error.Name != "ValidationError" || r.Error.Message != "bad input: <x>" || r.Error.Code == nil || *r.Error.Code != "E_INVALID" {
			t.Errorf("Node got error %+v (code %v)", r.Error, r.Error.Code)
		}
		// The Go leader's stack reaches Node's caller, as a Node leader's
		// does (before, the Go leader sent an Error container and Node
		// kept only its own stack).
		if r.Error.Stack == nil || !strings.Contains(*r.Error.Stack, "at fail (the Go leader)") {
			t.Errorf("Node's error stack %v, want the Go leader's", r.Error.Stack)
		}
		// A method the real client does not declare: Node's own leader
		// crashes here; the Go leader answers with an error and serves on.
		r = a.call(t, map[string]any{"method": "noSuchMethod", "args": []json.RawMessage{}, "raw": true})
		if r.OK || r.Error == nil || r.Error.Code == nil || *r.Error.Code != cluster.CodeUnknownMethod ||
			!strings.Contains(r.Error.Message, "noSuchMethod") {
			t.Errorf("unknown method: %+v", r)
		}
	})

	t.Run("oneway", func(t *testing.T) {
		date := `{"t":"date","v":1700000000123}`
		if r := a.call(t, map[string]any{"method": "note", "args": []json.RawMessage{json.RawMessage(date)}, "oneway": true}); !r.OK {
			t.Fatalf("note: %+v", r)
		}
		ev := waitRC(t, leader, 0, "note", "")
		var d struct {
			Value json.RawMessage `json:"value"`
		}
		if err := ev.decode(&d); err != nil || !sameTag(d.Value, []byte(date)) {
			t.Errorf("the Go leader noted %s, want %s", d.Value, date)
		}
	})

	t.Run("response timeout", func(t *testing.T) {
		from := leader.log.mark()
		r := a.invoke(t, "sleep", jsInt(2*responseTimeout.Milliseconds()))
		if r.OK || r.Error == nil || r.Error.Name != "ResponseTimeoutError" {
			t.Fatalf("sleep beyond the response timeout: %+v %s", r.Error, r.Value)
		}
		// The leader drops the late reply and says so.
		leader.log.waitFor(t, "ErrLeaderTimeout", from, ioTimeout, errorKind("ErrLeaderTimeout"))
		if r := a.invoke(t, "add", jsInt(1), jsInt(2)); !sameTag(resultTag(t, "add", r), jsInt(3)) {
			t.Errorf("after the timeout, add(1, 2) = %s", r.Value)
		}
	})

	t.Run("heartbeats", func(t *testing.T) {
		from := leader.log.mark()
		// The control: a follower that sends no heartbeats is dropped,
		// so the leader's idle check is armed.
		off := false
		c := startNode(t, "node follower C (no heartbeats)", port, "follower", channel,
			nodeOptions{HeartbeatInterval: int(heartbeat.Milliseconds()), ResponseTimeout: int(responseTimeout.Milliseconds()), NeedHeartbeat: &off})
		time.Sleep(idleFor)
		c.log.waitFor(t, "lost (dropped for not heartbeating)", 0, ioTimeout, named("lost"))
		if _, i := leader.log.find(from, errorKind("ErrFollowerIdle")); i < 0 {
			t.Errorf("the Go leader reported no ErrFollowerIdle for node follower C")
		}
		// A and B heartbeat: still there, on the same connection.
		for _, n := range []*nodeProc{a, b} {
			noLost(t, n, 0)
			if r := n.invoke(t, "add", jsInt(20), jsInt(22)); !sameTag(resultTag(t, "add", r), jsInt(42)) {
				t.Errorf("%s after %v idle: add = %s", n, idleFor, r.Value)
			}
		}
	})

	t.Run("unsubscribe", func(t *testing.T) {
		reg := sub("unsub")
		leader.subscribe(t, "U", reg)
		a.subscribe(t, "U", reg)
		waitData(t, leader, "U", 0, "first", anyValue)
		waitData(t, a, "U", 0, "first", anyValue)
		a.unsubscribe(t, "U", reg)
		a.invoke(t, "add", jsInt(0), jsInt(0)) // after the unSubscribe on the same connection
		from := a.log.mark()
		b.publish(t, pubReg{DataID: "unsub", Value: "after"})
		waitData(t, leader, "U", 0, "after", lastIs("after"))
		// A push for A would have been written before this call's result.
		a.invoke(t, "add", jsInt(0), jsInt(0))
		if got := a.log.all(from, dataOf("U", anyValue)); len(got) > 0 {
			t.Errorf("node A got values after unSubscribe: %v", got)
		}
		// The Go leader's listener was the last: the upstream
		// subscription ends (Node's leader never ends one).
		leader.unsubscribe(t, "U", reg)
		if ev := waitRC(t, leader, 0, "unSubscribe", "unsub"); ev.str("key") != wantKey("unsub") {
			t.Errorf("unSubscribe key %q", ev.str("key"))
		}
	})

	// Nothing went wrong besides what the scenarios provoked.
	noLost(t, a, 0)
	noLost(t, b, 0)
	for _, ev := range leader.log.all(0, named("error")) {
		if !errorKind("ErrLeaderTimeout")(ev) && !errorKind("ErrFollowerIdle")(ev) {
			t.Errorf("go leader reported: %s", ev)
		}
	}
	for _, n := range []*nodeProc{a, b} {
		for _, ev := range n.log.all(0, named("error")) {
			t.Errorf("%s reported: %s", n, ev)
		}
	}
}

func TestNodeLeaderGoFollowers(t *testing.T) {
	requireNode(t)
	port := freePort(t)
	const channel = "Données·数据Client"
	leader := startNode(t, "node leader", port, "leader", channel, nodeOpts())
	ga := launchGo(t, "go follower A", port, channel, goOpts(cluster.Auto))
	gb := launchGo(t, "go follower B", port, channel, goOpts(cluster.ForceFollower))
	ctx, cancel := context.WithTimeout(context.Background(), readyWithin)
	defer cancel()

	t.Run("register", func(t *testing.T) {
		for _, g := range []*goPeer{ga, gb} {
			if err := g.c.Ready(ctx); err != nil {
				t.Fatalf("%s: %v", g, err)
			}
			if g.c.Role() != cluster.RoleFollower {
				t.Errorf("%s: role %v, want follower of the Node leader", g, g.c.Role())
			}
		}
	})
	members := []member{leader, ga, gb}

	t.Run("subscribe and receive the cached value", func(t *testing.T) {
		reg := sub("cached")
		leader.subscribe(t, "L", reg)
		waitData(t, leader, "L", 0, "first", anyValue)
		ga.subscribe(t, "A", reg)
		if v := waitData(t, ga, "A", 0, "first", anyValue); v.N != 0 || v.Last != nil {
			t.Errorf("go A: first value %+v", v)
		}
		leader.publish(t, pubReg{DataID: "cached", Value: "v1"})
		waitData(t, leader, "L", 0, "v1", lastIs("v1"))
		waitData(t, ga, "A", 0, "v1", lastIs("v1"))
		gb.subscribe(t, "B", reg)
		if v := waitData(t, gb, "B", 0, "first", anyValue); v.N != 1 || v.Last == nil || *v.Last != "v1" {
			t.Errorf("go B: first value %+v, want the cached {n:1, last:v1}", v)
		}
		// The Node leader pushes under the key it computes itself; the
		// Go followers found their values under it, and it subscribed
		// upstream once.
		if subs := rcEvents(leader, "subscribe", "cached"); len(subs) != 1 {
			t.Errorf("node leader's real client subscribed %d times: %v", len(subs), subs)
		}
	})

	t.Run("publish from either side reaches every subscriber", func(t *testing.T) {
		publishFromEach(t, members, sub("pub"), sentBy{leader, "from node leader"}, sentBy{ga, "from go A"}, sentBy{gb, "from go B"})
	})

	t.Run("invoke", func(t *testing.T) {
		for _, tc := range typeCases() {
			t.Run(tc.kind, func(t *testing.T) {
				// The argument as the Node leader decoded it.
				got, err := cluster.Call[string](ctx, ga.c, "describe", tc.send)
				if err != nil {
					t.Fatalf("describe: %v", err)
				}
				if !sameTag([]byte(got), []byte(tc.tag)) {
					t.Errorf("argument: Go sent %#v, Node decoded %s, want %s", tc.send, got, tc.tag)
				}
				// A result the Node leader built.
				res, err := ga.c.Invoke(ctx, "build", tc.tag)
				if err != nil {
					t.Fatalf("build: %v", err)
				}
				ptr := tc.target()
				if err := res.Decode(ptr); err != nil {
					t.Fatalf("decode the result of build(%s): %v", tc.tag, err)
				}
				checkTarget(t, "result of build", ptr, tc.want)
				// Both ways at once.
				if res, err = ga.c.Invoke(ctx, "echo", tc.send); err != nil {
					t.Fatalf("echo: %v", err)
				}
				ptr = tc.target()
				if err := res.Decode(ptr); err != nil {
					t.Fatalf("decode the result of echo: %v", err)
				}
				checkTarget(t, "echo", ptr, tc.want)
			})
		}
		if n, err := cluster.Call[int64](ctx, gb.c, "add", 2, 40); err != nil || n != 42 {
			t.Errorf("add(2, 40) = %d, %v", n, err)
		}
	})

	t.Run("error result", func(t *testing.T) {
		_, err := ga.c.Invoke(ctx, "fail", "ValidationError", "bad input: <x>", "E_INVALID")
		var re *protocol.RemoteError
		if !errors.As(err, &re) {
			t.Fatalf("fail: %v, want a RemoteError", err)
		}
		if re.Name != "ValidationError" || re.Message != "bad input: <x>" || re.Code != "E_INVALID" ||
			!strings.Contains(re.Stack, "bad input: <x>") {
			t.Errorf("Go got %+v", re)
		}
		var ce *cluster.Error
		if !errors.As(err, &ce) || ce.Method != "fail" || ce.Channel != channel {
			t.Errorf("error does not say where: %v", err)
		}
	})

	t.Run("oneway", func(t *testing.T) {
		if err := ga.c.InvokeOneway("note", testDate); err != nil {
			t.Fatal(err)
		}
		ev := waitRC(t, leader, 0, "note", "")
		var d struct {
			Value json.RawMessage `json:"value"`
		}
		if err := ev.decode(&d); err != nil || !sameTag(d.Value, []byte(`{"t":"date","v":1700000000123}`)) {
			t.Errorf("the Node leader noted %s", d.Value)
		}
	})

	t.Run("response timeout", func(t *testing.T) {
		from := leader.log.mark()
		// No deadline of its own: the response timeout bounds the call (a
		// context with a deadline would be waited for, and sent as the
		// request's timeout).
		_, err := ga.c.Invoke(context.Background(), "sleep", 2*responseTimeout.Milliseconds())
		if !errors.Is(err, cluster.ErrTimeout) {
			t.Fatalf("sleep beyond the response timeout: %v, want ErrTimeout", err)
		}
		// Node's leader drops the late reply and says so.
		leader.log.waitFor(t, "ClusterLeaderTimeoutError", from, ioTimeout, nodeError("ClusterLeaderTimeoutError"))
		if n, err := cluster.Call[int64](ctx, ga.c, "add", 1, 2); err != nil || n != 3 {
			t.Errorf("after the timeout, add(1, 2) = %d, %v", n, err)
		}
	})

	t.Run("heartbeats", func(t *testing.T) {
		from := leader.log.mark()
		// The control: a Go follower without heartbeats is dropped by
		// the Node leader, so its idle check is armed.
		c := launchGo(t, "go follower C (no heartbeats)", port, channel, goOpts(cluster.Auto), cluster.WithHeartbeatInterval(0))
		if err := c.c.Ready(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(idleFor)
		leader.log.waitFor(t, "ClusterClientNoResponseError", from, ioTimeout, nodeError("ClusterClientNoResponseError"))
		c.log.waitFor(t, "lost (dropped for not heartbeating)", 0, ioTimeout, named("lost"))
		for _, g := range []*goPeer{ga, gb} {
			noLost(t, g, 0)
			if n, err := cluster.Call[int64](ctx, g.c, "add", 20, 22); err != nil || n != 42 {
				t.Errorf("%s after %v idle: add = %d, %v", g, idleFor, n, err)
			}
		}
	})

	t.Run("unsubscribe", func(t *testing.T) {
		reg := sub("unsub")
		ga.subscribe(t, "U", reg)
		gb.subscribe(t, "U", reg)
		waitData(t, ga, "U", 0, "first", anyValue)
		waitData(t, gb, "U", 0, "first", anyValue)
		ga.unsubscribe(t, "U", reg)
		if _, err := ga.c.Invoke(ctx, "add", 0, 0); err != nil { // after the unSubscribe on the same connection
			t.Fatal(err)
		}
		from := ga.log.mark()
		gb.publish(t, pubReg{DataID: "unsub", Value: "after"})
		waitData(t, gb, "U", 0, "after", lastIs("after"))
		if _, err := ga.c.Invoke(ctx, "add", 0, 0); err != nil { // a push for A would come first
			t.Fatal(err)
		}
		if got := ga.log.all(from, dataOf("U", anyValue)); len(got) > 0 {
			t.Errorf("go A got values after Unsubscribe: %v", got)
		}
	})

	noLost(t, ga, 0)
	noLost(t, gb, 0)
	for _, ev := range leader.log.all(0, named("error")) {
		switch ev.str("name") {
		case "ValidationError", "ClusterLeaderTimeoutError", "ClusterClientNoResponseError":
			// provoked: a failed invoke, the timeout, the control
		default:
			t.Errorf("node leader reported: %s", ev)
		}
	}
}

// sentBy is a value a member publishes.
type sentBy struct {
	from  member
	value string
}

// publishFromEach subscribes every member to reg (each first gets reg's
// current data), then has each publisher publish its value, which every
// member must receive.
func publishFromEach(t *testing.T, members []member, reg dataReg, pubs ...sentBy) {
	t.Helper()
	for _, m := range members {
		m.subscribe(t, "P", reg)
		waitData(t, m, "P", 0, "first", anyValue)
	}
	for _, p := range pubs {
		p.from.publish(t, pubReg{DataID: "pub", Value: p.value})
		for _, m := range members {
			waitData(t, m, "P", 0, p.value, lastIs(p.value))
		}
	}
}
