package deadline

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// TestWriterTimeoutKeepsTheStream: a Write blocked on a peer that does not
// read times out; its bytes still arrive, whole and before the next
// Write's, once the peer reads.
func TestWriterTimeoutKeepsTheStream(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	w := NewWriter(a)
	w.SetDeadline(time.Now().Add(50 * time.Millisecond))
	start := time.Now()
	if n, err := w.Write([]byte("first")); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write to a peer that does not read: %d, %v; want 0, os.ErrDeadlineExceeded", n, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the timed-out Write returned after %v", d)
	}
	// Past deadline: refused at once, nothing queued.
	if n, err := w.Write([]byte("never")); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write past the deadline: %d, %v", n, err)
	}
	w.SetDeadline(time.Time{})
	got := make(chan []byte)
	go func() {
		buf, _ := io.ReadAll(b)
		got <- buf
	}()
	if n, err := w.Write([]byte("second")); n != 6 || err != nil {
		t.Fatalf("Write after the deadline was removed: %d, %v", n, err)
	}
	a.Close()
	if buf := <-got; string(buf) != "firstsecond" {
		t.Fatalf("the peer read %q, want %q", buf, "firstsecond")
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("Write after the conn closed: %v, want its error", err)
	}
}

// TestWriterDeadlineSetWhileBlocked: SetDeadline wakes a Write blocked
// with no deadline, and one waiting for its turn.
func TestWriterDeadlineSetWhileBlocked(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	w := NewWriter(a)
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := w.Write([]byte("blocked"))
			errs <- err
		}()
	}
	time.Sleep(20 * time.Millisecond)
	w.SetDeadline(time.Now().Add(10 * time.Millisecond))
	for range 2 {
		select {
		case err := <-errs:
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("blocked Write: %v, want os.ErrDeadlineExceeded", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a blocked Write was not woken by a new deadline")
		}
	}
	a.Close() // ends the write still pending
}

// TestWriterConcurrent: concurrent Writes are written whole, one at a time.
func TestWriterConcurrent(t *testing.T) {
	a, b := net.Pipe()
	w := NewWriter(a)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			msg := bytes.Repeat([]byte{byte('a' + i)}, 1000)
			for range 10 {
				if _, err := w.Write(msg); err != nil {
					t.Error(err)
				}
			}
		})
	}
	go func() { wg.Wait(); a.Close() }()
	buf, _ := io.ReadAll(b)
	if len(buf) != 80000 {
		t.Fatalf("read %d bytes, want 80000", len(buf))
	}
	for i := 0; i < len(buf); i += 1000 {
		if bytes.Count(buf[i:i+1000], buf[i:i+1]) != 1000 {
			t.Fatalf("Writes interleaved at byte %d", i)
		}
	}
}
