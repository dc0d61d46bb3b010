package cluster_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
)

// Issue 18: at the default level (Info) a Client that starts, works and
// closes normally writes one line, "ready" with its role, on either role;
// the election's outcome, the leader's start and Close are debug lines.
func TestQuietLogsOfNormalRun(t *testing.T) {
	tr, addr := memNet(t)
	var lbuf, fbuf syncBuffer
	logger := func(b *syncBuffer) cluster.Option {
		return cluster.WithLogger(slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelInfo})))
	}
	w := newWorld()
	l := newClient(t, "Quiet", w, cluster.WithTransport(tr), cluster.WithAddr(addr), logger(&lbuf))
	ready(t, l)
	f := newClient(t, "Quiet", w, cluster.WithTransport(tr), cluster.WithAddr(addr), logger(&fbuf))
	ready(t, f)
	for _, c := range []*cluster.Client{l, f} {
		got := make(chan cluster.Value, 1)
		cancel, err := c.Subscribe(reg{Key: "quiet"}, func(v cluster.Value) {
			select {
			case got <- v:
			default:
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Publish(reg{Key: "quiet", Value: c.Role().String()}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no value", c.Role())
		}
		cancel()
		if got := mustInvoke[string](t, c, "echo", "x"); got != "x" {
			t.Fatalf("echo: %q", got)
		}
		if err := c.InvokeOneway("echo", "y"); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		role string
		buf  *syncBuffer
	}{{"leader", &lbuf}, {"follower", &fbuf}} {
		lines := strings.Split(strings.TrimSuffix(c.buf.String(), "\n"), "\n")
		want := `level=INFO msg=ready channel=Quiet addr="mem ` + addr + `" role=` + c.role + " term=1"
		if len(lines) != 1 || !strings.HasSuffix(lines[0], want) {
			t.Errorf("the %s logged %d line(s), want one ending %q:\n%s", c.role, len(lines), want, c.buf.String())
		}
	}
}
