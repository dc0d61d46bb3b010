package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/internal/childproc"
)

func TestMain(m *testing.M) {
	childproc.Main(modes)
	os.Exit(m.Run())
}

// A short run of real processes on each transport: every call answered,
// and the report says so.
func TestShortRun(t *testing.T) {
	for _, tr := range []string{"tcp", "unix"} {
		t.Run(tr, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			var out, errOut bytes.Buffer
			code := realMain(ctx, []string{"-followers", "2", "-duration", "1s", "-rate", "100", "-transport", tr}, &out, &errOut)
			if code != 0 || !strings.Contains(out.String(), "0 timed out, 0 failed otherwise,") {
				t.Fatalf("exit %d\n%s%s", code, out.String(), errOut.String())
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	cfg, runs, err := parseFlags([]string{"-block", "50us-300us", "-runs", "3"}, new(bytes.Buffer))
	if err != nil || runs != 3 || cfg.BlockMin != 50*time.Microsecond || cfg.BlockMax != 300*time.Microsecond || cfg.Followers != 4 {
		t.Fatalf("%+v runs %d: %v", cfg, runs, err)
	}
	for _, bad := range [][]string{
		{"-block", "2ms"}, {"-block", "2ms-1ms"}, {"-block", "x-1ms"}, {"-followers", "0"},
		{"-rate", "0"}, {"-transport", "kcp"}, {"-runs", "0"},
	} {
		if _, _, err := parseFlags(bad, new(bytes.Buffer)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
