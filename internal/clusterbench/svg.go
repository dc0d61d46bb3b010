package clusterbench

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strconv"
)

// The chart: two panels of grouped bars, one group per transport. The
// first shows the 64 B []byte round trip (p50 and p99, log scale): ours
// through a follower, the raw ping-pong, Node. The second shows the 64 B
// throughput with 4 followers × 64 in flight: ours, the raw pipelined echo
// (4 clients), Node.

// series is one kind of bar, with its color.
type series struct {
	name, color string
}

var (
	seriesOursP50 = series{"ours p50", "#1f5fa6"}
	seriesOursP99 = series{"ours p99", "#8fb8e3"}
	seriesRawP50  = series{"raw p50", "#5f5f5f"}
	seriesRawP99  = series{"raw p99", "#bdbdbd"}
	seriesNodeP50 = series{"Node p50", "#2e8b3a"}
	seriesNodeP99 = series{"Node p99", "#a3d9a5"}
	seriesOurs    = series{"ours", "#1f5fa6"}
	seriesRaw     = series{"raw echo", "#5f5f5f"}
	seriesNode    = series{"Node cluster-client", "#2e8b3a"}
)

type bar struct {
	s     series
	value float64 // in the panel's unit; 0 = missing
}

type barGroup struct {
	name string
	bars []bar
}

type panel struct {
	title  string
	unit   string // the values' unit, e.g. "µs"
	log    bool
	legend []series
	groups []barGroup
}

// chartPanels builds the chart's panels from the results.
func chartPanels(r *Results) []panel {
	lat := panel{
		title:  "Round trip, 64 B []byte, p50 and p99 (log scale; lower is better)",
		unit:   "µs",
		log:    true,
		legend: []series{seriesOursP50, seriesOursP99, seriesRawP50, seriesRawP99},
	}
	tput := panel{
		title:  "Throughput, 64 B, 4 followers × 64 calls in flight (higher is better)",
		unit:   "k calls/s",
		legend: []series{seriesOurs, seriesRaw},
	}
	us := func(m *Measurement, p99 bool) float64 {
		if m == nil || m.Latency == nil {
			return 0
		}
		if p99 {
			return float64(m.Latency.P99) / 1e3
		}
		return float64(m.Latency.P50) / 1e3
	}
	krate := func(m *Measurement) float64 {
		if m == nil {
			return 0
		}
		return m.Rate / 1e3
	}
	node := r.hasImpl(implNode)
	if node {
		lat.legend = append(lat.legend, seriesNodeP50, seriesNodeP99)
		tput.legend = append(tput.legend, seriesNode)
	}
	for _, t := range r.transports() {
		ours, raw := r.find(implOurs, t, invokeName(64, "bytes")), r.find(implRaw, t, pingPongName(64))
		g := barGroup{name: t, bars: []bar{
			{seriesOursP50, us(ours, false)}, {seriesOursP99, us(ours, true)},
			{seriesRawP50, us(raw, false)}, {seriesRawP99, us(raw, true)},
		}}
		tg := barGroup{name: t, bars: []bar{
			{seriesOurs, krate(r.find(implOurs, t, tputName(64, "string", 4)))},
			{seriesRaw, krate(r.find(implRaw, t, echoName(64, 4)))},
		}}
		if node && t == "tcp" {
			n := r.find(implNode, "tcp", invokeName(64, "bytes"))
			g.bars = append(g.bars, bar{seriesNodeP50, us(n, false)}, bar{seriesNodeP99, us(n, true)})
			tg.bars = append(tg.bars, bar{seriesNode, krate(r.find(implNode, "tcp", tputName(64, "string", 4)))})
		}
		lat.groups = append(lat.groups, g)
		tput.groups = append(tput.groups, tg)
	}
	return []panel{lat, tput}
}

// Chart geometry, in SVG user units.
const (
	chartWidth  = 960
	panelHeight = 330
	plotLeft    = 70
	plotRight   = 20
	plotTop     = 56 // below the title and legend
	plotBottom  = 40 // group labels
)

// writeSVG writes the chart of r.
func writeSVG(w io.Writer, r *Results) error {
	panels := chartPanels(r)
	var b svgBuilder
	height := panelHeight*len(panels) + 30
	b.printf(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		chartWidth, height, chartWidth, height)
	b.printf(`<rect width="100%%" height="100%%" fill="#ffffff"/>` + "\n")
	for i, p := range panels {
		b.panel(p, float64(i*panelHeight))
	}
	foot := fmt.Sprintf("clusterbench, %s, %s/%s, %d CPUs, %s", r.Started.Format("2006-01-02"), r.Host.OS, r.Host.Arch, r.Host.CPUs, r.Host.Go)
	if r.Host.Node != "" {
		foot += ", Node " + r.Host.Node + " cluster-client " + r.Host.ClusterClient
	}
	if r.Host.LoadStart > 0 {
		foot += fmt.Sprintf(", load average %.1f → %.1f", r.Host.LoadStart, r.Host.LoadEnd)
	}
	b.text(plotLeft, float64(height-10), "start", "#666666", 11, foot)
	b.printf("</svg>\n")
	if b.err != nil {
		return b.err
	}
	_, err := w.Write(b.buf.Bytes())
	return err
}

type svgBuilder struct {
	buf bytes.Buffer
	err error
}

func (b *svgBuilder) printf(format string, args ...any) {
	fmt.Fprintf(&b.buf, format, args...)
}

// text writes a text element; s is escaped.
func (b *svgBuilder) text(x, y float64, anchor, color string, size int, s string) {
	b.printf(`<text x="%.1f" y="%.1f" text-anchor="%s" fill="%s" font-size="%d">`, x, y, anchor, color, size)
	if err := xml.EscapeText(&b.buf, []byte(s)); err != nil && b.err == nil {
		b.err = err
	}
	b.printf("</text>\n")
}

func (b *svgBuilder) rect(x, y, w, h float64, color, title string) {
	b.printf(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s">`, x, y, w, h, color)
	b.printf("<title>")
	if err := xml.EscapeText(&b.buf, []byte(title)); err != nil && b.err == nil {
		b.err = err
	}
	b.printf("</title></rect>\n")
}

func (b *svgBuilder) line(x1, y1, x2, y2 float64, color string) {
	b.printf(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1"/>`+"\n", x1, y1, x2, y2, color)
}

// panel draws p with its top at y0.
func (b *svgBuilder) panel(p panel, y0 float64) {
	b.text(plotLeft, y0+20, "start", "#000000", 14, p.title+" — "+p.unit)
	// Legend.
	x := float64(plotLeft)
	for _, s := range p.legend {
		b.rect(x, y0+30, 12, 12, s.color, s.name)
		b.text(x+16, y0+40, "start", "#333333", 11, s.name)
		x += 16 + float64(7*len(s.name)) + 18
	}

	top, bottom := y0+plotTop, y0+panelHeight-plotBottom
	left, right := float64(plotLeft), float64(chartWidth-plotRight)
	var vmax, vmin float64
	vmin = math.Inf(1)
	for _, g := range p.groups {
		for _, br := range g.bars {
			if br.value > 0 {
				vmax, vmin = math.Max(vmax, br.value), math.Min(vmin, br.value)
			}
		}
	}
	if vmax == 0 {
		b.text((left+right)/2, (top+bottom)/2, "middle", "#666666", 12, "no data")
		return
	}
	// scale maps a value to a y coordinate; ticks are the grid values.
	var scale func(v float64) float64
	var ticks []float64
	if p.log {
		lo, hi := math.Floor(math.Log10(vmin)), math.Ceil(math.Log10(vmax))
		if hi == lo {
			hi++
		}
		scale = func(v float64) float64 { return bottom - (math.Log10(v)-lo)/(hi-lo)*(bottom-top) }
		for e := lo; e <= hi; e++ {
			ticks = append(ticks, math.Pow(10, e))
		}
	} else {
		step := niceStep(vmax / 5)
		hi := math.Ceil(vmax/step) * step
		scale = func(v float64) float64 { return bottom - v/hi*(bottom-top) }
		for v := 0.0; v <= hi+step/2; v += step {
			ticks = append(ticks, v)
		}
	}
	for _, v := range ticks {
		y := scale(v)
		b.line(left, y, right, y, "#e0e0e0")
		b.text(left-6, y+4, "end", "#666666", 11, strconv.FormatFloat(v, 'f', -1, 64))
	}
	b.line(left, bottom, right, bottom, "#333333")

	groupW := (right - left) / float64(len(p.groups))
	for i, g := range p.groups {
		gx := left + float64(i)*groupW
		barW := math.Min(48, groupW*0.8/float64(len(p.legend)))
		x := gx + (groupW-barW*float64(len(g.bars)))/2
		for _, br := range g.bars {
			if br.value > 0 {
				y := scale(br.value)
				if p.log && y > bottom {
					y = bottom
				}
				b.rect(x+1, y, barW-2, bottom-y, br.s.color, fmt.Sprintf("%s %s: %s %s", g.name, br.s.name, trimFloat(br.value, 3), p.unit))
				b.text(x+barW/2, y-3, "middle", "#333333", 9, trimFloat(br.value, 3))
			}
			x += barW
		}
		b.text(gx+groupW/2, bottom+18, "middle", "#000000", 12, g.name)
	}
}

// niceStep rounds a grid step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}
