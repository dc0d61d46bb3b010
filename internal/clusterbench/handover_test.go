package clusterbench

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// TestRunHandover runs the handover workload for real, briefly (one kill,
// one round of short-lived processes), over tcp (unix runs the same code
// with another address), and checks that every figure is produced, with
// and without the features, and reported.
// It checks that the scenarios ran as described, not the failed calls
// themselves: those are the benchmark's result (target 0 with the
// features), and a loaded host can make a control run fail nothing.
func TestRunHandover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts about seventy processes; skipped with -short")
	}
	cfg := tinyConfig("handover")
	cfg.HandoverKills, cfg.HandoverRounds = 1, 1
	cfg.Timeout = 3 * time.Minute // a race build on a loaded host starts processes slowly
	var log bytes.Buffer
	res, err := run(testContext(t, cfg.Timeout), cfg, &log)
	if err != nil || len(res.Errors) > 0 {
		t.Fatalf("run: %v %v\n%s", err, res.Errors, log.String())
	}
	for _, tr := range cfg.Transports {
		for _, sc := range handoverScenarios {
			for _, features := range []bool{true, false} {
				name := handoverName(sc, features)
				m := res.find(implOurs, tr, name)
				if m == nil || m.Handover == nil {
					t.Errorf("%s %s: not measured", tr, name)
					continue
				}
				f := m.Handover
				if f.Scenario != sc || f.Features != features || f.OK <= 0 || f.Changes <= 0 ||
					f.Failed != f.Lost+f.Timeouts+f.Other {
					t.Errorf("%s %s: %+v", tr, name, f)
				}
				want := map[string]int{scenarioRolling: 2 * rollingMembers, scenarioSIGKILL: sigkillMembers + 1, scenarioShortLived: shortLivedProcs}[sc]
				if f.Processes != want {
					t.Errorf("%s %s: %d processes started, want %d", tr, name, f.Processes, want)
				}
				if sc == scenarioRolling && (f.SteadyCalls == 0 || f.ChangeCalls == 0 || f.SteadyP99 <= 0 || f.ChangeP99 <= 0) {
					t.Errorf("%s %s: no latency before or during the changes: %+v", tr, name, f)
				}
				if sc == scenarioSIGKILL && !features && f.Retried != 0 {
					t.Errorf("%s %s: %d calls retried with nothing declared idempotent", tr, name, f.Retried)
				}
			}
		}
	}
	if len(res.transports()) != 0 {
		t.Errorf("handover rows made transport tables: %v", res.transports())
	}
	checkOutputs(t, res)
	md := renderMarkdown(t, res)
	if n := strings.Count(md, "| tcp | "); n != 6 {
		t.Errorf("%d handover rows in the markdown, want 6:\n%s", n, md)
	}
}

// The verdicts: the target is 0 failed calls with the features; the
// control run says whether it failed calls.
func TestHandoverReport(t *testing.T) {
	f := func(sc string, features bool, failed int64) Measurement {
		return Measurement{Impl: implOurs, Transport: "unix", Name: handoverName(sc, features),
			Handover: &HandoverFigures{Scenario: sc, Features: features, OK: 100, Failed: failed, Lost: failed, Changes: 3,
				SteadyP99: 2e6, ChangeP99: 5e6, SteadyCalls: 10, ChangeCalls: 5}}
	}
	res := &Results{Measurements: []Measurement{
		f(scenarioRolling, true, 0), f(scenarioRolling, false, 6),
		f(scenarioSIGKILL, true, 2), f(scenarioSIGKILL, false, 0),
	}}
	md := renderMarkdown(t, res)
	checkMarkdown(t, md)
	for _, want := range []string{
		"| unix | " + handoverTitles[scenarioRolling] + " | with | 100 | **0** (0 / 0 / 0) | – | 3 | +3.00 ms (2.00 ms → 5.00 ms; 10 / 5 calls) | 0 | met |",
		"| unix | " + handoverTitles[scenarioRolling] + " | without | 100 | **6** (6 / 0 / 0) | – | 3 | +3.00 ms",
		"| control (> 0 expected) | fails without the features |",
		"| unix | " + handoverTitles[scenarioSIGKILL] + " | with | 100 | **2** (2 / 0 / 0) | 0 | 3 | – | 0 | **missed** |",
		"| unix | " + handoverTitles[scenarioSIGKILL] + " | without | 100 | **0** (0 / 0 / 0) | 0 | 3 | – | control (> 0 expected) | no failure this run |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, handoverTitles[scenarioShortLived]) {
		t.Errorf("a scenario not measured has a row:\n%s", md)
	}
}

// markdownHas checks that md contains every line of want.
func markdownHas(t *testing.T, md string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(md, w) {
			t.Errorf("results.md lacks\n%s\nin:\n%s", w, md)
		}
	}
}

func renderMarkdown(t *testing.T, res *Results) string {
	t.Helper()
	var b strings.Builder
	if err := writeMarkdown(&b, res, "bench.svg"); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestHandoverFlags(t *testing.T) {
	c, err := parseFlags([]string{"--quick", "--handover-kills", "5", "--workloads", "handover"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.HandoverKills != 5 || c.HandoverRounds != QuickConfig().HandoverRounds || !c.has("handover") {
		t.Errorf("got kills %d, rounds %d, workloads %v", c.HandoverKills, c.HandoverRounds, c.Workloads)
	}
	if d := DefaultConfig(); !d.has("handover") || d.HandoverKills != 3 || d.HandoverRounds != 5 {
		t.Errorf("DefaultConfig: %+v", d)
	}
	for _, args := range [][]string{{"--handover-kills", "0"}, {"--handover-rounds", "0"}, {"--handover-rounds", "101"}} {
		if _, err := parseFlags(args, io.Discard); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("parseFlags(%q) = %v, want ErrInvalidConfig", args, err)
		}
	}
}
