package grpcshare

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// NewStream opens a streaming call, as generated code does.
//
// Server streaming (desc.ServerStreams only): SendMsg sends the one request
// (the leader then opens the stream upstream), RecvMsg returns the messages
// in order and then io.EOF or the upstream status error.
//
// Client streaming and bidirectional (desc.ClientStreams): NewStream opens
// the stream upstream at once; each SendMsg is one call to the leader,
// which returns once gRPC took the message, so sending has the pace of the
// server's reading; CloseSend closes the sending side upstream. SendMsg
// returns io.EOF once the stream is over, and RecvMsg then says why, as
// with gRPC.
//
// Cancelling ctx cancels the upstream stream (the server sees it); ctx's
// deadline is the upstream stream's. As with a *grpc.ClientConn, a stream
// must be read until RecvMsg fails, or its context cancelled, or its
// resources are kept.
func (c *Conn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	co, err := parseCallOptions(opts)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	s := &clientStream{
		c: c, ctx: sctx, parent: ctx, cancel: cancel, method: method, co: co,
		client: desc.ClientStreams, server: desc.ServerStreams,
		msgs: make(chan []byte, c.cfg.window), room: make(chan struct{}, 1),
		hdrc: make(chan struct{}), done: make(chan struct{}),
	}
	if s.client {
		if err := s.open(nil); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// clientStream is a stream seen from the calling process (the leader's
// own calls too: they go through the same cluster calls).
//
// Concurrency: the user's goroutines call SendMsg and CloseSend (one
// goroutine at a time, as gRPC requires; sendMu enforces it) and RecvMsg
// (one goroutine, maybe another), Header, Trailer; once the stream is open
// the pump goroutine polls the leader. The pump is the only writer of
// msgs and of the header; id is written once by the open; err and trailer
// once by end (from the pump, the open, a failed send or RecvMsg). hdrc
// and done are closed once each, after the fields they announce were set.
// Lock order: sendMu, then mu (a failed send ends the stream).
type clientStream struct {
	c      *Conn
	ctx    context.Context // the caller's, ended by cancel when the stream ends
	parent context.Context // the caller's as given: did the caller give up?
	cancel context.CancelFunc
	method string
	co     callOpts
	client bool // client-streaming or bidi: each SendMsg is a grpc.send
	server bool // the server streams: RecvMsg returns each message as is

	sendMu sync.Mutex
	sent   bool // server streaming: the request went with the open

	msgs chan []byte   // received, not yet read; cap = the window
	room chan struct{} // RecvMsg took a message: the pump may ask for more

	mu      sync.Mutex
	id      uint64
	header  metadata.MD
	trailer metadata.MD
	err     error // io.EOF once the stream ended OK
	hdrOnce sync.Once
	hdrc    chan struct{} // closed when the header is known
	endOnce sync.Once
	done    chan struct{} // closed when err is set
}

func (s *clientStream) Context() context.Context { return s.ctx }

// CloseSend closes the sending side: upstream for a client-streaming or
// bidi call; a server-streaming call closed it right after the request.
func (s *clientStream) CloseSend() error {
	if !s.client {
		return nil
	}
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	s.sendCall(methodClose, nil)
	return nil
}

func (s *clientStream) Header() (metadata.MD, error) {
	ended := false
	select {
	case <-s.hdrc:
	case <-s.done:
		ended = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ended && s.header == nil && s.err != io.EOF {
		return nil, s.err // the stream failed before any header
	}
	return s.header, nil
}

// Trailer returns the trailer once RecvMsg returned an error.
func (s *clientStream) Trailer() metadata.MD {
	select {
	case <-s.done:
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.trailer
	default:
		return nil
	}
}

// SendMsg sends a message: for a server-streaming call the one request,
// with which the leader opens the stream upstream; for a client-streaming
// or bidi call one more message (io.EOF once the stream is over).
func (s *clientStream) SendMsg(m any) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if s.client {
		select {
		case <-s.done:
			return io.EOF
		default:
		}
	} else if s.sent {
		return &Error{Op: "stream", Name: s.c.name, Method: s.method, Code: codes.Internal, Err: ErrSendTwice}
	}
	s.sent = true
	msg, err := s.co.marshal(m)
	if err != nil {
		return status.Errorf(codes.Internal, "grpc: error while marshaling: %v", err)
	}
	if s.client {
		return s.sendCall(methodSend, msg)
	}
	return s.open(msg)
}

// sendCall makes a grpc.send or grpc.closesend call. A failure of the hop
// ends the stream (RecvMsg says how) and is io.EOF here, as gRPC's
// SendMsg reports a stream that ended.
func (s *clientStream) sendCall(method string, msg []byte) error {
	id := s.streamID()
	ctx, cancel := s.c.bound(s.ctx)
	res, err := s.c.cl.Invoke(ctx, method, (&request{method: s.method, id: id, msg: msg}).marshal())
	cancel()
	var resp response
	if err == nil {
		err = decodeResult(res, &resp)
	}
	if err != nil {
		select {
		case <-s.done: // the stream ended meanwhile: its end says why
		default:
			s.abort(id, err)
		}
		return io.EOF
	}
	if resp.eof {
		return io.EOF
	}
	return nil
}

// open makes the grpc.open call: with the request for a server-streaming
// call, without for the others. On success the pump starts.
func (s *clientStream) open(msg []byte) error {
	req := request{method: s.method, msg: msg, ready: s.co.ready, subtype: s.co.subtype, comp: s.co.comp,
		max: uint64(s.c.cfg.window), idle: s.c.cfg.idle, client: s.client}
	req.md, _ = metadata.FromOutgoingContext(s.ctx)
	if dl, ok := s.ctx.Deadline(); ok {
		req.timeout = max(time.Until(dl), 1)
	}
	octx, cancel := s.c.bound(s.ctx)
	res, err := s.c.cl.Invoke(octx, methodOpen, req.marshal())
	cancel()
	var resp response
	if err == nil {
		err = decodeResult(res, &resp)
	}
	if err != nil {
		err = s.c.hopError(s.ctx, "open", s.method, err)
		s.end(err, nil)
		return err
	}
	if resp.done { // the stream failed to open upstream
		err := resp.err()
		if err == nil {
			err = status.Error(codes.Internal, "grpcshare: the leader ended the stream at open with no error")
		}
		s.end(err, resp.trailer)
		return err
	}
	s.mu.Lock()
	s.id = resp.id
	s.mu.Unlock()
	go s.pump(resp.id)
	return nil
}

// end records the stream's end (the first one counts) and frees its
// context. The user's RecvMsg gets err after the messages already
// received, unless ctx ended.
func (s *clientStream) end(err error, trailer metadata.MD) {
	s.endOnce.Do(func() {
		s.mu.Lock()
		s.err, s.trailer = err, trailer
		s.mu.Unlock()
		close(s.done)
		s.cancel()
	})
}

func (s *clientStream) setHeader(md metadata.MD) {
	s.hdrOnce.Do(func() {
		s.mu.Lock()
		s.header = md
		s.mu.Unlock()
		close(s.hdrc)
	})
}

// pump polls the leader for the stream's messages while the caller has
// room for half a window or more, and with a poll for nothing every hold
// while it has less, so that the leader knows the stream still has a
// reader.
func (s *clientStream) pump(id uint64) {
	cfg := s.c.cfg
	hold := time.NewTimer(cfg.hold)
	defer hold.Stop()
	for {
		// Poll when half the window is free, not at each free place: a
		// reader as fast as the stream would otherwise get one message
		// per poll.
		free := cap(s.msgs) - len(s.msgs)
		if free < (cap(s.msgs)+1)/2 {
			hold.Reset(cfg.hold)
			select {
			case <-s.room:
				continue
			case <-hold.C: // poll for nothing: the leader keeps the stream
				free = 0
			case <-s.ctx.Done():
				s.abort(id, context.Cause(s.ctx))
				return
			}
		}
		req := request{method: s.method, id: id, max: uint64(free), hold: cfg.hold}
		wait := cfg.hold + max(cfg.hold, minPollMargin)
		pctx, cancel := context.WithTimeout(s.ctx, wait)
		res, err := s.c.cl.Invoke(pctx, methodRecv, req.marshal())
		cancel()
		if err != nil {
			if s.parent.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				// The poll's own bound, not the caller's deadline: no
				// leader answered (the stream's leader left, and none
				// or another took over). The stream is lost with it.
				err = fmt.Errorf("%w: no leader answered its poll within %v: %w", ErrStreamGone, wait, err)
			}
			s.abort(id, err)
			return
		}
		var resp response
		if err := decodeResult(res, &resp); err != nil {
			s.abort(id, err)
			return
		}
		if resp.hasHeader {
			s.setHeader(resp.header)
		}
		for _, m := range resp.msgs {
			select {
			case s.msgs <- m:
			default: // the leader sent more than asked: a broken peer
				s.abort(id, fmt.Errorf("%w: %d messages for %d free places", ErrProtocol, len(resp.msgs), free))
				return
			}
		}
		if resp.done {
			err := resp.err()
			if err == nil {
				err = io.EOF
			}
			s.end(err, resp.trailer)
			return
		}
	}
}

// abort ends the stream on this side and tells the leader to cancel it
// upstream (a no-op there when the leader is gone or already ended it).
// Messages not read yet are dropped when the caller's context ended, as
// gRPC does.
func (s *clientStream) abort(id uint64, cause error) {
	_ = s.c.cl.InvokeOneway(methodCancel, (&request{method: s.method, id: id}).marshal())
	err := s.c.hopError(s.parent, "recv", s.method, cause)
	if s.parent.Err() != nil { // the caller gave up, not the stream's own end
		for len(s.msgs) > 0 {
			<-s.msgs
		}
		err = &Error{Op: "recv", Name: s.c.name, Method: s.method, Code: status.FromContextError(s.parent.Err()).Code(), Err: s.parent.Err()}
	}
	s.end(err, nil)
}

func (s *clientStream) RecvMsg(m any) error {
	var b []byte
	select {
	case b = <-s.msgs:
	case <-s.done:
		select {
		case b = <-s.msgs:
		default:
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.err
		}
	}
	select {
	case s.room <- struct{}{}:
	default:
	}
	if err := s.co.unmarshal(b, m); err != nil {
		err = status.Errorf(codes.Internal, "grpc: failed to unmarshal the received message: %v", err)
		s.abort(s.streamID(), err)
		return err
	}
	if !s.server {
		// One reply: as gRPC, wait for the status, and fail with it when
		// it is not OK.
		<-s.done
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.err != io.EOF {
			return s.err
		}
	}
	return nil
}

func (s *clientStream) streamID() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id
}
