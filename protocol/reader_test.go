package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strconv"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// header builds a raw 24-byte header.
func header(version, typ byte, id int64, timeout, connLen, appLen int32) []byte {
	b := []byte{version, typ, 0, 0}
	b = binary.BigEndian.AppendUint64(b, uint64(id))
	b = binary.BigEndian.AppendUint32(b, uint32(timeout))
	b = binary.BigEndian.AppendUint32(b, uint32(connLen))
	return binary.BigEndian.AppendUint32(b, uint32(appLen))
}

func heartbeatPacket(id int64) []byte {
	return AppendPacket(nil, &Packet{ID: id, Timeout: 3000, Conn: []byte(`{"type":"heartbeat"}`)})
}

// decodeBoth runs the bytes through DecodePacket and through a Reader and
// returns both errors.
func decodeBoth(t *testing.T, b []byte, lim Limits) (decodeErr, readerErr error) {
	t.Helper()
	_, _, decodeErr = DecodePacket(b, lim)
	_, readerErr = NewReader(bytes.NewReader(b), lim).Next()
	return decodeErr, readerErr
}

func TestRejects(t *testing.T) {
	valid := heartbeatPacket(1)
	connJSON := func(conn string) []byte {
		return append(header(1, 0, 9, 1000, int32(len(conn)), 0), conn...)
	}
	cases := []struct {
		name     string
		in       []byte
		sentinel error
		says     []string // substrings the message must contain
	}{
		{"http GET", []byte("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"), ErrVersion,
			[]string{"got 0x47, want 0x01", `"GET / HTTP/1.1\r\n"`}},
		{"tls hello", []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01}, ErrVersion, []string{"got 0x16"}},
		{"version 2", append([]byte{2}, valid[1:]...), ErrVersion, []string{"got 0x02"}},
		{"version 0", append([]byte{0}, valid[1:]...), ErrVersion, []string{"got 0x00"}},
		{"type 7", append([]byte{1, 7}, valid[2:]...), ErrPacketType, []string{"got 7, want 0 (request) or 1 (response)"}},
		{"app 2GB", header(1, 0, 1, 3000, 20, 0x7fffffff), ErrTooLarge,
			[]string{"app object length 2147483647 exceeds limit 16777216"}},
		{"conn 2GB", header(1, 1, 1, 3000, 0x7fffffff, 0), ErrTooLarge,
			[]string{"conn object length 2147483647 exceeds limit 65536"}},
		{"conn negative", header(1, 0, 5, 3000, -1, 0), ErrNegativeLength, []string{"conn object length -1", "packet id 5"}},
		{"app negative", header(1, 0, 5, 3000, 20, -5), ErrNegativeLength, []string{"app object length -5"}},
		{"both negative summing positive", header(1, 0, 5, 3000, -10, 40), ErrNegativeLength, []string{"conn object length -10"}},
		{"conn not JSON (CC-050)", connJSON(`{"foo":"bar"|`), ErrConnObject, []string{`invalid JSON "{\"foo\":\"bar\"|"`, "packet id 9"}},
		{"conn array", connJSON(`[1,2]`), ErrConnObject, []string{`starts "[1,2]", want a JSON object`}},
		{"conn string", connJSON(`"heartbeat"`), ErrConnObject, []string{"want a JSON object"}},
		{"conn empty", connJSON(``), ErrConnObject, []string{"empty"}},
		{"conn spaces", connJSON(`   `), ErrConnObject, []string{"empty"}},
		{"conn two objects", connJSON(`{}{}`), ErrConnObject, []string{"invalid JSON"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			derr, rerr := decodeBoth(t, c.in, Limits{})
			for _, err := range []error{derr, rerr} {
				require.ErrorIs(t, err, c.sentinel)
				for _, s := range c.says {
					assert.Contains(t, err.Error(), s)
				}
			}
		})
	}
}

func TestRejectsBeforeTheWholeHeader(t *testing.T) {
	// A peer that sent "GET /" and waits: rejected at its first byte, not
	// after 24.
	for _, prefix := range []string{"G", "GET /", "\x01\x09"} {
		pr, pw := io.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = pw.Write([]byte(prefix))
		}()
		_, err := NewReader(pr, Limits{}).Next()
		assert.True(t, errors.Is(err, ErrVersion) || errors.Is(err, ErrPacketType), "%q: %v", prefix, err)
		_ = pr.Close()
		<-done
	}
	_, err := ParseHeader([]byte("GE"), Limits{})
	assert.ErrorIs(t, err, ErrVersion)
	_, err = ParseHeader([]byte{1, 0, 0}, Limits{})
	assert.ErrorIs(t, err, ErrShort)
	assert.ErrorContains(t, err, "header needs 24 bytes, have 3")
}

func TestLimits(t *testing.T) {
	lim := Limits{MaxConnLen: 20, MaxAppLen: 8}
	at := AppendPacket(nil, &Packet{Conn: []byte(`{"type":"heartbeat"}`), App: []byte("12345678")})
	_, _, err := DecodePacket(at, lim)
	require.NoError(t, err, "lengths equal to the limits are accepted")

	over := AppendPacket(nil, &Packet{Conn: []byte(`{"type":"heartbeat"}`), App: []byte("123456789")})
	derr, rerr := decodeBoth(t, over, lim)
	assert.ErrorIs(t, derr, ErrTooLarge)
	assert.ErrorIs(t, rerr, ErrTooLarge)
	assert.ErrorContains(t, rerr, "app object length 9 exceeds limit 8")

	assert.Equal(t, DefaultLimits, Limits{}.withDefaults())
	assert.Equal(t, DefaultLimits, Limits{MaxConnLen: -1, MaxAppLen: -1}.withDefaults())
}

func TestTruncated(t *testing.T) {
	for _, fp := range loadPackets(t) {
		full := unhexT(t, fp.Hex)
		for cut := 1; cut < len(full); cut++ {
			_, n, err := DecodePacket(full[:cut], Limits{})
			require.ErrorIs(t, err, ErrShort, "%s cut at %d", fp.Name, cut)
			require.Zero(t, n)

			r := NewReader(iotest.HalfReader(bytes.NewReader(full[:cut])), Limits{})
			_, err = r.Next()
			require.ErrorIs(t, err, ErrShort, "%s cut at %d", fp.Name, cut)
			require.ErrorIs(t, err, io.ErrUnexpectedEOF)
			want := len(full)
			if cut < HeaderSize {
				want = HeaderSize
			}
			require.ErrorContains(t, err, "stream ended after "+strconv.Itoa(cut)+" of "+strconv.Itoa(want)+" bytes")
			_, again := r.Next()
			require.Equal(t, err, again, "errors are sticky")
		}
	}
	// Nothing at all is a clean end, not a truncation.
	_, err := NewReader(bytes.NewReader(nil), Limits{}).Next()
	assert.Equal(t, io.EOF, err)
}

func TestStickyProtocolError(t *testing.T) {
	r := NewReader(bytes.NewReader(append([]byte("GET / "), heartbeatPacket(1)...)), Limits{})
	_, err := r.Next()
	require.ErrorIs(t, err, ErrVersion)
	_, err2 := r.Next()
	assert.Equal(t, err, err2)
}

// timeoutReader returns a timeout error after every n bytes.
type timeoutReader struct {
	r       io.Reader
	n, left int
}

var errTimeout = errors.New("i/o timeout")

func (t *timeoutReader) Read(p []byte) (int, error) {
	if t.left == 0 {
		t.left = t.n
		return 0, errTimeout
	}
	if len(p) > t.left {
		p = p[:t.left]
	}
	n, err := t.r.Read(p)
	t.left -= n
	return n, err
}

func TestResumesAfterReadError(t *testing.T) {
	big := AppendPacket(nil, &Packet{ID: 2, Conn: []byte(`{"type":"invoke_result","success":true}`), App: bytes.Repeat([]byte("x"), 3*readerBufSize)})
	stream := append(append(heartbeatPacket(1), big...), heartbeatPacket(3)...)
	r := NewReader(&timeoutReader{r: bytes.NewReader(stream), n: 7, left: 7}, Limits{})
	var ids []int64
	var timeouts int
	for {
		p, err := r.Next()
		if errors.Is(err, errTimeout) {
			timeouts++
			continue
		}
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		ids = append(ids, p.ID)
		if p.ID == 2 {
			assert.Equal(t, 3*readerBufSize, len(p.App))
		}
	}
	assert.Equal(t, []int64{1, 2, 3}, ids)
	assert.Greater(t, timeouts, 100, "the timeouts really interrupted packets")
}

func TestBigPacketsAndBuffering(t *testing.T) {
	var stream []byte
	var want []Packet
	for i, size := range []int{0, 10, readerBufSize - HeaderSize - 40, readerBufSize, 100 << 10, 5, readerBufSize * 2, 0} {
		app := bytes.Repeat([]byte{byte('a' + i)}, size)
		if size == 0 {
			app = nil
		}
		p := Packet{Response: i%2 == 1, ID: int64(i + 1), Timeout: int32(i), Conn: []byte(`{"type":"invoke_result","success":true}`), App: app}
		want = append(want, p)
		stream = AppendPacket(stream, &p)
	}
	for _, wrap := range []func(io.Reader) io.Reader{
		func(r io.Reader) io.Reader { return r }, iotest.OneByteReader, iotest.HalfReader, iotest.DataErrReader,
	} {
		r := NewReader(wrap(bytes.NewReader(stream)), Limits{})
		for _, w := range want {
			p, err := r.Next()
			require.NoError(t, err)
			assert.Equal(t, w, p)
		}
		_, err := r.Next()
		assert.Equal(t, io.EOF, err)
	}
}

type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, nil }

func TestNoProgress(t *testing.T) {
	_, err := NewReader(emptyReader{}, Limits{}).Next()
	assert.ErrorIs(t, err, io.ErrNoProgress)

	// Also in the middle of a packet larger than the buffer.
	big := AppendPacket(nil, &Packet{Conn: []byte(`{"type":"x"}`), App: make([]byte, 2*readerBufSize)})
	_, err = NewReader(io.MultiReader(bytes.NewReader(big[:readerBufSize+10]), emptyReader{}), Limits{}).Next()
	assert.ErrorIs(t, err, io.ErrNoProgress)
}

// loopReader serves data over and over.
type loopReader struct {
	data []byte
	off  int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := copy(p, l.data[l.off:])
	l.off = (l.off + n) % len(l.data)
	return n, nil
}

func TestReaderSteadyStateAllocs(t *testing.T) {
	var stream []byte
	for _, fp := range loadPackets(t) {
		stream = append(stream, unhexT(t, fp.Hex)...)
	}
	r := NewReader(&loopReader{data: stream}, Limits{})
	_, err := r.Next()
	require.NoError(t, err)
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs, "Next allocates nothing for packets that fit the buffer")
}

func TestHugeClaimsAllocateNothingBig(t *testing.T) {
	// Headers that claim huge bodies, for every combination the limits
	// allow or not: the reader must never reserve more than the limits.
	lim := Limits{MaxConnLen: 1 << 10, MaxAppLen: 4 << 10}
	claims := [][]byte{
		header(1, 0, 1, 0, 0x7fffffff, 0x7fffffff),
		header(1, 0, 1, 0, 1<<10, 0x7fffffff),
		header(1, 0, 1, 0, 1<<10, 4<<10), // allowed: waits for a body that never comes
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 0; i < 100; i++ {
		for _, h := range claims {
			_, _ = NewReader(bytes.NewReader(h), lim).Next()
			_, _, _ = DecodePacket(h, lim)
		}
	}
	runtime.ReadMemStats(&after)
	perCall := (after.TotalAlloc - before.TotalAlloc) / 300
	assert.Less(t, perCall, uint64(HeaderSize+lim.MaxConnLen+lim.MaxAppLen+2048), "bytes allocated per Next")
}

func TestBigClaimCostsWhatArrives(t *testing.T) {
	// A header announcing 16 MiB followed by 100 bytes: the reader holds
	// its start buffer, not 16 MiB.
	h := header(1, 0, 1, 0, 20, DefaultMaxAppLen-20)
	stream := append(append(h, `{"type":"heartbeat"}`...), make([]byte, 100)...)
	r := NewReader(bytes.NewReader(stream), Limits{})
	_, err := r.Next()
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	assert.Equal(t, 2*readerBufSize, cap(r.big))
	assert.Equal(t, DefaultMaxAppLen, r.bigNeed)
}

func TestReaderOverPipeEOFMidPacket(t *testing.T) {
	// A writer that dies mid-packet: the reader reports it, and returns.
	pr, pw := io.Pipe()
	go func() {
		p := heartbeatPacket(1)
		_, _ = pw.Write(p[:30])
		_ = pw.Close()
	}()
	done := make(chan error, 1)
	go func() {
		_, err := NewReader(pr, Limits{}).Next()
		done <- err
	}()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	case <-time.After(10 * time.Second):
		t.Fatal("reader did not return after the writer closed")
	}
}

// The buffer starts small (an idle connection's heartbeats fit) and
// doubles only when a packet needs it, keeping the bytes already read.
func TestReaderBufferGrowsOnDemand(t *testing.T) {
	var stream []byte
	sizes := []int{10, 100, 10 << 10, 50, 20 << 10, readerBufSize - HeaderSize - 100}
	for i, n := range sizes {
		stream = AppendPacket(stream, &Packet{ID: int64(i + 1), Conn: []byte(`{"type":"x"}`), App: bytes.Repeat([]byte{byte('a' + i)}, n)})
	}
	r := NewReader(iotest.HalfReader(bytes.NewReader(stream)), Limits{})
	wantCap := []int{readerMinBuf, readerMinBuf, 16 << 10, 16 << 10, readerBufSize, readerBufSize}
	for i, n := range sizes {
		p, err := r.Next()
		require.NoError(t, err)
		assert.Equal(t, int64(i+1), p.ID)
		assert.Equal(t, bytes.Repeat([]byte{byte('a' + i)}, n), p.App)
		assert.Equal(t, wantCap[i], len(r.buf), "buffer after packet %d (%d B)", i+1, n)
	}
	_, err := r.Next()
	assert.ErrorIs(t, err, io.EOF)
}

// Pending is true exactly when Next can return without reading.
func TestReaderPending(t *testing.T) {
	one := AppendPacket(nil, &Packet{ID: 1, Conn: []byte(`{"type":"x"}`), App: []byte("abc")})
	two := AppendPacket(append([]byte(nil), one...), &Packet{ID: 2, Conn: []byte(`{"type":"x"}`)})
	for cut := 0; cut <= len(two); cut++ {
		// The reader gets two[:cut] in one read, then the rest in one
		// more (which it needs only if the first packet was cut).
		r := NewReader(io.MultiReader(bytes.NewReader(two[:cut]), bytes.NewReader(two[cut:])), Limits{})
		assert.False(t, r.Pending(), "before any read")
		_, err := r.Next()
		require.NoError(t, err)
		whole := cut < len(one) || cut == len(two)
		assert.Equal(t, whole, r.Pending(), "after the first packet, with the bytes cut at %d of %d", cut, len(two))
	}
	r := NewReader(bytes.NewReader(append([]byte("GET / HTTP/1.1\r\n"), one...)), Limits{})
	_, err := r.Next()
	require.Error(t, err)
	assert.True(t, r.Pending(), "a sticky error is returned without reading")
}

// SetLimits applies from the next packet on: a server lifts the limits of
// a connection once it proved itself.
func TestReaderSetLimits(t *testing.T) {
	small := Limits{MaxConnLen: 64, MaxAppLen: 16}
	var stream []byte
	stream = AppendPacket(stream, &Packet{ID: 1, Conn: []byte(`{"type":"x"}`), App: []byte("small")})
	stream = AppendPacket(stream, &Packet{ID: 2, Conn: []byte(`{"type":"x"}`), App: bytes.Repeat([]byte("a"), 1000)})
	r := NewReader(bytes.NewReader(stream), small)
	p, err := r.Next()
	require.NoError(t, err)
	assert.Equal(t, int64(1), p.ID)
	r.SetLimits(Limits{})
	p, err = r.Next()
	require.NoError(t, err, "a 1000 B app object after the limits were lifted")
	assert.Len(t, p.App, 1000)

	r = NewReader(bytes.NewReader(stream), Limits{})
	_, err = r.Next()
	require.NoError(t, err)
	r.SetLimits(small)
	_, err = r.Next()
	assert.ErrorIs(t, err, ErrTooLarge)
}

// After Detach, the packets returned so far keep their bytes while the
// Reader reads on (the packets buffered beyond them included).
func TestReaderDetach(t *testing.T) {
	var stream []byte
	var apps [][]byte
	for i := range 6 {
		app := bytes.Repeat([]byte{byte('a' + i)}, 1500)
		apps = append(apps, app)
		stream = AppendPacket(stream, &Packet{ID: int64(i + 1), Conn: []byte(`{"type":"invoke"}`), App: app})
	}
	r := NewReader(bytes.NewReader(stream), Limits{})
	var kept []Packet
	for i := range apps {
		p, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		kept = append(kept, p)
		if i%2 == 0 {
			r.Detach()
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("after the last packet: %v, want io.EOF", err)
	}
	for i, p := range kept {
		if i%2 == 0 && !bytes.Equal(p.App, apps[i]) {
			t.Fatalf("packet %d changed after Detach", i+1)
		}
	}
}
