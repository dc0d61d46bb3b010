package clusterbench

import "fmt"

// handoverTitles name the scenarios in the report.
var handoverTitles = map[string]string{
	scenarioRolling:    "rolling restart of 4 processes, each closed in turn (leader first), all calling",
	scenarioSIGKILL:    "SIGKILL of the leader under load, idempotent calls",
	scenarioShortLived: "20 concurrent short-lived processes, one call each, no long-lived leader",
}

// handoverVerdict is a row's target and whether it was met: 0 failed calls
// with the features; the control run without them is there to show that
// the measurement can fail, so its verdict says whether it did.
func handoverVerdict(f *HandoverFigures) (target, met string) {
	if f.Features {
		if f.Failed == 0 {
			return "0", "met"
		}
		return "0", "**missed**"
	}
	if f.Failed > 0 {
		return "control (> 0 expected)", "fails without the features"
	}
	return "control (> 0 expected)", "no failure this run"
}

// writeHandover writes the handover workload's rows (issue 17).
func writeHandover(p func(string, ...any), r *Results) {
	var rows []string
	for _, t := range handoverTransports {
		for _, sc := range handoverScenarios {
			for _, features := range []bool{true, false} {
				m := r.find(implOurs, t, handoverName(sc, features))
				if m == nil || m.Handover == nil {
					continue
				}
				f := m.Handover
				with := "with"
				if !features {
					with = "without"
				}
				changes := fmt.Sprintf("%d", f.Changes)
				added := "–"
				if sc == scenarioRolling {
					added = fmt.Sprintf("%s (%s → %s; %d / %d calls)", fmtSignedDur(f.addedP99()), fmtDur(f.SteadyP99), fmtDur(f.ChangeP99), f.SteadyCalls, f.ChangeCalls)
				}
				retried := "–"
				if sc == scenarioSIGKILL {
					retried = fmt.Sprintf("%d", f.Retried)
				}
				target, met := handoverVerdict(f)
				rows = append(rows, fmt.Sprintf("| %s | %s | %s | %d | **%d** (%d / %d / %d) | %s | %s | %s | %s | %s |\n",
					t, handoverTitles[sc], with, f.OK, f.Failed, f.Lost, f.Timeouts, f.Other, retried, changes, added, target, met))
			}
		}
	}
	if len(rows) == 0 {
		return
	}
	p("### Leader changes: failed calls with and without the hand-over (issue 17)\n\n")
	p("Each scenario runs twice in the same run: with the features (a closing leader hands over, `WithHandoverTimeout` default; ")
	p("the sigkill scenario's method declared in `Service.Idempotent`) and without them (`WithHandoverTimeout(0)`, nothing declared idempotent), ")
	p("to show that the measurement can fail. Failed calls are split as lost (`ErrLeaderLost`) / timed out / other; ")
	p("retried counts idempotent calls sent again to the next leader; leader changes are leaders closed (rolling), leaders killed (sigkill), ")
	p("or processes that led when their call returned (short-lived). Added p99 is the p99 of the answered calls that started during the changes ")
	p("minus that of a steady window before them (steady → during; calls in each).\n\n")
	p("| transport | scenario | features | calls ok | failed (lost / timed out / other) | retried | leader changes | added p99 | target | met |\n")
	p("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, row := range rows {
		p("%s", row)
	}
	p("\n")
}

// fmtSignedDur is fmtDur with a sign.
func fmtSignedDur(ns int64) string {
	if ns < 0 {
		return "−" + fmtDur(-ns)
	}
	return "+" + fmtDur(ns)
}
