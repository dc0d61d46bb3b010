package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/go-clusterclient/clusterclient/transport"
	"github.com/go-clusterclient/clusterclient/transport/tcp"
)

func keyed(t testing.TB, key string, fp string) *Handshake {
	t.Helper()
	h, err := New(Config{Key: []byte(key), Fingerprint: fp})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

const (
	keyA = "0123456789abcdef-user-a"
	keyB = "0123456789abcdef-user-b"
)

// Same key on both sides: accepted both ways on every transport, in the
// mode the medium allows.
func TestAcceptedOnEveryTransport(t *testing.T) {
	for _, m := range media() {
		t.Run(m.name, func(t *testing.T) {
			h := keyed(t, keyA, "fp")
			lr, ferr := exchange(t, m.tr(t), m.addr(t), h, h)
			if lr.err != nil || ferr != nil {
				t.Fatalf("leader: %v; follower: %v", lr.err, ferr)
			}
			if lr.mode != m.wantMode {
				t.Errorf("mode %q, want %q", lr.mode, m.wantMode)
			}
		})
	}
}

// On a medium without kernel credentials the key alone decides, so
// different keys are refused; on unix sockets the kernel decides, so the
// same user with another key is still accepted.
func TestWrongKeyPerTransport(t *testing.T) {
	for _, m := range media() {
		t.Run(m.name, func(t *testing.T) {
			lr, ferr := exchange(t, m.tr(t), m.addr(t), keyed(t, keyA, ""), keyed(t, keyB, ""))
			if m.wantMode == modeCred {
				if lr.err != nil || ferr != nil {
					t.Fatalf("same uid, different keys over kernel credentials: leader %v; follower %v", lr.err, ferr)
				}
				return
			}
			// The follower refuses first: the leader cannot prove itself
			// with the follower's key.
			if !errors.Is(ferr, ErrUnauthenticated) {
				t.Fatalf("follower: %v, want ErrUnauthenticated", ferr)
			}
			if !errors.Is(lr.err, errSilent) {
				t.Errorf("leader: %v, want the follower to leave without a word", lr.err)
			}
		})
	}
}

// A stranger holding the address with the wrong secret: the follower
// refuses it with a clear error and sends it nothing after the hello, not
// even its own proof.
func TestFakeLeaderRefusedByFollower(t *testing.T) {
	lc, fc := pair(t, tcp.New(tcp.Config{}), "127.0.0.1:0")
	fake := keyed(t, keyB, "")
	follower := keyed(t, keyA, "")
	addr := "127.0.0.1:7777"
	lr, ferr := exchangeOn(t, lc, fc, "tcp", addr, fake, follower)
	var e *Error
	if !errors.As(ferr, &e) || !errors.Is(ferr, ErrUnauthenticated) {
		t.Fatalf("follower: %v, want an *Error matching ErrUnauthenticated", ferr)
	}
	if e.Role != RoleFollower || e.Channel != "DataClient" || e.Addr != addr || e.Transport != "tcp" {
		t.Errorf("error names %+v", e)
	}
	for _, want := range []string{"follower", `"DataClient"`, "tcp 127.0.0.1:7777", "leader's proof does not match", "stranger"} {
		if !strings.Contains(ferr.Error(), want) {
			t.Errorf("follower error %q lacks %q", ferr, want)
		}
	}
	if !errors.Is(lr.err, errSilent) {
		t.Errorf("fake leader: %v, want nothing after the hello", lr.err)
	}
}

// A follower with the wrong secret is refused by the leader. A real
// follower with a wrong key would already have refused the leader, so
// this one is an attacker: it skips the leader's proof and sends a proof
// made with its own key, then one copied from another connection, then
// the leader's own proof reflected.
func TestFollowerRefusedByLeader(t *testing.T) {
	ctx := context.Background()
	leader := keyed(t, keyA, "")
	info := PeerInfo{Channel: "DataClient", Transport: "tcp", Addr: "127.0.0.1:7777"}

	// A genuine exchange, recorded.
	rec := recordExchange(t, leader, leader, info)

	cases := map[string]func(hello, reply Ext) Ext{
		"wrong key": func(hello, reply Ext) Ext {
			ext, err := keyed(t, keyB, "").forgeProof(hello, reply, info)
			if err != nil {
				t.Fatal(err)
			}
			return ext
		},
		"replayed proof": func(Ext, Ext) Ext { return rec.proof },
		"reflected leader proof": func(_, reply Ext) Ext {
			r, _ := parseReply(reply)
			ext, _ := encode(proofMsg{V: version, Proof: r.Proof})
			return ext
		},
		"no proof": func(Ext, Ext) Ext { return Ext{} },
		"zero proof": func(Ext, Ext) Ext {
			ext, _ := encode(proofMsg{V: version, Proof: make([]byte, macSize)})
			return ext
		},
	}
	for name, forge := range cases {
		t.Run(name, func(t *testing.T) {
			attacker := keyed(t, keyB, "")
			hello, err := attacker.Hello(ctx, info)
			if err != nil {
				t.Fatal(err)
			}
			reply, err := leader.Admit(ctx, info, hello)
			if err != nil {
				t.Fatalf("admit: %v", err)
			}
			err = leader.Verify(ctx, info, hello, reply, forge(hello, reply))
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, ErrUnauthenticated) || e.Role != RoleLeader {
				t.Fatalf("verify: %v, want the leader's ErrUnauthenticated", err)
			}
		})
	}

	// Replaying the whole recorded follower side on a new exchange: the
	// leader's fresh nonce makes the old proof worthless.
	t.Run("replayed session", func(t *testing.T) {
		reply, err := leader.Admit(ctx, info, rec.hello)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(reply[ExtKey], rec.reply[ExtKey]) {
			t.Fatal("the leader answered a replayed hello with the recorded reply")
		}
		if err := leader.Verify(ctx, info, rec.hello, reply, rec.proof); !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("verify: %v, want ErrUnauthenticated", err)
		}
	})
}

// The follower also refuses a recorded leader reply (a stranger that was
// once a follower and now holds the address replays what the real leader
// told it).
func TestReplayedReplyRefused(t *testing.T) {
	ctx := context.Background()
	h := keyed(t, keyA, "")
	info := PeerInfo{Channel: "DataClient", Transport: "tcp", Addr: "127.0.0.1:7777"}
	rec := recordExchange(t, h, h, info)
	hello, err := h.Hello(ctx, info)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Confirm(ctx, info, hello, rec.reply); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("confirm of a replayed reply: %v, want ErrUnauthenticated", err)
	}
	// A reply that claims kernel credentials on a connection without them.
	credReply, _ := encode(replyMsg{V: version, Mode: modeCred, ID: h.Identity(info)})
	if _, err := h.Confirm(ctx, info, hello, credReply); !errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), "kernel peer credentials") {
		t.Fatalf("confirm of a peercred reply without credentials: %v", err)
	}
}

// Any bit flipped in a transcript field breaks the proof.
func TestTamperedFieldsRefused(t *testing.T) {
	ctx := context.Background()
	h := keyed(t, keyA, "fp")
	info := PeerInfo{Channel: "DataClient", Transport: "tcp", Addr: "127.0.0.1:7777"}
	hello, _ := h.Hello(ctx, info)
	reply, err := h.Admit(ctx, info, hello)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := parseReply(reply)
	mutations := map[string]func(*replyMsg){
		"nonce":      func(m *replyMsg) { m.Nonce[0] ^= 1 },
		"proof":      func(m *replyMsg) { m.Proof[31] ^= 0x80 },
		"identity":   func(m *replyMsg) { m.ID.Fingerprint = "fq" }, // would also mismatch, but the proof fails first
		"addr":       func(m *replyMsg) { m.ID.Addr = "127.0.0.1:7778" },
		"nonce swap": func(m *replyMsg) { h, _ := parseHello(hello); m.Nonce = h.Nonce },
	}
	for name, mutate := range mutations {
		t.Run(name, func(t *testing.T) {
			m := r
			m.Nonce = bytes.Clone(r.Nonce)
			m.Proof = bytes.Clone(r.Proof)
			mutate(&m)
			ext, _ := encode(m)
			if _, err := h.Confirm(ctx, info, hello, ext); !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("confirm: %v, want ErrUnauthenticated", err)
			}
		})
	}
}

// UI-06, UI-07: a peer of another cluster is refused, and the error names
// both sides' values.
func TestIdentityMismatch(t *testing.T) {
	base := PeerInfo{Channel: "DataClient", Transport: "tcp", Addr: "127.0.0.1:7777"}
	cases := []struct {
		name       string
		lfp, ffp   string
		finfo      func(PeerInfo) PeerInfo
		wantInMsgs []string
	}{
		{"fingerprint", "ns=prod", "ns=test", nil,
			[]string{`fingerprint: leader has "ns=prod", follower has "ns=test"`}},
		{"fingerprint missing", "ns=prod", "", nil,
			[]string{`fingerprint: leader has "ns=prod", follower has ""`}},
		{"channel", "", "", func(p PeerInfo) PeerInfo { p.Channel = "DiamondClient@undefined"; return p },
			[]string{`channel: leader has "DataClient", follower has "DiamondClient@undefined"`}},
		{"address", "", "", func(p PeerInfo) PeerInfo { p.Addr = "[::1]:7777"; return p },
			[]string{`address: leader has "127.0.0.1:7777", follower has "[::1]:7777"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lc, fc := pair(t, tcp.New(tcp.Config{}), "127.0.0.1:0")
			leader, follower := keyed(t, keyA, c.lfp), keyed(t, keyA, c.ffp)
			finfo := base
			if c.finfo != nil {
				finfo = c.finfo(base)
			}
			ctx := context.Background()
			ch := make(chan leaderResult, 1)
			go func() {
				ch <- runLeader(ctx, leader, PeerInfo{Channel: base.Channel, Transport: base.Transport, Addr: base.Addr, Conn: lc})
			}()
			finfo.Conn = fc
			ferr := runFollower(ctx, follower, finfo)
			lr := <-ch
			if !errors.Is(lr.err, ErrIdentityMismatch) {
				t.Fatalf("leader: %v, want ErrIdentityMismatch", lr.err)
			}
			// The follower gets the leader's refusal, naming both sides.
			if !errors.Is(ferr, errRemote) {
				t.Fatalf("follower: %v, want the leader's refusal", ferr)
			}
			for _, want := range c.wantInMsgs {
				for side, err := range map[string]error{"leader": lr.err, "follower": ferr} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("%s's error %q lacks %q", side, err, want)
					}
				}
			}
		})
	}
}

// A leader that does not check identities (an older or altered one) still
// meets a follower that does: the follower refuses it after checking its
// proof, naming both sides.
func TestIdentityMismatchSeenByFollower(t *testing.T) {
	ctx := context.Background()
	leader, follower := keyed(t, keyA, "ns=prod"), keyed(t, keyA, "ns=test")
	info := PeerInfo{Channel: "DataClient", Transport: "tcp", Addr: "127.0.0.1:7777"}
	hello, _ := follower.Hello(ctx, info)
	h, _ := parseHello(hello)
	own := leader.Identity(info)
	nl := nonce()
	reply, _ := encode(replyMsg{V: version, Mode: modeHMAC, Nonce: nl, ID: own,
		Proof: proof(leader.key, labelLeader, h.Nonce, nl, own, h.ID)})
	_, err := follower.Confirm(ctx, info, hello, reply)
	if !errors.Is(err, ErrIdentityMismatch) {
		t.Fatalf("confirm: %v, want ErrIdentityMismatch", err)
	}
	want := `fingerprint: follower has "ns=test", leader has "ns=prod"`
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q lacks %q", err, want)
	}
}

// A Node peer (or a Go peer with auth off) sends no handshake field.
func TestPeerWithoutHandshake(t *testing.T) {
	ctx := context.Background()
	h := keyed(t, keyA, "")
	info := PeerInfo{Channel: "DataClient", Transport: "tcp", Addr: "127.0.0.1:7777"}
	nodeExt := Ext{"clusterclient": json.RawMessage(`{"v":1}`)}
	if _, err := h.Admit(ctx, info, nodeExt); !errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), "Node peer") {
		t.Errorf("admit: %v", err)
	}
	if _, err := h.Admit(ctx, info, nil); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("admit of nil: %v", err)
	}
	hello, _ := h.Hello(ctx, info)
	if _, err := h.Confirm(ctx, info, hello, nodeExt); !errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), "Node peer") {
		t.Errorf("confirm: %v", err)
	}
	reply, _ := h.Admit(ctx, info, hello)
	if err := h.Verify(ctx, info, hello, reply, nil); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("verify: %v", err)
	}
}

// Malformed fields are refused as unauthenticated and malformed, never
// with a panic.
func TestMalformedHello(t *testing.T) {
	ctx := context.Background()
	h := keyed(t, keyA, "")
	info := PeerInfo{Channel: "DataClient", Transport: "tcp", Addr: "127.0.0.1:7777"}
	big := `"` + strings.Repeat("x", MaxIdentityField+1) + `"`
	for name, raw := range map[string]string{
		"not json":         `{`,
		"null":             `null`,
		"array":            `[1,2]`,
		"version 2":        `{"v":2,"nonce":"` + b64(32) + `"}`,
		"short nonce":      `{"v":1,"nonce":"` + b64(31) + `"}`,
		"no nonce":         `{"v":1}`,
		"nonce not base64": `{"v":1,"nonce":"***"}`,
		"long channel":     `{"v":1,"nonce":"` + b64(32) + `","id":{"channel":` + big + `}}`,
		"huge":             `{"v":1,"pad":"` + strings.Repeat("x", maxField) + `"}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := h.Admit(ctx, info, Ext{ExtKey: json.RawMessage(raw)})
			if !errors.Is(err, ErrUnauthenticated) || !errors.Is(err, ErrMalformed) {
				t.Fatalf("admit: %v, want ErrUnauthenticated and ErrMalformed", err)
			}
		})
	}
}

func b64(n int) string {
	b, _ := json.Marshal(make([]byte, n))
	return strings.Trim(string(b), `"`)
}

// fakeCredConn reports chosen kernel credentials, to test the uid/gid
// policy without other users (the real thing is in uid_linux_test.go).
type fakeCredConn struct {
	net.Conn
	cred transport.Cred
}

func (c fakeCredConn) PeerCred() (transport.Cred, error) { return c.cred, nil }

func TestPeerCredPolicy(t *testing.T) {
	ctx := context.Background()
	if !credsSupported {
		t.Skip("no kernel peer credentials on " + runtime.GOOS)
	}
	self := uint32(os.Geteuid())
	other := self + 1000
	cases := []struct {
		name  string
		cfg   Config
		cred  transport.Cred
		allow bool
	}{
		{"same uid", Config{}, transport.Cred{PID: 1, UID: self, GID: 99}, true},
		{"other uid", Config{}, transport.Cred{PID: 1, UID: other, GID: 99}, false},
		{"allowed uid", Config{AllowUIDs: []uint32{other}}, transport.Cred{PID: 1, UID: other, GID: 99}, true},
		{"allowed gid", Config{AllowGIDs: []uint32{99}}, transport.Cred{PID: 1, UID: other, GID: 99}, true},
		{"other gid", Config{AllowGIDs: []uint32{98}}, transport.Cred{PID: 1, UID: other, GID: 99}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.Key = []byte(keyA)
			h, err := New(c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			conn := fakeCredConn{cred: c.cred}
			info := PeerInfo{Channel: "DataClient", Transport: "unix", Addr: "/run/x.sock", Conn: conn}
			hello, _ := h.Hello(ctx, info)
			reply, err := h.Admit(ctx, info, hello)
			if c.allow != (err == nil) {
				t.Fatalf("admit: %v, want allowed=%v", err, c.allow)
			}
			if err != nil {
				if !errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), "runs as uid") {
					t.Fatalf("admit: %v", err)
				}
				// The same policy applies to the leader in Confirm.
				credReply, _ := encode(replyMsg{V: version, Mode: modeCred, ID: h.Identity(info)})
				if _, err := h.Confirm(ctx, info, hello, credReply); !errors.Is(err, ErrUnauthenticated) {
					t.Fatalf("confirm: %v, want ErrUnauthenticated", err)
				}
				return
			}
			if r, _ := parseReply(reply); r.Mode != modeCred {
				t.Fatalf("mode %q", r.Mode)
			}
			p, err := h.Confirm(ctx, info, hello, reply)
			if err != nil {
				t.Fatal(err)
			}
			if err := h.Verify(ctx, info, hello, reply, p); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// The leader decides from its own connection that the kernel's check
// applies: a hello that says "no credentials" (a follower whose end hides
// them) does not turn it off, and such a follower must prove the key too.
// (Issue 14; the real thing, a uid 65534 follower holding the key, is in
// uid_linux_test.go.)
func TestPeerCredNotOptional(t *testing.T) {
	ctx := context.Background()
	if !credsSupported {
		t.Skip("no kernel peer credentials on " + runtime.GOOS)
	}
	self := uint32(os.Geteuid())
	for _, c := range []struct {
		name    string
		uid     uint32
		key     string
		wantErr string
	}{
		{"other uid with the key", self + 1000, keyA, "runs as uid"},
		{"same uid without the key", self, keyB, "follower's proof does not match"},
		{"same uid with the key", self, keyA, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			leader, follower := keyed(t, keyA, ""), keyed(t, c.key, "")
			lconn := fakeCredConn{cred: transport.Cred{PID: 1, UID: c.uid, GID: 99}}
			linfo := PeerInfo{Channel: "DataClient", Transport: "unix", Addr: "/run/x.sock", Conn: lconn}
			finfo := linfo
			finfo.Conn = nil // the follower's end reports nothing
			hello, err := follower.Hello(ctx, finfo)
			if err != nil {
				t.Fatal(err)
			}
			if m, _ := parseHello(hello); m.Cred {
				t.Fatal("the hello claims credentials")
			}
			reply, err := leader.Admit(ctx, linfo, hello)
			if err == nil {
				var p Ext
				if r, _ := parseReply(reply); r.Mode != modeHMAC {
					t.Fatalf("mode %q, want %q: the follower cannot check the leader's uid", r.Mode, modeHMAC)
				}
				// A follower without the key would refuse the leader here;
				// forge its proof to reach the leader's check.
				if p, err = follower.forgeProof(hello, reply, finfo); err != nil {
					t.Fatal(err)
				}
				err = leader.Verify(ctx, linfo, hello, reply, p)
			}
			if c.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("got %v, want ErrUnauthenticated saying %q", err, c.wantErr)
			}
		})
	}
}

// A conn that should report its peer's credentials and cannot is refused,
// not admitted on the key alone; one whose OS has none falls back to it.
func TestPeerCredFailure(t *testing.T) {
	ctx := context.Background()
	h := keyed(t, keyA, "")
	info := PeerInfo{Channel: "DataClient", Transport: "unix", Addr: "/run/x.sock"}
	hello, _ := h.Hello(ctx, info)
	info.Conn = failingCredConn{err: errors.New("getsockopt: bad file descriptor")}
	if _, err := h.Admit(ctx, info, hello); !errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), "bad file descriptor") {
		t.Fatalf("admit over a conn whose credentials fail: %v", err)
	}
	info.Conn = failingCredConn{err: fmt.Errorf("unix: peer credentials: %w", errors.ErrUnsupported)}
	reply, err := h.Admit(ctx, info, hello)
	if r, _ := parseReply(reply); err != nil || r.Mode != modeHMAC {
		t.Fatalf("admit where the OS has no credentials: %v (mode %q), want hmac mode", err, r.Mode)
	}
}

type failingCredConn struct {
	net.Conn
	err error
}

func (c failingCredConn) PeerCred() (transport.Cred, error) { return transport.Cred{}, c.err }

func TestConfigValidate(t *testing.T) {
	for name, cfg := range map[string]Config{
		"short key":        {Key: []byte("short")},
		"key and file":     {Key: []byte(keyA), SecretFile: "/x/secret"},
		"long fingerprint": {Key: []byte(keyA), Fingerprint: strings.Repeat("f", MaxFingerprint+1)},
		"bad fingerprint":  {Key: []byte(keyA), Fingerprint: "\xff"},
	} {
		if _, err := New(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", name, err)
		}
	}
	if _, err := New(Config{Key: []byte(keyA)[:MinKeySize]}); err != nil {
		t.Errorf("a %d-byte key: %v", MinKeySize, err)
	}
}

func TestFingerprint(t *testing.T) {
	type cfg struct {
		Endpoint  string
		Namespace string
	}
	a, err := Fingerprint(cfg{"acm.example:8080", "prod"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Fingerprint(cfg{"acm.example:8080", "prod"})
	c, _ := Fingerprint(cfg{"acm.example:8080", "test"})
	if a != b || a == c || len(a) != 32 {
		t.Errorf("fingerprints %q %q %q", a, b, c)
	}
	if _, err := Fingerprint(func() {}); err == nil {
		t.Error("no error for a func")
	}
}

// recorded is one genuine exchange's messages.
type recorded struct{ hello, reply, proof Ext }

func recordExchange(t testing.TB, leader, follower *Handshake, info PeerInfo) recorded {
	t.Helper()
	ctx := context.Background()
	hello, err := follower.Hello(ctx, info)
	if err != nil {
		t.Fatal(err)
	}
	reply, err := leader.Admit(ctx, info, hello)
	if err != nil {
		t.Fatal(err)
	}
	p, err := follower.Confirm(ctx, info, hello, reply)
	if err != nil {
		t.Fatal(err)
	}
	if err := leader.Verify(ctx, info, hello, reply, p); err != nil {
		t.Fatal(err)
	}
	return recorded{hello, reply, p}
}

// forgeProof is a follower's proof made with h's key without checking
// the leader's.
func (h *Handshake) forgeProof(hello, reply Ext, info PeerInfo) (Ext, error) {
	m, err := parseHello(hello)
	if err != nil {
		return nil, err
	}
	r, err := parseReply(reply)
	if err != nil {
		return nil, err
	}
	return encode(proofMsg{V: version, Proof: proof(h.key, labelFollower, m.Nonce, r.Nonce, r.ID, h.Identity(info))})
}

// Hello does not send an identity every leader refuses as malformed.
func TestHelloRefusesOversizedIdentity(t *testing.T) {
	h := keyed(t, keyA, "")
	info := PeerInfo{Channel: strings.Repeat("c", MaxIdentityField+1), Transport: "tcp", Addr: "127.0.0.1:7777"}
	if _, err := h.Hello(context.Background(), info); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "at most 4096") {
		t.Fatalf("hello: %v, want ErrInvalidConfig naming the bound", err)
	}
	info.Channel = info.Channel[1:]
	if _, err := h.Hello(context.Background(), info); err != nil {
		t.Fatalf("a channel of %d bytes: %v", len(info.Channel), err)
	}
}
