package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
)

// The fuzz exchange is deterministic (fixed nonces), so that the seeds,
// which hold valid proofs, stay valid in every fuzzing worker process.
var (
	fuzzInfo = PeerInfo{Channel: "DataClient", Transport: "tcp", Addr: "127.0.0.1:7777"}
	fuzzH    = &Handshake{key: []byte(keyA), fp: "fp", self: -1}
)

func fuzzExchange() (hello, reply, proofExt Ext) {
	nf := bytes.Repeat([]byte{0xF0}, nonceSize)
	nl := bytes.Repeat([]byte{0x0F}, nonceSize)
	id := fuzzH.Identity(fuzzInfo)
	hello, _ = encode(helloMsg{V: version, Nonce: nf, ID: id})
	reply, _ = encode(replyMsg{V: version, Mode: modeHMAC, Nonce: nl, ID: id, Proof: proof(fuzzH.key, labelLeader, nf, nl, id, id)})
	proofExt, _ = encode(proofMsg{V: version, Proof: proof(fuzzH.key, labelFollower, nf, nl, id, id)})
	return hello, reply, proofExt
}

// FuzzHandshakeFields feeds arbitrary bytes as each handshake field: the
// follower's hello to Admit (step 0), the leader's reply to Confirm (1),
// the follower's proof to Verify (2). Nothing may panic; every refusal is
// an *Error with a sentinel and a bounded message; whatever is accepted
// must decode to the genuine nonces and proofs (a forgery is never
// accepted) and survive a re-encoding unchanged.
func FuzzHandshakeFields(f *testing.F) {
	hello, reply, proofExt := fuzzExchange()
	for step, ext := range []Ext{hello, reply, proofExt} {
		f.Add(uint8(step), []byte(ext[ExtKey]))
	}
	credReply, _ := encode(replyMsg{V: version, Mode: modeCred, ID: fuzzH.Identity(fuzzInfo)})
	f.Add(uint8(1), []byte(credReply[ExtKey]))
	for _, s := range []string{`{}`, `null`, `[]`, `"x"`, `{"v":1,"nonce":null}`, `{"v":1,"mode":"hmac","proof":""}`,
		`{"v":1,"id":{"channel":"\u0000"}}`, `{"v":1e400}`, `{"v":-1}`} {
		for step := range 3 {
			f.Add(uint8(step), []byte(s))
		}
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, step uint8, data []byte) {
		ext := Ext{ExtKey: json.RawMessage(data)}
		var err error
		switch step % 3 {
		case 0:
			var out Ext
			out, err = fuzzH.Admit(ctx, fuzzInfo, ext)
			if err == nil {
				m, perr := parseHello(ext)
				if perr != nil {
					t.Fatalf("admitted a hello that does not parse: %v", perr)
				}
				roundTrip(t, m, parseHello)
				if _, rerr := parseReply(out); rerr != nil {
					t.Fatalf("Admit's own reply does not parse: %v", rerr)
				}
			}
		case 1:
			_, err = fuzzH.Confirm(ctx, fuzzInfo, hello, ext)
			if err == nil {
				got, _ := parseReply(ext)
				want, _ := parseReply(reply)
				if !bytes.Equal(got.Nonce, want.Nonce) || !bytes.Equal(got.Proof, want.Proof) || got.ID != want.ID {
					t.Fatalf("accepted a forged reply %q", data)
				}
				roundTrip(t, got, parseReply)
			}
		case 2:
			err = fuzzH.Verify(ctx, fuzzInfo, hello, reply, ext)
			if err == nil {
				got, _ := parseProof(ext, modeHMAC)
				want, _ := parseProof(proofExt, modeHMAC)
				if !bytes.Equal(got.Proof, want.Proof) {
					t.Fatalf("accepted a forged proof %q", data)
				}
			}
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Kind == nil {
				t.Fatalf("refusal without a sentinel: %v", err)
			}
			if !errors.Is(err, ErrUnauthenticated) && !errors.Is(err, ErrIdentityMismatch) {
				t.Fatalf("refusal is neither unauthenticated nor a mismatch: %v", err)
			}
			if n := len(err.Error()); n > 2048 {
				t.Fatalf("refusal message of %d bytes", n)
			}
		}
	})
}

// roundTrip checks that a parsed message encodes and parses back to itself.
func roundTrip[M any](t *testing.T, m M, parse func(Ext) (M, error)) {
	t.Helper()
	ext, err := encode(m)
	if err != nil {
		t.Fatal(err)
	}
	back, err := parse(ext)
	if err != nil {
		t.Fatalf("re-encoded %s does not parse: %v", ext[ExtKey], err)
	}
	a, _ := json.Marshal(m)
	b, _ := json.Marshal(back)
	if !bytes.Equal(a, b) {
		t.Fatalf("round trip changed %s into %s", a, b)
	}
}
