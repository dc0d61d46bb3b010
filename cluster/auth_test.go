package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/auth"
	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/protocol"
	"github.com/go-clusterclient/clusterclient/transport"
)

// Authentication as wired into registration (package auth does the
// cryptography and has its own tests over every transport and with
// another real user).

var (
	keyA = []byte("0123456789abcdef-cluster-key-A")
	keyB = []byte("0123456789abcdef-cluster-key-B")
)

// A follower that holds another key is refused, never served, and keeps
// trying; the leader never counts it.
func TestAuthWrongKeyFollowerRefused(t *testing.T) {
	w := newWorld()
	l, tr, addr := startLeader(t, "Keyed", cluster.WithAuth(auth.Config{Key: keyA}))
	rec := newRecorder()
	f := newClient(t, "Keyed", w, cluster.WithTransport(tr), cluster.WithAddr(addr),
		cluster.WithAuth(auth.Config{Key: keyB}), rec.opt())
	ev := rec.wait(t, wait, "refused", isErr(cluster.ErrHandshake))
	// The follower checks the leader first, so it is the one that says no.
	for _, want := range []string{"follower", `"Keyed"`, "leader's proof does not match", "this process's key"} {
		if !strings.Contains(ev.Err.Error(), want) {
			t.Errorf("event %q lacks %q", ev.Err, want)
		}
	}
	eventually(t, wait, "a second attempt", func() bool { return rec.count(isErr(cluster.ErrHandshake)) >= 2 })
	if err := f.Ready(tctx(t, 50*time.Millisecond)); err == nil {
		t.Fatal("a follower with the wrong key is ready")
	}
	if st := l.Stats(); st.Followers != 0 || st.Served != 0 {
		t.Fatalf("leader stats %+v", st)
	}
	if n := w.builds.Load(); n != 0 {
		t.Fatalf("the refused follower built %d real clients", n)
	}
}

// A stranger that grabs the address first (here a Go leader with another
// key) is refused with a clear error and receives nothing but hellos;
// followers keep trying and reach a real leader once it is gone.
func TestAuthSquatterRefusedThenRealLeader(t *testing.T) {
	tr, addr := memNet(t)
	sw := newWorld()
	squatter, err := cluster.New("Data", sw.factory, append(fastOpts(), cluster.WithTransport(tr), cluster.WithAddr(addr),
		cluster.WithAuth(auth.Config{Key: keyB}))...)
	if err != nil {
		t.Fatal(err)
	}
	ready(t, squatter)
	rec := newRecorder()
	w := newWorld()
	f := newClient(t, "Data", w, cluster.WithTransport(tr), cluster.WithAddr(addr),
		cluster.WithAuth(auth.Config{Key: keyA}), rec.opt())
	rec.wait(t, wait, "squatter refused", isErr(cluster.ErrHandshake))
	eventually(t, wait, "still trying", func() bool { return rec.count(isErr(cluster.ErrHandshake)) >= 3 })
	if _, err := f.Invoke(tctx(t, 100*time.Millisecond), "echo", "secret"); err == nil {
		t.Fatal("a call went through the squatter")
	}
	if st := squatter.Stats(); st.Followers != 0 || st.Served != 0 {
		t.Fatalf("the squatter got something: %+v", st)
	}
	if err := squatter.Close(tctx(t, wait)); err != nil {
		t.Fatal(err)
	}
	ready(t, f) // it elected itself once the address was free
	if got := mustInvoke[string](t, f, "echo", "mine"); got != "mine" {
		t.Fatalf("echo %q", got)
	}
	if f.Role() != cluster.RoleLeader || w.builds.Load() != 1 {
		t.Fatalf("role %v, builds %d", f.Role(), w.builds.Load())
	}
}

// UI-06, UI-07: same channel and address, different configuration:
// refused, and the error names both fingerprints.
func TestAuthFingerprintMismatch(t *testing.T) {
	_, tr, addr := startLeader(t, "DiamondClient@undefined", cluster.WithAuth(auth.Config{Fingerprint: "namespace=prod"}))
	rec := newRecorder()
	f := newClient(t, "DiamondClient@undefined", newWorld(), cluster.WithTransport(tr), cluster.WithAddr(addr),
		cluster.WithAuth(auth.Config{Fingerprint: "namespace=test"}), rec.opt())
	ev := rec.wait(t, wait, "mismatch", isErr(cluster.ErrHandshake))
	want := `fingerprint: leader has "namespace=prod", follower has "namespace=test"`
	if !strings.Contains(ev.Err.Error(), want) || !strings.Contains(ev.Err.Error(), "cluster identity mismatch") {
		t.Fatalf("event %q lacks %q", ev.Err, want)
	}
	if err := f.Ready(tctx(t, 50*time.Millisecond)); err == nil {
		t.Fatal("ready with another configuration")
	}
}

// Without a handshake: a Node follower, or a Go one with auth off, is
// refused and nothing reaches the real client; the refusal says why.
func TestAuthUnauthenticatedRegisterRefused(t *testing.T) {
	w := newWorld()
	_, tr, addr := startLeaderWorld(t, "Guarded", w)
	p := dialRaw(t, tr, addr)
	p.send(false, 1, 3000, protocol.ConnObject{Type: protocol.KindRegisterChannel, ChannelName: "Guarded"}, nil)
	pk, _ := p.expect(protocol.KindRegisterChannelRes)
	var rep struct {
		Success bool                  `json:"success"`
		Error   *protocol.RemoteError `json:"error"`
	}
	if err := json.Unmarshal(pk.App, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Success || rep.Error == nil || rep.Error.Code != cluster.CodeHandshake || !strings.Contains(rep.Error.Message, "sent no authentication") {
		t.Fatalf("reply %s", pk.App)
	}
	raw := json.RawMessage(`{"key":"k"}`)
	// Whatever it sends next, the connection is gone.
	p.send(false, 2, 3000, protocol.ConnObject{Type: protocol.KindSubscribe, Key: protocol.SubscriptionKey(raw), Reg: raw}, nil)
	p.send(false, 3, 3000, protocol.ConnObject{Type: protocol.KindInvoke, Method: "echo", ArgLength: 1}, []byte(`"x"`))
	expectHangUp(t, p)
	if subs, _ := w.subCount("k"); subs != 0 {
		t.Fatalf("upstream subscribed %d times", subs)
	}
	// A Go follower with authentication off is refused the same way.
	rec := newRecorder()
	newClient(t, "Guarded", newWorld(), cluster.WithTransport(tr), cluster.WithAddr(addr), cluster.WithInsecure(), rec.opt())
	ev := rec.wait(t, wait, "insecure follower refused", isErr(cluster.ErrHandshake))
	if !strings.Contains(ev.Err.Error(), "sent no authentication") {
		t.Fatalf("event %v", ev.Err)
	}
}

// A leader without authentication is refused by a follower that
// authenticates: its reply proves nothing.
func TestAuthInsecureLeaderRefused(t *testing.T) {
	_, tr, addr := startLeader(t, "Open", cluster.WithInsecure())
	rec := newRecorder()
	f := newClient(t, "Open", newWorld(), cluster.WithTransport(tr), cluster.WithAddr(addr), rec.opt())
	ev := rec.wait(t, wait, "insecure leader refused", isErr(cluster.ErrHandshake))
	if !strings.Contains(ev.Err.Error(), "follower") || !strings.Contains(ev.Err.Error(), "sent no authentication") {
		t.Fatalf("event %v", ev.Err)
	}
	if err := f.Ready(tctx(t, 50*time.Millisecond)); err == nil {
		t.Fatal("ready with an unauthenticated leader")
	}
}

// The leader admits nothing before the follower's proof: a peer that got
// the leader's reply but asks for something instead of confirming, that
// confirms with a forged proof, or that never confirms, is dropped, and
// nothing it asked for runs.
func TestAuthNoServiceBeforeConfirm(t *testing.T) {
	w := newWorld()
	rec := newRecorder()
	l, tr, addr := startLeaderWorld(t, "Strict", w, cluster.WithRegisterDeadline(200*time.Millisecond), rec.opt())
	raw := json.RawMessage(`{"key":"k"}`)
	leak, err := protocol.AppendArg(nil, protocol.JSON, "leak")
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]func(p *rawPeer){
		"invoke instead of confirm": func(p *rawPeer) {
			p.send(false, 3, 3000, protocol.ConnObject{Type: protocol.KindInvoke, Method: "emit", ArgLength: 1}, leak)
		},
		"subscribe instead of confirm": func(p *rawPeer) {
			p.send(false, 3, 3000, protocol.ConnObject{Type: protocol.KindSubscribe, Key: protocol.SubscriptionKey(raw), Reg: raw}, nil)
		},
		"forged confirm": func(p *rawPeer) {
			forged, _ := json.Marshal(map[string]any{"v": 1, "proof": make([]byte, 32)})
			p.send(false, 3, 3000, protocol.ConnObject{Type: "register_confirm", Ext: cluster.Ext{auth.ExtKey: forged}}, nil)
			p.send(false, 4, 3000, protocol.ConnObject{Type: protocol.KindInvoke, Method: "emit", ArgLength: 1}, leak)
		},
		"silence": func(*rawPeer) {},
	}
	for name, then := range cases {
		t.Run(name, func(t *testing.T) {
			p := dialRaw(t, tr, addr)
			p.helloOnly("Strict")
			start := time.Now()
			then(p)
			expectHangUp(t, p)
			if name == "silence" && time.Since(start) < 150*time.Millisecond {
				t.Fatalf("dropped after %v, before the register deadline", time.Since(start))
			}
		})
	}
	if subs, _ := w.subCount("k"); subs != 0 {
		t.Fatalf("upstream subscribed %d times", subs)
	}
	if n := rec.count(func(ev cluster.Event) bool { return ev.Kind == cluster.EventUpstream }); n != 0 {
		t.Fatalf("%d upstream events: a method ran", n)
	}
	if st := l.Stats(); st.Served != 0 || st.Followers != 0 {
		t.Fatalf("leader stats %+v", st)
	}
	// A real follower is still served.
	f := newClient(t, "Strict", newWorld(), cluster.WithTransport(tr), cluster.WithAddr(addr))
	if got := mustInvoke[string](t, f, "echo", "ok"); got != "ok" {
		t.Fatalf("echo %q", got)
	}
}

// A follower believes nothing from a leader before it proved itself: a
// fake leader that pushes a value before its (unprovable) reply is
// dropped, and the value never reaches a listener.
func TestAuthNoPushBeforeProof(t *testing.T) {
	tr, addr := memNet(t)
	fakeLeader(t, tr, addr, func(_ int, p *rawPeer) {
		for {
			pk, co, err := p.next()
			if err != nil {
				return
			}
			if co.Type == protocol.KindRegisterChannel {
				p.send(false, 99, 3000, protocol.ConnObject{Type: protocol.KindSubscribeResult, Key: protocol.SubscriptionKey(json.RawMessage(`{"key":"k"}`))}, []byte(`["injected"]`))
				p.send(true, pk.ID, pk.Timeout, protocol.ConnObject{Type: protocol.KindRegisterChannelRes}, okReply)
			}
		}
	})
	rec := newRecorder()
	f := newClient(t, "Pushed", newWorld(), cluster.WithTransport(tr), cluster.WithAddr(addr), rec.opt())
	var got atomic.Int32
	if _, err := f.Subscribe(reg{Key: "k"}, func(cluster.Value) { got.Add(1) }); err != nil {
		t.Fatal(err)
	}
	ev := rec.wait(t, wait, "refused", isErr(cluster.ErrHandshake))
	if !strings.Contains(ev.Err.Error(), "before proving itself") && !strings.Contains(ev.Err.Error(), "sent no authentication") {
		t.Fatalf("event %v", ev.Err)
	}
	holdsFor(t, 50*time.Millisecond, "no value pushed by an unauthenticated leader is delivered", func() bool { return got.Load() == 0 })
}

// A leader slower to start than the register retry gets the register
// again on the same connection (CC-045). One register waits per
// connection, however many arrive (a stranger could send millions): the
// latest is answered once the real client started, as Node's follower
// expects (it gave the earlier ones up when it sent the next).
func TestAuthRegisterRetriedWhileLeaderStarts(t *testing.T) {
	tr, addr := memNet(t)
	slow := newWorld()
	slow.initDelay = 300 * time.Millisecond
	l := newClient(t, "Slow", slow, cluster.WithTransport(tr), cluster.WithAddr(addr))
	eventually(t, wait, "leading", func() bool { return l.Role() == cluster.RoleLeader })

	p := dialRaw(t, tr, addr)
	ctx := context.Background()
	hello, err := rawAuth().Hello(ctx, p.info("Slow"))
	if err != nil {
		t.Fatal(err)
	}
	for id := int64(1); id <= 3; id++ {
		p.send(false, id, 3000, protocol.ConnObject{Type: protocol.KindRegisterChannel, ChannelName: "Slow", Ext: hello}, nil)
	}
	pk, co := p.expect(protocol.KindRegisterChannelRes)
	if pk.ID != 3 {
		t.Fatalf("register %d answered, want the latest (3)", pk.ID)
	}
	replies := []cluster.Ext{nil, nil, co.Ext}
	confirm, err := rawAuth().Confirm(ctx, p.info("Slow"), hello, replies[2])
	if err != nil {
		t.Fatal(err)
	}
	p.send(false, 4, 3000, protocol.ConnObject{Type: "register_confirm", Ext: confirm}, nil)
	arg, err := protocol.AppendArg(nil, protocol.JSON, "late")
	if err != nil {
		t.Fatal(err)
	}
	p.send(false, 5, 3000, protocol.ConnObject{Type: protocol.KindInvoke, Method: "echo", ArgLength: 1}, arg)
	pk, co = p.expect(protocol.KindInvokeResult)
	if !co.Success || string(pk.App) != `"late"` {
		t.Fatalf("invoke result %v %s", co.Success, pk.App)
	}

	// And a real follower that retries becomes ready.
	slow2 := newWorld()
	slow2.initDelay = 300 * time.Millisecond
	tr2, addr2 := memNet(t)
	l2 := newClient(t, "Slow", slow2, cluster.WithTransport(tr2), cluster.WithAddr(addr2))
	eventually(t, wait, "leading", func() bool { return l2.Role() == cluster.RoleLeader })
	f := newClient(t, "Slow", newWorld(), cluster.WithTransport(tr2), cluster.WithAddr(addr2),
		cluster.WithResponseTimeout(100*time.Millisecond), cluster.WithRegisterRetry(20*time.Millisecond))
	ready(t, f)
	if got := mustInvoke[string](t, f, "echo", "late"); got != "late" {
		t.Fatalf("echo %q", got)
	}
}

// WithInsecure is logged as a warning at start; New fails on an unusable
// secret file, except in single mode, which authenticates nothing.
func TestAuthOptions(t *testing.T) {
	var buf syncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	tr, addr := memNet(t)
	newClient(t, "Open", newWorld(), cluster.WithTransport(tr), cluster.WithAddr(addr), cluster.WithInsecure(), cluster.WithLogger(logger))
	if s := buf.String(); !strings.Contains(s, "level=WARN") || !strings.Contains(s, "authentication is off") {
		t.Fatalf("log %q", s)
	}

	dir := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	bad := auth.Config{SecretFile: filepath.Join(dir, "secret")}
	_, err := cluster.New("Bad", newWorld().factory, cluster.WithAuth(bad), cluster.WithSingleMode(false))
	if runtime.GOOS != "windows" && !errors.Is(err, auth.ErrSecretFile) {
		t.Fatalf("New with a world-writable secret directory: %v", err)
	}
	c, err := cluster.New("Bad", newWorld().factory, cluster.WithAuth(bad), cluster.WithSingleMode(true))
	if err != nil {
		t.Fatalf("single mode: %v", err)
	}
	c.Close(context.Background())
	for name, opt := range map[string]cluster.Option{
		"short key":        cluster.WithAuth(auth.Config{Key: []byte("short")}),
		"long fingerprint": cluster.WithAuth(auth.Config{Fingerprint: strings.Repeat("x", auth.MaxFingerprint+1)}),
	} {
		if _, err := cluster.New("X", newWorld().factory, opt); !errors.Is(err, cluster.ErrInvalidOption) || !errors.Is(err, auth.ErrInvalidConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// ---- helpers ----

// startLeaderWorld is startLeader with the test's own world.
func startLeaderWorld(t *testing.T, name string, w *world, opts ...cluster.Option) (*cluster.Client, transport.Transport, string) {
	t.Helper()
	tr, addr := memNet(t)
	l := newClient(t, name, w, append([]cluster.Option{cluster.WithTransport(tr), cluster.WithAddr(addr)}, opts...)...)
	ready(t, l)
	return l, tr, addr
}

// helloOnly registers with a genuine hello and checks the leader's reply,
// but does not confirm.
func (p *rawPeer) helloOnly(channel string) {
	p.t.Helper()
	ctx := context.Background()
	hello, err := rawAuth().Hello(ctx, p.info(channel))
	if err != nil {
		p.t.Fatal(err)
	}
	p.send(false, 1, 3000, protocol.ConnObject{Type: protocol.KindRegisterChannel, ChannelName: channel, Ext: hello}, nil)
	_, co := p.expect(protocol.KindRegisterChannelRes)
	if _, err := rawAuth().Confirm(ctx, p.info(channel), hello, co.Ext); err != nil {
		p.t.Fatalf("the leader did not prove itself: %v", err)
	}
}

func expectHangUp(t *testing.T, p *rawPeer) {
	t.Helper()
	for {
		_, co, err := p.next()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal("the leader kept the connection")
			}
			return
		}
		if co.Type == protocol.KindInvokeResult || co.Type == protocol.KindSubscribeResult {
			t.Fatalf("the leader answered a %s", co.Type)
		}
	}
}
