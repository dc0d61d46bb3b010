package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/go-clusterclient/clusterclient/codec/cbor"
	"github.com/go-clusterclient/clusterclient/internal/clusterbench"
	"github.com/go-clusterclient/clusterclient/internal/leaks"
)

// TestMain registers the codec, as main does, and runs a child role when
// clusterbench started the test binary as one of its children.
func TestMain(m *testing.M) {
	clusterbench.RegisterCodec(cbor.Codec)
	if code, ok := clusterbench.ChildMain(); ok {
		os.Exit(code)
	}
	goleak.VerifyTestMain(m, leaks.KCP()...)
}

// TestQuickRunWithCBOR runs a very short invoke measurement with CBOR
// members between processes and checks that the rows are there, labelled
// with the codec. (A member that ran another codec than asked fails the
// run: members report their codec.)
func TestQuickRunWithCBOR(t *testing.T) {
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := clusterbench.Run([]string{"--codecs", "cbor", "--workloads", "invoke", "--transports", "tcp",
		"--duration", "20ms", "--runs", "1", "--timeout", "1m", "--out", out}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	data, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Measurements []struct {
			Impl, Transport, Name string
			Latency               *struct{ N int }
			Rate                  float64 `json:"ops_per_sec"`
		}
	}
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{
		"invoke/64/string": false, "invoke/64/bytes": false, "invoke/4096/string": false, "invoke/4096/bytes": false,
		"tput/64/string/n1": false, "tput/64/string/n4": false, "tput/4096/bytes/n4": false,
	}
	for _, m := range res.Measurements {
		if _, ok := want[m.Name]; ok && m.Impl == "ours/cbor" && m.Transport == "tcp" && ((m.Latency != nil && m.Latency.N > 0) || m.Rate > 0) {
			want[m.Name] = true
		}
		if m.Impl == "ours" {
			t.Errorf("a json row in a cbor-only run: %+v", m)
		}
	}
	for name, ok := range want {
		if !ok {
			t.Errorf("no ours/cbor tcp %s row in results.json:\n%s", name, data)
		}
	}
	if !strings.Contains(stdout.String(), "#### tcp, cbor") {
		t.Errorf("results.md has no cbor section:\n%s", stdout.String())
	}
}

func TestUnknownCodec(t *testing.T) {
	var stderr bytes.Buffer
	code := clusterbench.Run([]string{"--codecs", "json,protobuf"}, &bytes.Buffer{}, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), `unknown codec "protobuf" (known: cbor,json,serialize-json)`) {
		t.Errorf("exit %d, stderr %q; want 2 and the codec named with the known ones", code, stderr.String())
	}
}
