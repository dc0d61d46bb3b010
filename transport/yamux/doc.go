// Package yamux multiplexes many streams over one connection of an
// underlying transport (tcp or unix), with github.com/hashicorp/yamux.
//
// # Model
//
// A Transport wraps an underlying transport.Transport (Config.Underlying)
// and inherits its addresses, default address, exclusivity and errors:
// Listen listens through the underlying transport, so a held address fails
// with an error matching transport.ErrAddrInUse, and a Dial to nobody with
// one matching transport.ErrNoListener (both wrapped in an OpError naming
// "yamux").
//
// Dialer side: a Transport holds at most one yamux client session per
// address, and every Dial to that address opens a stream on it. Dial
// starts a session (one underlying Dial) when there is none, or when the
// held one is dead, retired, or does not answer; it returns once the peer's
// session has answered a ping sent after the stream's SYN, so a stream is
// never handed out on a session whose peer has just died, nor to a
// listener that does not speak yamux. A session lives while it carries
// streams: when its last stream closes it is retired, and closed once the
// peer has closed its ends too, so an idle process holds no connection and
// no goroutine.
//
// Listener side: every accepted underlying conn runs a yamux server
// session, and Accept yields the streams of all of them. Each session has
// a goroutine that acknowledges streams as they arrive and queues them for
// Accept, so a slow Accept neither stalls a session nor makes its dialer
// time out waiting for acknowledgements; when Config.AcceptBacklog streams
// wait, a new one is closed at once (its dialer reads io.EOF) rather than
// queued. Closing the listener releases the address at once, tells every
// session's dialer to open no more streams on it (a yamux GoAway, so its
// next Dial starts a new session, to whoever listens then), closes the
// streams not yet accepted, and closes each session when its accepted
// streams are closed: accepted streams keep working, as the transport
// contract requires.
//
// # Failure detection
//
// A leader that dies is noticed at once, through the underlying conn's
// EOF: its session closes and every stream on it reads io.EOF. A leader
// that hangs is noticed by the keepalive: a ping unanswered for
// Config.ConnectionWriteTimeout, sent every Config.KeepAliveInterval,
// closes the session (defaults: within 3 s, against yamux's 40 s).
//
// # Streams
//
// Conns are yamux streams wrapped to be full net.Conns: Close ends the
// stream for its caller at once (a bare yamux stream's Close is only a
// half-close that leaves a blocked Read blocked), deadlines in the past
// fail at once, and deadline errors match os.ErrDeadlineExceeded. They
// implement transport.HalfCloser (CloseWrite sends the stream's FIN), and
// transport.PeerCredentials when the underlying conn does (a unix socket):
// every stream of a session reports the peer of its underlying conn.
// They pass golang.org/x/net/nettest.TestConn in full.
//
// Concurrency: a Transport, its listeners and conns are safe for
// concurrent use.
package yamux
