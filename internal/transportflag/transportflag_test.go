package transportflag

import (
	"errors"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/go-clusterclient/clusterclient/internal/leaks"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, leaks.KCP()...)
}

func TestNewBuildsEachName(t *testing.T) {
	for _, name := range Names() {
		tr, err := New(name, "")
		if err != nil {
			t.Fatalf("New(%q): %v", name, err)
		}
		if tr.Name() != name {
			t.Errorf("New(%q) built a transport named %q", name, tr.Name())
		}
	}
}

func TestYamuxOver(t *testing.T) {
	for _, over := range append(Unders(), "") {
		tr, err := New("yamux", over)
		if err != nil {
			t.Fatalf("yamux over %q: %v", over, err)
		}
		if tr.Name() != "yamux" {
			t.Errorf("yamux over %q: built %q", over, tr.Name())
		}
	}
	// The others ignore over.
	if tr, err := New("tcp", "unix"); err != nil || tr.Name() != "tcp" {
		t.Errorf(`New("tcp", "unix"): %v, %v`, tr, err)
	}
}

func TestUnknown(t *testing.T) {
	for _, c := range []struct{ name, over, says string }{
		{"carrier-pigeon", "", `"carrier-pigeon" (want tcp, unix, yamux or kcp)`},
		{"", "", `"" (want tcp, unix, yamux or kcp)`},
		{"yamux", "kcp", `"kcp" for yamux to run over (want tcp or unix)`},
		{"yamux", "yamux", `"yamux" for yamux to run over`},
	} {
		tr, err := New(c.name, c.over)
		if !errors.Is(err, ErrUnknown) || !strings.Contains(err.Error(), c.says) || tr != nil {
			t.Errorf("New(%q, %q) = %v, %v; want ErrUnknown saying %s", c.name, c.over, tr, err, c.says)
		}
	}
}
