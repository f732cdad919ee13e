package bench

import (
	"testing"
	"time"
)

// samplesOf are snapshots a tenth of a second apart holding the running
// totals of ru, which the target spent by then.
func samplesOf(ru ...float64) []snapshot {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	out := make([]snapshot, len(ru))
	for i, r := range ru {
		out[i] = snapshot{at: t0.Add(time.Duration(i) * 100 * time.Millisecond), ru: r}
	}
	return out
}

func TestWorstSecond(t *testing.T) {
	// 100 RU in each tenth of a second, but 500 in the 13th: the worst
	// second holds it, the first does not.
	totals := []float64{0}
	for i := 1; i <= 25; i++ {
		step := 100.0
		if i == 13 {
			step = 500
		}
		totals = append(totals, totals[i-1]+step)
	}
	s := &sampler{samples: samplesOf(totals...)}
	worst, first := s.worstSecond()
	if worst != 1400 || first != 1000 {
		t.Fatalf("worst %v, first %v; want 1400 and 1000", worst, first)
	}
	// A run sampled over less than a second spent it all in one.
	s = &sampler{samples: samplesOf(0, 300, 700)}
	if worst, first := s.worstSecond(); worst != 700 || first != 700 {
		t.Fatalf("short run: worst %v, first %v; want 700", worst, first)
	}
}
