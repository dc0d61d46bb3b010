package yamux

import (
	"errors"
	"net"
	"sync"
	"time"

	hyamux "github.com/hashicorp/yamux"

	"github.com/go-clusterclient/clusterclient/transport"
)

// errSessionRetired is returned by acquire on a session that takes no new
// streams.
var errSessionRetired = errors.New("yamux: session retired")

// session is a yamux session with a count of the streams this package
// handed out on it. A retired session takes no new stream and closes when
// its last stream closes, so retiring never cuts a stream in use. A dialer
// retires its session as soon as it is idle; a listener retires its
// sessions when it closes.
type session struct {
	ys    *hyamux.Session
	conn  net.Conn // the underlying conn
	idle  bool     // retire as soon as no stream is open (dialer side)
	creds transport.PeerCredentials
	grace time.Duration // how long a retired session waits for its peer's FINs

	mu      sync.Mutex
	streams int
	retired bool
	closing bool
}

func newSession(ys *hyamux.Session, conn net.Conn, retireWhenIdle bool, cfg *Config) *session {
	s := &session{ys: ys, conn: conn, idle: retireWhenIdle, grace: cfg.StreamCloseTimeout + cfg.ConnectionWriteTimeout}
	s.creds, _ = conn.(transport.PeerCredentials)
	return s
}

// acquire counts a new stream, unless the session is retired or dead.
func (s *session) acquire() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.retired || s.ys.IsClosed() {
		return errSessionRetired
	}
	s.streams++
	return nil
}

// release uncounts a stream; the last stream of a retired session closes it.
func (s *session) release() {
	s.mu.Lock()
	s.streams--
	if s.streams == 0 && s.idle {
		s.retired = true
	}
	s.closeIfDoneLocked()
	s.mu.Unlock()
}

// retire stops new streams, and closes the session if it is idle.
func (s *session) retire() {
	s.mu.Lock()
	s.retired = true
	s.closeIfDoneLocked()
	s.mu.Unlock()
}

// closeIfDoneLocked starts closing a retired session whose streams are
// all closed here.
func (s *session) closeIfDoneLocked() {
	if s.retired && s.streams == 0 && !s.closing {
		s.closing = true
		go s.closeDrained()
	}
}

// closeDrained closes the session once the peer has closed its ends of
// the streams too (yamux then forgets them), or after the grace period.
// Closing the underlying conn earlier would lose what the peer still
// sends, window updates included: over TCP, data arriving at a closed
// socket makes the kernel answer with a reset, which can discard what the
// peer has not read yet.
func (s *session) closeDrained() {
	deadline := time.Now().Add(s.grace)
	for wait := time.Millisecond; s.ys.NumStreams() > 0 && time.Now().Before(deadline); wait = min(2*wait, 50*time.Millisecond) {
		select {
		case <-s.ys.CloseChan():
			return
		case <-time.After(wait):
		}
	}
	s.ys.Close()
}

// usable reports whether new streams may be opened on the session.
func (s *session) usable() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.retired && !s.ys.IsClosed()
}

// wrap makes a counted stream of st, a net.Conn that also reports the
// underlying conn's peer credentials when it has them.
func (s *session) wrap(st *hyamux.Stream) net.Conn {
	c := newStream(s, st)
	if s.creds != nil {
		return &credStream{c}
	}
	return c
}
