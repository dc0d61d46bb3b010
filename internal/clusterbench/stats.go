package clusterbench

import (
	"math"
	"slices"
	"strconv"
	"time"
)

// Summary describes a set of per-operation latency samples. Percentiles
// are nearest-rank over the sorted samples (the value below which p of
// the samples fall), so p999 needs about a thousand samples to mean
// anything; N says how many there were.
type Summary struct {
	N    int   `json:"n"`
	Min  int64 `json:"min_ns"`
	P50  int64 `json:"p50_ns"`
	P90  int64 `json:"p90_ns"`
	P99  int64 `json:"p99_ns"`
	P999 int64 `json:"p999_ns"`
	Max  int64 `json:"max_ns"`
	Mean int64 `json:"mean_ns"`
}

// summarize sorts samples (nanoseconds) in place and summarizes them.
// It returns the zero Summary for no samples.
func summarize(samples []int64) Summary {
	if len(samples) == 0 {
		return Summary{}
	}
	slices.Sort(samples)
	var sum float64
	for _, s := range samples {
		sum += float64(s)
	}
	return Summary{
		N:    len(samples),
		Min:  samples[0],
		P50:  rank(samples, 0.50),
		P90:  rank(samples, 0.90),
		P99:  rank(samples, 0.99),
		P999: rank(samples, 0.999),
		Max:  samples[len(samples)-1],
		Mean: int64(sum / float64(len(samples))),
	}
}

// rank returns the nearest-rank p-quantile of sorted.
func rank(sorted []int64, p float64) int64 {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// medianSummary combines the summaries of repeated runs of one
// measurement field by field, taking the median of each (the upper median
// for an even count). N is the total number of samples.
func medianSummary(runs []Summary) Summary {
	if len(runs) == 0 {
		return Summary{}
	}
	field := func(get func(Summary) int64) int64 {
		v := make([]int64, len(runs))
		for i, r := range runs {
			v[i] = get(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	var n int
	for _, r := range runs {
		n += r.N
	}
	return Summary{
		N:    n,
		Min:  field(func(s Summary) int64 { return s.Min }),
		P50:  field(func(s Summary) int64 { return s.P50 }),
		P90:  field(func(s Summary) int64 { return s.P90 }),
		P99:  field(func(s Summary) int64 { return s.P99 }),
		P999: field(func(s Summary) int64 { return s.P999 }),
		Max:  field(func(s Summary) int64 { return s.Max }),
		Mean: field(func(s Summary) int64 { return s.Mean }),
	}
}

// median returns the (upper) median of v, or 0 for none. It does not
// modify v.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// fmtDur formats nanoseconds for humans: 850 ns, 12.3 µs, 4.56 ms, 1.23 s.
func fmtDur(ns int64) string {
	d := time.Duration(ns)
	switch {
	case d < time.Microsecond:
		return trimFloat(float64(ns), 0) + " ns"
	case d < time.Millisecond:
		return trimFloat(float64(ns)/1e3, 3) + " µs"
	case d < time.Second:
		return trimFloat(float64(ns)/1e6, 3) + " ms"
	default:
		return trimFloat(float64(ns)/1e9, 3) + " s"
	}
}

// fmtRate formats operations per second: 950/s, 67.6k/s, 1.23M/s.
func fmtRate(perSec float64) string {
	switch {
	case perSec < 1e3:
		return trimFloat(perSec, 3) + "/s"
	case perSec < 1e6:
		return trimFloat(perSec/1e3, 3) + "k/s"
	default:
		return trimFloat(perSec/1e6, 3) + "M/s"
	}
}

// fmtBytes formats a byte count in binary units.
func fmtBytes(n float64) string {
	switch {
	case math.Abs(n) < 1<<10:
		return trimFloat(n, 3) + " B"
	case math.Abs(n) < 1<<20:
		return trimFloat(n/(1<<10), 3) + " KiB"
	default:
		return trimFloat(n/(1<<20), 3) + " MiB"
	}
}

// trimFloat formats v with three significant digits (at least the integer
// part), as benchmark tables do.
func trimFloat(v float64, sig int) string {
	if sig == 0 || v == 0 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	digits := int(math.Floor(math.Log10(math.Abs(v)))) + 1
	return strconv.FormatFloat(v, 'f', max(0, sig-digits), 64)
}
