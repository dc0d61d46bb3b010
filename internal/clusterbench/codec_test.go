package clusterbench

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/go-clusterclient/clusterclient/protocol"
)

// testCodec is protocol.JSON under another name: a registered codec whose
// members can only register with one another if every one of them runs
// it (the register handshake compares codec names).
type testCodec struct{}

func (testCodec) Name() string                             { return "test-json" }
func (testCodec) Append(dst []byte, v any) ([]byte, error) { return protocol.JSON.Append(dst, v) }
func (testCodec) Decode(data []byte, v any) error          { return protocol.JSON.Decode(data, v) }

func TestParseFlagsCodecs(t *testing.T) {
	c, err := parseFlags([]string{"--codecs", "test-json, json", "--quick"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Codecs, []string{"test-json", "json"}) {
		t.Errorf("codecs %q, want [test-json json]", c.Codecs)
	}
	_, err = parseFlags([]string{"--codecs", "json,morse"}, io.Discard)
	if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), `unknown codec "morse"`) ||
		!strings.Contains(err.Error(), "json,serialize-json,test-json") {
		t.Errorf("unknown codec: %v, want ErrInvalidConfig naming it and the known ones", err)
	}
	var stderr bytes.Buffer
	if code := Run([]string{"--codecs", "morse"}, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), `unknown codec "morse"`) {
		t.Errorf("Run --codecs morse: exit %d, stderr %q; want 2 and the codec named", code, stderr.String())
	}
	var usage bytes.Buffer
	parseFlags([]string{"-h"}, &usage)
	if !strings.Contains(usage.String(), "test-json") {
		t.Errorf("usage does not list the registered codec:\n%s", usage.String())
	}
}

func TestRegisterCodecPanics(t *testing.T) {
	for name, c := range map[string]protocol.Codec{
		"nil":       nil,
		"duplicate": protocol.JSON,
		"comma":     namedCodec("a,b"),
		"empty":     namedCodec(""),
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("RegisterCodec(%s) did not panic", name)
				}
			}()
			RegisterCodec(c)
		}()
	}
	if slices.Contains(knownCodecs(), "a,b") || slices.Contains(knownCodecs(), "") {
		t.Errorf("a refused codec was registered: %v", knownCodecs())
	}
}

type namedCodec string

func (n namedCodec) Name() string                           { return string(n) }
func (namedCodec) Append(dst []byte, v any) ([]byte, error) { return protocol.JSON.Append(dst, v) }
func (namedCodec) Decode(data []byte, v any) error          { return protocol.JSON.Decode(data, v) }

// TestRunCodecs runs the invoke workload with json and with a registered
// codec in one run, and checks that each has its rows (members that ran
// another codec than asked would fail the run: each reports its codec),
// and the report's Codecs section and binary-codec target.
func TestRunCodecs(t *testing.T) {
	cfg := tinyConfig("raw", "invoke")
	cfg.Codecs = []string{"json", "test-json"}
	res := runTiny(t, cfg)
	for _, impl := range []string{implOurs, "ours/test-json"} {
		for _, w := range latencyWorkloads {
			checkLatency(t, res, impl, "tcp", invokeName(w.size, w.kind))
		}
		for _, w := range throughputWorkloads {
			if m := res.find(impl, "tcp", tputName(w.size, w.kind, w.n)); m == nil || m.Rate <= 0 || m.Failed != 0 {
				t.Errorf("%s %s: %+v", impl, tputName(w.size, w.kind, w.n), m)
			}
		}
	}
	markdownHas(t, renderMarkdown(t, res),
		"#### tcp, test-json",
		"| workload | json | test-json | raw tcp | test-json ÷ raw | test-json ÷ json |",
		"| invoke 4 KiB []byte |",
		"with the binary codec (test-json), tcp, N = 4 | ",
	)
	checkOutputs(t, res)
}
