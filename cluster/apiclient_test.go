package cluster_test

import (
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
)

// RP-16, UI-17, CC-035, CC-036, CC-037, RG-29: the APIClient pattern in
// both scenes: the business client's own init (subscribe and wait for the
// first value) makes it ready; Get is served from its cache; Set from any
// process updates every cache; one upstream connection; Close is the
// default close and releases the upstream connection with the last user.
func TestRP16_APIClientWithCache(t *testing.T) {
	for _, scene := range []string{"cluster", "single"} {
		t.Run(scene, func(t *testing.T) {
			server := newConfigServer()
			server.values["color"] = "red"
			var opts []cluster.Option
			if scene == "single" {
				opts = []cluster.Option{cluster.WithSingleMode(true), cluster.WithLogger(testLogger())}
			} else {
				tr, addr := memNet(t)
				opts = append(fastOpts(), cluster.WithTransport(tr), cluster.WithAddr(addr))
			}
			ctx := tctx(t, 10*time.Second)
			a, err := NewConfigClient(ctx, server, []string{"color", "size"}, opts...)
			if err != nil {
				t.Fatal(err)
			}
			b, err := NewConfigClient(ctx, server, []string{"color"}, opts...)
			if err != nil {
				t.Fatal(err)
			}
			// Ready means the init ran: the cache is already filled.
			for _, cc := range []*ConfigClient{a, b} {
				if v, ok := cc.Get("color"); !ok || v != "red" {
					t.Fatalf("initial cache: %q %v", v, ok)
				}
			}
			if err := b.Set(ctx, "color", "blue"); err != nil {
				t.Fatal(err)
			}
			if err := a.Set(ctx, "size", "XL"); err != nil {
				t.Fatal(err)
			}
			for _, cc := range []*ConfigClient{a, b} {
				if err := cc.Await(ctx, "color", "blue"); err != nil {
					t.Fatal(err)
				}
			}
			if err := a.Await(ctx, "size", "XL"); err != nil {
				t.Fatal(err)
			}
			if n := server.conns.Load(); n != 1 {
				t.Fatalf("%d upstream connections", n)
			}
			if err := a.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if err := b.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if n := server.conns.Load(); n != 0 {
				t.Fatalf("%d upstream connections after closing", n)
			}
		})
	}
}
