package cluster

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestCallCtxContract(t *testing.T) {
	t.Run("deadline without Done", func(t *testing.T) {
		c := newCallCtx(context.Background(), time.Now().Add(10*time.Millisecond))
		defer c.release()
		if c.Err() != nil {
			t.Fatal("error before the deadline")
		}
		if d, ok := c.Deadline(); !ok || d.IsZero() {
			t.Fatal("no deadline")
		}
		time.Sleep(20 * time.Millisecond)
		if !errors.Is(c.Err(), context.DeadlineExceeded) {
			t.Fatalf("err %v", c.Err())
		}
		select {
		case <-c.Done():
		default:
			t.Fatal("Done not closed after Err reported the deadline")
		}
	})
	t.Run("Done fires at the deadline", func(t *testing.T) {
		c := newCallCtx(context.Background(), time.Now().Add(20*time.Millisecond))
		defer c.release()
		done := c.Done()
		if c.Err() != nil {
			t.Fatal("error before Done closed")
		}
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Done never closed")
		}
		if !errors.Is(c.Err(), context.DeadlineExceeded) {
			t.Fatalf("err %v", c.Err())
		}
	})
	t.Run("parent cancels", func(t *testing.T) {
		type key struct{}
		parent, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
		c := newCallCtx(parent, time.Now().Add(time.Hour))
		defer c.release()
		child, cancelChild := context.WithCancel(c) // arms c through Done
		defer cancelChild()
		if c.Value(key{}) != "v" {
			t.Fatal("value not inherited")
		}
		cancel()
		select {
		case <-child.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("child not cancelled")
		}
		if !errors.Is(c.Err(), context.Canceled) {
			t.Fatalf("err %v", c.Err())
		}
	})
	t.Run("parent already done", func(t *testing.T) {
		parent, cancel := context.WithCancel(context.Background())
		cancel()
		c := newCallCtx(parent, time.Now().Add(time.Hour))
		defer c.release()
		if !errors.Is(c.Err(), context.Canceled) {
			t.Fatalf("err %v", c.Err())
		}
		<-c.Done()
	})
}
