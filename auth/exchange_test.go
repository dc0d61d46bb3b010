package auth

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/transport"
	"github.com/go-clusterclient/clusterclient/transport/kcp"
	"github.com/go-clusterclient/clusterclient/transport/tcp"
	"github.com/go-clusterclient/clusterclient/transport/unix"
	"github.com/go-clusterclient/clusterclient/transport/yamux"
)

// The tests carry the four handshake messages over real transport conns
// in a minimal framing of their own (a 4-byte length, then JSON), so that
// peer credentials, EOFs and refusals are the real ones; package cluster
// carries them in register packets.

type frame struct {
	Ext   Ext    `json:"ext,omitempty"`
	Error string `json:"error,omitempty"`
}

const maxFrame = 64 << 10

func writeFrame(c net.Conn, f frame) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	_, err = c.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...))
	return err
}

func readFrame(c net.Conn) (frame, error) {
	var n [4]byte
	if _, err := io.ReadFull(c, n[:]); err != nil {
		return frame{}, err
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > maxFrame {
		return frame{}, fmt.Errorf("frame of %d bytes", size)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(c, b); err != nil {
		return frame{}, err
	}
	var f frame
	return f, json.Unmarshal(b, &f)
}

// errRemote is a refusal the other side sent.
var errRemote = errors.New("refused by the peer")

// errSilent means the peer closed the connection without a word: a
// follower that refused the leader sends nothing, not even its refusal.
var errSilent = errors.New("peer closed without sending")

func recv(c net.Conn) (Ext, error) {
	f, err := readFrame(c)
	if errors.Is(err, io.EOF) {
		return nil, errSilent
	}
	if err != nil {
		return nil, err
	}
	if f.Error != "" {
		return nil, fmt.Errorf("%w: %s", errRemote, f.Error)
	}
	return f.Ext, nil
}

// leaderResult is what the leader side saw; mode is the mode it chose.
type leaderResult struct {
	mode string
	err  error
}

// runLeader runs Admit and Verify on c and tells the follower the verdict.
func runLeader(ctx context.Context, h *Handshake, info PeerInfo) leaderResult {
	c := info.Conn
	hello, err := recv(c)
	if err != nil {
		return leaderResult{err: err}
	}
	reply, err := h.Admit(ctx, info, hello)
	if err != nil {
		writeFrame(c, frame{Error: err.Error()})
		return leaderResult{err: err}
	}
	r, _ := parseReply(reply)
	if err := writeFrame(c, frame{Ext: reply}); err != nil {
		return leaderResult{mode: r.Mode, err: err}
	}
	proof, err := recv(c)
	if err != nil {
		return leaderResult{mode: r.Mode, err: err}
	}
	if err := h.Verify(ctx, info, hello, reply, proof); err != nil {
		writeFrame(c, frame{Error: err.Error()})
		return leaderResult{mode: r.Mode, err: err}
	}
	return leaderResult{mode: r.Mode, err: writeFrame(c, frame{Ext: Ext{}})}
}

// runFollower runs Hello and Confirm on c; on a refusal of the leader it
// closes c without sending anything more.
func runFollower(ctx context.Context, h *Handshake, info PeerInfo) error {
	c := info.Conn
	hello, err := h.Hello(ctx, info)
	if err != nil {
		return err
	}
	if err := writeFrame(c, frame{Ext: hello}); err != nil {
		return err
	}
	reply, err := recv(c)
	if err != nil {
		return err
	}
	proof, err := h.Confirm(ctx, info, hello, reply)
	if err != nil {
		c.Close()
		return err
	}
	if err := writeFrame(c, frame{Ext: proof}); err != nil {
		return err
	}
	_, err = recv(c)
	return err
}

// pair returns both ends of one connection over tr at addr (which may
// end in port 0), the accepted end first.
func pair(t testing.TB, tr transport.Transport, addr string) (leader, follower net.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ln, err := tr.Listen(ctx, addr)
	if err != nil {
		t.Fatalf("listen %s %s: %v", tr.Name(), addr, err)
	}
	t.Cleanup(func() { ln.Close() }) // after the conns: cleanups run last-in first-out
	type accepted struct {
		c   net.Conn
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		ch <- accepted{c, err}
	}()
	follower, err = tr.Dial(ctx, ln.Addr().String())
	if err != nil {
		t.Fatalf("dial %s %s: %v", tr.Name(), ln.Addr(), err)
	}
	t.Cleanup(func() { follower.Close() })
	a := <-ch
	if a.err != nil {
		t.Fatalf("accept %s %s: %v", tr.Name(), ln.Addr(), a.err)
	}
	t.Cleanup(func() { a.c.Close() })
	return a.c, follower
}

// exchange runs both sides over one connection of tr and returns what
// each saw.
func exchange(t testing.TB, tr transport.Transport, addr string, leader, follower *Handshake) (leaderResult, error) {
	t.Helper()
	lc, fc := pair(t, tr, addr)
	return exchangeOn(t, lc, fc, tr.Name(), addr, leader, follower)
}

func exchangeOn(t testing.TB, lc, fc net.Conn, trName, addr string, leader, follower *Handshake) (leaderResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	deadline, _ := ctx.Deadline()
	lc.SetDeadline(deadline)
	fc.SetDeadline(deadline)
	ch := make(chan leaderResult, 1)
	go func() {
		ch <- runLeader(ctx, leader, PeerInfo{Channel: "DataClient", Transport: trName, Addr: addr, Conn: lc})
	}()
	ferr := runFollower(ctx, follower, PeerInfo{Channel: "DataClient", Transport: trName, Addr: addr, Conn: fc})
	return <-ch, ferr
}

// transports are the media the tests authenticate over; wantMode is
// the mode a leader picks on them.
type medium struct {
	name     string
	tr       func(t testing.TB) transport.Transport
	addr     func(t testing.TB) string
	wantMode string
}

func media() []medium {
	loop := func(testing.TB) string { return "127.0.0.1:0" }
	sock := func(t testing.TB) string { return shortSocketPath(t) }
	newUnix := func(t testing.TB) transport.Transport {
		tr, err := unix.New(unix.DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	ms := []medium{
		{"tcp", func(testing.TB) transport.Transport { return tcp.New(tcp.Config{}) }, loop, modeHMAC},
		{"kcp", func(t testing.TB) transport.Transport { return mustTransport(t)(kcp.New(kcp.Config{})) }, loop, modeHMAC},
		{"yamux-tcp", func(t testing.TB) transport.Transport {
			return mustTransport(t)(yamux.New(yamux.DefaultConfig(tcp.New(tcp.Config{}))))
		}, loop, modeHMAC},
		{"unix", newUnix, sock, modeCred},
		{"yamux-unix", func(t testing.TB) transport.Transport {
			return mustTransport(t)(yamux.New(yamux.DefaultConfig(newUnix(t))))
		}, sock, modeCred},
	}
	if !credsSupported {
		// Elsewhere unix sockets carry no kernel credentials: the key
		// protects them like TCP.
		ms[3].wantMode, ms[4].wantMode = modeHMAC, modeHMAC
	}
	return ms
}

// mustTransport returns a function that passes on a transport's New result,
// failing t if New failed.
func mustTransport(t testing.TB) func(transport.Transport, error) transport.Transport {
	return func(tr transport.Transport, err error) transport.Transport {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
}

// credsSupported: unix sockets carry kernel peer credentials here.
var credsSupported = runtime.GOOS == "linux"

// shortSocketPath returns a socket path in a fresh 0700 directory, short
// enough for sun_path (t.TempDir's can be too long).
func shortSocketPath(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "auth")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "s.sock")
}
