package conformance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/transport"
)

var registerCases = []testCase{
	{name: "follower", run: testRegisterFollower},
	{name: "second-channel", run: testRegisterSecondChannel},
	{name: "unknown-channel", run: testRegisterUnknownChannel},
	{name: "peer-credentials", needs: capPeerCred, run: testRegisterPeerCredentials},
}

// A follower in another process registers with the leader of its channel
// and reaches the leader's real client.
func testRegisterFollower(e *env) {
	addr := e.addr()
	l := e.process().join("Register", addr)
	l.mustLead()
	f := e.process().join("Register", addr)
	f.mustFollow()
	if got, want := f.whoami(), l.whoami(); got != want {
		e.fatalf("the follower reaches real client %q, the leader owns %q", got, want)
	}
	if n := l.c.Stats().Followers; n != 1 {
		e.errorf("leader stats: %d followers registered, want 1", n)
	}
	if n := len(e.upstream().built("Register")); n != 1 {
		e.errorf("%d real clients built for one leader and one follower, want 1", n)
	}
}

// Two channels share the address: one listener in the leading process
// serves both, and each follower reaches its own channel's real client.
func testRegisterSecondChannel(e *env) {
	addr := e.addr()
	leading := e.process()
	la := leading.join("ChannelA", addr)
	la.mustLead()
	lb := leading.join("ChannelB", addr)
	lb.mustLead()
	following := e.process()
	fa := following.join("ChannelA", addr)
	fb := following.join("ChannelB", addr)
	fa.mustFollow()
	fb.mustFollow()
	for _, c := range []struct {
		f, l *member
	}{{fa, la}, {fb, lb}} {
		got, want := c.f.whoami(), c.l.whoami()
		if got != want {
			e.errorf("%s reaches real client %q, want %q", c.f.label, got, want)
		}
		if !strings.Contains(got, c.l.c.Name()) {
			e.errorf("%s reaches real client %q of another channel", c.f.label, got)
		}
	}
}

// A process that owns the address but leads no such channel answers at
// once: the follower fails with ErrNoChannel naming the channel, long
// before its response timeout, and joins once the channel gets a leader.
func testRegisterUnknownChannel(e *env) {
	addr := e.addr()
	owner := e.process()
	owner.join("Owner", addr).mustLead()
	// A response timeout far beyond the wait below: only an answer from
	// the leader can end Ready in time.
	lonely := e.process().join("Nobody", addr, cluster.WithResponseTimeout(10*opTimeout))
	e.stepf("waiting for the follower of an unknown channel to fail")
	err := lonely.c.Ready(e.Timeout(opTimeout))
	switch {
	case err == nil:
		e.fatalf("a follower of a channel nobody leads on %s is ready", addr)
	case !errors.Is(err, cluster.ErrNoChannel):
		e.fatalf("Ready of a follower of a channel nobody leads: %v, want an error matching cluster.ErrNoChannel", err)
	case !strings.Contains(err.Error(), `"Nobody"`):
		e.errorf("the error %q does not name the channel \"Nobody\"", err)
	}
	// The owner starts leading the channel: the follower joins it.
	owner.join("Nobody", addr).mustLead()
	e.eventually("the follower of the new channel is ready", func() bool {
		st := lonely.c.Stats()
		return st.Ready && st.Role == cluster.RoleFollower
	})
	if got := lonely.whoami(); !strings.Contains(got, "Nobody") {
		e.errorf("the follower reaches real client %q", got)
	}
}

// credHandshake records what the conns handed to the session layer say
// about their peers.
type credHandshake struct {
	mu    sync.Mutex
	creds map[string][]transport.Cred // by side: "leader", "follower"
	errs  []error
}

func (h *credHandshake) record(side string, info cluster.PeerInfo) {
	h.mu.Lock()
	defer h.mu.Unlock()
	pc, ok := info.Conn.(transport.PeerCredentials)
	if !ok {
		h.errs = append(h.errs, fmt.Errorf("the %s's handshake got a %T, which does not implement transport.PeerCredentials", side, info.Conn))
		return
	}
	cred, err := pc.PeerCred()
	if err != nil {
		h.errs = append(h.errs, fmt.Errorf("%s side: PeerCred: %w", side, err))
		return
	}
	if h.creds == nil {
		h.creds = map[string][]transport.Cred{}
	}
	h.creds[side] = append(h.creds[side], cred)
}

func (h *credHandshake) Hello(_ context.Context, info cluster.PeerInfo) (cluster.Ext, error) {
	h.record("follower", info)
	return nil, nil
}

func (h *credHandshake) Admit(_ context.Context, info cluster.PeerInfo, _ cluster.Ext) (cluster.Ext, error) {
	h.record("leader", info)
	return nil, nil
}

func (h *credHandshake) Confirm(context.Context, cluster.PeerInfo, cluster.Ext, cluster.Ext) (cluster.Ext, error) {
	return nil, nil
}

func (h *credHandshake) Verify(context.Context, cluster.PeerInfo, cluster.Ext, cluster.Ext, cluster.Ext) error {
	return nil
}

// The session layer sees the kernel's peer credentials: on both ends of a
// registration, the conn given to the Handshake reports this process.
func testRegisterPeerCredentials(e *env) {
	hs := &credHandshake{}
	addr := e.addr()
	l := e.process().join("Creds", addr, cluster.WithHandshake(hs))
	l.mustLead()
	f := e.process().join("Creds", addr, cluster.WithHandshake(hs))
	f.mustFollow()
	hs.mu.Lock()
	defer hs.mu.Unlock()
	for _, err := range hs.errs {
		e.errorf("%v", err)
	}
	for _, side := range []string{"leader", "follower"} {
		creds := hs.creds[side]
		if len(creds) == 0 {
			e.errorf("the %s's handshake saw no conn", side)
		}
		for _, c := range creds {
			if int(c.PID) != os.Getpid() {
				e.errorf("the %s's handshake conn reports peer pid %d, want %d", side, c.PID, os.Getpid())
			}
			if uid := os.Getuid(); uid >= 0 && c.UID != uint32(uid) {
				e.errorf("the %s's handshake conn reports peer uid %d, want %d", side, c.UID, uid)
			}
		}
	}
}
