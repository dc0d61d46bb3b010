package transporttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/net/nettest"

	"github.com/go-clusterclient/clusterclient/transport"
)

// opTimeout bounds a Listen, Dial or exchange that should be immediate; it
// only keeps a broken transport from hanging until the watchdog.
const opTimeout = 10 * time.Second

// exchange writes msg on from and reads it on to (from may equal to when
// the peer echoes).
func (e *env) exchange(from, to net.Conn, msg string) {
	e.t.Helper()
	deadline := time.Now().Add(opTimeout)
	from.SetWriteDeadline(deadline)
	to.SetReadDeadline(deadline)
	defer from.SetWriteDeadline(time.Time{})
	defer to.SetReadDeadline(time.Time{})
	if _, err := from.Write([]byte(msg)); err != nil {
		e.t.Fatalf("write %q: %v", msg, err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(to, got); err != nil {
		e.t.Fatalf("read %q: %v", msg, err)
	}
	if string(got) != msg {
		e.t.Fatalf("read %q, want %q", got, msg)
	}
}

// contender starts a contender that the watchdog can kill.
func (e *env) contender() *Contender {
	e.t.Helper()
	c := StartContender(e.t, e.h)
	e.OnTeardown(func() { c.Kill() })
	return c
}

func (e *env) skipUnlessMultiProcess(tr transport.Transport) {
	if !transport.IsMultiProcess(tr) {
		e.t.Skipf("%s is not multi-process (transport.IsMultiProcess is false)", tr.Name())
	}
}

func isClosedErr(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, transport.ErrClosed)
}

func testNettest(e *env) {
	tr := e.transport()
	nettest.TestConn(e.t, func() (c1, c2 net.Conn, stop func(), err error) {
		addr := e.addr()
		l, err := tr.Listen(e.Timeout(opTimeout), addr)
		if err != nil {
			return nil, nil, nil, err
		}
		e.OnTeardown(func() { l.Close() })
		accepted := e.acceptAsync(l)
		c1, err = tr.Dial(e.Timeout(opTimeout), addr)
		if err != nil {
			l.Close()
			return nil, nil, nil, err
		}
		e.track(c1)
		select {
		case r := <-accepted:
			if r.err != nil {
				c1.Close()
				l.Close()
				return nil, nil, nil, r.err
			}
			c2 = r.c
		case <-e.Ctx.Done():
			return nil, nil, nil, e.Ctx.Err()
		}
		stop = func() {
			c1.Close()
			c2.Close()
			l.Close()
		}
		return c1, c2, stop, nil
	})
}

func testExclusiveListen(e *env) {
	tr, addr := e.transport(), e.addr()
	l := e.listen(tr, addr)
	if l.Addr() == nil {
		e.t.Errorf("listener on %q has a nil Addr", addr)
	}
	for _, other := range []struct {
		what string
		tr   transport.Transport
	}{{"the same transport", tr}, {"another transport", e.transport()}} {
		l2, err := other.tr.Listen(e.Timeout(opTimeout), addr)
		if err == nil {
			l2.Close()
			e.t.Fatalf("a second Listen(%q) through %s succeeded while a listener holds it", addr, other.what)
		}
		if !errors.Is(err, transport.ErrAddrInUse) {
			e.t.Errorf("a second Listen(%q) through %s: %v, want an error matching ErrAddrInUse", addr, other.what, err)
		}
		if !mentions(err, addr) {
			e.t.Errorf("Listen error %q does not name the address %q", err, addr)
		}
	}
	// The failed attempts must not have disturbed the holder.
	c, s := e.pair(tr, l, addr)
	e.exchange(c, s, "still serving")
	if err := l.Close(); err != nil {
		e.t.Errorf("Close: %v", err)
	}
	l3, err := tr.Listen(e.Timeout(opTimeout), addr)
	if err != nil {
		e.t.Fatalf("Listen(%q) after the holder closed: %v", addr, err)
	}
	l3.Close()
}

func testDialNoListener(e *env) {
	tr := e.transport()
	check := func(what, addr string) {
		e.t.Helper()
		c, err := tr.Dial(e.Timeout(opTimeout), addr)
		switch {
		case err == nil:
			c.Close()
			e.t.Errorf("Dial(%q) (%s) succeeded", addr, what)
		case errors.Is(err, context.DeadlineExceeded):
			e.t.Errorf("Dial(%q) (%s) waited %v for its deadline instead of reporting ErrNoListener: %v", addr, what, opTimeout, err)
		case !errors.Is(err, transport.ErrNoListener):
			e.t.Errorf("Dial(%q) (%s): %v, want an error matching ErrNoListener", addr, what, err)
		case !mentions(err, addr):
			e.t.Errorf("Dial error %q does not name the address %q", err, addr)
		}
	}
	check("never listened on", e.addr())
	addr := e.addr()
	l := e.listen(tr, addr)
	if err := l.Close(); err != nil {
		e.t.Errorf("Close: %v", err)
	}
	check("its listener closed", addr)
}

func (e *env) unansweredAddr(tr transport.Transport) string {
	if e.h.UnansweredAddr == nil {
		e.t.Skip("the harness has no address where Dial blocks (Harness.UnansweredAddr is nil; transporttest.UnansweredTCPAddr suits TCP on Linux)")
	}
	return e.h.UnansweredAddr(e.t, tr)
}

func testDialHonoursDeadline(e *env) {
	tr := e.transport()
	addr := e.unansweredAddr(tr)
	ctx, cancel := context.WithTimeout(e.Ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	c, err := tr.Dial(ctx, addr)
	if err == nil {
		c.Close()
		e.t.Fatalf("Dial(%q) to an unanswered address succeeded", addr)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		e.t.Errorf("Dial(%q): %v, want an error matching context.DeadlineExceeded", addr, err)
	}
	e.t.Logf("Dial with a 200ms deadline returned after %v: %v", time.Since(start).Round(time.Millisecond), err)
}

func testDialHonoursCancel(e *env) {
	tr := e.transport()
	addr := e.unansweredAddr(tr)
	ctx, cancel := context.WithCancel(e.Ctx)
	defer cancel()
	timer := time.AfterFunc(100*time.Millisecond, cancel)
	defer timer.Stop()
	c, err := tr.Dial(ctx, addr)
	if err == nil {
		c.Close()
		e.t.Fatalf("Dial(%q) to an unanswered address succeeded", addr)
	}
	if !errors.Is(err, context.Canceled) {
		e.t.Errorf("Dial(%q) cancelled: %v, want an error matching context.Canceled", addr, err)
	}
}

func testListenerCloseUnblocksAccept(e *env) {
	tr, addr := e.transport(), e.addr()
	l := e.listen(tr, addr)
	accepted := e.acceptAsync(l)
	time.Sleep(20 * time.Millisecond) // let Accept block (not required for the check)
	if err := l.Close(); err != nil {
		e.t.Errorf("Close: %v", err)
	}
	select {
	case r := <-accepted:
		if r.err == nil {
			e.t.Fatalf("Accept returned a conn from %v that nobody dialed", r.c.RemoteAddr())
		}
		if !isClosedErr(r.err) {
			e.t.Errorf("Accept after Close: %v, want an error matching net.ErrClosed or transport.ErrClosed", r.err)
		}
	case <-e.Ctx.Done():
		e.t.Fatal("Close did not unblock Accept")
	}
	if _, err := l.Accept(); !isClosedErr(err) {
		e.t.Errorf("Accept on a closed listener: %v, want an error matching net.ErrClosed or transport.ErrClosed", err)
	}
}

func testListenerCloseKeepsConns(e *env) {
	tr, addr := e.transport(), e.addr()
	if !transport.ConnsOutliveListener(tr) {
		e.t.Skipf("%s declares that its conns end with their listener (transport.ListenerBound)", tr.Name())
	}
	l := e.listen(tr, addr)
	c, s := e.pair(tr, l, addr)
	if err := l.Close(); err != nil {
		e.t.Errorf("Close: %v", err)
	}
	e.exchange(c, s, "dialer to acceptor after the listener closed")
	e.exchange(s, c, "acceptor to dialer after the listener closed")
}

func testConcurrentDials(e *env) {
	const n, size = 32, 4096
	tr, addr := e.transport(), e.addr()
	l := e.listen(tr, addr)
	e.Go(func() {
		for range n {
			c, err := l.Accept()
			if err != nil {
				e.t.Errorf("Accept: %v", err)
				return
			}
			e.track(c)
			e.Go(func() { io.Copy(c, c) })
		}
	})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c, err := tr.Dial(e.Timeout(opTimeout), addr)
			if err != nil {
				e.t.Errorf("dialer %d: %v", i, err)
				return
			}
			e.track(c)
			c.SetDeadline(time.Now().Add(opTimeout))
			want := bytes.Repeat([]byte{byte(i)}, size)
			if _, err := c.Write(want); err != nil {
				e.t.Errorf("dialer %d: write: %v", i, err)
				return
			}
			got := make([]byte, size)
			if _, err := io.ReadFull(c, got); err != nil {
				e.t.Errorf("dialer %d: read: %v", i, err)
				return
			}
			if !bytes.Equal(got, want) {
				e.t.Errorf("dialer %d read another conn's bytes", i)
			}
			c.Close()
		})
	}
	wg.Wait()
}

func testHalfClose(e *env) {
	tr, addr := e.transport(), e.addr()
	l := e.listen(tr, addr)
	c, s := e.pair(tr, l, addr)
	hc, ok := c.(transport.HalfCloser)
	if !ok {
		e.t.Skipf("%s conns do not implement transport.HalfCloser", tr.Name())
	}
	if _, ok := s.(transport.HalfCloser); !ok {
		e.t.Errorf("dialed conns implement transport.HalfCloser but accepted ones (%T) do not", s)
	}
	c.SetDeadline(time.Now().Add(opTimeout))
	s.SetDeadline(time.Now().Add(opTimeout))
	if _, err := c.Write([]byte("request")); err != nil {
		e.t.Fatal(err)
	}
	if err := hc.CloseWrite(); err != nil {
		e.t.Fatalf("CloseWrite: %v", err)
	}
	if got, err := io.ReadAll(s); err != nil || string(got) != "request" {
		e.t.Fatalf("acceptor read %q, %v; want \"request\" then io.EOF", got, err)
	}
	if _, err := s.Write([]byte("response")); err != nil {
		e.t.Fatalf("acceptor cannot answer a half-closed conn: %v", err)
	}
	if err := s.Close(); err != nil {
		e.t.Errorf("Close: %v", err)
	}
	if got, err := io.ReadAll(c); err != nil || string(got) != "response" {
		e.t.Fatalf("dialer read %q, %v after CloseWrite; want \"response\" then io.EOF", got, err)
	}
	if _, err := c.Write([]byte("more")); err == nil {
		e.t.Error("Write after CloseWrite succeeded")
	}
}

func testPeerCredentials(e *env) {
	tr, addr := e.transport(), e.addr()
	l := e.listen(tr, addr)
	c, s := e.pair(tr, l, addr)
	checked := 0
	for _, end := range []struct {
		what string
		conn net.Conn
	}{{"dialed", c}, {"accepted", s}} {
		pc, ok := end.conn.(transport.PeerCredentials)
		if !ok {
			continue
		}
		checked++
		cred, err := pc.PeerCred()
		if err != nil {
			e.t.Errorf("%s conn: PeerCred: %v", end.what, err)
			continue
		}
		if int(cred.PID) != os.Getpid() {
			e.t.Errorf("%s conn: peer pid %d, want %d", end.what, cred.PID, os.Getpid())
		}
		if uid := os.Getuid(); uid >= 0 && cred.UID != uint32(uid) {
			e.t.Errorf("%s conn: peer uid %d, want %d", end.what, cred.UID, uid)
		}
		if gid := os.Getgid(); gid >= 0 && cred.GID != uint32(gid) {
			e.t.Errorf("%s conn: peer gid %d, want %d", end.what, cred.GID, gid)
		}
	}
	if checked == 0 {
		e.t.Skipf("%s conns do not implement transport.PeerCredentials", tr.Name())
	}
	if checked == 1 {
		e.t.Errorf("only one end of a %s conn implements transport.PeerCredentials", tr.Name())
	}
	if _, ok := s.(transport.PeerCredentials); !ok || !transport.IsMultiProcess(tr) {
		return
	}
	// Across processes: a child dials, the accepted conn names the child.
	child := e.contender()
	accepted := e.acceptAsync(l)
	res, err := child.Dial(e.Timeout(opTimeout), addr)
	if err != nil || !res.OK {
		e.t.Fatalf("child Dial(%q): %v %s", addr, err, res.Err)
	}
	select {
	case r := <-accepted:
		if r.err != nil {
			e.t.Fatalf("Accept: %v", r.err)
		}
		cred, err := r.c.(transport.PeerCredentials).PeerCred()
		if err != nil {
			e.t.Fatalf("PeerCred of a conn from pid %d: %v", child.Pid(), err)
		}
		if int(cred.PID) != child.Pid() {
			e.t.Errorf("conn dialed by pid %d reports peer pid %d", child.Pid(), cred.PID)
		}
	case <-e.Ctx.Done():
		e.t.Fatal("Accept of the child's conn did not return")
	}
}

func testMultiProcessExclusivity(e *env) {
	const processes, rounds = 8, 20
	tr := e.transport()
	e.skipUnlessMultiProcess(tr)
	cs := make([]*Contender, processes)
	for i, c := range StartContenders(e.t, e.h, processes) {
		e.OnTeardown(func() { c.Kill() })
		cs[i] = c
	}
	wins := make([]int, processes)
	for round := 1; round <= rounds; round++ {
		addr := e.addr()
		res, err := Compete(e.Timeout(opTimeout*3), cs, addr)
		if err != nil {
			e.t.Fatalf("round %d: %v", round, err)
		}
		winner := -1
		for i, r := range res {
			switch {
			case r.OK && winner >= 0:
				e.t.Errorf("round %d: pids %d and %d both listen on %q", round, cs[winner].Pid(), cs[i].Pid(), addr)
			case r.OK:
				winner = i
			case !r.AddrInUse:
				e.t.Errorf("round %d: pid %d: Listen(%q): %s; want an error matching ErrAddrInUse", round, cs[i].Pid(), addr, r.Err)
			}
		}
		if winner < 0 {
			e.t.Fatalf("round %d: no process could listen on %q: %+v", round, addr, res)
		}
		wins[winner]++
		if l, err := tr.Listen(e.Timeout(opTimeout), addr); err == nil {
			l.Close()
			e.t.Errorf("round %d: this process could listen on %q held by pid %d", round, addr, cs[winner].Pid())
		} else if !errors.Is(err, transport.ErrAddrInUse) {
			e.t.Errorf("round %d: Listen(%q) here: %v, want ErrAddrInUse", round, addr, err)
		}
		for i, r := range res {
			if r.OK {
				if err := cs[i].Close(e.Timeout(opTimeout)); err != nil {
					e.t.Fatalf("round %d: %v", round, err)
				}
			}
		}
		if e.t.Failed() {
			return
		}
	}
	e.t.Logf("%d rounds of %d processes: one listener per round; wins per process %v", rounds, processes, wins)
}

// listenInChild starts a contender listening on addr and checks that this
// process can reach it but not take the address.
func (e *env) listenInChild(tr transport.Transport, addr string) (*Contender, net.Conn) {
	e.t.Helper()
	child := e.contender()
	res, err := child.Listen(e.Timeout(opTimeout), addr)
	if err != nil || !res.OK {
		e.t.Fatalf("child Listen(%q): %v %s", addr, err, res.Err)
	}
	if l, err := tr.Listen(e.Timeout(opTimeout), addr); err == nil {
		l.Close()
		e.t.Fatalf("this process could listen on %q held by pid %d", addr, child.Pid())
	}
	c, err := tr.Dial(e.Timeout(opTimeout), addr)
	if err != nil {
		e.t.Fatalf("Dial(%q) to pid %d: %v", addr, child.Pid(), err)
	}
	e.track(c)
	e.exchange(c, c, fmt.Sprintf("echo from pid %d", child.Pid()))
	return child, c
}

func testFailoverAfterSIGKILL(e *env) {
	tr, addr := e.transport(), e.addr()
	e.skipUnlessMultiProcess(tr)
	child, _ := e.listenInChild(tr, addr)
	if err := child.Kill(); err != nil {
		e.t.Fatal(err)
	}
	start := time.Now()
	l, attempts, err := ListenWhenFree(e.Timeout(opTimeout), tr, addr)
	took := time.Since(start)
	if err != nil {
		e.t.Fatalf("Listen(%q) after SIGKILL of its holder: %v", addr, err)
	}
	e.OnTeardown(func() { l.Close() })
	e.t.Logf("Listen(%q) succeeded %v after SIGKILL of pid %d (%d attempts)", addr, took, child.Pid(), attempts)
	c, s := e.pair(tr, l, addr)
	e.exchange(c, s, "new leader")
}

func testEOFAfterPeerSIGKILL(e *env) {
	tr, addr := e.transport(), e.addr()
	e.skipUnlessMultiProcess(tr)
	child, c := e.listenInChild(tr, addr)
	if err := child.Kill(); err != nil {
		e.t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(opTimeout))
	n, err := c.Read(make([]byte, 16))
	var ne net.Error
	switch {
	case err == nil:
		e.t.Fatalf("read %d bytes from a peer killed with SIGKILL", n)
	case errors.As(err, &ne) && ne.Timeout():
		e.t.Fatalf("no EOF or reset within %v of the peer's SIGKILL", opTimeout)
	}
	e.t.Logf("read after the peer's SIGKILL: %v", err)
}

func testStranger(e *env) {
	if e.h.HoldAddr == nil {
		e.t.Skip("the harness has no stranger (Harness.HoldAddr is nil; transporttest.Hold suits socket transports)")
	}
	tr, addr := e.transport(), e.addr()
	dialConnects := e.h.HoldAddr(e.t, addr)
	l, err := tr.Listen(e.Timeout(opTimeout), addr)
	if err == nil {
		l.Close()
		e.t.Fatalf("Listen(%q) succeeded while a stranger holds it", addr)
	}
	if !errors.Is(err, transport.ErrAddrInUse) {
		e.t.Errorf("Listen(%q) held by a stranger: %v, want an error matching ErrAddrInUse", addr, err)
	}
	var op *transport.OpError
	if !errors.As(err, &op) || op.Err == nil {
		e.t.Errorf("Listen error %q does not wrap the OS error (want a *transport.OpError with Err set)", err)
	}
	if dialConnects {
		c, err := tr.Dial(e.Timeout(opTimeout), addr)
		if err != nil {
			e.t.Fatalf("Dial(%q) to a stranger that accepts: %v", addr, err)
		}
		c.Close()
		return
	}
	c, err := tr.Dial(e.Timeout(2*time.Second), addr)
	if err == nil {
		c.Close()
		e.t.Fatalf("Dial(%q) to a stranger that answers no handshake succeeded", addr)
	}
	e.t.Logf("Dial to the stranger: %v", err)
}
