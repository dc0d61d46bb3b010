package cluster

import (
	"testing"
	"time"
)

// Every duration falls in the bucket whose bounds hold it, and a bucket's
// top is at most 1.5 times its bottom (the quantiles' precision).
func TestLatencyBuckets(t *testing.T) {
	for us := uint64(0); us < 1<<20; us += 1 + us/7 {
		i := bucketOf(us)
		lo := uint64(0)
		if i > 0 {
			lo = bucketTop(i - 1)
		}
		if us < lo || us >= bucketTop(i) {
			t.Fatalf("%d µs in bucket %d [%d, %d)", us, i, lo, bucketTop(i))
		}
		if lo >= 2 && float64(bucketTop(i)) > 1.5*float64(lo) {
			t.Fatalf("bucket %d [%d, %d) is wider than half an octave", i, lo, bucketTop(i))
		}
	}
	var tab methodTable
	for _, d := range []time.Duration{100 * time.Microsecond, 100 * time.Microsecond, 100 * time.Microsecond, 10 * time.Millisecond} {
		tab.record("m", d, nil, false)
	}
	tab.record("m", 0, errTest, true)
	ms := tab.snapshot()["m"]
	if ms.Calls != 5 || ms.Errors != 1 || ms.Oneway != 1 || ms.Max != 10*time.Millisecond ||
		ms.P50 != 128*time.Microsecond || ms.P90 != 10*time.Millisecond || ms.Mean != (300*time.Microsecond+10*time.Millisecond)/4 {
		t.Fatalf("figures %+v", ms)
	}
	for i := range MaxMethodStats + 10 {
		tab.record(string(rune('a'+i%26))+string(rune(i)), time.Microsecond, nil, false)
	}
	if got := tab.snapshot(); len(got) != MaxMethodStats+1 || got[OtherMethods].Calls == 0 {
		t.Fatalf("%d methods kept, %q has %+v", len(got), OtherMethods, got[OtherMethods])
	}
}

var errTest = errorString("test")

type errorString string

func (e errorString) Error() string { return string(e) }
