package clusterbench

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/go-clusterclient/clusterclient/protocol"
)

// latencyRows and rateRows are the rows of each transport's table: ours
// against the raw baseline of the same transport (and Node's on TCP).
var latencyRows = []struct{ title, ours, raw string }{
	{"invoke 64 B string", invokeName(64, "string"), pingPongName(64)},
	{"invoke 64 B []byte", invokeName(64, "bytes"), pingPongName(64)},
	{"invoke 4 KiB string", invokeName(4096, "string"), pingPongName(4096)},
	{"invoke 4 KiB []byte", invokeName(4096, "bytes"), pingPongName(4096)},
	{"publish → all 4 subscribers", publishName(4), publishName(4)},
	{"publish → all 32 subscribers", publishName(32), publishName(32)},
	{"failover, auto (SIGKILL → every survivor invokes)", failoverName("auto"), ""},
	{"failover, forced roles (new leader process started)", failoverName("forced"), ""},
}

var rateRows = []struct{ title, ours, raw string }{
	{"throughput 64 B string, 1 follower × 64 in flight", tputName(64, "string", 1), echoName(64, 1)},
	{"throughput 64 B string, 4 followers × 64 in flight", tputName(64, "string", 4), echoName(64, 4)},
	{"throughput 4 KiB []byte, 4 followers × 64 in flight", tputName(4096, "bytes", 4), echoName(4096, 4)},
}

// rawTitle names the raw baseline of a row.
func rawTitle(name string) string {
	switch name {
	case pingPongName(64):
		return "ping-pong 64 B"
	case pingPongName(4096):
		return "ping-pong 4 KiB"
	case echoName(64, 1):
		return "pipelined echo 64 B, 1 client"
	case echoName(64, 4):
		return "pipelined echo 64 B, 4 clients"
	case echoName(4096, 4):
		return "pipelined echo 4 KiB, 4 clients"
	case publishName(4):
		return "fan-out through a relay process, 4 subscribers"
	case publishName(32):
		return "fan-out through a relay process, 32 subscribers"
	}
	return name
}

// writeMarkdown writes the report: one table per transport with ratios,
// the targets of issue 8, memory, allocations, and what was skipped or
// failed.
func writeMarkdown(w io.Writer, r *Results, svgPath string) error {
	b := &strings.Builder{}
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }

	p("Measured %s on %s/%s, %d CPUs, %s", r.Started.Format("2006-01-02"), r.Host.OS, r.Host.Arch, r.Host.CPUs, r.Host.Go)
	if r.Host.Node != "" {
		p(", Node %s with cluster-client %s", r.Host.Node, r.Host.ClusterClient)
	}
	if r.Host.GRPC != "" {
		p(", gRPC %s", r.Host.GRPC)
	}
	mode := "full run"
	if r.Config.Quick {
		mode = "--quick run"
	}
	p(" (%s: %d run(s) of %v per measurement, medians shown; %d kills per failover mode; wall time %v)",
		mode, r.Config.Runs, r.Config.Duration, r.Config.Kills, r.Wall)
	if r.Host.LoadStart > 0 || r.Host.LoadEnd > 0 {
		p("; one-minute load average %.2f at the start and %.2f at the end", r.Host.LoadStart, r.Host.LoadEnd)
	}
	p(".\n\n")
	p("Latencies are p50 / p99 / p999 of per-call samples (lower is better); ratios are ours ÷ baseline for p50 / p99. ")
	p("Throughputs are calls per second (higher is better); ratios are ours ÷ baseline. ")
	p("Raw baselines run between two processes over the same transport, without clusterclient; Node runs on TCP only.\n\n")
	if d := r.find(implDirect, transportInProcess, callName(64)); d != nil {
		p("Floor: a direct in-process Go call of the same echo function takes %s (p50).\n\n", fmtDur(d.Latency.P50))
	}
	if svgPath != "" {
		p("![clusterbench chart](%s)\n\n", svgPath)
	}

	for _, t := range r.transports() {
		withNode := t == "tcp" && r.hasImpl(implNode)
		p("### %s\n\n", t)
		if withNode {
			p("| workload | ours | raw %s | ours ÷ raw | Node cluster-client | ours ÷ Node |\n|---|---|---|---|---|---|\n", t)
		} else {
			p("| workload | ours | raw %s | ours ÷ raw |\n|---|---|---|---|\n", t)
		}
		for _, row := range latencyRows {
			ours := r.find(implOurs, t, row.ours)
			node := r.find(implNode, "tcp", row.ours)
			if ours == nil && (!withNode || node == nil) {
				continue
			}
			raw := r.find(implRaw, t, row.raw)
			cells := []string{row.title, latencyCell(ours), latencyCell(raw), latencyRatio(ours, raw)}
			if raw != nil {
				cells[2] += " (" + rawTitle(row.raw) + ")"
			}
			if withNode {
				cells = append(cells, latencyCell(node), latencyRatio(ours, node))
			}
			p("| %s |\n", strings.Join(cells, " | "))
		}
		for _, row := range rateRows {
			ours := r.find(implOurs, t, row.ours)
			node := r.find(implNode, "tcp", row.ours)
			if ours == nil && (!withNode || node == nil) {
				continue
			}
			raw := r.find(implRaw, t, row.raw)
			cells := []string{row.title, rateCell(ours), rateCell(raw), rateRatio(ours, raw)}
			if raw != nil {
				cells[2] += " (" + rawTitle(row.raw) + ")"
			}
			if withNode {
				cells = append(cells, rateCell(node), rateRatio(ours, node))
			}
			p("| %s |\n", strings.Join(cells, " | "))
		}
		p("\n")
	}

	writeCodecs(p, r)
	writeGRPC(p, r)
	writeAllocs(p, r)
	writePhases(p, r)
	writeMemory(p, r)
	writeHandover(p, r)
	writeTargets(p, r)

	if len(r.Skipped) > 0 {
		p("### Skipped\n\n")
		for _, n := range r.Skipped {
			p("- %s: %s\n", n.What, n.Why)
		}
		p("\n")
	}
	if len(r.Errors) > 0 {
		p("### Failed\n\n")
		for _, n := range r.Errors {
			p("- %s: %s\n", n.What, oneLine(n.Why))
		}
		p("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *Results) hasImpl(impl string) bool {
	for _, m := range r.Measurements {
		if m.Impl == impl {
			return true
		}
	}
	return false
}

func latencyCell(m *Measurement) string {
	if m == nil || m.Latency == nil {
		return "–"
	}
	s := m.Latency
	cell := fmtDur(s.P50) + " / " + fmtDur(s.P99) + " / " + fmtDur(s.P999)
	if strings.HasPrefix(m.Name, "failover/") {
		cell = fmtDur(s.P50) + " / " + fmtDur(s.P99) + " / max " + fmtDur(s.Max) + fmt.Sprintf(" (%d kills)", s.N)
	}
	if m.Lost > 0 {
		cell += fmt.Sprintf(" (%d lost)", m.Lost)
	}
	return cell
}

func latencyRatio(ours, base *Measurement) string {
	if ours == nil || base == nil || ours.Latency == nil || base.Latency == nil || base.Latency.P50 == 0 || base.Latency.P99 == 0 {
		return "–"
	}
	return ratio(float64(ours.Latency.P50), float64(base.Latency.P50)) + " / " +
		ratio(float64(ours.Latency.P99), float64(base.Latency.P99))
}

func rateCell(m *Measurement) string {
	if m == nil || (m.Rate == 0 && m.Failed == 0) {
		return "–"
	}
	if m.Failed > 0 {
		return fmt.Sprintf("%s (%d calls failed)", fmtRate(m.Rate), m.Failed)
	}
	return fmtRate(m.Rate)
}

func rateRatio(ours, base *Measurement) string {
	if ours == nil || base == nil || base.Rate == 0 {
		return "–"
	}
	return ratio(ours.Rate, base.Rate)
}

func ratio(a, b float64) string { return trimFloat(a/b, 3) + "×" }

// otherCodecs returns the run's codecs other than the default, in
// --codecs order.
func (r *Results) otherCodecs() []string {
	var out []string
	for _, c := range r.Config.Codecs {
		if c != defaultCodec {
			out = append(out, c)
		}
	}
	return out
}

// binaryCodec reports whether codec is a binary codec (for issue 19's
// target): neither of the core's JSON codecs.
func binaryCodec(codec string) bool {
	return codec != protocol.JSON.Name() && codec != protocol.SerializeJSON.Name()
}

// writeCodecs writes, for each codec other than json, its cluster rows
// next to json's and the raw baseline of the same run.
func writeCodecs(p func(string, ...any), r *Results) {
	others := r.otherCodecs()
	if len(others) == 0 {
		return
	}
	p("### Codecs\n\n")
	p("The cluster workloads once per codec of --codecs, in the same run, every member with that codec; ")
	p("\"json\" is the tables above. Ratios: the codec ÷ the raw baseline and ÷ json (p50 / p99 for latencies).\n\n")
	for _, t := range r.transports() {
		for _, c := range others {
			impl := oursImplName(c)
			var rows []string
			add := func(title string, ours, js, raw *Measurement, rawName string, cell func(*Measurement) string, ratio func(a, b *Measurement) string) {
				if ours == nil {
					return
				}
				rawCell := cell(raw)
				if raw != nil {
					rawCell += " (" + rawTitle(rawName) + ")"
				}
				rows = append(rows, "| "+strings.Join([]string{title, cell(js), cell(ours), rawCell, ratio(ours, raw), ratio(ours, js)}, " | ")+" |\n")
			}
			for _, row := range latencyRows {
				add(row.title, r.find(impl, t, row.ours), r.find(implOurs, t, row.ours), r.find(implRaw, t, row.raw), row.raw, latencyCell, latencyRatio)
			}
			for _, row := range rateRows {
				add(row.title, r.find(impl, t, row.ours), r.find(implOurs, t, row.ours), r.find(implRaw, t, row.raw), row.raw, rateCell, rateRatio)
			}
			if len(rows) == 0 {
				continue
			}
			p("#### %s, %s\n\n", t, c)
			p("| workload | json | %s | raw %s | %s ÷ raw | %s ÷ json |\n|---|---|---|---|---|---|\n", c, t, c, c)
			for _, row := range rows {
				p("%s", row)
			}
			p("\n")
		}
	}
}

// writeAllocs writes the follower's allocations per sequential invoke.
func writeAllocs(p func(string, ...any), r *Results) {
	var rows []string
	for _, t := range r.transports() {
		var cells []string
		found := false
		for _, w := range latencyWorkloads {
			m := r.find(implOurs, t, invokeName(w.size, w.kind))
			if m == nil || m.AllocsPerOp == 0 {
				cells = append(cells, "–")
				continue
			}
			found = true
			cells = append(cells, fmt.Sprintf("%s (codec %s)", trimFloat(m.AllocsPerOp, 2), trimFloat(m.CodecAllocsPerOp, 2)))
		}
		if found {
			rows = append(rows, "| "+t+" | "+strings.Join(cells, " | ")+" |\n")
		}
	}
	if len(rows) == 0 {
		return
	}
	p("### Follower allocations per invoke\n\n")
	p("Heap allocations of the whole follower process per sequential invoke (client, codec, runtime, from runtime.MemStats), ")
	p("and in parentheses the codec's own share, estimated by encoding the argument and decoding the result alone.\n\n")
	p("| transport | 64 B string | 64 B []byte | 4 KiB string | 4 KiB []byte |\n|---|---|---|---|---|\n")
	for _, row := range rows {
		p("%s", row)
	}
	p("\n")
}

// writePhases splits ours' failovers: the time until every survivor had
// lost the old leader, had a new term ready, and had a call answered.
func writePhases(p func(string, ...any), r *Results) {
	var rows []string
	for _, t := range r.transports() {
		for _, mode := range []string{"auto", "forced"} {
			m := r.find(implOurs, t, failoverName(mode))
			if m == nil || len(m.LostSamples) == 0 || m.Latency == nil {
				continue
			}
			l, rd := summarize(slices.Clone(m.LostSamples)), summarize(slices.Clone(m.ReadySamples))
			rows = append(rows, fmt.Sprintf("| %s | %s | %s / %s | %s / %s | %s / %s |\n", t, mode,
				fmtDur(l.P50), fmtDur(l.P99), fmtDur(rd.P50), fmtDur(rd.P99), fmtDur(m.Latency.P50), fmtDur(m.Latency.P99)))
		}
	}
	if len(rows) == 0 {
		return
	}
	p("### Where failover time goes\n\n")
	p("From the SIGKILL until every survivor had lost the old leader (its connection failed), had a new term ready ")
	p("(elected, registered, subscriptions replayed), and had a call answered by the new leader; p50 / p99 over the kills, ")
	p("from the survivors' EventLeaderLost and EventReady times.\n\n")
	p("| transport | mode | leader lost | ready again | call answered |\n|---|---|---|---|---|\n")
	for _, row := range rows {
		p("%s", row)
	}
	p("\n")
}

// perFollower returns the leader's memory growth per idle follower
// between its first and last points with followers: RSS and Go heap and
// stacks.
func perFollower(m *Measurement) (rss, goMem float64, ok bool) {
	var pts []MemPoint
	for _, pt := range m.Memory {
		if pt.Followers > 0 {
			pts = append(pts, pt)
		}
	}
	if len(pts) < 2 {
		return 0, 0, false
	}
	a, z := pts[0], pts[len(pts)-1]
	n := float64(z.Followers - a.Followers)
	return float64(z.RSS-a.RSS) / n, float64(z.GoInUse-a.GoInUse) / n, true
}

// writeMemory writes the leader's memory with idle followers.
func writeMemory(p func(string, ...any), r *Results) {
	var ms []*Measurement
	for _, t := range r.transports() {
		if m := r.find(implOurs, t, memoryName); m != nil {
			ms = append(ms, m)
		}
	}
	if len(ms) == 0 {
		return
	}
	p("### Leader memory with idle followers\n\n")
	p("After a forced GC; Go memory is heap in use plus goroutine stacks.\n\n")
	p("| transport | idle followers | leader RSS | Go memory | goroutines |\n|---|---|---|---|---|\n")
	for _, m := range ms {
		for _, pt := range m.Memory {
			rss := "n/a"
			if pt.RSS > 0 {
				rss = fmtBytes(float64(pt.RSS))
			}
			p("| %s | %d | %s | %s | %d |\n", m.Transport, pt.Followers, rss, fmtBytes(float64(pt.GoInUse)), pt.Goroutines)
		}
		if rss, goMem, ok := perFollower(m); ok {
			p("| %s | per follower | %s | %s | |\n", m.Transport, fmtBytes(rss), fmtBytes(goMem))
		}
	}
	p("\n")
}

// target is one of issue 8's targets as measured.
type target struct {
	what     string
	measured string
	met      bool
	known    bool // false: not measured in this run
}

// targets evaluates issue 8's targets on the results.
func targets(r *Results) []target {
	var out []target
	latP50 := func(impl, t, name string) (int64, bool) {
		m := r.find(impl, t, name)
		if m == nil || m.Latency == nil {
			return 0, false
		}
		return m.Latency.P50, true
	}
	rate := func(impl, t, name string) (float64, bool) {
		m := r.find(impl, t, name)
		if m == nil || m.Rate == 0 {
			return 0, false
		}
		return m.Rate, true
	}
	for _, t := range []string{"tcp", "unix"} {
		tg := target{what: "invoke p50 via a follower ≤ 1.5× raw ping-pong p50, " + t + " (64 B string / []byte)"}
		raw, okRaw := latP50(implRaw, t, pingPongName(64))
		s, okS := latP50(implOurs, t, invokeName(64, "string"))
		b, okB := latP50(implOurs, t, invokeName(64, "bytes"))
		if okRaw && okS && okB {
			rs, rb := float64(s)/float64(raw), float64(b)/float64(raw)
			tg.known, tg.met = true, rs <= 1.5 && rb <= 1.5
			tg.measured = fmt.Sprintf("%s / %s (%s, %s vs %s)", ratio(float64(s), float64(raw)), ratio(float64(b), float64(raw)), fmtDur(s), fmtDur(b), fmtDur(raw))
		}
		out = append(out, tg)
	}
	{
		tg := target{what: "throughput 64 B, N = 4, tcp ≥ 4× Node"}
		o, ok1 := rate(implOurs, "tcp", tputName(64, "string", 4))
		n, ok2 := rate(implNode, "tcp", tputName(64, "string", 4))
		if ok1 && ok2 {
			tg.known, tg.met = true, o >= 4*n
			tg.measured = fmt.Sprintf("%s (%s vs %s)", ratio(o, n), fmtRate(o), fmtRate(n))
		}
		out = append(out, tg)
	}
	{
		tg := target{what: "throughput 64 B, N = 4, tcp ≥ 50% of raw pipelined echo"}
		o, ok1 := rate(implOurs, "tcp", tputName(64, "string", 4))
		raw, ok2 := rate(implRaw, "tcp", echoName(64, 4))
		if ok1 && ok2 {
			tg.known, tg.met = true, o >= raw/2
			tg.measured = fmt.Sprintf("%.0f%% (%s vs %s)", 100*o/raw, fmtRate(o), fmtRate(raw))
		}
		out = append(out, tg)
	}
	{
		tg := target{what: "4 KiB []byte throughput ≥ 100× Node (tcp, N = 4)"}
		o, ok1 := rate(implOurs, "tcp", tputName(4096, "bytes", 4))
		n, ok2 := rate(implNode, "tcp", tputName(4096, "bytes", 4))
		if ok1 && ok2 {
			tg.known, tg.met = true, o >= 100*n
			tg.measured = fmt.Sprintf("%s (%s vs %s)", ratio(o, n), fmtRate(o), fmtRate(n))
		}
		out = append(out, tg)
	}
	for _, t := range r.transports() {
		tg := target{what: "publish → all 4 followers p50 ≤ 100 µs, p99 ≤ 1 ms, " + t}
		if m := r.find(implOurs, t, publishName(4)); m != nil && m.Latency != nil {
			tg.known = true
			tg.met = m.Latency.P50 <= 100e3 && m.Latency.P99 <= 1e6 && m.Lost == 0
			tg.measured = fmtDur(m.Latency.P50) + " / " + fmtDur(m.Latency.P99)
			if m.Lost > 0 {
				tg.measured += fmt.Sprintf(", %d lost", m.Lost)
			}
			if raw := r.find(implRaw, t, publishName(4)); raw != nil && raw.Latency != nil {
				tg.measured += fmt.Sprintf(" (raw fan-out through a relay: %s / %s)", fmtDur(raw.Latency.P50), fmtDur(raw.Latency.P99))
			}
		}
		out = append(out, tg)
	}
	for _, t := range r.transports() {
		for _, fm := range []struct {
			mode  string
			limit int64
		}{{"auto", 5e6}, {"forced", 50e6}} {
			tg := target{what: fmt.Sprintf("failover p50 ≤ %s, %s mode, %s", fmtDur(fm.limit), fm.mode, t)}
			if v, ok := latP50(implOurs, t, failoverName(fm.mode)); ok {
				tg.known, tg.met, tg.measured = true, v <= fm.limit, fmtDur(v)
			}
			out = append(out, tg)
		}
	}
	for _, t := range r.transports() {
		tg := target{what: "≤ 4 allocations per invoke on the follower beyond the codec's own, " + t + " (worst workload)"}
		worst, name := -1.0, ""
		for _, w := range latencyWorkloads {
			if m := r.find(implOurs, t, invokeName(w.size, w.kind)); m != nil && m.AllocsPerOp > 0 {
				if beyond := m.AllocsPerOp - m.CodecAllocsPerOp; beyond > worst {
					worst, name = beyond, fmt.Sprintf("%s %s: %s − codec %s", sizeTitle(w.size), w.kind, trimFloat(m.AllocsPerOp, 2), trimFloat(m.CodecAllocsPerOp, 2))
				}
			}
		}
		if worst >= 0 {
			tg.known, tg.met = true, worst <= 4
			tg.measured = fmt.Sprintf("%s (%s)", trimFloat(worst, 2), name)
		}
		out = append(out, tg)
	}
	for _, c := range r.otherCodecs() {
		if !binaryCodec(c) {
			continue
		}
		for _, t := range r.transports() {
			tg := target{what: fmt.Sprintf("4 KiB []byte throughput ≥ 50%% of the raw pipelined echo with the binary codec (%s), %s, N = 4", c, t)}
			o, ok1 := rate(oursImplName(c), t, tputName(4096, "bytes", 4))
			raw, ok2 := rate(implRaw, t, echoName(4096, 4))
			if ok1 && ok2 {
				tg.known, tg.met = true, o >= raw/2
				tg.measured = fmt.Sprintf("%.0f%% (%s vs %s)", 100*o/raw, fmtRate(o), fmtRate(raw))
				if j, ok := rate(implOurs, t, tputName(4096, "bytes", 4)); ok {
					tg.measured += fmt.Sprintf("; json %.0f%% (%s)", 100*j/raw, fmtRate(j))
				}
			}
			out = append(out, tg)
		}
	}
	for _, t := range r.transports() {
		// Judged on the Go memory in use: RSS counts only the pages touched
		// so far, and an idle follower's buffers are not touched yet.
		tg := target{what: "leader memory per idle follower ≤ 32 KiB (Go heap + stacks in use), " + t}
		if m := r.find(implOurs, t, memoryName); m != nil {
			if rss, goMem, ok := perFollower(m); ok {
				tg.known, tg.met = true, goMem <= 32<<10
				tg.measured = fmtBytes(goMem)
				if rss != 0 {
					tg.measured += fmt.Sprintf(" (RSS %s)", fmtBytes(rss))
				}
			}
		}
		out = append(out, tg)
	}
	return out
}

// writeTargets writes issue 8's targets with what this run measured.
func writeTargets(p func(string, ...any), r *Results) {
	p("### Targets (issue 8)\n\n")
	p("| target | measured | met |\n|---|---|---|\n")
	for _, tg := range targets(r) {
		verdict := "not measured"
		switch {
		case tg.known && tg.met:
			verdict = "yes"
		case tg.known:
			verdict = "**no**"
		}
		measured := tg.measured
		if measured == "" {
			measured = "–"
		}
		p("| %s | %s | %s |\n", tg.what, measured, verdict)
	}
	p("\n")
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

func sizeTitle(size int) string {
	if size >= 1024 && size%1024 == 0 {
		return fmt.Sprintf("%d KiB", size/1024)
	}
	return fmt.Sprintf("%d B", size)
}
