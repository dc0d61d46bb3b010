package protocol

import (
	"fmt"
	"io"
)

// readerBufSize is the Reader's largest buffer. It starts at
// readerMinBuf (what an idle connection's heartbeats and registration
// need: a leader holds one Reader per follower) and doubles up to
// readerBufSize when a packet needs it; packets that fit (an invoke with a
// few KiB of arguments, every Node conn object) are then returned without
// any allocation. A larger packet gets a buffer of its own once its
// header passed the limits; that buffer starts at 2*readerBufSize and
// doubles as bytes arrive (never beyond the packet's size), so a peer that
// announces 16 MiB and sends nothing costs 64 KiB, not 16 MiB. It is
// dropped at the next call.
const (
	readerMinBuf  = 4 << 10
	readerBufSize = 32 << 10
)

// maxEmptyReads is how many consecutive (0, nil) reads the Reader tolerates
// before failing with io.ErrNoProgress, as bufio does.
const maxEmptyReads = 100

// Reader reads packets one at a time from a stream (a net.Conn).
//
// It buffers its reads, checks each header against its Limits before it
// reserves room for the body, and checks that each conn object is a JSON
// object. A peer that is not speaking the protocol (an HTTP client, a port
// scanner) is rejected at its first bytes.
//
// Concurrency: a Reader is not safe for concurrent use; one goroutine owns
// it (the connection's read loop).
type Reader struct {
	rd  io.Reader
	lim Limits

	buf        []byte // allocated at the first Next
	start, end int    // buffered bytes are buf[start:end]

	big     []byte // the body so far of a packet larger than buf
	bigNeed int    // its full body length
	bigHdr  Header // its header

	err error // sticky protocol error (the stream is out of sync after one)
}

// NewReader returns a Reader of r that enforces lim (zero fields mean the
// defaults of Limits).
func NewReader(r io.Reader, lim Limits) *Reader {
	return &Reader{rd: r, lim: lim.withDefaults()}
}

// SetLimits changes the limits the following packets are checked against
// (zero fields mean the defaults of Limits): a server keeps a connection
// that has not proved itself to small packets and lifts the limits once
// it has. A packet whose header was already read keeps the limits it
// passed.
func (r *Reader) SetLimits(lim Limits) { r.lim = lim.withDefaults() }

// Next returns the next packet of the stream.
//
// The returned Packet's Conn and App alias the Reader's buffer: they are
// valid only until the next call to Next (or, after Detach, as long as
// they are referenced). Copy what must outlive it (ParseConn already
// copies).
//
// At a clean end of stream between packets Next returns io.EOF. If the
// stream ends inside a packet the error wraps both ErrShort and
// io.ErrUnexpectedEOF. A packet that breaks the protocol (bad version or
// type byte, negative or too large length, conn object that is not a JSON
// object) yields an error wrapping the matching sentinel, and every later
// call returns the same error: the stream cannot be resynchronised. Other
// read errors (a deadline, a reset) are returned as they are and the
// Reader keeps its state, so Next may be called again after a timeout.
func (r *Reader) Next() (Packet, error) {
	if r.err != nil {
		return Packet{}, r.err
	}
	if r.big != nil {
		if len(r.big) == r.bigNeed {
			// The previous call returned this packet; drop it.
			r.big, r.bigNeed = nil, 0
		} else {
			return r.readBig()
		}
	}
	if r.buf == nil {
		r.buf = make([]byte, min(readerMinBuf, r.maxBuf()))
	}

	// The header, checking the version and type bytes as soon as they come.
	r.makeRoom(HeaderSize)
	for r.end-r.start < HeaderSize {
		if err := checkPrefix(r.buf[r.start:r.end]); err != nil {
			return Packet{}, r.fail(err)
		}
		if err := r.fill(); err != nil {
			return Packet{}, r.endErr(err, r.end-r.start, HeaderSize)
		}
	}
	h, err := ParseHeader(r.buf[r.start:r.end], r.lim)
	if err != nil {
		return Packet{}, r.fail(err)
	}

	n := h.Len()
	if n > len(r.buf) && len(r.buf) < r.maxBuf() {
		r.grow(n)
	}
	if n > len(r.buf) {
		// Larger than the buffer: a buffer of its own, bounded by the
		// limits just checked and grown as the body arrives.
		r.bigNeed = n - HeaderSize
		r.big = append(make([]byte, 0, min(r.bigNeed, 2*readerBufSize)), r.buf[r.start+HeaderSize:r.end]...)
		r.bigHdr = h
		r.start, r.end = 0, 0
		return r.readBig()
	}
	r.makeRoom(n)
	for r.end-r.start < n {
		if err := r.fill(); err != nil {
			return Packet{}, r.endErr(err, r.end-r.start, n)
		}
	}
	p, err := h.packet(r.buf[r.start+HeaderSize : r.start+n])
	if err != nil {
		return Packet{}, r.fail(err)
	}
	r.start += n
	return p, nil
}

// Detach leaves the packets Next returned so far their bytes: the
// Reader goes on in a buffer of its own (the bytes it buffered beyond
// them are copied into it), so their Conn and App stay valid after later
// calls to Next. A server that runs a request on the reading goroutine
// without copying it detaches when another goroutine is to read on
// while the request still runs.
func (r *Reader) Detach() {
	if r.buf == nil {
		return
	}
	buf := make([]byte, max(min(readerMinBuf, r.maxBuf()), r.end-r.start))
	r.end = copy(buf, r.buf[r.start:r.end])
	r.start = 0
	r.buf = buf
}

// Pending reports whether the next call to Next returns without reading:
// a whole packet (or a sticky error) is already buffered. A server that
// answers requests one by one can hold its answers while requests are
// pending and write them in one go.
func (r *Reader) Pending() bool {
	if r.err != nil {
		return true
	}
	if r.big != nil || r.end-r.start < HeaderSize {
		return false
	}
	h, err := ParseHeader(r.buf[r.start:r.end], r.lim)
	return err != nil || r.end-r.start >= h.Len()
}

// readBig reads the rest of the big packet's body and returns the packet.
func (r *Reader) readBig() (Packet, error) {
	for len(r.big) < r.bigNeed {
		if len(r.big) == cap(r.big) {
			grown := make([]byte, len(r.big), min(r.bigNeed, 2*cap(r.big)))
			copy(grown, r.big)
			r.big = grown
		}
		m, err := readSome(r.rd, r.big[len(r.big):min(cap(r.big), r.bigNeed)])
		r.big = r.big[:len(r.big)+m]
		if err != nil {
			return Packet{}, r.endErr(err, HeaderSize+len(r.big), HeaderSize+r.bigNeed)
		}
	}
	p, err := r.bigHdr.packet(r.big)
	if err != nil {
		return Packet{}, r.fail(err)
	}
	return p, nil
}

// maxBuf is the largest buffer the Reader grows to.
func (r *Reader) maxBuf() int {
	return min(readerBufSize, HeaderSize+r.lim.MaxConnLen+r.lim.MaxAppLen)
}

// grow doubles the buffer until n bytes fit or it reached maxBuf, keeping
// the bytes buffered.
func (r *Reader) grow(n int) {
	size := len(r.buf)
	for size < n && size < r.maxBuf() {
		size = min(2*size, r.maxBuf())
	}
	buf := make([]byte, size)
	r.end = copy(buf, r.buf[r.start:r.end])
	r.start = 0
	r.buf = buf
}

// makeRoom moves the buffered bytes to the front of buf when fewer than
// need bytes fit after r.start (need <= len(r.buf)).
func (r *Reader) makeRoom(need int) {
	if r.start == r.end {
		r.start, r.end = 0, 0
		return
	}
	if r.start+need > len(r.buf) {
		r.end = copy(r.buf, r.buf[r.start:r.end])
		r.start = 0
	}
}

// fill reads once into the free end of buf.
func (r *Reader) fill() error {
	m, err := readSome(r.rd, r.buf[r.end:])
	r.end += m
	return err
}

// readSome reads into p until at least one byte arrives; it returns an
// error only when none did. Like bufio, it gives up with io.ErrNoProgress
// after maxEmptyReads empty reads in a row.
func readSome(rd io.Reader, p []byte) (int, error) {
	for i := 0; i < maxEmptyReads; i++ {
		m, err := rd.Read(p)
		if m < 0 || m > len(p) {
			return 0, fmt.Errorf("protocol: reader returned invalid count %d", m)
		}
		if m > 0 {
			return m, nil
		}
		if err != nil {
			return 0, err
		}
	}
	return 0, io.ErrNoProgress
}

// endErr turns a read error that came after have of want bytes of a packet
// into Next's error.
func (r *Reader) endErr(err error, have, want int) error {
	if err != io.EOF {
		return err
	}
	if have == 0 {
		return io.EOF
	}
	return r.fail(fmt.Errorf("%w: stream ended after %d of %d bytes: %w", ErrShort, have, want, io.ErrUnexpectedEOF))
}

func (r *Reader) fail(err error) error {
	r.err = err
	return err
}
