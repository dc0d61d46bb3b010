package cluster_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/auth"
	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/protocol"
	"github.com/go-clusterclient/clusterclient/transport/tcp"
)

// checkWhyNot checks that err, from Ready or Invoke giving up for want of
// a leader, says both that the caller's deadline passed and the last
// reason (issue 16, point 6).
func checkWhyNot(t *testing.T, what string, err error, reason error, words ...string) {
	t.Helper()
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, reason) {
		t.Fatalf("%s: %v: want both %v and %v", what, err, context.DeadlineExceeded, reason)
	}
	for _, w := range append([]string{"deadline exceeded", "last reason"}, words...) {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("%s: %q does not say %q", what, err, w)
		}
	}
}

// A follower refused by the handshake (another key) says so when its
// Ready or call gives up.
func TestWhyNotHandshakeRefused(t *testing.T) {
	_, tr, addr := startLeader(t, "Why", cluster.WithAuth(auth.Config{Key: keyA}))
	rec := newRecorder()
	f := newClient(t, "Why", newWorld(), cluster.WithTransport(tr), cluster.WithAddr(addr),
		cluster.WithAuth(auth.Config{Key: keyB}), rec.opt())
	rec.wait(t, wait, "refused", isErr(cluster.ErrHandshake))
	checkWhyNot(t, "ready", f.Ready(tctx(t, 200*time.Millisecond)), cluster.ErrHandshake, "handshake refused")
	_, err := f.Invoke(tctx(t, 200*time.Millisecond), "version")
	checkWhyNot(t, "invoke", err, cluster.ErrHandshake, "handshake refused")
}

// A follower with another codec says "codec mismatch".
func TestWhyNotCodecMismatch(t *testing.T) {
	_, tr, addr := startLeader(t, "Why")
	rec := newRecorder()
	f := newClient(t, "Why", newWorld(), cluster.WithTransport(tr), cluster.WithAddr(addr),
		cluster.WithCodec(protocol.SerializeJSON), rec.opt())
	rec.wait(t, wait, "codec mismatch", isErr(cluster.ErrProtocol))
	checkWhyNot(t, "ready", f.Ready(tctx(t, 200*time.Millisecond)), cluster.ErrProtocol, "codec mismatch")
}

// stranger holds a TCP address without being a leader: it accepts and
// then says nothing (reply nil) or says reply.
func stranger(t *testing.T, reply []byte) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			if reply != nil {
				c.Write(reply)
			}
			wg.Add(1)
			go func() { defer wg.Done(); io.Copy(io.Discard, c) }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().(*net.TCPAddr).Port
}

func strangerClient(t *testing.T, port int, rec *recorder) *cluster.Client {
	return newClient(t, "Why", newWorld(), cluster.WithTransport(tcp.New(tcp.Config{})), cluster.WithPort(port),
		cluster.WithAuth(auth.Config{Key: keyA}), cluster.WithResponseTimeout(200*time.Millisecond), rec.opt())
}

// A process that accepts and says nothing: no answer to register_channel
// is the reason (the leader is unresponsive).
func TestWhyNotSilentStranger(t *testing.T) {
	f := strangerClient(t, stranger(t, nil), newRecorder())
	err := f.Ready(tctx(t, 1500*time.Millisecond))
	t.Log(err)
	checkWhyNot(t, "ready", err, cluster.ErrLeaderUnresponsive, "register_channel")
}

// A process that answers garbage (an HTTP server): a protocol error.
func TestWhyNotGarbageStranger(t *testing.T) {
	rec := newRecorder()
	f := strangerClient(t, stranger(t, []byte("HTTP/1.1 400 Bad Request\r\n\r\n")), rec)
	rec.wait(t, wait, "protocol error", isErr(cluster.ErrProtocol))
	checkWhyNot(t, "ready", f.Ready(tctx(t, 200*time.Millisecond)), cluster.ErrProtocol)
}

// Without any reason (no election finished yet), the error is the
// context's alone.
func TestWhyNotNoReason(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f := strangerClient(t, stranger(t, nil), newRecorder())
	err := f.Ready(ctx)
	if !errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "last reason") {
		t.Fatalf("ready: %v", err)
	}
}
