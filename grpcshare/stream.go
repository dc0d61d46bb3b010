package grpcshare

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// NewStream opens a server-streaming call (desc.ServerStreams, not
// desc.ClientStreams), as generated code does: SendMsg sends the one
// request (the leader then opens the stream upstream), RecvMsg returns the
// messages in order and then io.EOF or the upstream status error.
// Client-streaming and bidirectional calls fail here with
// codes.Unimplemented (ErrClientStreaming).
//
// Cancelling ctx cancels the upstream stream (the server sees it); ctx's
// deadline is the upstream stream's. As with a *grpc.ClientConn, a stream
// must be read until RecvMsg fails, or its context cancelled, or its
// resources are kept.
func (c *Conn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	if desc.ClientStreams {
		return nil, &Error{Op: "stream", Name: c.name, Method: method, Code: codes.Unimplemented, Err: ErrClientStreaming}
	}
	co, err := parseCallOptions(opts)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	s := &clientStream{
		c: c, ctx: sctx, cancel: cancel, method: method, co: co,
		msgs: make(chan []byte, c.cfg.window), room: make(chan struct{}, 1),
		hdrc: make(chan struct{}), done: make(chan struct{}),
	}
	return s, nil
}

// clientStream is a server stream seen from the calling process (the
// leader's own calls too: they go through the same cluster calls).
//
// Concurrency: the user's goroutines call SendMsg (one goroutine) and
// RecvMsg (one goroutine, maybe another), Header, Trailer; after SendMsg
// the pump goroutine polls the leader. The pump is the only writer of
// msgs and of the fields under mu; hdrc and done are closed once each
// (by the pump, or by SendMsg when the open fails), after the fields they
// announce were set. No lock is held while another is taken.
type clientStream struct {
	c      *Conn
	ctx    context.Context
	cancel context.CancelFunc
	method string
	co     callOpts

	sendMu sync.Mutex
	sent   bool

	msgs chan []byte   // received, not yet read; cap = the window
	room chan struct{} // RecvMsg took a message: the pump may ask for more

	mu      sync.Mutex
	id      uint64
	header  metadata.MD
	trailer metadata.MD
	err     error // io.EOF once the stream ended OK
	hdrOnce sync.Once
	hdrc    chan struct{} // closed when the header is known, or the stream ended
	endOnce sync.Once
	done    chan struct{} // closed when err is set
}

func (s *clientStream) Context() context.Context { return s.ctx }

// CloseSend does nothing: a server-streaming call closes its sending side
// upstream right after SendMsg's request.
func (s *clientStream) CloseSend() error { return nil }

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

// SendMsg sends the request: the leader opens the stream upstream with it.
func (s *clientStream) SendMsg(m any) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if s.sent {
		return &Error{Op: "stream", Name: s.c.name, Method: s.method, Code: codes.Internal, Err: ErrSendTwice}
	}
	s.sent = true
	msg, err := s.co.marshal(m)
	if err != nil {
		err = status.Errorf(codes.Internal, "grpc: error while marshaling: %v", err)
		s.end(err, nil)
		return err
	}
	req := request{method: s.method, msg: msg, ready: s.co.ready, subtype: s.co.subtype, comp: s.co.comp,
		max: uint64(s.c.cfg.window), idle: s.c.cfg.idle}
	req.md, _ = metadata.FromOutgoingContext(s.ctx)
	if dl, ok := s.ctx.Deadline(); ok {
		req.timeout = max(time.Until(dl), 1)
	}
	octx, cancel := s.c.bound(s.ctx)
	res, err := s.c.cl.Invoke(octx, methodOpen, req.marshal())
	cancel()
	if err != nil {
		err = s.c.hopError(s.ctx, "open", s.method, err)
		s.end(err, nil)
		return err
	}
	var resp response
	if err := decodeResult(res, &resp); err != nil {
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
// room for them, and with a poll for nothing every hold while it has
// none, so that the leader knows the stream still has a reader.
func (s *clientStream) pump(id uint64) {
	cfg := s.c.cfg
	hold := time.NewTimer(cfg.hold)
	defer hold.Stop()
	for {
		free := cap(s.msgs) - len(s.msgs)
		if free == 0 {
			hold.Reset(cfg.hold)
			select {
			case <-s.room:
				continue
			case <-hold.C: // poll for nothing: the leader keeps the stream
			case <-s.ctx.Done():
				s.abort(id, s.ctx.Err())
				return
			}
		}
		req := request{method: s.method, id: id, max: uint64(free), hold: cfg.hold}
		pctx, cancel := context.WithTimeout(s.ctx, cfg.hold+pollMargin)
		res, err := s.c.cl.Invoke(pctx, methodRecv, req.marshal())
		cancel()
		if err != nil {
			if s.ctx.Err() != nil {
				s.abort(id, s.ctx.Err())
			} else {
				s.abort(id, err)
			}
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
	err := s.c.hopError(s.ctx, "recv", s.method, cause)
	if s.ctx.Err() != nil {
		for len(s.msgs) > 0 {
			<-s.msgs
		}
		err = &Error{Op: "recv", Name: s.c.name, Method: s.method, Code: status.FromContextError(s.ctx.Err()).Code(), Err: s.ctx.Err()}
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
	return nil
}

func (s *clientStream) streamID() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id
}
